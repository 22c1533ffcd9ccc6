// The CRI log reader (src/container/logs.ts): random lines parse or fail
// typed; entries cut into P pieces, interleaved across streams and split at
// random byte boundaries come back whole and in order.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PeapodError } from '../../src/errors.js';
import { parseCriLogLine, readCriLog, type CriLogEntry } from '../../src/container/logs.js';
import { fuzzParams, typedOnly, withinMs } from '../support/fuzz.js';

const collect = async (src: AsyncIterable<Uint8Array>, opts = {}) => {
  const out: CriLogEntry[] = [];
  for await (const e of readCriLog(src, opts)) out.push(e);
  return out;
};
async function* pieces(b: Buffer, cuts: number[]): AsyncIterable<Uint8Array> {
  let at = 0;
  for (const c of cuts) {
    const end = Math.min(b.length, at + c);
    yield b.subarray(at, end);
    at = end;
  }
  if (at < b.length) yield b.subarray(at);
}

describe('CRI log lines', () => {
  it('parses what the monitor writes', () => {
    expect(parseCriLogLine('2024-01-02T03:04:05.123456789Z stdout F hello world')).toEqual({
      time: '2024-01-02T03:04:05.123456789Z',
      stream: 'stdout',
      partial: false,
      content: 'hello world',
    });
    expect(parseCriLogLine('2024-01-02T03:04:05+01:00 stderr P ').content).toBe('');
    expect(parseCriLogLine('2024-01-02T03:04:05Z stderr P  two  spaces ').content).toBe(' two  spaces ');
    for (const bad of ['', 'x', '2024-01-02T03:04:05Z', '2024-01-02T03:04:05Z stdout', '2024-01-02T03:04:05Z stdout F', 'yesterday stdout F x', '2024-01-02T03:04:05Z stdin F x', '2024-01-02T03:04:05Z stdout X x']) {
      expect(() => parseCriLogLine(bad), bad).toThrow(PeapodError);
    }
  });

  it('random lines give a parsed line or an InvalidArgument, nothing else', async () => {
    const prefix = fc.constantFrom('2024-01-02T03:04:05.1Z ', '2024-13-99T99:99:99Z ', '', '2024-01-02T03:04:05Z stdout ', '2024-01-02T03:04:05Z stderr P');
    await fc.assert(
      fc.asyncProperty(prefix, fc.string({ maxLength: 200, unit: 'binary' }), async (p, rest) => {
        const r = await typedOnly(() => parseCriLogLine(p + rest));
        if (r instanceof PeapodError) expect(r.kind).toBe('InvalidArgument');
        else expect(['stdout', 'stderr']).toContain(r.stream);
      }),
      fuzzParams(),
    );
  });

  it('joins P pieces per stream, whatever the chunking', async () => {
    const entry = fc.record({
      stream: fc.constantFrom('stdout' as const, 'stderr' as const),
      content: fc.string({ maxLength: 300, unit: 'grapheme' }).map((s) => s.replace(/\n/g, ' ')),
      cuts: fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 6 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 97 }), { maxLength: 200 }), async (entries, chunking) => {
        // Pieces of one entry are written consecutively; the other stream may interleave between entries.
        const lines: Buffer[] = [];
        const ts = '2024-01-02T03:04:05.000000001Z';
        // Cut at byte offsets, as the monitor does: possibly inside a UTF-8 character.
        for (const e of entries) {
          let rest = Buffer.from(e.content);
          for (const c of e.cuts) {
            if (rest.length <= c) break;
            lines.push(Buffer.concat([Buffer.from(`${ts} ${e.stream} P `), rest.subarray(0, c), Buffer.from('\n')]));
            rest = rest.subarray(c);
          }
          lines.push(Buffer.concat([Buffer.from(`${ts} ${e.stream} F `), rest, Buffer.from('\n')]));
        }
        const bytes = Buffer.concat(lines);
        const got = await withinMs(collect(pieces(bytes, chunking)), 5000, 'readCriLog');
        expect(got.map((g) => [g.stream, g.content])).toEqual(entries.map((e) => [e.stream, e.content]));
      }),
      fuzzParams(),
    );
  });

  it('random bytes never crash or hang the reader, and long lines are capped', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4000 }), fc.array(fc.integer({ min: 1, max: 500 }), { maxLength: 20 }), async (bytes, cuts) => {
        const got = await withinMs(collect(pieces(Buffer.from(bytes), cuts), { maxLine: 100 }), 5000, 'readCriLog');
        for (const e of got) expect(e.content.length).toBeLessThanOrEqual(100);
      }),
      fuzzParams(),
    );
    const long = Buffer.from(`2024-01-02T03:04:05Z stdout P ${'a'.repeat(5000)}\n2024-01-02T03:04:05Z stdout F ${'b'.repeat(5000)}\n`);
    const [e] = await collect(pieces(long, [1000, 1000]), { maxLine: 6000 });
    expect(e!.content).toBe('a'.repeat(5000) + 'b'.repeat(1000));
    expect(e!.truncated).toBe(true);
  });
});
