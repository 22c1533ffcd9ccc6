// Frame filters on the HTTP/2 byte streams between peapod and its gRPC
// peers, for two faults no runtime's node:http2 lets us configure away:
//
// - A client naming a unix socket's path as its :authority (grpc-go before
//   1.52, hence crictl and the kubelet up to 1.26; grpc-java) gets every call
//   reset with PROTOCOL_ERROR: nghttp2 (Node, Bun) and h2 (Deno) refuse a "/"
//   there. containerd, on grpc-go, takes any value. The server reads its
//   clients through a filter that rewrites such a value to a valid one.
// - Deno 2.9's node:http2 can abort the whole process inside nghttp2 while it
//   handles a GOAWAY ("find_stream_on_goaway_func: Assertion
//   `stream->closed_next == NULL' failed", denoland/deno#36788): the server
//   on a client's GOAWAY (once in 50 short-lived CLI connections), the CLI on
//   the server's as it shut down (once in 6). A peer sends GOAWAY only as it
//   hangs up, and the end of its socket says the same, so under Deno each
//   side drops the other's GOAWAY frames.
//
// Every other byte passes unchanged.

import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { rewriteAuthority } from './hpack.js';

const PREFACE_LENGTH = 24; // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
const FRAME_HEADER_LENGTH = 9; // length (24 bits), type, flags, stream id
const HEADERS = 0x1;
const GOAWAY = 0x7;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
/** SETTINGS_MAX_FRAME_SIZE's initial value, which no peer of ours raises for its reads. */
const MAX_FRAME_PAYLOAD = 16384;
/** A header block longer than this is passed on as it is, unread (the server's own limits judge it). */
const MAX_BLOCK = 256 * 1024;

export interface FrameFilterOptions {
  /** Whose stream is read: a client's starts with the connection preface, a server's with a frame. */
  from: 'client' | 'server';
  dropGoaway: boolean;
  /** Rewrites a request's :authority that HTTP/2 servers refuse (a socket path) to one they take. */
  fixAuthority: boolean;
}

/**
 * Characters nghttp2 takes in :authority (RFC 3986's authority, loosely); any
 * other byte of a value holding one becomes "_", which keeps its length.
 */
const AUTHORITY_CHAR = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]*$/;
export function validAuthority(value: Buffer): Buffer {
  const text = value.toString('latin1');
  return AUTHORITY_CHAR.test(text) ? value : Buffer.from(text.replace(/[^A-Za-z0-9\-._~]/g, '_'), 'latin1');
}

/**
 * Splits an HTTP/2 byte stream into frames and filters them; chunks may cut
 * anywhere. Frames pass as they come, a header block (HEADERS and its
 * CONTINUATIONs) whole once read when it may need rewriting.
 */
export class FrameFilter {
  private prefaceLeft: number;
  private passLeft = 0;
  private dropLeft = 0;
  /** A frame header cut by the end of a chunk: kept back until its type is known. */
  private held: Buffer | undefined;
  /** The frames of a header block being read, and how much of the current one is still to come. */
  private block: Buffer[] | undefined;
  private blockSize = 0;
  private collectLeft = 0;
  /** The flags of the frame being collected: END_HEADERS ends the block. */
  private collectFlags = 0;

  constructor(private readonly opts: FrameFilterOptions) {
    this.prefaceLeft = opts.from === 'client' ? PREFACE_LENGTH : 0;
  }

