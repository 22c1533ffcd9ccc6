// Kubernetes port-forward over SPDY (portforward.k8s.io): per forwarded
// connection the client opens an "error" and a "data" stream carrying the
// same "port" and "requestID" headers; the server dials localhost:port in the
// pod's network namespace and relays the data stream, reporting a failure as
// text on the error stream.
import type { ChildProcess } from 'node:child_process';
import type { Logger } from '../log.js';
import { InputRelay, relay } from './flow.js';
import { RstStatus, type SpdySession, type SpdyStream } from './spdy.js';

export const PORTFORWARD_PROTOCOL = 'portforward.k8s.io';

/** Dials one connection (a relaying process: stdin → connection → stdout, errors on stderr). */
export type PortDialer = (port: number) => ChildProcess;

/** How long the second stream of a pair may take. */
const PAIR_TIMEOUT_MS = 30_000;

interface Pair {
  port: number;
  error?: SpdyStream;
  data?: SpdyStream;
  timer: ReturnType<typeof setTimeout>;
}

export function servePortForward(session: SpdySession, podId: string, dial: PortDialer, log: Logger): void {
  const pairs = new Map<string, Pair>();
  const conns = new Set<ChildProcess>();

  session.on('close', () => {
    for (const p of pairs.values()) clearTimeout(p.timer);
    pairs.clear();
    for (const c of conns) c.kill('SIGKILL');
  });

  session.on('stream', (s: SpdyStream) => {
    const type = s.header('streamtype');
    const portText = s.header('port') ?? '';
    const requestId = s.header('requestid') ?? '';
    const port = Number(portText);
    if ((type !== 'error' && type !== 'data') || !requestId) {
      s.rst(RstStatus.REFUSED_STREAM);
      return;
    }
    let pair = pairs.get(requestId);
    if (!pair) {
      pair = {
        port,
        timer: setTimeout(() => {
          pairs.delete(requestId);
          pair!.error?.end(`timed out waiting for the second stream of port-forward request ${requestId}`);
          pair!.data?.rst(RstStatus.CANCEL);
        }, PAIR_TIMEOUT_MS),
      };
      pairs.set(requestId, pair);
    }
    if (pair[type]) {
      s.rst(RstStatus.STREAM_IN_USE);
      return;
    }
    pair[type] = s;
    s.reply();
    if (type === 'error') s.on('data', () => {}); // the client never writes here
    if (!pair.error || !pair.data) return;
    clearTimeout(pair.timer);
    pairs.delete(requestId);
    forward(pair.port, portText, pair.error, pair.data);
  });

  function forward(port: number, portText: string, error: SpdyStream, data: SpdyStream) {
    const fail = (msg: string) => {
      error.end(`error forwarding port ${portText} to pod ${podId}: ${msg}`);
      data.end();
    };
    if (!Number.isInteger(port) || port < 1 || port > 65535) return fail(`invalid port "${portText}"`);
    let conn: ChildProcess;
    try {
      conn = dial(port);
    } catch (err) {
      return fail((err as Error).message);
    }
    conns.add(conn);
    let stderr = '';
    conn.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    relay(conn.stdout!, data);
    const input = new InputRelay(data);
    input.start(conn.stdin);
    data.on('data', (d: Buffer) => input.write(d));
    data.on('end', () => input.end());
    data.on('reset', () => conn.kill('SIGKILL'));
    conn.on('error', (err) => fail(err.message));
    conn.on('close', (code) => {
      conns.delete(conn);
      if (code !== 0) {
        const msg = stderr.trim().replace(/^peapod-portforward: /, '') || `relay exited with ${code}`;
        log.debug('port-forward failed', { pod: podId, port, err: msg });
        fail(msg);
      } else {
        data.end();
        error.end();
      }
    });
  }
}
