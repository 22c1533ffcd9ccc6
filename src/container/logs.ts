// Reading the CRI log format the monitor writes (native/log.c) and the
// kubelet reads: `<RFC3339Nano time> <stdout|stderr> <P|F> <content>\n`, a
// long line cut into P pieces that end with an F piece.
import { invalidArgument } from '../errors.js';

export type LogStream = 'stdout' | 'stderr';

export interface CriLogLine {
  /** The timestamp as written (RFC 3339, nanoseconds). */
  time: string;
  stream: LogStream;
  /** A P piece: the line goes on in the next piece of the same stream. */
  partial: boolean;
  content: string;
}

export interface CriLogEntry {
  /** The time of the entry's last piece. */
  time: string;
  stream: LogStream;
  /** The whole line, its pieces joined, without the newline. */
  content: string;
  /** The line was longer than the reader's limit and was cut there. */
  truncated: boolean;
}

const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** Parses one line (without its newline); a malformed line is an InvalidArgument error. */
export function parseCriLogLine(line: string): CriLogLine {
  const a = line.indexOf(' ');
  if (a < 0) throw invalidArgument('CRI log line: no timestamp');
  const time = line.slice(0, a);
  if (!TIME.test(time) || Number.isNaN(Date.parse(time))) throw invalidArgument(`CRI log line: bad timestamp "${time.slice(0, 40)}"`);
  const b = line.indexOf(' ', a + 1);
  if (b < 0) throw invalidArgument('CRI log line: no stream');
  const stream = line.slice(a + 1, b);
  if (stream !== 'stdout' && stream !== 'stderr') throw invalidArgument(`CRI log line: bad stream "${stream.slice(0, 40)}"`);
  // The tag is followed by one space, then the content (possibly empty), as the kubelet parses it.
  const c = line.indexOf(' ', b + 1);
  if (c < 0) throw invalidArgument('CRI log line: no tag');
  const tags = line.slice(b + 1, c).split(':');
  if (tags[0] !== 'P' && tags[0] !== 'F') throw invalidArgument(`CRI log line: bad tag "${line.slice(b + 1, c).slice(0, 40)}"`);
  return { time, stream, partial: tags[0] === 'P', content: line.slice(c + 1) };
}

export interface ReadOptions {
  /** Longest joined line kept, in bytes; the rest is dropped and the entry marked truncated (default 1 MiB). */
  maxLine?: number;
  /** Called for each malformed line, which is skipped (default: skip silently). */
  onMalformed?: (line: string, err: Error) => void;
}

/** Splits bytes into lines, never holding more than `max` bytes of one line. */
async function* lines(src: AsyncIterable<Uint8Array>, max: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  let overlong = false;
  const take = () => {
    const b = Buffer.concat(parts);
    parts = [];
    size = 0;
    return b;
  };
  for await (const chunk of src) {
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (;;) {
      const nl = buf.indexOf(0x0a);
      const piece = nl < 0 ? buf : buf.subarray(0, nl);
      if (!overlong) {
        const room = max - size;
        if (piece.length > room) {
          overlong = true;
          parts.push(Buffer.from(piece.subarray(0, room)));
          size = max;
        } else {
          parts.push(Buffer.from(piece));
          size += piece.length;
        }
      }
      if (nl < 0) break;
      yield take();
      overlong = false;
      buf = buf.subarray(nl + 1);
    }
  }
  if (size > 0) yield take();
}

/**
 * Reads a CRI log file's bytes into whole entries: P pieces are joined per
 * stream (stdout and stderr interleave) up to the F piece, as bytes (the
 * monitor cuts at a byte count, possibly inside a UTF-8 character), then
 * decoded. Pieces left open at the end of the input are returned as they are.
 */
export async function* readCriLog(src: AsyncIterable<Uint8Array>, opts: ReadOptions = {}): AsyncGenerator<CriLogEntry> {
  const max = opts.maxLine ?? 1024 * 1024;
  // A physical line is a piece at most (16 KiB from the monitor) plus its prefix.
  const physicalMax = Math.max(max, 64 * 1024) + 64;
  const open = new Map<LogStream, { time: string; parts: Buffer[]; size: number; truncated: boolean }>();
  const entry = (stream: LogStream, cur: { time: string; parts: Buffer[]; truncated: boolean }): CriLogEntry => ({
    time: cur.time,
    stream,
    content: Buffer.concat(cur.parts).toString('utf8'),
    truncated: cur.truncated,
  });
  for await (const raw of lines(src, physicalMax)) {
    // The prefix is ASCII: parse it alone, keep the content as bytes.
    const c = nthSpace(raw, 3);
    let l: CriLogLine;
    try {
      l = parseCriLogLine(raw.subarray(0, c < 0 ? raw.length : c + 1).toString('latin1'));
    } catch (err) {
      opts.onMalformed?.(raw.toString('utf8'), err as Error);
      continue;
    }
    const content = raw.subarray(c + 1);
    let cur = open.get(l.stream);
    if (!cur) open.set(l.stream, (cur = { time: l.time, parts: [], size: 0, truncated: false }));
    cur.time = l.time;
    const room = max - cur.size;
    if (content.length > room) {
      cur.truncated = true;
      if (room > 0) cur.parts.push(content.subarray(0, room));
      cur.size = max;
    } else {
      cur.parts.push(content);
      cur.size += content.length;
    }
    if (!l.partial) {
      open.delete(l.stream);
      yield entry(l.stream, cur);
    }
  }
  for (const [stream, cur] of open) yield entry(stream, cur);
}

/** Index of the n-th space in b, or -1. */
function nthSpace(b: Buffer, n: number): number {
  let at = -1;
  for (let i = 0; i < n; i++) {
    at = b.indexOf(0x20, at + 1);
    if (at < 0) return -1;
  }
  return at;
}

/** One line of a CRI log file: `<time> <stream> <P|F> <content>`. */
export interface CriLogRecord {
  time: string;
  /** A P line: the message goes on in the next one. */
  partial: boolean;
  content: string;
}

/** CRI log lines → their records; a line without its first fields is skipped. */
export function criLogRecords(text: string): CriLogRecord[] {
  const out: CriLogRecord[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const a = line.indexOf(' ');
    const b = line.indexOf(' ', a + 1);
    const c = line.indexOf(' ', b + 1);
    if (a < 0 || b < 0) continue;
    const tag = c < 0 ? line.slice(b + 1) : line.slice(b + 1, c);
    out.push({ time: line.slice(0, a), partial: tag === 'P', content: c < 0 ? '' : line.slice(c + 1) });
  }
  return out;
}

/** CRI log lines → the messages; P joins with the next line. */
export function criLogMessages(text: string): string {
  return criLogRecords(text)
    .map((r) => (r.partial ? r.content : r.content + '\n'))
    .join('');
}
