import { describe, expect, it } from 'vitest';
import { ResizeDecoder } from '../../src/stream/remotecommand.js';

describe('terminal size messages', () => {
  it('skips sizes without area, as the kubelet does (Height < 1 || Width < 1)', () => {
    const dec = new ResizeDecoder();
    expect(dec.push(Buffer.from('{"Width":0,"Height":0}'))).toEqual([]);
    expect(dec.push(Buffer.from('{"Width":80,"Height":0}{"Width":0,"Height":24}'))).toEqual([]);
    expect(dec.push(Buffer.from('{"Width":80,"Height":24}'))).toEqual([{ width: 80, height: 24 }]);
  });

  it('reads messages split across chunks and drops malformed ones', () => {
    const dec = new ResizeDecoder();
    expect(dec.push(Buffer.from('{"Width":1'))).toEqual([]);
    expect(dec.push(Buffer.from('20,"Height":40}{"Width":-3,"Height":2}{nope}'))).toEqual([{ width: 120, height: 40 }]);
  });
});
