// Archives written by skopeo (a real third-party writer): OCI archive whose
// ref.name is only a tag, and docker-archive with symlinked legacy layer paths.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ImageService } from '../../src/image/service.js';
import { builtImage } from '../support/image-archive.js';
import { tmpDir } from '../support/image-tar.js';

const hasSkopeo = (() => {
  try {
    execFileSync('skopeo', ['--version'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
})();
const busybox = builtImage('busybox-docker.tar');
if (!hasSkopeo) console.warn('SKIP skopeo archive tests: skopeo is not installed');

let work: string | undefined;
afterEach(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
  work = undefined;
});

describe('archives written by skopeo', () => {
  it.skipIf(!hasSkopeo || !busybox)('oci-archive with a tag-only ref.name and docker-archive with symlinks', async () => {
    work = tmpDir('peapod-skopeo-');
    const oci = path.join(work, 'oci.tar');
    const dock = path.join(work, 'dock.tar');
    execFileSync('skopeo', ['copy', '-q', `docker-archive:${busybox}`, `oci-archive:${oci}:1.36`]);
    execFileSync('skopeo', ['copy', '-q', `oci-archive:${oci}:1.36`, `docker-archive:${dock}:peapod.local/bb:2`]);
    const svc = await ImageService.open({ root: path.join(work, 'root') });
    const [a] = await svc.import(fs.createReadStream(oci), { name: 'peapod.local/bb' });
    expect(a!.repoTags).toEqual(['peapod.local/bb:1.36']);
    const [b] = await svc.import(fs.createReadStream(dock));
    expect(b!.id).toBe(a!.id);
    expect(b!.repoTags).toEqual(['peapod.local/bb:1.36', 'peapod.local/bb:2']);
    const fsDir = path.join(work, 'root/layers', b!.chainIds[0]!.slice(7), 'fs');
    expect(fs.statSync(path.join(fsDir, 'bin/ls')).ino).toBe(fs.statSync(path.join(fsDir, 'bin/busybox')).ino);
    // without a name option, a tag-only ref.name leaves the image unnamed (by id only)
    const svc2 = await ImageService.open({ root: path.join(work, 'root2') });
    const [c] = await svc2.import(fs.createReadStream(oci));
    expect(c!.repoTags).toEqual([]);
    expect(svc2.resolve(c!.id.slice(0, 12))?.id).toBe(c!.id);
  });
});
