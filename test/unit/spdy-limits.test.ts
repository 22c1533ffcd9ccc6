import { describe, expect, it } from 'vitest';
import { HeaderZlib, SpdyError } from '../../src/stream/spdy.js';

describe('SPDY header compression limits', () => {
  it('refuses a header block that inflates past 256 KiB (a few bytes could otherwise cost gigabytes)', async () => {
    const bomb = await new HeaderZlib('deflate').process(Buffer.alloc(4 << 20));
    expect(bomb.length).toBeLessThan(32 * 1024);
    await expect(new HeaderZlib('inflate').process(bomb)).rejects.toBeInstanceOf(SpdyError);
  });

  it('inflates an ordinary header block', async () => {
    const block = Buffer.from('streamtype\0stdout');
    const z = await new HeaderZlib('deflate').process(block);
    expect(await new HeaderZlib('inflate').process(z)).toEqual(block);
  });
});
