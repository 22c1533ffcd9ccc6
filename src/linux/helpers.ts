import { lstatSync, readFileSync, renameSync, rmSync, type Stats } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { basename, dirname } from 'node:path';
import { isSyscallError, libc, O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_PATH, O_RDONLY, O_TRUNC, O_WRONLY, WNOHANG } from '../ffi/index.js';
import type { Reaper } from './reaper.js';
import { internal } from '../errors.js';

/** One line a helper sent: "KEY WORD TEXT" (native/notify.h). */
export interface HelperMessage {
  word: string;
  text: string;
}

export interface SpawnedHelper {
  pid: number;
  /** The helper's first message; rejected if it exits without one. */
  report: Promise<HelperMessage>;
}

/** How often a helper that has not reported yet is checked for an early exit. */
const EXIT_POLL_MS = 10;
/** A sun_path holds 108 bytes; longer socket paths go through a directory fd. */
const SUN_PATH_MAX = 107;

/**
 * Starts the native helpers (peapod-sandbox, peapod-monitor) and hears what
 * they report. They are spawned with posix_spawn through FFI: unlike the
 * runtime's child_process, which forks the whole server (about 4 ms for a
 * 100 MB Node process), posix_spawn copies nothing and creates no thread,
 * so it is also safe inside a namespace window. No runtime can watch a raw
 * pipe fd, so helpers report on this unix socket instead, one connection
 * per line: "KEY created PID START" (the init's start time), "KEY ok PID", "KEY error MESSAGE",
 * "KEY exited CODE". A monitor keeps its "created" connection open for the
 * server's commands (command). Monitors outlive the server and tell
 * whichever server listens on the socket at the time.
 */