  /** The bytes of `chunk` to pass on, as slices of it (or of it joined to a held header) where nothing changed. */
  feed(chunk: Buffer): Buffer[] {
    const buf = this.held ? Buffer.concat([this.held, chunk]) : chunk;
    this.held = undefined;
    const out: Buffer[] = [];
    let runStart = 0;
    let i = 0;
    const flush = () => {
      if (i > runStart) out.push(buf.subarray(runStart, i));
    };
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
      } else if (this.collectLeft > 0) {
        const n = Math.min(this.collectLeft, rest);
        this.block!.push(Buffer.from(buf.subarray(i, i + n)));
        this.collectLeft -= n;
        i += n;
        runStart = i;
        if (this.collectLeft === 0) this.frameCollected(out);
      } else if (rest < FRAME_HEADER_LENGTH) {
        flush();
        this.held = Buffer.from(buf.subarray(i));
        return out;
      } else {
        const length = buf.readUIntBE(i, 3);
        const type = buf[i + 3];
        // A frame longer than any the server takes is passed on as it comes, for the server to refuse, never held.
        const collect = this.opts.fixAuthority && length <= MAX_FRAME_PAYLOAD && (type === HEADERS || (type === CONTINUATION && this.block !== undefined));
        if (this.block && !collect) {
          // A block cut short by another frame (a client's error): what was held goes on as it came.
          flush();
          out.push(this.takeBlock());
        }
        if (type === GOAWAY && this.opts.dropGoaway) {
          flush();
          this.dropLeft = FRAME_HEADER_LENGTH + length;
        } else if (collect) {
          flush();
          this.block ??= [];
          this.blockSize += FRAME_HEADER_LENGTH + length;
          this.collectLeft = FRAME_HEADER_LENGTH + length;
          this.collectFlags = buf[i + 4]!;
        } else {
          this.passLeft = FRAME_HEADER_LENGTH + length;
        }
      }
    }
    flush();
    return out;
  }

  /**
   * A frame of a header block is read: at the block's end (or past the size
   * read), it goes on. Joined only then: once per frame, a flood of empty
   * CONTINUATIONs cost time quadratic in the block (68 s of the server's thread for 30 000).
   */
  private frameCollected(out: Buffer[]): void {
    const ended = (this.collectFlags & END_HEADERS) !== 0;
    if (!ended && this.blockSize <= MAX_BLOCK) return;
    const raw = this.takeBlock();
    out.push(ended ? (rewrittenBlock(frameList(raw)) ?? raw) : raw);
  }

  /** The frames of the block held, as they came; none held after. */
  private takeBlock(): Buffer {
    const raw = Buffer.concat(this.block!);
    this.block = undefined;
    this.blockSize = 0;
    return raw;
  }
}

/** Collected frames, whole and in order, split apart again. */
function frameList(bytes: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let i = 0; i < bytes.length; ) {
    const end = i + FRAME_HEADER_LENGTH + bytes.readUIntBE(i, 3);
    frames.push(bytes.subarray(i, end));
    i = end;
  }
  return frames;
}

/** A HEADERS frame and its CONTINUATIONs with the :authority made valid; undefined when it needs no change. */
function rewrittenBlock(frames: Buffer[]): Buffer | undefined {
  const headers = frames[0]!;
  const flags = headers[4]!;
  let start = FRAME_HEADER_LENGTH;
  let end = headers.length;
  if (flags & PADDED) {
    end -= headers[start]!;
    start++;
  }
  const priority = flags & PRIORITY ? headers.subarray(start, start + 5) : Buffer.alloc(0);
  start += priority.length;
  if (end < start) return undefined;
  const fragments = [headers.subarray(start, end), ...frames.slice(1).map((f) => f.subarray(FRAME_HEADER_LENGTH))];
  const block = rewriteAuthority(Buffer.concat(fragments), validAuthority);
  if (!block) return undefined;
  // Written anew without padding; the priority and the end of the stream stay.
  const streamId = headers.readUInt32BE(5);
  const out: Buffer[] = [];
  let at = 0;
  for (let first = true; first || at < block.length; first = false) {
    const room = MAX_FRAME_PAYLOAD - (first ? priority.length : 0);
    const piece = block.subarray(at, at + room);
    at += piece.length;
    const done = at >= block.length;
    const head = Buffer.alloc(FRAME_HEADER_LENGTH);
    head.writeUIntBE((first ? priority.length : 0) + piece.length, 0, 3);
    head[3] = first ? HEADERS : CONTINUATION;
    head[4] = (first ? flags & (END_STREAM | PRIORITY) : 0) | (done ? END_HEADERS : 0);
    head.writeUInt32BE(streamId, 5);
    out.push(head, ...(first ? [priority] : []), piece);
  }
  return Buffer.concat(out);
}

/** `socket`, whose peer is `opts.from`, as a duplex whose readable side is filtered; writes, ends and back-pressure go straight through. */
export function filterFrames(socket: Socket, opts: FrameFilterOptions): Duplex {
  const filter = new FrameFilter(opts);
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
    for (const part of filter.feed(chunk)) more = filtered.push(part) && more;
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
