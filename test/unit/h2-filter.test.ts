import { createServer, connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FrameFilter, filterFrames, validAuthority } from '../../src/cri/h2-filter.js';
import { huffmanDecode, rewriteAuthority } from '../../src/cri/hpack.js';

const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const frame = (type: number, payload: Buffer | string, streamId = 0) => {
  const p = Buffer.from(payload);
  const h = Buffer.alloc(9);
  h.writeUIntBE(p.length, 0, 3);
  h[3] = type;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, p]);
};
const settings = frame(0x4, Buffer.alloc(12, 1));
const headers = frame(0x1, 'hpack bytes', 1);
const data = frame(0x0, Buffer.alloc(300, 0x61), 1); // longer than most cuts below
const goaway = frame(0x7, Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0x64, 0x62, 0x67]));
const emptyGoaway = frame(0x7, ''); // malformed, but a frame all the same: dropped whole
const ping = frame(0x6, Buffer.alloc(8, 7));

const stream = Buffer.concat([preface, settings, headers, goaway, data, ping, emptyGoaway, goaway, settings]);
const expected = Buffer.concat([preface, settings, headers, data, ping, settings]);

const dropper = (from: 'client' | 'server') => new FrameFilter({ from, dropGoaway: true, fixAuthority: false });
const through = (chunks: Buffer[], d = dropper('client')) => {
  return Buffer.concat(chunks.flatMap((c) => d.feed(c)));
};

describe('FrameFilter dropping GOAWAY (Deno)', () => {
  it('passes every frame but GOAWAY, byte for byte, the preface included', () => {
    expect(through([stream]).equals(expected)).toBe(true);
  });

  it('gives the same bytes wherever the chunks are cut (one cut, two cuts, byte by byte)', () => {
    for (let a = 0; a <= stream.length; a++) {
      const one = through([stream.subarray(0, a), stream.subarray(a)]);
      expect(one.equals(expected), `cut at ${a}`).toBe(true);
    }
    for (let a = 0; a <= stream.length; a += 7) {
      for (let b = a; b <= stream.length; b += 5) {
        const two = through([stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)]);
        expect(two.equals(expected), `cuts at ${a}, ${b}`).toBe(true);
      }
    }
    const bytes = through([...stream].map((x) => Buffer.from([x])));
    expect(bytes.equals(expected)).toBe(true);
  });

  it('reads a server\'s stream, which has no preface, frame by frame from its first byte', () => {
    const d = dropper('server');
    // Read as a preface, a GOAWAY in the first 24 bytes would pass.
    const fromServer = Buffer.concat([goaway, settings, headers, data, emptyGoaway]);
    expect(Buffer.concat(d.feed(fromServer)).equals(Buffer.concat([settings, headers, data]))).toBe(true);
  });

  it('hands on slices, not copies, of a chunk that holds whole frames', () => {
    const d = dropper('client');
    const chunk = Buffer.concat([preface, settings, goaway, headers]);
    const parts = d.feed(chunk);
    expect(parts.length).toBe(2);
    expect(parts.every((p) => p.buffer === chunk.buffer)).toBe(true);
  });
});

