// Backpressure in exec and port-forward: a peer that stops reading pauses
// the command's output (the daemon holds a bounded amount, not everything
// the command writes), a command that stops reading its stdin pauses the
// client's input; both go on, in order and complete, once there is room.
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { connectRemoteCommand } from '../../src/stream/client.js';
import { sharedSource } from '../../src/stream/flow.js';
import { servePortForward } from '../../src/stream/portforward.js';
import { serveSpdyExec, type ExecProcess } from '../../src/stream/remotecommand.js';
import { dataFrame, FLAG_FIN, FrameParser, SpdySession } from '../../src/stream/spdy.js';
import { WebSocketExec } from '../../src/stream/websocket.js';
import { clientStreams, FakeSocket, quietLog } from '../support/stream-fakes.js';
import { sleep, until } from '../support/wait.js';

const CHUNK = 64 * 1024;
/** Far above what a paused producer may leave buffered, far below what an unpaused one makes in the waits below. */
const BOUND = 8 << 20;

/** A command's stdin that stops taking input (writes never complete) until release(). */
const stalledInput = () => new FakeSocket(true, CHUNK);

/** Command output without end: numbered 64 KiB chunks, as fast as they are read. */
class Producer extends Readable {
  produced = 0;
  override _read(): void {
    setImmediate(() => {
      const c = Buffer.alloc(CHUNK, this.produced / CHUNK);
      this.produced += CHUNK;
      this.push(c);
    });
  }
}

/** Is `buf` the chunks 0, 1, 2 ... of a Producer, in order? */
function inOrder(buf: Buffer): boolean {
  for (let off = 0; off < buf.length; off += CHUNK) if (buf[off] !== (off / CHUNK) % 256 || buf[Math.min(off + CHUNK, buf.length) - 1] !== (off / CHUNK) % 256) return false;
  return true;
}

/** The DATA payloads a session wrote for one stream. */
function dataOf(written: Buffer, streamId: number): Buffer {
  return Buffer.concat(
    new FrameParser()
      .push(written)
      .filter((f) => !f.control && f.streamId === streamId)
      .map((f) => f.payload),
  );
}

/** Feeds a socket's readable side as TCP reads come: a piece per turn of the event loop. */
async function pushApart(sock: FakeSocket, pieces: Buffer[]): Promise<void> {
  for (const p of pieces) {
    sock.push(p);
    await new Promise((r) => setImmediate(r));
  }
}

const fakeProcess = (p: Partial<ExecProcess>): ExecProcess => ({
  stdin: null,
  stdout: null,
  stderr: null,
  resize() {},
  exited: new Promise(() => {}),
  kill() {},
  ...p,
});

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('backpressure over SPDY exec', () => {
  async function exec(sock: FakeSocket, types: string[], proc: ExecProcess) {
    const server = new SpdySession(sock, true);
    server.on('error', () => {});
    cleanups.push(() => server.destroy());
    const opts = { tty: false, stdin: types.includes('stdin'), stdout: types.includes('stdout'), stderr: false };
    serveSpdyExec(server, 'v4.channel.k8s.io', opts, ['x'], () => proc, quietLog);
    return { server, frames: await clientStreams(types) };
  }

  it('a client that stops reading pauses the command output; it resumes complete and in order', async () => {
    const sock = new FakeSocket(true);
    const out = new Producer();
    cleanups.push(() => out.destroy());
    const { server, frames } = await exec(sock, ['error', 'stdout'], fakeProcess({ stdout: out }));
    server.receive(frames);
    await until('stdout paused', () => out.isPaused(), 5000);
    const produced = out.produced;
    await sleep(100);
    expect(out.isPaused()).toBe(true);
    expect(out.produced).toBeLessThan(BOUND);
    expect(out.produced - produced).toBeLessThanOrEqual(CHUNK); // at most the chunk the stream buffers ahead
    expect(sock.writableLength).toBeLessThan(1 << 20);

    sock.release();
    await until('more output', () => out.produced > produced + BOUND, 10_000);
    const stdout = dataOf(sock.written(), 3); // stream 3: stdout
    expect(stdout.length).toBeGreaterThan(BOUND);
    expect(inOrder(stdout)).toBe(true);
  });

  it('a command that stops reading its stdin stops the reading of the client; the input then arrives whole', async () => {
    const sock = new FakeSocket();
    const stdin = stalledInput();
    const { frames } = await exec(sock, ['stdin', 'error'], fakeProcess({ stdin }));
    sock.push(frames);
    const sent: Buffer[] = [];
    for (let i = 0; i < 512; i++) sent.push(Buffer.alloc(16 * 1024, i)); // 8 MiB on stream 1 (stdin)
    const pieces = [...sent.map((d) => dataFrame(1, 0, d)), dataFrame(1, FLAG_FIN, Buffer.alloc(0))];
    await pushApart(sock, pieces);
    await until('client paused', () => sock.isPaused(), 5000);
    await sleep(100);
    expect(sock.isPaused()).toBe(true);
    // What the session read: held by it or by the stdin; the rest waits, unread, in the socket.
    const read = pieces.reduce((n, p) => n + p.length, 0) - sock.readableLength;
    expect(read).toBeLessThan(2 << 20);

    stdin.release();
    const ended = new Promise<void>((r) => stdin.once('finish', r));
    await until('all input', () => sock.readableLength === 0, 10_000);
    await ended;
    expect(Buffer.concat(stdin.out).equals(Buffer.concat(sent))).toBe(true);
    expect(sock.isPaused()).toBe(false);
  });
});

