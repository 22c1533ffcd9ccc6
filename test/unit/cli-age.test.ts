// The AGE column of `peapod get pods`, as kubectl's HumanDuration prints it, and log times as kubectl --timestamps prints them.
import { describe, expect, it } from 'vitest';
import { age, kubectlTimestamp } from '../../src/cli/pod.js';

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

describe('kubectlTimestamp', () => {
  it('prints a CRI log time as Go\'s RFC3339Nano: the fraction\'s trailing zeros dropped, none left without a dot', () => {
    expect(kubectlTimestamp('2026-11-24T10:00:00.123400000Z')).toBe('2026-11-24T10:00:00.1234Z');
    expect(kubectlTimestamp('2026-11-24T10:00:00.000000000Z')).toBe('2026-11-24T10:00:00Z');
    expect(kubectlTimestamp('2026-11-24T10:00:00.123456789+02:00')).toBe('2026-11-24T10:00:00.123456789+02:00');
    expect(kubectlTimestamp('2026-11-24T10:00:00Z')).toBe('2026-11-24T10:00:00Z');
  });
});
