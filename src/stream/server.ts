// The streaming server: the HTTP endpoint behind the URLs the Exec, Attach
// and PortForward RPCs return. Bound to 127.0.0.1 only. Each URL carries a
// random token naming one stored request: single use, expiring after a
// minute; an unknown, used or expired token is a 404.
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import type { StreamBackend } from './backend.js';
import { DEFAULT_STREAM_IDLE_TIMEOUT_MS, IdleTimer } from './idle.js';
import { PORTFORWARD_PROTOCOL, servePortForward, type PortDialer } from './portforward.js';
import { negotiate, serveSpdyExec, SPDY_EXEC_PROTOCOLS, type ExecOptions, type ExecStarter } from './remotecommand.js';
import { SpdySession } from './spdy.js';
import { WebSocketExec, WebSocketPortForward, WS_EXEC_PROTOCOLS, WS_PORTFORWARD_PROTOCOLS } from './websocket.js';

export const DEFAULT_TOKEN_TTL_MS = 60_000;

export type StreamRequest =
  | { kind: 'exec'; containerId: string; cmd: string[]; opts: ExecOptions }
  | { kind: 'attach'; containerId: string; opts: ExecOptions }
  | { kind: 'portforward'; sandboxId: string; ports: number[] };

/** Stored requests by token: single use, each expiring after ttlMs. */
export class TokenStore {
  private readonly items = new Map<string, { req: StreamRequest; expires: number }>();

  constructor(private readonly ttlMs: number) {}

  add(req: StreamRequest): string {
    this.sweep();
    const token = randomBytes(18).toString('base64url');
    this.items.set(token, { req, expires: Date.now() + this.ttlMs });
    return token;
  }

  /** The request of a live token, which is used up by this call. */
  take(token: string): StreamRequest | undefined {
    const item = this.items.get(token);
    if (!item) return undefined;
    this.items.delete(token);
    return item.expires > Date.now() ? item.req : undefined;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [t, item] of this.items) if (item.expires <= now) this.items.delete(t);
  }
}

export interface StreamServerOptions {
  /** 0: an ephemeral port. */
  port: number;
  ttlMs?: number;
  /** A connection without frames either way for this long is closed (its processes killed); 0: never. */
  idleTimeoutMs?: number;
  backend: StreamBackend;
  log: Logger;
}

export class StreamServer {
  private readonly tokens: TokenStore;
  private readonly sockets = new Set<Duplex>();
  private readonly idleMs: number;
  private readonly ws: WebSocketExec;
  private readonly wsPortForward: WebSocketPortForward;

  private constructor(
    private readonly http: http.Server,
    private readonly opts: StreamServerOptions,
    readonly port: number,
  ) {
    // PEAPOD_STREAM_TOKEN_TTL_MS: for tests only (expiry without waiting a minute).
    this.tokens = new TokenStore(opts.ttlMs ?? (Number(process.env.PEAPOD_STREAM_TOKEN_TTL_MS) || DEFAULT_TOKEN_TTL_MS));
    this.idleMs = opts.idleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS;
    this.ws = new WebSocketExec(opts.log, this.idleMs);
    this.wsPortForward = new WebSocketPortForward(opts.log, this.idleMs);
  }

  static async start(opts: StreamServerOptions): Promise<StreamServer> {
    const server = http.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const s = new StreamServer(server, opts, (server.address() as AddressInfo).port);
    opts.log.info('streaming server listening', { url: `http://127.0.0.1:${s.port}` });
    server.on('request', (req: IncomingMessage, res: http.ServerResponse) => s.onRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => s.onUpgrade(req, socket, head));
    server.on('connection', (socket: Duplex) => {
      s.sockets.add(socket);
      socket.once('close', () => s.sockets.delete(socket));
    });
    return s;
  }

  /** Stores the request and returns its absolute URL. */
  url(req: StreamRequest): string {
    return `http://127.0.0.1:${this.port}/${req.kind}/${this.tokens.add(req)}`;
  }

