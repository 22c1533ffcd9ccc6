// writeEach, behind the List RPCs' streaming twins: an item is made only once
// the client has room for it, and a client that gives up ends the writing.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { writeEach } from '../../src/cri/handlers.js';

/** A server call whose client reads only when told: each write fills it. */
class SlowCall extends EventEmitter {
  cancelled = false;
  destroyed = false;
  written: unknown[] = [];
  write(msg: unknown): boolean {
    this.written.push(msg);
    return false;
  }
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('writeEach', () => {
  it('makes the next item only after a drain, and writes every item in order', async () => {
    const call = new SlowCall();
    const made: number[] = [];
    const done = writeEach(call as never, [1, 2, 3], (n) => (made.push(n), { n }));
    await tick();
    expect(made).toEqual([1]);
    call.emit('drain');
    await tick();
    expect(made).toEqual([1, 2]);
    call.emit('drain');
    await tick();
    call.emit('drain');
    await done;
    expect(call.written).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
  });

  it('stops, making nothing more, when the client cancels while it waits', async () => {
    const call = new SlowCall();
    const made: number[] = [];
    const done = writeEach(call as never, [1, 2, 3], async (n) => (made.push(n), { n }));
    await tick();
    call.cancelled = true;
    call.emit('cancelled');
    await done;
    expect(made).toEqual([1]);
    expect(call.written).toEqual([{ n: 1 }]);
    expect(call.listenerCount('drain') + call.listenerCount('cancelled') + call.listenerCount('close')).toBe(0);
  });
});
