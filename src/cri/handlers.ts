import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log.js';
import { toServiceError } from './status.js';

type UnaryImpl = (request: any) => Promise<unknown>;
export type Implementation = Record<string, UnaryImpl>;

/**
 * Builds the full handler table of a service: the implemented unary methods
 * wrapped with logging and error mapping, and every other method answering
 * UNIMPLEMENTED at once (streaming ones included), so no call ever hangs.
 */
export function serviceHandlers(
  service: grpc.ServiceDefinition,
  impl: Implementation,
  log: Logger,
): grpc.UntypedServiceImplementation {
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(service)) {
    const fn = impl[name];
    if (fn && !method.requestStream && !method.responseStream) {
      handlers[name] = wrapUnary(name, fn, log);
    } else if (method.responseStream) {
      handlers[name] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
        call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: `${name} is not implemented by peapod` });
      };
    } else {
      handlers[name] = (_call: unknown, callback: grpc.sendUnaryData<unknown>) => {
        callback({ code: grpc.status.UNIMPLEMENTED, details: `${name} is not implemented by peapod` });
      };
    }
  }
  return handlers;
}

function wrapUnary(name: string, fn: UnaryImpl, log: Logger): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    const start = performance.now();
    fn(call.request).then(
      (res) => {
        log.debug('rpc', { method: name, ms: +(performance.now() - start).toFixed(3) });
        callback(null, res);
      },
      (err: unknown) => {
        const status = toServiceError(err);
        const lvl = status.code === grpc.status.INTERNAL ? 'error' : 'debug';
        log[lvl]('rpc failed', { method: name, code: grpc.status[status.code!], err: status.details });
        callback(status);
      },
    );
  };
}
