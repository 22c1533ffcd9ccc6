// Stand-ins for the unit tests of the streaming protocols: sockets that
// record or hold what a session writes, and the frames a client sends.
import { Duplex } from 'node:stream';
import type { Logger } from '../../src/log.js';
import { headersOf, SpdySession } from '../../src/stream/spdy.js';
import { until } from './wait.js';

export const quietLog = { debug() {}, info() {}, warn() {}, error() {} } as unknown as Logger;

/**
 * A socket stand-in that keeps what is written to it. With `stalled`, it
 * takes writes but never completes them (a peer that stopped reading) until
 * release().
 */
export class FakeSocket extends Duplex {
  out: Buffer[] = [];
  private pending: (() => void) | null = null;

  /** `writableHighWaterMark`: how much the writer may buffer before it is told to wait. */
  constructor(
    private stalled = false,
    writableHighWaterMark?: number,
  ) {
    super(writableHighWaterMark === undefined ? {} : { writableHighWaterMark });
  }

  override _read(): void {}
  override _write(c: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.out.push(c);
    if (this.stalled) this.pending = cb;
    else cb();
  }

  /** The peer reads again: the held write and all later ones complete. */
  release(): void {
    this.stalled = false;
    const cb = this.pending;
    this.pending = null;
    cb?.();
  }

  /** What was written since the last call. */
  written(): Buffer {
    const b = Buffer.concat(this.out);
    this.out = [];
    return b;
  }
}

/** The bytes a SPDY client sends to open one stream of each type (streamtype header). */
export async function clientStreams(types: string[]): Promise<Buffer> {
  const sock = new FakeSocket();
  const client = new SpdySession(sock, false);
  for (const t of types) client.openStream(headersOf({ streamtype: t }));
  // Header blocks are compressed asynchronously: wait until every SYN_STREAM is out.
  await until('client SYN_STREAMs', () => sock.out.length >= types.length, 2000);
  client.destroy();
  return sock.written();
}
