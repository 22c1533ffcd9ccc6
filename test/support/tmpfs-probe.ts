// mountMemoryVolume (src/linux/mount.ts) in whatever namespaces run this file:
// test/integration/pod-volumes-host.test.ts runs it in a user namespace,
// whose tmpfs refuses `noswap`. Mounts a 1 MiB tmpfs on each directory of
// PROBE_DIRS (colon-separated) in turn; prints each one's super options as one
// JSON line, or the error.

import { loadLibc } from '../../src/ffi/index.js';
import { mountMemoryVolume } from '../../src/linux/mount.js';
import { superOptions } from './mounts.js';

await loadLibc();
const out = (process.env.PROBE_DIRS ?? '').split(':').map((dir) => {
  try {
    mountMemoryVolume(dir, 1 << 20);
    return superOptions(dir);
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
});
console.log(JSON.stringify(out));
