import type { ServerWritableStream } from '@grpc/grpc-js';
import type { ContainerManager } from '../container/manager.js';
import type { Container } from '../container/types.js';
import { resourceExhausted } from '../errors.js';
import type { Logger } from '../log.js';
import type { SandboxManager } from '../sandbox/manager.js';
import type { Sandbox } from '../sandbox/types.js';
import { drained } from '../util/drain.js';
import { EventQueue, type EventBus, type RuntimeEvent } from '../util/events.js';
import { containerStatus } from './container.js';
import type { ContainerEventResponse } from './generated/runtime/v1/ContainerEventResponse.js';
import type { Implementation } from './handlers.js';
import { sandboxStatus } from './sandbox.js';

/** Events a subscriber may lag behind before its stream is ended. */
export const EVENT_BUFFER = 1024;

/**
 * CRI GetContainerEvents: every subscriber gets every event emitted after it
 * subscribed, in order, each with the pod's status and its containers'
 * statuses as they were at the transition (what the kubelet's evented PLEG
 * caches). A subscriber that does not read falls behind into a bounded
 * buffer; past it, its stream ends with RESOURCE_EXHAUSTED, never with
 * events silently missing: the kubelet relists on any error of the stream
 * and subscribes again (a lost stop would otherwise wait for its relist,
 * minutes later).
 */
export function eventHandlers(bus: EventBus, containers: ContainerManager, sandboxes: SandboxManager, log: Logger): Implementation {
  const toResponse = (e: RuntimeEvent): ContainerEventResponse => {
    const container = e.id !== e.sandboxId ? (e.subject as Container) : undefined;
    let sb: Sandbox | undefined = container ? undefined : (e.subject as Sandbox);
    if (!sb) {
      try {
        sb = sandboxes.get(e.sandboxId);
      } catch {
        sb = undefined; // removed meanwhile
      }
    }
    const statuses = sb ? containers.inSandbox(sb.id) : [];
    // A deleted container is no longer in its sandbox: report its last status too.
    if (container && !statuses.includes(container)) statuses.push(container);
    return {
      containerId: e.id,
      containerEventType: e.type,
      createdAt: e.at.toString(),
      podSandboxStatus: sb ? sandboxStatus(sb, sandboxes.stateOf(sb)) : null,
      containersStatuses: statuses.map((c) => containerStatus(containers, c)),
    };
  };

  return {
    async GetContainerEvents(_req: unknown, call: ServerWritableStream<unknown, ContainerEventResponse>) {
      const queue = new EventQueue<ContainerEventResponse>(EVENT_BUFFER);
      /** Ends a wait for the client to read. */
      let wake: (() => void) | undefined;
      const off = bus.on((e) => {
        if (queue.push(toResponse(e))) return;
        off();
        log.warn('GetContainerEvents subscriber too slow: its stream is ended', { behind: EVENT_BUFFER, id: e.id, type: e.type });
        queue.fail(resourceExhausted(`the subscriber fell ${EVENT_BUFFER} container events behind; subscribe again and list what changed`));
        wake?.();
      });
      const stop = () => {
        off();
        queue.close();
      };
      call.on('cancelled', stop);
      call.on('close', stop);
      call.on('error', stop);
      log.debug('GetContainerEvents subscriber joined', { subscribers: bus.listenerCount });
      try {
        for await (const msg of queue) {
          if (call.cancelled || call.destroyed) break;
          if (!call.write(msg)) {
            await drained(call, (resume) => (wake = resume));
            wake = undefined;
          }
        }
      } finally {
        off();
        log.debug('GetContainerEvents subscriber left', { subscribers: bus.listenerCount });
      }
    },
  };
}
