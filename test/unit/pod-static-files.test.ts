// Which files of a static pod directory are manifests: as the kubelet's file
// source, every regular file whose name does not start with a dot, whatever
// its extension; dot files and subdirectories are skipped.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { parseManifests } from '../../src/pod/manifest.js';
import type { PodRunner } from '../../src/pod/runner.js';
import { StaticPods } from '../../src/pod/static.js';

const manifest = (name: string) => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\nspec:\n  containers: [{name: c, image: busybox}]\n`;

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

it('reads every regular file not starting with a dot, whatever its extension', async () => {
  dir = mkdtempSync(join(tmpdir(), 'peapod-static-files-'));
  writeFileSync(join(dir, 'a.yaml'), manifest('a'));
  writeFileSync(join(dir, 'b'), manifest('b'));
  writeFileSync(join(dir, 'c.manifest'), manifest('c'));
  writeFileSync(join(dir, '.d.yaml'), manifest('d'));
  mkdirSync(join(dir, 'e.yaml'));
  writeFileSync(join(dir, 'e.yaml', 'f.yaml'), manifest('f'));
  const started: Array<{ name: string; source: string }> = [];
  const runner = {
    sources: () => started.map((p) => p.source),
    bySource: (source: string) => started.filter((p) => p.source === source),
    async apply(text: string, source: string) {
      const pods = parseManifests(text);
      for (const p of pods) started.push({ name: p.spec.name, source });
      return pods.map((p) => ({ spec: p.spec }));
    },
  } as unknown as PodRunner;
  await new StaticPods(dir, runner, createLogger('error', () => {})).scan();
  expect(started).toEqual([
    { name: 'a', source: `file:${join(dir, 'a.yaml')}` },
    { name: 'b', source: `file:${join(dir, 'b')}` },
    { name: 'c', source: `file:${join(dir, 'c.manifest')}` },
  ]);
});
