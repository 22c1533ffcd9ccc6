// A minimal WebSocket client (RFC 6455) for the streaming server, written
// out byte for byte: handshake, masked client frames, server frames, close;
// and the Kubernetes channel protocol on top (1-byte channel prefix).
import { createHash, randomBytes } from 'node:crypto';
import type net from 'node:net';
import { connect, readAll, readHead, type HttpHead } from './spdy-client.js';

export interface WsMessage {
  opcode: number;
  data: Buffer;
}

export class WsClient {
  private buf = Buffer.alloc(0);
  readonly messages: WsMessage[] = [];
  closeCode: number | null = null;
  readonly closed: Promise<void>;
  private onMessage: (() => void) | null = null;

  constructor(
    private readonly socket: net.Socket,
    readonly protocol: string,
    rest: Buffer,
  ) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (d: Buffer) => this.receive(d));
    socket.resume();
    if (rest.length) this.receive(rest);
  }

  private receive(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.buf.length < 2) return;
      const opcode = this.buf[0]! & 0x0f;
      const masked = (this.buf[1]! & 0x80) !== 0;
      let len = this.buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      if (masked) throw new Error('a server must not mask its frames');
      if (this.buf.length < off + len) return;
      const data = this.buf.subarray(off, off + len);
      this.buf = this.buf.subarray(off + len);
      if (opcode === 8) {
        this.closeCode = data.length >= 2 ? data.readUInt16BE(0) : 1005;
        this.send(8, data.subarray(0, 2)); // echo the close
        this.socket.end();
      } else if (opcode === 9) {
        this.send(10, data);
      } else {
        this.messages.push({ opcode, data: Buffer.from(data) });
      }
      this.onMessage?.();
    }
  }

  /** A masked frame (FIN set). */
  send(opcode: number, payload: Buffer): void {
    const mask = randomBytes(4);
    const len = payload.length;
    const head =
      len < 126
        ? Buffer.from([0x80 | opcode, 0x80 | len])
        : len < 65536
          ? Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff])
          : (() => {
              const h = Buffer.alloc(10);
              h[0] = 0x80 | opcode;
              h[1] = 0x80 | 127;
              h.writeBigUInt64BE(BigInt(len), 2);
              return h;
            })();
    const body = Buffer.alloc(len);
    for (let i = 0; i < len; i++) body[i] = payload[i]! ^ mask[i % 4]!;
    if (!this.socket.destroyed) this.socket.write(Buffer.concat([head, mask, body]));
  }

  /** A binary message on a channel. */
  sendChannel(channel: number, data: Buffer | string): void {
    this.send(2, Buffer.concat([Buffer.from([channel]), Buffer.from(data)]));
  }

  /** The data each channel carried (binary messages), once the server closed. */
  async channels(): Promise<Map<number, Buffer>> {
    await this.closed;
    const out = new Map<number, Buffer>();
    for (const m of this.messages) {
      if (m.opcode !== 2 || m.data.length === 0) continue;
      const ch = m.data[0]!;
      out.set(ch, Buffer.concat([out.get(ch) ?? Buffer.alloc(0), m.data.subarray(1)]));
    }
    return out;
  }
}

export type WsUpgrade = { ok: true; client: WsClient; head: HttpHead } | { ok: false; status: number; body: string };

export async function wsConnect(url: string, protocols: string[]): Promise<WsUpgrade> {
  const u = new URL(url);
  const socket = await connect(url);
  const key = randomBytes(16).toString('base64');
  socket.write(
    `GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Protocol: ${protocols.join(', ')}\r\n\r\n`,
  );
  const head = await readHead(socket);
  if (head.status !== 101) return { ok: false, status: head.status, body: (await readAll(socket, head.rest)).toString() };
  const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  if (head.headers['sec-websocket-accept'] !== accept) throw new Error('bad Sec-WebSocket-Accept');
  return { ok: true, client: new WsClient(socket, head.headers['sec-websocket-protocol'] ?? '', head.rest), head };
}
