// Deno 2.9's node:http2 can abort the whole process inside nghttp2 while it
// handles a GOAWAY ("find_stream_on_goaway_func: Assertion
// `stream->closed_next == NULL' failed", denoland/deno#36788). The server saw
// it on a client's GOAWAY, about once in 50 short-lived CLI connections; the
// CLI on the server's, as the server shut down under a `get -w` (a segfault,
// about once in 6). A peer sends GOAWAY only as it hangs up, and the end of
// its socket says the same, so under Deno each side reads the other through
// this filter, which drops the GOAWAY frames and passes every other byte
// unchanged.

import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

const PREFACE_LENGTH = 24; // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
const FRAME_HEADER_LENGTH = 9; // length (24 bits), type, flags, stream id
const GOAWAY = 0x7;

/**
 * Splits an HTTP/2 byte stream into frames and leaves out the GOAWAY ones;
 * chunks may cut anywhere. A client's stream starts with the connection
 * preface, a server's with a frame.
 */
export class GoawayDropper {
  private prefaceLeft: number;
  private passLeft = 0;
  private dropLeft = 0;
  /** A frame header cut by the end of a chunk: kept back until its type is known. */
  private held: Buffer | undefined;

  constructor(from: 'client' | 'server') {
    this.prefaceLeft = from === 'client' ? PREFACE_LENGTH : 0;
  }

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

/** `socket`, whose peer is `from`, as a duplex whose readable side has no GOAWAY frames; writes, ends and back-pressure go straight through. */
export function withoutGoaway(socket: Socket, from: 'client' | 'server'): Duplex {
  const dropper = new GoawayDropper(from);
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
  // An HTTP/2 session refs and unrefs its socket (a client's idle connection must not hold the process).
  Object.assign(filtered, {
    ref: () => (socket.ref(), filtered),
    unref: () => (socket.unref(), filtered),
  });
  socket.once('end', () => filtered.push(null));
  socket.once('error', (err) => filtered.destroy(err));
  socket.once('close', () => filtered.destroy());
  return filtered;
}
