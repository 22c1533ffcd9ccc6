// Client of a container monitor's attach socket (<runtime dir>/attach.sock,
// protocol in native/attach.h): frames [type][u32 BE length][payload].
import { connect } from 'node:net';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { O_CLOEXEC, O_DIRECTORY, O_PATH } from '../ffi/constants.js';
import { libc } from '../ffi/index.js';
import { readExit } from './monitor.js';

const HDR = 5;
const FRAME_MAX = 32768;
const STDIN = 1;
const STDOUT = 2;
const STDERR = 4;

export interface AttachStreams {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface AttachConnection {
  /** Input for the container's stdin; end() says this client's stdin ended (stdin-once). */
  stdin: Writable | null;
  stdout: Readable | null;
  stderr: Readable | null;
  resize(width: number, height: number): void;
  /** The container's exit code once it has exited and its output was relayed; rejects when the monitor dropped the connection. */
  exited: Promise<number>;
  /** Detaches (the container runs on). */
  detach(): void;
}

function frame(type: string, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(HDR);
  h.write(type, 0, 'latin1');
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

/**
 * Attaches to the container whose monitor runs in `dir`. Connects through
 * /proc/self/fd/<dir fd>/ because the full path can exceed the 108 bytes a
 * unix socket address holds.
 */
export function attachMonitor(dir: string, want: AttachStreams): AttachConnection {
  const dirFd = libc().open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  let dirOpen = true;
  const closeDir = () => {
    if (dirOpen) libc().close(dirFd);
    dirOpen = false;
  };
  const sock = connect(`/proc/self/fd/${dirFd}/attach.sock`);
  sock.once('connect', closeDir);
  const stdout = want.stdout ? new PassThrough() : null;
  const stderr = want.stderr ? new PassThrough() : null;
  let exitCode: number | null = null;
  let detached = false;
  let failure: Error | null = null;

  sock.write(frame('A', Buffer.from([(want.stdin ? STDIN : 0) | (want.stdout ? STDOUT : 0) | (want.stderr ? STDERR : 0)])));

  let buf: Buffer = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= HDR) {
      const len = buf.readUInt32BE(1);
      if (buf.length < HDR + len) break;
      const type = String.fromCharCode(buf[0]!);
      const payload = buf.subarray(HDR, HDR + len);
      buf = buf.subarray(HDR + len);
      if (type === 'O' || type === 'E') {
        const out = type === 'O' ? stdout : stderr;
        // A slow client: stop reading, so the monitor (which drops clients too slow for the output) sees it.
        if (out && !out.write(payload) && !sock.isPaused()) {
          sock.pause();
          out.once('drain', () => sock.resume());
        }
      } else if (type === 'X') exitCode = Number(payload.toString('latin1'));
    }
  });
  sock.on('error', (e) => {
    closeDir();
    failure ??= new Error(`container monitor is not reachable: ${e.message}`);
  });

  const exited = new Promise<number>((resolve, reject) => {
    sock.once('close', () => {
      closeDir();
      stdout?.end();
      stderr?.end();
      if (exitCode !== null) return resolve(exitCode);
      if (detached) return resolve(0); // nobody waits for it
      const rec = readExit(dir);
      if (rec) return resolve(rec.exitCode);
      reject(failure ?? new Error('the container monitor closed the attach connection (a client too slow for the output is dropped)'));
    });
  });
  exited.catch(() => {}); // the caller may detach without waiting

  const stdin = want.stdin
    ? new Writable({
        write(chunk: Buffer, _enc, cb) {
          if (sock.destroyed) return cb();
          const parts: Buffer[] = [];
          for (let o = 0; o < chunk.length; o += FRAME_MAX) parts.push(frame('I', chunk.subarray(o, o + FRAME_MAX)));
          // The callback waits for the socket: the monitor reads input only while the container takes it.
          sock.write(Buffer.concat(parts), () => cb());
        },
        final(cb) {
          if (!sock.destroyed) sock.write(frame('C'));
          cb();
        },
      })
    : null;

  return {
    stdin,
    stdout,
    stderr,
    exited,
    resize(width, height) {
      if (sock.destroyed) return;
      const p = Buffer.alloc(4);
      p.writeUInt16BE(Math.min(width, 0xffff), 0);
      p.writeUInt16BE(Math.min(height, 0xffff), 2);
      sock.write(frame('R', p));
    },
    detach() {
      detached = true;
      sock.destroy();
    },
  };
}
