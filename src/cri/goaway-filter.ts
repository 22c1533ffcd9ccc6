// Deno 2.9's node:http2 can abort the whole process inside nghttp2 while it
// handles a GOAWAY a client sent ("find_stream_on_goaway_func: Assertion
// `stream->closed_next == NULL' failed", denoland/deno#36788): seen here about
// once in 50 short-lived CLI connections. A client sends GOAWAY only as it
// hangs up, and the end of its socket tells the server the same, so under
// Deno the server reads each connection through this filter, which drops the
// client's GOAWAY frames and passes every other byte unchanged.

import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

const PREFACE_LENGTH = 24; // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
const FRAME_HEADER_LENGTH = 9; // length (24 bits), type, flags, stream id
const GOAWAY = 0x7;

/** Splits a client's HTTP/2 byte stream into frames and leaves out the GOAWAY ones; chunks may cut anywhere. */
export class GoawayDropper {
  private prefaceLeft = PREFACE_LENGTH;
  private passLeft = 0;
  private dropLeft = 0;
  /** A frame header cut by the end of a chunk: kept back until its type is known. */
  private held: Buffer | undefined;

  /** The bytes of `chunk` to pass on, as slices of it (or of it joined to a held header). */
  feed(chunk: Buffer): Buffer[] {
    const buf = this.held ? Buffer.concat([this.held, chunk]) : chunk;
    this.held = undefined;
    const out: Buffer[] = [];
    let runStart = 0;
    let i = 0;
    while (i < buf.length) {
      const rest = buf.length - i;
      if (this.prefaceLeft > 0 || this.passLeft > 0) {
        const n = Math.min(this.prefaceLeft || this.passLeft, rest);
        if (this.prefaceLeft > 0) this.prefaceLeft -= n;
        else this.passLeft -= n;
        i += n;
      } else if (this.dropLeft > 0) {
        const n = Math.min(this.dropLeft, rest);
        this.dropLeft -= n;
        i += n;
        runStart = i;
      } else if (rest < FRAME_HEADER_LENGTH) {
        this.held = Buffer.from(buf.subarray(i));
        break;
      } else {
        const frame = FRAME_HEADER_LENGTH + buf.readUIntBE(i, 3);
        if (buf[i + 3] === GOAWAY) {
          if (i > runStart) out.push(buf.subarray(runStart, i));
          this.dropLeft = frame;
        } else {
          this.passLeft = frame;
        }
      }
    }
    if (i > runStart) out.push(buf.subarray(runStart, i));
    return out;
  }
}

/** `socket` as a duplex whose readable side has no GOAWAY frames; writes, ends and back-pressure go straight through. */
export function withoutClientGoaway(socket: Socket): Duplex {
  const dropper = new GoawayDropper();
  const filtered = new Duplex({
    read: () => socket.resume(),
    write: (chunk: Buffer, _enc, done) => socket.write(chunk, done),
    final: (done) => socket.end(done),
    destroy: (err, done) => {
      socket.destroy();
      done(err);
    },
  });
  socket.on('data', (chunk: Buffer) => {
    let more = true;
    for (const part of dropper.feed(chunk)) more = filtered.push(part) && more;
    if (!more) socket.pause();
  });
  socket.once('end', () => filtered.push(null));
  socket.once('error', (err) => filtered.destroy(err));
  socket.once('close', () => filtered.destroy());
  return filtered;
}
