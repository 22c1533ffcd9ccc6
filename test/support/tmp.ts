import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

/**
 * A temporary directory for one test file, made before its first test and
 * removed after its last. When a filter (-t) skips every test of the file,
 * vitest runs none of its hooks: a directory made at load would be left behind.
 */
export function fileTempDir(prefix: string): () => string {
  let dir: string | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    if (dir === undefined) throw new Error(`the ${prefix} directory is made for the tests: use it in one`);
    return dir;
  };
}
