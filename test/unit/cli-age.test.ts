// The AGE column of `peapod get pods`, as kubectl's HumanDuration prints it.
import { describe, expect, it } from 'vitest';
import { age } from '../../src/cli/pod.js';

const S = 1000;
const DAY = 24 * 3600 * S;

describe('age', () => {
  it('prints each range as kubectl does', () => {
    expect(age(59 * S)).toBe('59s');
    expect(age(150 * S)).toBe('2m30s');
    expect(age(125 * 60 * S)).toBe('125m');
    expect(age((5 * 60 + 7) * 60 * S)).toBe('5h7m');
    expect(age(30 * 3600 * S)).toBe('30h');
    expect(age(3 * DAY + 4 * 3600 * S)).toBe('3d4h');
    expect(age(400 * DAY)).toBe('400d');
    // Years with their days up to 8 years, then years alone.
    expect(age(1000 * DAY)).toBe('2y270d');
    expect(age(3 * 365 * DAY)).toBe('3y');
    expect(age(9 * 365 * DAY + 10 * DAY)).toBe('9y');
  });

  it('a creation time in the future is <invalid>, within a second 0s', () => {
    expect(age(-5000)).toBe('<invalid>');
    expect(age(-500)).toBe('0s');
  });
});
