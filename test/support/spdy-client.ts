// A SPDY/3.1 client for the streaming server, as kubectl/the kubelet act:
// the HTTP upgrade written by hand, then the session framing of
// src/stream/spdy.ts (and raw frames where a test checks the bytes).
import net from 'node:net';
import { headersOf, SpdySession, type SpdyStream } from '../../src/stream/spdy.js';

export interface HttpHead {
  status: number;
  headers: Record<string, string>;
  /** Bytes after the head (the start of the body, or of the upgraded protocol). */
  rest: Buffer;
}

/** Reads an HTTP response head off a socket. */
export function readHead(socket: net.Socket): Promise<HttpHead> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.off('error', reject);
      socket.off('end', onEnd);
      socket.pause();
      const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        const k = l.slice(0, i).trim().toLowerCase();
        headers[k] = headers[k] ? `${headers[k]}, ${l.slice(i + 1).trim()}` : l.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, rest: buf.subarray(end + 4) });
    };
    const onEnd = () => reject(new Error(`connection closed before a response head: ${JSON.stringify(buf.toString('latin1'))}`));
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('end', onEnd);
  });
}

/** Reads the rest of a response (until the server closes). */
export function readAll(socket: net.Socket, first: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts = [first];
    socket.on('data', (d: Buffer) => parts.push(d));
    socket.on('close', () => resolve(Buffer.concat(parts)));
    socket.resume();
  });
}

export function connect(url: string): Promise<net.Socket> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port) }, () => resolve(s));
    s.once('error', reject);
  });
}

/** The upgrade request kubectl sends, byte for byte. */
export function upgradeRequest(url: string, protocols: string[]): string {
  const u = new URL(url);
  return (
    `POST ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: peapod-test\r\nContent-Length: 0\r\n` +
    'Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n' +
    protocols.map((p) => `X-Stream-Protocol-Version: ${p}\r\n`).join('') +
    '\r\n'
  );
}

export type Upgrade =
  | { ok: true; session: SpdySession; protocol: string; head: HttpHead }
  | { ok: false; status: number; head: HttpHead; body: string };

export async function spdyUpgrade(url: string, protocols: string[]): Promise<Upgrade> {
  const socket = await connect(url);
  socket.write(upgradeRequest(url, protocols));
  const head = await readHead(socket);
  if (head.status !== 101) {
    const body = (await readAll(socket, head.rest)).toString();
    return { ok: false, status: head.status, head, body };
  }
  const session = new SpdySession(socket, false);
  session.on('error', () => {});
  socket.resume();
  session.receive(head.rest);
  return { ok: true, session, protocol: head.headers['x-stream-protocol-version'] ?? '', head };
}

/** Collects a stream's data until the server half-closes it (or resets it). */
export function collect(s: SpdyStream): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.once('end', () => resolve(Buffer.concat(parts)));
  });
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** What the error stream carried. */
  error: string;
  protocol: string;
}

/**
 * Runs an exec as kubectl does: streams error, stdin, stdout, stderr (not
 * with a tty), resize (with a tty); writes the input, then half-closes stdin.
 */
export async function spdyExec(
  url: string,
  o: { protocols?: string[]; stdin?: string; tty?: boolean; resize?: { Width: number; Height: number }; stderr?: boolean; closeStdin?: boolean } = {},
): Promise<ExecResult> {
  const up = await spdyUpgrade(url, o.protocols ?? ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io']);
  if (!up.ok) throw new Error(`upgrade failed: ${up.status} ${up.body}`);
  const { session } = up;
  const open = (type: string) => session.openStream(headersOf({ streamType: type }));
  const error = open('error');
  const stdin = o.stdin !== undefined ? open('stdin') : null;
  const stdout = open('stdout');
  const stderr = !o.tty && o.stderr !== false ? open('stderr') : null;
  const resize = o.tty ? open('resize') : null;
  const results = Promise.all([collect(error), collect(stdout), stderr ? collect(stderr) : Promise.resolve(Buffer.alloc(0))]);
  if (resize && o.resize) resize.write(JSON.stringify(o.resize) + '\n');
  if (stdin) {
    stdin.write(o.stdin!);
    if (o.closeStdin !== false) stdin.end();
  }
  const [e, out, err] = await results;
  session.destroy();
  return { stdout: out.toString(), stderr: err.toString(), error: e.toString(), protocol: up.protocol };
}