export class Helpers {
  private server: Server | undefined;
  private dirFd = -1;
  /** The socket bound here (dev, ino): close() removes that one and no other. */
  private bound: Stats | undefined;
  /** Helpers that have not reported yet, by key. */
  private readonly pending = new Map<string, (m: HelperMessage) => void>();
  private readonly listeners = new Map<string, (m: HelperMessage) => void>();
  /** Connections kept open after a "created" report, by key (see command). */
  private readonly channels = new Map<string, Channel>();
  /** Every open connection: closing the server waits for none. */
  private readonly sockets = new Set<Socket>();
  /** The server's environment, which helpers inherit; built once (a read of process.env goes through a C++ interceptor per key). */
  private readonly env = Object.entries(process.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));

  constructor(
    readonly socketPath: string,
    private readonly reaper: Reaper,
  ) {}

  async listen(): Promise<void> {
    let address = this.socketPath;
    if (Buffer.byteLength(address) > SUN_PATH_MAX) {
      this.dirFd = libc().open(dirname(address), O_PATH | O_DIRECTORY | O_CLOEXEC);
      address = `/proc/self/fd/${this.dirFd}/${basename(address)}`;
    }
    // Bound under another name and renamed into place: every runtime unlinks a
    // unix socket's path when its server closes, whatever is there by then, and
    // the path is only to go if it is still this socket (see close).
    const bindAt = `${address}.new`;
    rmSync(bindAt, { force: true });
    const server = createServer((sock) => this.accept(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(bindAt, () => resolve());
    });
    renameSync(bindAt, address);
    this.bound = lstatSync(address);
    this.server = server;
  }

  async close(): Promise<void> {
    for (const sock of this.sockets) sock.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    const now = lstatSync(this.socketPath, { throwIfNoEntry: false });
    if (this.bound && now?.dev === this.bound.dev && now.ino === this.bound.ino) rmSync(this.socketPath);
    this.bound = undefined;
    if (this.dirFd >= 0) libc().close(this.dirFd);
    this.dirFd = -1;
  }

  /**
   * Spawns `binary` with `--notify SOCKET --notify-key KEY` before `args`,
   * stdin on /dev/null, stdout on `io.stdout` (else /dev/null) and stderr
   * appended to `io.stderr`. Synchronous: the helper starts in the calling
   * thread's namespaces. With `io.exitReports` the helper's exit is its
   * report ("exited CODE"), whether its message or its exit is seen first.
   */
  spawn(binary: string, args: string[], key: string, io: { stdout?: string; stderr: string; exitReports?: boolean }): SpawnedHelper {
    if (this.pending.has(key)) throw new Error(`a helper for ${key} is already starting`);
    return this.expect(this.start(binary, ['--notify-key', key, ...args], io), key, { ...io, name: basename(binary) });
  }

  /** Spawns `binary --notify SOCKET ...args` (stdio as for spawn) and returns its pid; the caller reaps it or expects its report. */
  start(binary: string, args: string[], io: { stdout?: string; stderr: string }): number {
    return libc().spawn(binary, [basename(binary), '--notify', this.socketPath, ...args], {
      env: this.env,
      files: [
        { fd: 0, path: '/dev/null', flags: O_RDONLY },
        io.stdout ? { fd: 1, path: io.stdout, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o600 } : { fd: 1, path: '/dev/null', flags: O_WRONLY },
        { fd: 2, path: io.stderr, flags: O_WRONLY | O_CREAT | O_APPEND, mode: 0o640 },
      ],
    });
  }

  /**
   * The first message of helper `pid` (a child of this process) under `key`,
   * its exit watched until then; `io.stderr` is where its last words are,
   * `io.name` what to call it in an error.
   */
  expect(pid: number, key: string, io: { name: string; stderr: string; exitReports?: boolean }): SpawnedHelper {
    if (this.pending.has(key)) throw new Error(`a helper for ${key} is already starting`);
    const report = new Promise<HelperMessage>((resolve, reject) => {
      // Until it reports, the helper's exit is watched here (the reaper would
      // take its status). Only exit status 0 promises a message (a helper
      // exits 0 only after its report went out); it can be seen before the
      // message when the event loop is busy, so then the message is awaited.
      let exited = false;
      const poll = setInterval(() => {
        const status = waitStatus(pid);
        if (status === undefined) return;
        exited = true;
        clearInterval(poll);
        if (io.exitReports) {
          this.pending.delete(key);
          resolve({ word: 'exited', text: String(exitCode(status)) });
        } else if (status !== 0) {
          this.pending.delete(key);
          reject(new Error(`${io.name} ${describeStatus(status)}: ${lastLine(io.stderr) || 'no message'}`));
        }
      }, EXIT_POLL_MS);
      this.pending.set(key, (m) => {
        clearInterval(poll);
        if (!exited) this.reaper.watch(pid, key);
        resolve(m);
      });
    });
    // A create rolled back before it awaited the report kills the helper: that rejection is nobody's.
    report.catch(() => {});
    return { pid, report };
  }

  /** Hears every later message about `key` (a container's "exited"). */
  subscribe(key: string, fn: (m: HelperMessage) => void): void {
    this.listeners.set(key, fn);
  }

  unsubscribe(key: string): void {
    this.listeners.delete(key);
  }

  /**
   * A command on the connection that carried `key`'s "created" report (a
   * monitor's, kept open for this: native/monitor.c), resolving to the reply
   * line; undefined when there is none (the report came to an earlier
   * server, or the connection was released or lost).
   */
  command(key: string, line: string, timeoutMs: number): Promise<string> | undefined {
    const ch = this.channels.get(key);
    if (!ch) return undefined;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.release(key);
        reject(internal(`no answer to "${line}" within ${timeoutMs} ms`));
      }, timeoutMs);
      ch.replies.push({
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      ch.sock.write(line + '\n');
    });
  }

  /** Whether `key`'s command connection is open: its helper is alive, no /proc read needed (the kernel closes it at the exit). */
  holds(key: string): boolean {
    return this.channels.has(key);
  }

  /** Closes `key`'s command connection, if any: the helper goes on without it. */
  release(key: string): void {
    const ch = this.channels.get(key);
    this.channels.delete(key);
    ch?.sock.destroy();
  }

  private accept(sock: Socket): void {
    let buf = '';
    let channel: Channel | undefined;
    this.sockets.add(sock);
    sock.once('close', () => this.sockets.delete(sock));
    sock.setEncoding('utf8');
    const line = (text: string) => {
      if (channel) {
        channel.replies.shift()?.resolve(text);
        return;
      }
      const [key = '', word = '', ...rest] = text.split(' ');
      if (word === 'created') {
        channel = { sock, replies: [] };
        this.release(key);
        this.channels.set(key, channel);
        sock.once('close', () => {
          if (this.channels.get(key) === channel) this.channels.delete(key);
          for (const r of channel!.replies.splice(0)) r.reject(new Error('the helper closed the connection'));
        });
      }
      this.dispatch(key, { word, text: rest.join(' ') });
    };
    sock.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        line(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      if (buf.length > 8192) sock.destroy();
    });
    sock.on('error', () => {});
    // A message cut short of its newline still counts (nothing else follows it).
    sock.on('end', () => {
      if (buf) line(buf);
      buf = '';
    });
  }

  private dispatch(key: string, m: HelperMessage): void {
    // A helper that said its last word is about to exit: reap it soon (the periodic sweep if it takes longer).
    if (m.word !== 'created') setTimeout(() => this.reaper.collectKey(key), 20).unref?.();
    const waiter = this.pending.get(key);
    if (waiter) {
      this.pending.delete(key);
      waiter(m);
    } else {
      this.listeners.get(key)?.(m);
    }
  }
}

interface Channel {
  sock: Socket;
  /** Commands sent and not answered yet, in order. */
  replies: { resolve: (line: string) => void; reject: (err: Error) => void }[];
}

/** The wait status of an exited child (reaped now), or undefined while it runs. */
function waitStatus(pid: number): number | undefined {
  try {
    const r = libc().waitpid(pid, WNOHANG);
    return r.pid === pid ? r.status : undefined;
  } catch (err) {
    if (isSyscallError(err, 'ECHILD')) return -1;
    throw err;
  }
}

/** A shell's view of a wait status: the exit code, or 128+N for signal N. */
function exitCode(status: number): number {
  if (status === -1) return 255;
  const sig = status & 0x7f;
  return sig ? 128 + sig : (status >> 8) & 0xff;
}

function describeStatus(status: number): string {
  if (status === -1) return 'is gone';
  const sig = status & 0x7f;
  return sig ? `was killed by signal ${sig}` : `exited with status ${(status >> 8) & 0xff}`;
}

function lastLine(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').at(-1) ?? '';
  } catch {
    return '';
  }
}
