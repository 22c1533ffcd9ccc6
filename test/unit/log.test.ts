import { describe, expect, it } from 'vitest';
import { internal } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';

describe('logger', () => {
  it('keeps an error\'s message in JSON lines (debug level), with its own fields', () => {
    const lines: string[] = [];
    const log = createLogger('debug', (l) => void lines.push(l));
    log.error('network teardown failed', { id: 'x', err: internal('plugin bridge: xtables lock'), n: 5n });
    const rec = JSON.parse(lines[0]!);
    expect(rec.err.message).toBe('plugin bridge: xtables lock');
    expect(rec.err.kind).toBe('Internal');
    expect(rec.n).toBe('5');
  });

  it('writes an error\'s message in human lines', () => {
    const lines: string[] = [];
    createLogger('info', (l) => void lines.push(l)).warn('failed', { err: new Error('boom') });
    expect(lines[0]).toMatch(/ WARN  failed err="boom"\n$/);
  });
});