describe('filterFrames', () => {
  it('reads a socket without its GOAWAY frames, writes and ends through it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'peapod-goaway-'));
    const path = join(dir, 's.sock');
    const got: Buffer[] = [];
    const serverSide = new Promise<Buffer>((resolve) => {
      const listener = createServer((conn: Socket) => {
        const filtered = filterFrames(conn, { from: 'client', dropGoaway: true, fixAuthority: false });
        filtered.on('data', (c: Buffer) => got.push(c));
        filtered.on('end', () => {
          filtered.end('bye');
          listener.close();
          resolve(Buffer.concat(got));
        });
      }).listen(path);
    });
    try {
      const client = connect(path);
      const reply: Buffer[] = [];
      client.on('data', (c: Buffer) => reply.push(c));
      const closed = new Promise((r) => client.on('close', r));
      // Cut mid-header of the GOAWAY, and written in separate packets.
      const cut = preface.length + settings.length + headers.length + 4;
      client.write(stream.subarray(0, cut));
      await new Promise((r) => setTimeout(r, 20));
      client.end(stream.subarray(cut));
      expect((await serverSide).equals(expected)).toBe(true);
      await closed;
      expect(Buffer.concat(reply).toString()).toBe('bye');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const hex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');
/** The header block of crictl 1.26.1's first call (grpc-go 1.51), over /tmp/s23/sniff.sock: its :authority is that path. */
const GRPC_GO_BLOCK = hex(
  '8386459962cb6a49a92afdc2bedb6a49a92ee2d9dcc42b1c4b620c7abf418e6134d6c204cb08a8d2caba0e4ebf5f8b1d75d0620d263d4c4d65647a8a9acac8b4c7602bb615c140027465864d833505b11f408e9acac8b0c842d6958b510f21aa9b839bd9ab40899acac8b24d494f6a7f8713efbae0196edf',
);
/** The :authority values of a block, as rewriteAuthority reads them. */
const authorities = (block: Buffer) => {
  const seen: string[] = [];
  rewriteAuthority(block, (v) => (seen.push(v.toString()), v));
  return seen;
};

describe('HPACK', () => {
  it('decodes the Huffman code (RFC 7541, C.4) and refuses bad padding', () => {
    expect(huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff'))?.toString()).toBe('www.example.com');
    expect(huffmanDecode(hex('a8eb 1064 9cbf'))?.toString()).toBe('no-cache');
    expect(huffmanDecode(hex('25a8 49e9 5ba9 7d7f'))?.toString()).toBe('custom-key');
    expect(huffmanDecode(hex('25a8 49e9 5bb8 e8b4 bf'))?.toString()).toBe('custom-value');
    expect(huffmanDecode(hex('00'))).toBeUndefined(); // "0", then zeros for padding
    expect(huffmanDecode(hex('ffff'))).toBeUndefined(); // 16 bits of EOS's prefix
  });

  it('finds :authority by its static index or its literal name, and leaves a valid one alone', () => {
    // RFC 7541, C.4.1: :authority www.example.com as a literal with indexing, Huffman-coded.
    const rfc = hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff');
    expect(authorities(rfc)).toEqual(['www.example.com']);
    expect(rewriteAuthority(rfc, validAuthority)).toBeUndefined();
    const literalName = Buffer.concat([Buffer.from([0x10, 10]), Buffer.from(':authority'), Buffer.from([5]), Buffer.from('/a/b:')]);
    expect(authorities(literalName)).toEqual(['/a/b:']);
    expect(rewriteAuthority(literalName, validAuthority)).toEqual(Buffer.concat([literalName.subarray(0, 12), Buffer.from([5]), Buffer.from('_a_b_')]));
  });

  it('rewrites grpc-go\'s socket path to a value of the same length, every other field byte for byte', () => {
    expect(authorities(GRPC_GO_BLOCK)).toEqual(['/tmp/s23/sniff.sock']);
    const fixed = rewriteAuthority(GRPC_GO_BLOCK, validAuthority)!;
    expect(authorities(fixed)).toEqual(['_tmp_s23_sniff.sock']);
    // The value was 0x41, a 14-byte Huffman string; now a 19-byte plain one.
    const at = GRPC_GO_BLOCK.indexOf(hex('418e'));
    expect(fixed.subarray(0, at + 1)).toEqual(GRPC_GO_BLOCK.subarray(0, at + 1));
    expect(fixed.subarray(at + 1, at + 21)).toEqual(Buffer.concat([Buffer.from([19]), Buffer.from('_tmp_s23_sniff.sock')]));
    expect(fixed.subarray(at + 21)).toEqual(GRPC_GO_BLOCK.subarray(at + 2 + 14));
  });

  it('takes what nghttp2 takes as an authority; replaces every other byte of one it would refuse', () => {
    for (const ok of ['localhost', 'localhost:8080', '[::1]:80', 'a.b-c_d~e', 'user@host']) expect(validAuthority(Buffer.from(ok)).toString()).toBe(ok);
    expect(validAuthority(Buffer.from('/run/peapod/peapod.sock')).toString()).toBe('_run_peapod_peapod.sock');
    expect(validAuthority(Buffer.from('unix:/x y')).toString()).toBe('unix__x_y');
  });
});

describe('FrameFilter fixing :authority', () => {
  const fixer = () => new FrameFilter({ from: 'client', dropGoaway: false, fixAuthority: true });
  const headersFrame = (flags: number, payload: Buffer) => {
    const f = frame(0x1, payload, 1);
    f[4] = flags;
    return f;
  };
  const continuation = (flags: number, payload: Buffer) => {
    const f = frame(0x9, payload, 1);
    f[4] = flags;
    return f;
  };
  const priority = hex('8000 0003 0f');
  // grpc-go's block cut in two: HEADERS (padded, with a priority) and a CONTINUATION ending it.
  const cut = 40;
  const padded = headersFrame(0x8 | 0x20, Buffer.concat([Buffer.from([3]), priority, GRPC_GO_BLOCK.subarray(0, cut), Buffer.alloc(3)]));
  const rest = continuation(0x4, GRPC_GO_BLOCK.subarray(cut));
  const input = Buffer.concat([preface, settings, padded, rest, data, goaway]);
  const fixed = rewriteAuthority(GRPC_GO_BLOCK, validAuthority)!;
  const want = Buffer.concat([preface, settings, headersFrame(0x20 | 0x4, Buffer.concat([priority, fixed])), data, goaway]);

  it('rewrites a header block spread over HEADERS and CONTINUATION as one HEADERS frame, wherever the chunks are cut', () => {
    for (let a = 0; a <= input.length; a++) {
      const d = fixer();
      const out = Buffer.concat([...d.feed(input.subarray(0, a)), ...d.feed(input.subarray(a))]);
      expect(out.equals(want), `cut at ${a}`).toBe(true);
    }
  });

  it('passes a block with a valid :authority as it came, padding and all', () => {
    const rfc = headersFrame(0x8 | 0x4, Buffer.concat([Buffer.from([2]), hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'), Buffer.alloc(2)]));
    const stream = Buffer.concat([preface, settings, rfc, data]);
    expect(Buffer.concat(fixer().feed(stream)).equals(stream)).toBe(true);
  });

  it('holds no frame longer than the server takes, and passes a block another frame cuts short as it came', () => {
    // A HEADERS frame claiming 100 000 bytes: what arrived goes on at once (nghttp2 refuses the frame).
    const huge = Buffer.alloc(9);
    huge.writeUIntBE(100_000, 0, 3);
    huge[3] = 0x1;
    huge.writeUInt32BE(1, 5);
    const start = Buffer.concat([preface, huge, Buffer.alloc(10, 0x41)]);
    expect(Buffer.concat(fixer().feed(start)).equals(start)).toBe(true);
    // HEADERS without END_HEADERS, then DATA: not a valid stream, and left for the server to judge.
    const cutShort = Buffer.concat([preface, headersFrame(0, GRPC_GO_BLOCK.subarray(0, cut)), data]);
    expect(Buffer.concat(fixer().feed(cutShort)).equals(cutShort)).toBe(true);
    // A block past 256 KiB (a CONTINUATION flood): what was held goes on unread, the rest as it comes.
    const flood = Buffer.concat([preface, headersFrame(0, GRPC_GO_BLOCK), ...Array.from({ length: 20 }, () => continuation(0, Buffer.alloc(16000, 0x41)))]);
    const d = fixer();
    const passed = Buffer.concat(d.feed(flood));
    expect(passed.equals(flood)).toBe(true);
  });

  // Joining the held frames at each one took 68 s of the server's thread for this; once, at the end, 40 ms.
  it('passes a flood of 30 000 empty CONTINUATIONs in time linear in it', { timeout: 10_000 }, () => {
    const flood = Buffer.concat([preface, headersFrame(0, GRPC_GO_BLOCK), ...Array.from({ length: 30_000 }, () => continuation(0, Buffer.alloc(0)))]);
    expect(Buffer.concat(fixer().feed(flood)).equals(flood)).toBe(true);
  });

  it('splits a rewritten block longer than a frame into HEADERS and CONTINUATIONs of 16 KiB at most', () => {
    const big = Buffer.concat([Buffer.from([0x00, 5]), Buffer.from('x-big'), Buffer.from([0x7f, 0xa1, 0x9b, 0x01]), Buffer.alloc(20000, 0x61)]);
    const block = Buffer.concat([GRPC_GO_BLOCK, big]);
    const frames = [headersFrame(0, block.subarray(0, 16000)), continuation(0x4, block.subarray(16000))];
    const out = Buffer.concat(fixer().feed(Buffer.concat([preface, ...frames]))).subarray(preface.length);
    const got: Array<[number, number, number]> = [];
    const parts: Buffer[] = [];
    for (let i = 0; i < out.length; ) {
      const len = out.readUIntBE(i, 3);
      got.push([out[i + 3]!, out[i + 4]!, len]);
      parts.push(out.subarray(i + 9, i + 9 + len));
      i += 9 + len;
    }
    const rewritten = rewriteAuthority(block, validAuthority)!;
    expect(got).toEqual([
      [0x1, 0, 16384],
      [0x9, 0x4, rewritten.length - 16384],
    ]);
    expect(Buffer.concat(parts).equals(rewritten)).toBe(true);
  });
});
