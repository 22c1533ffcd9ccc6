import { describe, expect, it } from 'vitest';
import { BoundedCache } from '../../src/util/cache.js';

describe('BoundedCache', () => {
  it('computes a key once, keeps undefined answers, and forgets the oldest past its size', () => {
    const cache = new BoundedCache<string | undefined>(2);
    let calls = 0;
    const get = (k: string, v: string | undefined) => cache.get(k, () => (calls++, v));
    expect(get('a', 'A')).toBe('A');
    expect(get('a', 'other')).toBe('A');
    expect(get('b', undefined)).toBeUndefined();
    expect(get('b', 'B')).toBeUndefined();
    expect(calls).toBe(2);
    get('c', 'C'); // evicts a
    expect(get('a', 'A2')).toBe('A2');
    expect(calls).toBe(4);
  });
});
