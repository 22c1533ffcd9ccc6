// The SPDY/3.1 frame parser and session (src/stream/spdy.ts, if present):
// random and mutated bytes from a peer never crash the process or hang it.
import fc from 'fast-check';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { fuzzParams, fuzzTimeout, withinMs } from '../support/fuzz.js';
import { repoRoot } from '../support/server.js';

const present = existsSync(join(repoRoot, 'src/stream/spdy.ts'));
// A variable keeps the type checker from requiring the module in checkouts without it.
const modulePath = '../../src/stream/spdy.js';

/** A socket stand-in: what the session writes is discarded. */
class FakeSocket extends Duplex {
  override _read(): void {}
  override _write(_c: Buffer, _e: BufferEncoding, cb: () => void): void {
    cb();
  }
}

describe.skipIf(!present)('fuzz: SPDY frames', () => {
  it(
    'the frame parser splits random bytes or throws SpdyError, never anything else',
    async () => {
      const spdy = await import(modulePath);
      await fc.assert(
        fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 10 }), async (chunks) => {
          const p = new spdy.FrameParser();
          for (const c of chunks) {
            try {
              const frames = p.push(Buffer.from(c));
              expect(Array.isArray(frames)).toBe(true);
            } catch (err) {
              expect(err).toBeInstanceOf(spdy.SpdyError);
              return;
            }
          }
        }),
        fuzzParams(),
      );
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (b) => {
          try {
            spdy.decodeHeaderBlock(Buffer.from(b));
          } catch (err) {
            expect(err).toBeInstanceOf(spdy.SpdyError);
          }
        }),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it(
    'a session fed random or mutated frames never throws out of receive and settles',
    async () => {
      const spdy = await import(modulePath);
      // Valid-looking frames to mutate: SYN_STREAM with a compressed header block, data, ping, settings, rst, goaway.
      const { deflateSync, constants } = await import('node:zlib');
      const block = deflateSync(spdy.encodeHeaderBlock(spdy.headersOf({ streamtype: 'stdout' })), {
        dictionary: spdy.SPDY_DICTIONARY,
        flush: constants.Z_SYNC_FLUSH,
      });
      const seeds: Buffer[] = [
        spdy.controlFrame(spdy.FrameType.SYN_STREAM ?? 1, 0, Buffer.concat([spdy.synStreamPrefix(1), block])),
        spdy.dataFrame(1, 0, Buffer.from('hello')),
        spdy.dataFrame(1, spdy.FLAG_FIN, Buffer.alloc(0)),
        spdy.controlFrame(spdy.FrameType.PING ?? 6, 0, Buffer.from([0, 0, 0, 1])),
        spdy.controlFrame(spdy.FrameType.RST_STREAM ?? 3, 0, Buffer.from([0, 0, 0, 1, 0, 0, 0, 5])),
        spdy.controlFrame(spdy.FrameType.GOAWAY ?? 7, 0, Buffer.from([0, 0, 0, 0, 0, 0, 0, 0])),
        spdy.controlFrame(spdy.FrameType.SETTINGS ?? 4, 0, Buffer.from([0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 9])),
      ];
      const mutation = fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) });
      const frame = fc.oneof(
        fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)),
        fc.tuple(fc.nat(seeds.length - 1), fc.array(mutation, { maxLength: 3 })).map(([i, muts]) => {
          const b = Buffer.from(seeds[i]!);
          for (const m of muts) if (b.length) b[m.at % b.length] = m.value;
          return b;
        }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 8 }), fc.boolean(), async (frames, isServer) => {
          const socket = new FakeSocket();
          const session = new spdy.SpdySession(socket, isServer);
          session.on('error', () => {});
          session.on('stream', (s: any) => {
            s.on?.('error', () => {});
          });
          const all = Buffer.concat(frames);
          // Fed in odd-sized chunks, as a TCP peer would.
          for (let i = 0; i < all.length; i += 13) session.receive(all.subarray(i, i + 13));
          // Whatever the session queued settles (no promise left hanging on bad
          // input): once the peer is gone the session always ends.
          const closed = session.closed ? Promise.resolve() : new Promise((r) => session.once('close', r));
          socket.destroy();
          await withinMs(closed, 2000, 'session close after the peer went away');
        }),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );
});