  async close(): Promise<void> {
    this.ws.close();
    this.wsPortForward.close();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  /** The request for a path /<kind>/<token>, used up; undefined when there is none. */
  private lookup(url: string | undefined): StreamRequest | undefined {
    const m = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]+)(?:\?.*)?$/.exec(url ?? '');
    if (!m) return undefined;
    const req = this.tokens.take(m[2]!);
    return req && req.kind === m[1] ? req : undefined;
  }

  /** Exec starts a process; attach connects to the container's monitor: the protocols relay either the same way. */
  private starter(found: Extract<StreamRequest, { kind: 'exec' | 'attach' }>): ExecStarter {
    const { backend } = this.opts;
    if (found.kind === 'attach') return (o) => backend.attach(found.containerId, o);
    return (o) => backend.exec(found.containerId, found.cmd, o);
  }

  private dialer(sandboxId: string): PortDialer {
    return (port) => this.opts.backend.portForward(sandboxId, port);
  }

  private onRequest(req: IncomingMessage, res: http.ServerResponse): void {
    const found = this.lookup(req.url);
    res.writeHead(found ? 400 : 404, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(found ? 'this endpoint needs a SPDY/3.1 or WebSocket upgrade\n' : '404 page not found\n');
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const { log } = this.opts;
    socket.on('error', () => {});
    const found = this.lookup(req.url);
    if (!found) return reject(socket, 404, 'Not Found', '404 page not found\n');
    const upgrade = (req.headers.upgrade ?? '').toLowerCase();
    if (upgrade === 'websocket') {
      const supported: readonly string[] = found.kind === 'portforward' ? WS_PORTFORWARD_PROTOCOLS : WS_EXEC_PROTOCOLS;
      const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
      // As the kubelet: offering no protocol means the binary channels; offering only others is refused.
      if (offered.length > 0 && !offered.some((p) => supported.includes(p))) {
        return reject(socket, 403, 'Forbidden', `requested protocol(s) are not supported: ${JSON.stringify(offered)}; supports ${JSON.stringify(supported)}\n`);
      }
      if (found.kind === 'portforward') return this.wsPortForward.upgrade(req, socket, head, found.sandboxId, found.ports, this.dialer(found.sandboxId));
      this.ws.upgrade(req, socket, head, found.opts, found.kind === 'exec' ? found.cmd : [], this.starter(found));
      return;
    }
    if (upgrade !== 'spdy/3.1') return reject(socket, 400, 'Bad Request', `unsupported upgrade "${req.headers.upgrade ?? ''}"\n`);

    const supported: readonly string[] = found.kind === 'portforward' ? [PORTFORWARD_PROTOCOL] : SPDY_EXEC_PROTOCOLS;
    const offered = req.headers['x-stream-protocol-version'];
    // No header at all: the oldest clients, which speak channel.k8s.io (v1).
    const protocol = offered === undefined && found.kind !== 'portforward' ? 'channel.k8s.io' : negotiate(offered, supported);
    if (!protocol) {
      return reject(socket, 403, 'Forbidden', `unable to upgrade: unable to negotiate protocol: client supports ${JSON.stringify(offered ?? [])}, server supports ${JSON.stringify(supported)}\n`, {
        'X-Accepted-Stream-Protocol-Versions': supported.join(', '),
      });
    }
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n' + `X-Stream-Protocol-Version: ${protocol}\r\n\r\n`,
    );
    const idle = new IdleTimer(this.idleMs, () => {
      log.debug('stream: idle timeout', { kind: found.kind });
      session.destroy();
    });
    const session = new SpdySession(socket, true, () => idle.touch());
    session.on('close', () => idle.stop());
    session.on('error', (err: Error) => log.debug('spdy session error', { err: err.message }));
    if (found.kind === 'portforward') {
      servePortForward(session, found.sandboxId, this.dialer(found.sandboxId), log);
    } else {
      serveSpdyExec(session, protocol, found.opts, found.kind === 'exec' ? found.cmd : [], this.starter(found), log);
    }
    session.receive(head);
  }
}

function reject(socket: Duplex, code: number, reason: string, body: string, headers: Record<string, string> = {}): void {
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${code} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`,
  );
}
