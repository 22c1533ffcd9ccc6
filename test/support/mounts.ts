// Kernel tests' scratch dirs: whatever a test mounted below one goes with it.
import { readFileSync, rmSync } from 'node:fs';
import { mountsUnder, unmount } from '../../src/linux/mount.js';

/** Unmounts everything at or below `dir` (deepest first), then deletes it. */
export function unmountAndRemove(dir: string): void {
  for (const mp of mountsUnder(dir).reverse()) unmount(mp);
  rmSync(dir, { recursive: true, force: true });
}

/** The super options of the mount at `dir` in this process's mount table (after its line's " - fstype source "). */
export function superOptions(dir: string): string {
  const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').findLast((l) => l.split(' ')[4] === dir);
  return line?.split(' - ')[1]?.split(' ')[2] ?? '';
}
