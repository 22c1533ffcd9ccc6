// The client side of remote command over WebSocket, as kubectl (1.30 and
// later) speaks it to the URL a CRI Exec or Attach returns: stdin, stdout
// and stderr on their channels, terminal sizes on the resize channel, the
// end of input as a v5 close signal, and the exit as a Status on the error
// channel.
import type { Readable, Writable } from 'node:stream';
import { WebSocket, type RawData } from 'ws';
import { exitCodeOf } from './remotecommand.js';
import { CLOSE, ERROR, RESIZE, STDERR, STDIN, STDOUT } from './websocket.js';

/** v5 first: only it can tell the server that the input has ended. */
export const CLIENT_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;

export interface RemoteIo {
  /** Copied to the command; its end closes the command's stdin (on v5). */
  stdin: Readable | null;
  stdout: Writable;
  /** With a tty the server sends everything on stdout. */
  stderr: Writable;
}

export interface RemoteCommand {
  /** The protocol the server chose. */
  protocol: string;
  /** Sends the terminal's size (the server applies it with a tty). */
  resize(width: number, height: number): void;
  /** The command's exit code, once the server reported it and closed; rejects when the command could not run. */
  exitCode: Promise<number>;
  /** Drops the stream (the server then kills the command); `exitCode` rejects. */
  close(): void;
}

/** Opens the stream of a streaming URL (http://…/exec/TOKEN) and relays `io` over it. */
export function connectRemoteCommand(url: string, io: RemoteIo): Promise<RemoteCommand> {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), [...CLIENT_PROTOCOLS]);
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () => {
      ws.off('error', reject);
      resolve(relay(ws, io));
    });
  });
}

function relay(ws: WebSocket, io: RemoteIo): RemoteCommand {
  const send = (channel: number, data: Buffer, done?: (err?: Error) => void) => {
    if (ws.readyState === ws.OPEN) ws.send(Buffer.concat([Buffer.from([channel]), data]), done);
  };
  let status = '';
  // Output waits for slow local writers: the socket is paused while any of them is full.
  // Messages already received still arrive after the pause: one drain is awaited per writer,
  // not one per message (a reader gone never drains, and listeners would pile up).
  const full = new Set<Writable>();
  const write = (out: Writable, data: Buffer) => {
    if (out.write(data) || full.has(out)) return;
    full.add(out);
    if (full.size === 1) ws.pause();
    out.once('drain', () => {
      full.delete(out);
      if (full.size === 0) ws.resume();
    });
  };

  const { stdin } = io;
  let relaying = stdin !== null;
  // One message in flight at a time: input is read no faster than the socket takes it.
  // Read on 'readable', not paused and resumed on 'data': Bun's stdin, resumed that way
  // under load, at times never emits its 'end', and the command would wait for input forever.
  let sending = false;
  const onReadable = () => {
    while (relaying && !sending) {
      const d = stdin!.read() as Buffer | null;
      if (d === null) return;
      sending = true;
      send(STDIN, d, () => {
        sending = false;
        onReadable();
      });
    }
  };
  const onEnd = () => {
    if (ws.protocol === 'v5.channel.k8s.io') send(CLOSE, Buffer.from([STDIN]));
  };
  if (stdin) {
    stdin.on('readable', onReadable);
    stdin.once('end', onEnd);
  }
  const stopInput = () => {
    if (!stdin || !relaying) return;
    relaying = false;
    stdin.off('readable', onReadable);
    stdin.off('end', onEnd);
    stdin.pause();
  };

  const exitCode = new Promise<number>((resolve, reject) => {
    ws.on('message', (raw: RawData) => {
      const msg = Buffer.isBuffer(raw) ? raw : Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw);
      if (msg.length === 0) return;
      const data = msg.subarray(1);
      if (msg[0] === STDOUT) write(io.stdout, data);
      else if (msg[0] === STDERR) write(io.stderr, data);
      else if (msg[0] === ERROR) status += data.toString('utf8');
    });
    ws.on('error', reject);
    ws.once('close', (code: number, reason: Buffer) => {
      stopInput();
      if (status === '') {
        reject(new Error(`the stream ended without an exit status (WebSocket close ${code}${reason.length ? `: ${reason.toString()}` : ''})`));
        return;
      }
      try {
        resolve(exitCodeOf(status));
      } catch (err) {
        reject(err as Error);
      }
    });
  });

  return {
    protocol: ws.protocol,
    resize: (width, height) => send(RESIZE, Buffer.from(JSON.stringify({ Width: width, Height: height }))),
    exitCode,
    close: () => ws.terminate(),
  };
}
