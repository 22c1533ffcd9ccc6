import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log.js';
import { unimplemented } from '../errors.js';
import { metrics } from '../metrics.js';
import { drained } from '../util/drain.js';
import { toServiceError } from './status.js';

/**
 * A method implementation: takes the decoded request and resolves to the
 * response. For a client-streaming method the argument is instead an
 * AsyncIterable of the decoded requests (flow-controlled: the client is held
 * back while the implementation does not read); it ends when the client
 * half-closes and throws if the client cancels.
 *
 * For a server-streaming method the implementation gets the request and the
 * call (a grpc-js ServerWritableStream: `write`, 'drain', 'cancelled'); it
 * writes its responses and resolves when the stream is done (the call is then
 * ended) or rejects (the call ends with the mapped status).
 */
type UnaryImpl = (request: any, call?: any) => Promise<unknown>;
export type Implementation = Record<string, UnaryImpl>;

/**
 * Builds the full handler table of a service: the implemented unary and
 * client-streaming methods wrapped with logging and error mapping, and every
 * other method answering UNIMPLEMENTED at once (server-streaming ones
 * included), so no call ever hangs.
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
      handlers[name] = wrapUnary(method.path, fn, log);
    } else if (fn && method.requestStream && !method.responseStream) {
      handlers[name] = wrapClientStream(method.path, fn, log);
    } else if (fn && !method.requestStream && method.responseStream) {
      handlers[name] = wrapServerStream(method.path, fn, log);
    } else {
      // Through the same wrappers, so these calls are logged and counted too.
      const refuse = () => Promise.reject(unimplemented(`${name} is not implemented by peapod`));
      handlers[name] = method.responseStream
        ? wrapServerStream(method.path, refuse, log)
        : method.requestStream
          ? wrapClientStream(method.path, refuse, log)
          : wrapUnary(method.path, refuse, log);
    }
  }
  return handlers;
}

/**
 * Runs `fn` with a signal aborted when the client gives up on the call
 * (cancel, deadline): the work stops waiting; what it already did stays done.
 */
export async function untilCancelled<T>(call: grpc.ServerUnaryCall<unknown, unknown> | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const cancelled = () => ac.abort(new Error('the client cancelled the call'));
  call?.once('cancelled', cancelled);
  if (call?.cancelled) cancelled();
  try {
    return await fn(ac.signal);
  } finally {
    call?.off('cancelled', cancelled);
  }
}

/**
 * A List RPC's streaming twin (KEP-5825, CRIListStreaming): one response per
 * item, as CRI-O sends them, so no list meets the message size limit. Each
 * item is made as the client reads (a slow reader holds the rest back); a
 * client that gives up ends the writing.
 */
export async function writeEach<T>(
  call: grpc.ServerWritableStream<unknown, unknown>,
  items: Iterable<T>,
  toResponse: (item: T) => unknown,
): Promise<void> {
  for (const item of items) {
    if (call.cancelled || call.destroyed) return;
    if (!call.write(await toResponse(item))) await drained(call);
  }
}

function wrapUnary(path: string, fn: UnaryImpl, log: Logger): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => settle(path, () => fn(call.request, call), callback, log, () => call.cancelled);
}

function wrapClientStream(path: string, fn: UnaryImpl, log: Logger): grpc.handleClientStreamingCall<unknown, unknown> {
  // The call is a Readable in object mode: async iteration reads one message
  // at a time and grpc-js pauses the HTTP/2 stream while nothing reads.
  return (call, callback) => settle(path, () => fn(call), callback, log, () => cancelledSoon(call));
}

/**
 * grpc-js can end a cancelled call's request stream a while before it marks
 * the call cancelled (hundreds of ms under Deno); the implementation then
 * fails on what looks like truncated input. A failed client-streaming call
 * (a load: rare, and longer than this) waits up to a second for the mark.
 */
function cancelledSoon(call: grpc.ServerReadableStream<unknown, unknown>): boolean | Promise<boolean> {
  if (call.cancelled) return true;
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      call.off('cancelled', done);
      resolve(call.cancelled);
    }, CANCEL_GRACE_MS);
    call.once('cancelled', done);
  });
}

const CANCEL_GRACE_MS = 1000;

function wrapServerStream(path: string, fn: UnaryImpl, log: Logger): grpc.handleServerStreamingCall<unknown, unknown> {
  return (call) =>
    settle(path, () => fn(call.request, call), (err) => (err ? call.emit('error', err) : call.end()), log, () => call.cancelled);
}

/** Runs one call's implementation, logging it, counting it and mapping its error (if any) to a status. */
function settle(path: string, run: () => Promise<unknown>, callback: grpc.sendUnaryData<unknown>, log: Logger, cancelled: () => boolean | Promise<boolean>): void {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const start = performance.now();
  Promise.resolve()
    .then(run)
    .then(
      (res) => {
        const ms = performance.now() - start;
        metrics.rpc(path, 'OK', ms / 1000);
        log.debug('rpc', { method: name, ms: +ms.toFixed(3) });
        callback(null, res);
      },
      // A client that went away reads no answer: count and log what happened instead.
      async (err: unknown) => {
        const status = (await cancelled()) ? { code: grpc.status.CANCELLED, details: 'cancelled by the client' } : toServiceError(err);
        const code = grpc.status[status.code!];
        metrics.rpc(path, code, (performance.now() - start) / 1000);
        const lvl = status.code === grpc.status.INTERNAL ? 'error' : 'debug';
        log[lvl]('rpc failed', { method: name, code, err: status.details });
        callback(status);
      },
    );
}
