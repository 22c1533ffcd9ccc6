import { createServer, connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GoawayDropper, withoutGoaway } from '../../src/cri/goaway-filter.js';

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

const through = (chunks: Buffer[]) => {
  const d = new GoawayDropper('client');
  return Buffer.concat(chunks.flatMap((c) => d.feed(c)));
};

describe('GoawayDropper', () => {
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
    const d = new GoawayDropper('server');
    // Read as a preface, a GOAWAY in the first 24 bytes would pass.
    const fromServer = Buffer.concat([goaway, settings, headers, data, emptyGoaway]);
    expect(Buffer.concat(d.feed(fromServer)).equals(Buffer.concat([settings, headers, data]))).toBe(true);
  });

  it('hands on slices, not copies, of a chunk that holds whole frames', () => {
    const d = new GoawayDropper('client');
    const chunk = Buffer.concat([preface, settings, goaway, headers]);
    const parts = d.feed(chunk);
    expect(parts.length).toBe(2);
    expect(parts.every((p) => p.buffer === chunk.buffer)).toBe(true);
  });
});

describe('withoutGoaway', () => {
  it('reads a socket without its GOAWAY frames, writes and ends through it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'peapod-goaway-'));
    const path = join(dir, 's.sock');
    const got: Buffer[] = [];
    const serverSide = new Promise<Buffer>((resolve) => {
      const listener = createServer((conn: Socket) => {
        const filtered = withoutGoaway(conn, 'client');
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
