// Remote command over WebSocket (k8s.io/apimachinery wsstream): every
// message starts with a channel byte, 0 stdin, 1 stdout, 2 stderr, 3 error,
// 4 resize. v5.channel.k8s.io adds the close signal (channel 255, then the
// number of the channel the peer closed); v4 reports the exit as a
// metav1.Status JSON on the error channel; the base64 variants send text
// messages: the channel as an ASCII digit, then the data in base64.
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Logger } from '../log.js';
import { HIGH_WATER, InputRelay, type Sink } from './flow.js';
import { exitReport, ResizeDecoder, startExec, type ExecOptions, type ExecProcess, type ExecStarter } from './remotecommand.js';

export const WS_EXEC_PROTOCOLS = [
  'v5.channel.k8s.io',
  'v4.channel.k8s.io',
  'v4.base64.channel.k8s.io',
  'base64.channel.k8s.io',
  'channel.k8s.io',
] as const;

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
export const ERROR = 3;
export const RESIZE = 4;
export const CLOSE = 255;

/** How long a command with a terminal waits for the client's first size before it starts without one. */
const FIRST_SIZE_WAIT_MS = 1000;

export class WebSocketExec {
  private readonly wss = new WebSocketServer({
    noServer: true,
    // The client's first protocol this server speaks.
    handleProtocols: (offered: Set<string>) => [...offered].find((p) => (WS_EXEC_PROTOCOLS as readonly string[]).includes(p)) ?? false,
  });

  constructor(private readonly log: Logger) {}

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, opts: ExecOptions, cmd: string[], start: ExecStarter): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.serve(ws, opts, cmd, start));
  }

  close(): void {
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }

  private serve(ws: WebSocket, opts: ExecOptions, cmd: string[], start: ExecStarter): void {
    const protocol = ws.protocol || 'channel.k8s.io';
    const base64 = protocol.includes('base64');
    // Output waits while the socket holds HIGH_WATER bytes; each send's callback may be the drain.
    const room = new EventEmitter();
    const sent = () => {
      if (ws.bufferedAmount < HIGH_WATER) room.emit('drain');
    };
    const send = (channel: number, data: Buffer): boolean => {
      if (ws.readyState !== ws.OPEN) return true; // dropped: nothing to wait for
      if (base64) ws.send(String.fromCharCode(48 + channel) + data.toString('base64'), sent);
      else ws.send(Buffer.concat([Buffer.from([channel]), data]), sent);
      return ws.bufferedAmount < HIGH_WATER;
    };
    const sink = (channel: number): Sink => ({ write: (d) => send(channel, d), once: (e, l) => room.once(e, l) });
    let proc: ExecProcess | null = null;
    let done = false;
    const input = new InputRelay(ws);
    // Until the command starts: the terminal size to start it with.
    let size: { width: number; height: number } | null = null;
    const finish = (result: number | Error) => {
      if (done) return;
      done = true;
      const report = exitReport(protocol, result, cmd);
      if (report) send(ERROR, report);
      ws.close(1000);
    };
    let sizeWait: NodeJS.Timeout | undefined;
    const begin = () => {
      clearTimeout(sizeWait);
      if (proc || done) return;
      proc = startExec(start, { ...opts, size: size ?? undefined }, input, { stdout: sink(STDOUT), stderr: sink(opts.tty ? STDOUT : STDERR), finish });
    };
    // A client sends its terminal's size right after the upgrade: the command
    // starts at that size (as over SPDY, where the streams come first), not at
    // 0x0 with a resize racing its first look at the terminal.
    if (opts.tty) sizeWait = setTimeout(begin, FIRST_SIZE_WAIT_MS);
    else begin();
    const resize = new ResizeDecoder();
    ws.on('message', (raw: RawData, isBinary: boolean) => {
      let msg = Buffer.isBuffer(raw) ? raw : Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw);
      if (msg.length === 0) return;
      let channel = msg[0]!;
      if (base64 && !isBinary) {
        channel = msg[0]! - 48;
        msg = Buffer.concat([Buffer.from([channel]), Buffer.from(msg.subarray(1).toString('latin1'), 'base64')]);
      }
      const data = msg.subarray(1);
      if (channel === STDIN) {
        if (data.length) input.write(Buffer.from(data)); // a copy: it may wait in a queue until the command starts
      } else if (channel === RESIZE) {
        for (const r of resize.push(data)) {
          if (proc) proc.resize(r.width, r.height);
          else size = r;
        }
        if (size) begin();
      } else if (channel === CLOSE && protocol === 'v5.channel.k8s.io') {
        if (data[0] === STDIN) input.end();
      }
    });
    ws.on('close', () => {
      clearTimeout(sizeWait);
      if (!done) {
        done = true;
        proc?.kill();
      }
    });
    ws.on('error', (err) => this.log.debug('websocket error', { err: err.message }));
  }
}
