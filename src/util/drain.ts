import type { EventEmitter } from 'node:events';

/**
 * Resolves on 'drain', or once the stream can take nothing more (closed,
 * failed, its call cancelled), so a writer never hangs. `onWait` gets the
 * resolver, for a writer woken otherwise.
 */
export function drained(em: EventEmitter, onWait?: (resume: () => void) => void): Promise<void> {
  const events = ['drain', 'close', 'error', 'cancelled'];
  return new Promise((resolve) => {
    const done = () => {
      for (const e of events) em.off(e, done);
      resolve();
    };
    for (const e of events) em.on(e, done);
    onWait?.(done);
  });
}
