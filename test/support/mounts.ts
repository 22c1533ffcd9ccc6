// Kernel tests' scratch dirs: whatever a test mounted below one goes with it.
import { rmSync } from 'node:fs';
import { mountsUnder, unmount } from '../../src/linux/mount.js';

/** Unmounts everything at or below `dir` (deepest first), then deletes it. */
export function unmountAndRemove(dir: string): void {
  for (const mp of mountsUnder(dir).reverse()) unmount(mp);
  rmSync(dir, { recursive: true, force: true });
}