describe('backpressure over WebSocket exec', () => {
  it('a client that stops reading pauses the command output; it resumes complete and in order', async () => {
    const out = new Producer();
    const wsExec = new WebSocketExec(quietLog, 0);
    const server = http.createServer();
    server.on('upgrade', (req, socket, head) => {
      wsExec.upgrade(req, socket, head, { tty: false, stdin: false, stdout: true, stderr: false }, ['x'], () => fakeProcess({ stdout: out }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, ['v4.channel.k8s.io']);
    cleanups.push(() => {
      out.destroy();
      client.terminate();
      wsExec.close();
      server.close();
    });
    const got: Buffer[] = [];
    client.on('message', (m: Buffer) => got.push(m.subarray(1)));
    await new Promise((r) => client.once('open', r));
    client.pause();
    // The kernel buffers some megabytes on loopback before the server's socket fills.
    await until('stdout paused', () => out.isPaused(), 10_000);
    const produced = out.produced;
    await sleep(100);
    expect(out.isPaused()).toBe(true);
    expect(out.produced - produced).toBeLessThanOrEqual(CHUNK);
    expect(out.produced).toBeLessThan(64 << 20);

    client.resume();
    await until('more output', () => out.produced > produced + BOUND, 10_000);
    const stdout = Buffer.concat(got);
    expect(stdout.length).toBeGreaterThan(BOUND);
    expect(inOrder(stdout)).toBe(true);
  });
});

describe('backpressure over port-forward', () => {
  it('a client that stops reading pauses the connection; one that floods it is paused while the connection is full', async () => {
    const sock = new FakeSocket(true);
    const server = new SpdySession(sock, true);
    server.on('error', () => {});
    const conn = Object.assign(new EventEmitter(), { stdout: new Producer(), stdin: stalledInput(), stderr: Readable.from([]), kill: () => true });
    cleanups.push(() => {
      server.destroy();
      conn.stdout.destroy();
    });
    servePortForward(server, 'pod', () => conn as never, quietLog);
    const { headersOf, SpdySession: Client } = await import('../../src/stream/spdy.js');
    const csock = new FakeSocket();
    const client = new Client(csock, false);
    for (const t of ['error', 'data']) client.openStream(headersOf({ streamtype: t, port: '80', requestid: '0' }));
    await until('client SYN_STREAMs', () => csock.out.length >= 2, 2000);
    client.destroy();
    sock.push(csock.written());
    await until('output paused', () => conn.stdout.isPaused(), 5000);
    expect(conn.stdout.produced).toBeLessThan(BOUND);

    await pushApart(sock, Array.from({ length: 256 }, (_, i) => dataFrame(3, 0, Buffer.alloc(16 * 1024, i))));
    await until('client paused', () => sock.isPaused(), 5000);
    expect(conn.stdin.out.reduce((n, b) => n + b.length, 0)).toBeLessThan(2 << 20);

    conn.stdin.release();
    sock.release();
    await until('input taken', () => sock.readableLength === 0, 10_000);
    await until('output resumed', () => conn.stdout.produced > BOUND, 10_000);
    expect(inOrder(dataOf(sock.written(), 3))).toBe(true);
  });
});

describe('a source several relays pause', () => {
  it('stays paused while any of them holds it', () => {
    const calls: string[] = [];
    const handle = sharedSource({ pause: () => calls.push('pause'), resume: () => calls.push('resume') });
    const [a, b] = [handle(), handle()];
    a.pause();
    b.pause();
    a.resume();
    expect(calls).toEqual(['pause', 'pause']);
    a.resume(); // not held any more: nothing
    b.resume();
    expect(calls).toEqual(['pause', 'pause', 'resume']);
  });
});

describe('backpressure in the exec client (peapod exec)', () => {
  it('a local writer that stays full (a reader gone) pauses the stream with one drain listener, however many messages were already in', async () => {
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => 'v5.channel.k8s.io' });
    try {
      await new Promise((r) => server.once('listening', r));
      // Many small messages at once: the client has them all before its pause can take effect.
      server.on('connection', (ws) => {
        for (let i = 0; i < 50; i++) ws.send(Buffer.concat([Buffer.from([1]), Buffer.alloc(1024, i)]));
      });
      // A writer that is full at once and never drains, as a pipe whose reader went away.
      const stuck = new Writable({ highWaterMark: 1, write: () => undefined });
      const rc = await connectRemoteCommand(`http://127.0.0.1:${(server.address() as AddressInfo).port}/exec/x`, { stdin: null, stdout: stuck, stderr: stuck });
      await sleep(300);
      expect(stuck.listenerCount('drain')).toBe(1);
      rc.close();
      await rc.exitCode.catch(() => undefined);
    } finally {
      server.close();
    }
  });
});
