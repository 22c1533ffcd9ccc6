// Cross-check: our unpack of the busybox image vs `umoci unpack` of the same OCI layout.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ImageService } from '../../src/image/service.js';
import { builtImage } from '../support/image-archive.js';
import { tmpDir } from '../support/image-tar.js';

function which(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/** relpath → type, mode, owner, mtime, link target / content hash, hardlink group. */
function tree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const firstPathOfInode = new Map<number, string>();
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const abs = path.join(root, r);
      const st = fs.lstatSync(abs);
      const base = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} mtime=${Math.floor(st.mtimeMs / 1000)}`;
      if (st.isDirectory()) {
        out.set(r, `dir ${base}`);
        walk(r);
      } else if (st.isSymbolicLink()) {
        out.set(r, `symlink ${st.uid}:${st.gid} -> ${fs.readlinkSync(abs)}`);
      } else if (st.isFile()) {
        const first = firstPathOfInode.get(st.ino);
        if (first === undefined) firstPathOfInode.set(st.ino, r);
        const sum = execFileSync('sha256sum', [abs], { encoding: 'utf8' }).slice(0, 64);
        out.set(r, `file ${base} nlink=${st.nlink} ${sum} linkgroup=${first ?? r}`);
      } else out.set(r, `special ${base} rdev=${st.rdev}`);
    }
  };
  walk('');
  return out;
}

let work: string | undefined;
afterEach(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
  work = undefined;
});

describe('unpack cross-check with umoci', () => {
  const hasUmoci = which('umoci');
  const busybox = builtImage('busybox.tar');
  if (!hasUmoci) console.warn('SKIP umoci cross-check: umoci is not installed (Debian package "umoci")');
  if (!busybox) console.warn('SKIP umoci cross-check: images/build/busybox.tar could not be built');

  it.skipIf(!hasUmoci || !busybox || process.getuid?.() !== 0)('busybox unpacked by peapod and by umoci are identical', async () => {
    work = tmpDir('peapod-umoci-');
    const layout = path.join(work, 'layout');
    fs.mkdirSync(layout);
    execFileSync('tar', ['-xf', busybox!, '-C', layout]);
    const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'));
    const tag = index.manifests[0].annotations['org.opencontainers.image.ref.name'];
    execFileSync('umoci', ['unpack', '--image', `${layout}:${tag}`, path.join(work, 'umoci')], { stdio: 'pipe' });

    const svc = await ImageService.open({ root: path.join(work, 'root') });
    const [img] = await svc.import(fs.createReadStream(busybox!));
    expect(img!.chainIds).toHaveLength(1);
    const ours = tree(path.join(work, 'root/layers', img!.chainIds[0]!.slice(7), 'fs'));
    const theirs = tree(path.join(work, 'umoci/rootfs'));
    expect(ours.size).toBeGreaterThan(250);
    expect([...ours.keys()]).toEqual([...theirs.keys()]);
    for (const [k, v] of ours) expect(v, k).toBe(theirs.get(k));
  });
});
