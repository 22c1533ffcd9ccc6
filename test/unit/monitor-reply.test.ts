// The server's reading of a monitor's answer to "start" (native/monitor.c).
import { describe, expect, it } from 'vitest';
import { startedAtOf } from '../../src/container/monitor.js';

describe('startedAtOf', () => {
  it('takes the time of the exec from "ok STARTED_AT" (less its "ok ")', () => {
    expect(startedAtOf('1763884800123456789')).toBe(1763884800123456789n);
  });

  it('has none from a monitor of an earlier version ("ok" alone) or from anything else: the caller reads monitor.json', () => {
    for (const reply of ['', '0', '-5', '12 34', 'abc', '1e9']) expect(startedAtOf(reply), reply).toBeUndefined();
  });
});
