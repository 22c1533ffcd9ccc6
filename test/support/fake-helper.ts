// Fake native helpers for the helper spawner (src/linux/helpers.ts): small
// Node scripts that report on the server's socket the way native/notify.c
// does ("KEY WORD TEXT", one connection per line), or crash without a word.

import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes an executable fake helper `dir/name`: `body` runs in an async
 * function with `report(word, text)`, `sock` and `key` in scope. `node` runs
 * it (the test's own Node by default; a probe under Bun or Deno passes one).
 */
export function fakeHelper(dir: string, name: string, body: string, node = process.execPath): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    `#!${node}
const net = require('node:net');
const a = process.argv;
const sock = a[a.indexOf('--notify') + 1], key = a[a.indexOf('--notify-key') + 1];
const report = (word, text) => new Promise((r) => { const c = net.connect(sock, () => c.end(key + ' ' + word + ' ' + text + '\\n')); c.on('close', r); });
(async () => { ${body} })();
`,
  );
  chmodSync(path, 0o755);
  return path;
}
