// What the pod runner retries instead of giving up on: a pod record that
// could not be written (a full disk), and a static manifest rejected only
// because its pod's name was taken.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { alreadyExists } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { newContainerRecords, PodController, type ControllerDeps } from '../../src/pod/controller.js';
import { parseManifests } from '../../src/pod/manifest.js';
import type { PodRunner } from '../../src/pod/runner.js';
import { StaticPods } from '../../src/pod/static.js';
import type { PodRecord } from '../../src/pod/types.js';
import { sleep } from '../support/wait.js';

const manifest = (name: string) => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\nspec:\n  containers: [{name: c, image: busybox}]\n`;

/** A logger keeping its warnings. */
function recordingLogger(): { log: ReturnType<typeof createLogger>; warnings: string[] } {
  const warnings: string[] = [];
  const log = createLogger('warn', (line) => void warnings.push(line));
  return { log, warnings };
}

describe('pod record writes', () => {
  it('a failed write is logged once and retried at the next sync; the loop keeps running', async () => {
    const spec = parseManifests(manifest('p'))[0]!.spec;
    // A pod being deleted: its sync does nothing but write the record.
    const rec = { id: spec.uid, spec, containers: newContainerRecords(spec), events: [], deleting: true } as unknown as PodRecord;
    const { log, warnings } = recordingLogger();
    let calls = 0;
    const save = () => {
      calls++;
      if (calls <= 2) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    };
    const ctl = new PodController(rec, { log, save, tickMs: 10 } as unknown as ControllerDeps);
    ctl.start();
    await sleep(200);
    await ctl.stopLoop(0);
    expect(calls).toBe(3);
    expect(warnings.filter((w) => w.includes('writing the pod record failed'))).toHaveLength(1);
  });
});

describe('static pods', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A runner holding the names in `taken` (pods from elsewhere) and what the files started. */
  function fakeRunner(taken: Set<string>) {
    const started: Array<{ namespace: string; name: string; hash: string; source: string }> = [];
    let applies = 0;
    const runner = {
      sources: () => [...new Set(started.map((p) => p.source))],
      bySource: (source: string) => started.filter((p) => p.source === source),
      async apply(text: string, source: string) {
        applies++;
        const pods = parseManifests(text);
        for (const p of pods) if (taken.has(p.spec.name)) throw alreadyExists(`pod "${p.spec.name}" already exists in namespace "default"`);
        for (const p of pods) started.push({ namespace: p.spec.namespace, name: p.spec.name, hash: '', source });
        return pods.map((p) => ({ spec: p.spec }));
      },
      async delete(namespace: string, name: string) {
        await onDelete();
        started.splice(started.findIndex((p) => p.namespace === namespace && p.name === name), 1);
      },
    };
    let onDelete: () => unknown = () => undefined;
    return { runner: runner as unknown as PodRunner, started, applies: () => applies, whileDeleting: (fn: () => unknown) => void (onDelete = fn) };
  }

  it('a directory that cannot be read (not missing) deletes no pod; a missing one deletes them all', async () => {
    dir = mkdtempSync(join(tmpdir(), 'peapod-static-'));
    writeFileSync(join(dir, 'a.yaml'), manifest('a'));
    const { runner, started } = fakeRunner(new Set());
    const sp = new StaticPods(dir, runner, recordingLogger().log);
    await sp.scan();
    rmSync(dir, { recursive: true });
    writeFileSync(dir, 'not a directory');
    await expect(sp.scan()).rejects.toMatchObject({ code: 'ENOTDIR' });
    expect(started.map((p) => p.name)).toEqual(['a']);
    rmSync(dir);
    await sp.scan();
    expect(started).toEqual([]);
  });

  it('a manifest removed while its changed pod was being deleted is not started again', async () => {
    dir = mkdtempSync(join(tmpdir(), 'peapod-static-'));
    const path = join(dir, 'a.yaml');
    writeFileSync(path, manifest('a'));
    const { runner, started, applies, whileDeleting } = fakeRunner(new Set());
    const sp = new StaticPods(dir, runner, recordingLogger().log);
    await sp.scan();
    expect(started.map((p) => p.name)).toEqual(['a']);
    // Changed: its pod is deleted (a grace period long), and the file goes meanwhile.
    writeFileSync(path, manifest('a') + '# v2\n');
    whileDeleting(() => rmSync(path));
    await sp.scan();
    expect(started).toEqual([]);
    expect(applies()).toBe(1);
  });

  it('a manifest whose pod name is taken starts once the other pod is gone', async () => {
    dir = mkdtempSync(join(tmpdir(), 'peapod-static-'));
    writeFileSync(join(dir, 'web.yaml'), manifest('web'));
    const taken = new Set(['web']);
    const { runner, started } = fakeRunner(taken);
    const { log, warnings } = recordingLogger();
    const sp = new StaticPods(dir, runner, log);
    await sp.scan();
    expect(started).toHaveLength(0);
    await sp.scan();
    expect(warnings.filter((w) => w.includes('static pod manifest rejected'))).toHaveLength(1);
    taken.delete('web');
    await sp.scan();
    expect(started.map((p) => p.name)).toEqual(['web']);
  });

  it('an invalid manifest is not tried again until the file changes', async () => {
    dir = mkdtempSync(join(tmpdir(), 'peapod-static-'));
    writeFileSync(join(dir, 'bad.yaml'), manifest('Not_A_Name'));
    const { runner, started, applies } = fakeRunner(new Set());
    const sp = new StaticPods(dir, runner, recordingLogger().log);
    await sp.scan();
    await sp.scan();
    expect(applies()).toBe(1);
    writeFileSync(join(dir, 'bad.yaml'), manifest('good'));
    await sp.scan();
    expect(started.map((p) => p.name)).toEqual(['good']);
  });
});
