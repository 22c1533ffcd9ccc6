#!/usr/bin/env node
// Builds peapod's offline test images from what is installed on this machine,
// into images/build/ (gitignored). Plain Node (builtins + tar-stream): runs before tsc.
//
//   node images/build.mjs            build everything it can
//   node images/build.mjs --check    also smoke-test busybox with chroot (root only)
//
// Outputs (reproducible: fixed mtimes, root ownership, sorted entries, gzip via
// node:zlib with fixed header — same inputs give the same digests):
//   pause.tar           OCI layout archive, registry.k8s.io/pause:3.9
//                       (/pause = native/build/pause; Entrypoint ["/pause"], User 65535:65535)
//   busybox.tar         OCI layout archive, docker.io/library/busybox:latest
//   busybox-docker.tar  docker-archive (docker save format) of the same image
//
// busybox: Debian's DYNAMICALLY linked /bin/busybox (package "busybox") with the
// glibc files `ldd` lists, applets as hard links in /bin. (busybox-static prefers
// applets over exec, and symlinked applets make masked paths land on busybox
// itself; the dynamic one with hard links behaves like upstream images.)

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';
import tar from 'tar-stream';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.dirname(HERE);
const OUT = path.join(HERE, 'build');
const EPOCH = new Date(Number(process.env.SOURCE_DATE_EPOCH ?? 1704067200) * 1000); // 2024-01-01
const CREATED = EPOCH.toISOString().replace(/\.000Z$/, 'Z');
const ARCH = { x64: 'amd64', arm64: 'arm64' }[process.arch] ?? process.arch;

const sha256 = (b) => createHash('sha256').update(b).digest('hex');
const log = (...a) => console.log('[images]', ...a);

/** Packs entries (sorted by name, parents first) into a tar Buffer. */
async function packTar(entries) {
  // Sorted by name, hard links last (their targets must come first).
  const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const sorted = [...entries.filter((e) => e.type !== 'link').sort(byName), ...entries.filter((e) => e.type === 'link').sort(byName)];
  const pack = tar.pack();
  const chunks = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(Buffer.from(c));
  })();
  const named = new Map(entries.map((e) => [e.name, e]));
  for (const e of sorted) {
    const type = e.type ?? 'file';
    // A hard link shares its target's inode: its header must carry the
    // target's mode, as docker save writes it, for unpackers (containerd's
    // among them) that chmod the link and so the target.
    const self = type === 'link' ? { ...named.get(e.linkname), ...e } : e;
    const hdr = {
      name: e.name,
      type,
      mode: self.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      uname: '',
      gname: '',
      mtime: EPOCH,
      linkname: e.linkname,
    };
    await new Promise((res, rej) => {
      const cb = (err) => (err ? rej(err) : res());
      if (type === 'file') pack.entry({ ...hdr, size: e.content.length }, e.content, cb);
      else pack.entry(hdr, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** temp + rename, so concurrent readers (parallel tests) never see a partial file */
function writeAtomic(file, buf) {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, buf);
  fs.renameSync(tmp, file);
}

/** gzip with a fixed header (mtime 0, OS=unix) so output depends on input only. */
function gzip(buf) {
  const gz = zlib.gzipSync(buf, { level: 9 });
  gz.writeUInt32LE(0, 4); // MTIME
  gz[9] = 3; // OS: Unix
  return gz;
}

function imageConfig({ config, diffIds }) {
  return Buffer.from(
    JSON.stringify({
      created: CREATED,
      architecture: ARCH,
      os: 'linux',
      config,
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: diffIds.map(() => ({ created: CREATED, created_by: 'peapod images/build.mjs' })),
    }),
  );
}

/**
 * Writes an OCI image layout archive. layers: uncompressed tar Buffers.
 * ref: full reference, written as org.opencontainers.image.ref.name and io.containerd.image.name.
 */
async function writeOciArchive(file, { ref, layers, config }) {
  const blobs = new Map();
  const add = (b) => {
    const d = sha256(b);
    blobs.set(d, b);
    return { digest: `sha256:${d}`, size: b.length };
  };
  const gzLayers = layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...add(gzip(l)) }));
  const cfg = add(imageConfig({ config, diffIds: layers.map((l) => `sha256:${sha256(l)}`) }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
      layers: gzLayers,
    }),
  );
  const man = add(manifest);
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        ...man,
        annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref },
        platform: { architecture: ARCH, os: 'linux' },
      },
    ],
  };
  const entries = [
    { name: 'blobs/', type: 'directory' },
    { name: 'blobs/sha256/', type: 'directory' },
    { name: 'oci-layout', content: Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })) },
    { name: 'index.json', content: Buffer.from(JSON.stringify(index)) },
    ...[...blobs].map(([d, b]) => ({ name: `blobs/sha256/${d}`, content: b })),
  ];
  writeAtomic(file, await packTar(entries));
  return man.digest;
}

/** Writes a docker-archive (docker save format, uncompressed layers). */
async function writeDockerArchive(file, { ref, familiar, layers, config }) {
  const diffIds = layers.map((l) => `sha256:${sha256(l)}`);
  const cfg = imageConfig({ config, diffIds });
  const cfgHex = sha256(cfg);
  const entries = [{ name: `${cfgHex}.json`, content: cfg }];
  const layerPaths = [];
  let parent = '';
  for (const l of layers) {
    // legacy v1 layer id: deterministic from content and parent
    const id = sha256(`${parent} ${sha256(l)}`);
    entries.push({ name: `${id}/`, type: 'directory' });
    entries.push({ name: `${id}/VERSION`, content: Buffer.from('1.0') });
    entries.push({ name: `${id}/json`, content: Buffer.from(JSON.stringify({ id, ...(parent ? { parent } : {}), created: CREATED })) });
    entries.push({ name: `${id}/layer.tar`, content: l });
    layerPaths.push(`${id}/layer.tar`);
    parent = id;
  }
  const [repo, tag] = [familiar.slice(0, familiar.lastIndexOf(':')), familiar.slice(familiar.lastIndexOf(':') + 1)];
  entries.push({ name: 'manifest.json', content: Buffer.from(JSON.stringify([{ Config: `${cfgHex}.json`, RepoTags: [familiar], Layers: layerPaths }])) });
  entries.push({ name: 'repositories', content: Buffer.from(JSON.stringify({ [repo]: { [tag]: parent } })) });
  void ref;
  writeAtomic(file, await packTar(entries));
}

// ------------------------------------------------------------------ busybox

function lddDeps(bin) {
  const out = execFileSync('ldd', [bin], { encoding: 'utf8' });
  const deps = [];
  for (const line of out.split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m) deps.push(m[1]);
  }
  return deps;
}

function dirsFor(p, set) {
  const parts = p.split('/').slice(0, -1);
  for (let i = 1; i <= parts.length; i++) set.add(parts.slice(0, i).join('/'));
}

function busyboxLayer() {
  const bin = '/bin/busybox';
  if (!fs.existsSync(bin)) return { skip: 'no /bin/busybox (install the Debian package "busybox")' };
  const info = execFileSync('file', ['-L', bin], { encoding: 'utf8' }).toString();
  if (!/dynamically linked/.test(info)) return { skip: `${bin} is not dynamically linked (busybox-static installed instead of busybox?)` };
  const applets = execFileSync(bin, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s && s !== 'busybox' && !s.includes('/'));
  const entries = [];
  const dirs = new Set(['bin', 'dev', 'etc', 'home', 'proc', 'root', 'sys', 'tmp', 'usr', 'usr/bin', 'usr/sbin', 'sbin', 'var', 'var/www', 'home/peapod']);
  entries.push({ name: 'bin/busybox', content: fs.readFileSync(bin), mode: 0o755 });
  for (const a of applets) entries.push({ name: `bin/${a}`, type: 'link', linkname: 'bin/busybox' });
  for (const dep of lddDeps(bin)) {
    const rel = dep.replace(/^\/+/, '');
    dirsFor(rel, dirs);
    entries.push({ name: rel, content: fs.readFileSync(dep), mode: 0o755 });
  }
  const text = (name, s, mode = 0o644) => entries.push({ name, content: Buffer.from(s), mode });
  text(
    'etc/passwd',
    [
      'root:x:0:0:root:/root:/bin/sh',
      'www-data:x:33:33:www-data:/var/www:/bin/false',
      'peapod:x:1000:1000:peapod:/home/peapod:/bin/sh',
      'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
      '',
    ].join('\n'),
  );
  text('etc/group', ['root:x:0:', 'www-data:x:33:', 'peapod:x:1000:', 'nogroup:x:65534:', ''].join('\n'));
  text('etc/shadow', ['root:*::0:::::', 'www-data:*::0:::::', 'peapod:*::0:::::', 'nobody:*::0:::::', ''].join('\n'), 0o640);
  text('etc/hostname', 'busybox\n');
  text('etc/nsswitch.conf', 'passwd: files\ngroup: files\nhosts: files dns\n');
  for (const d of dirs) {
    const mode = d === 'tmp' ? 0o1777 : d === 'root' ? 0o700 : 0o755;
    const own = d === 'home/peapod' ? { uid: 1000, gid: 1000 } : d === 'var/www' ? { uid: 33, gid: 33 } : {};
    entries.push({ name: `${d}/`, type: 'directory', mode, ...own });
  }
  return { entries };
}

// -------------------------------------------------------------------- pause

function pauseBinary() {
  const p = path.join(REPO, 'native/build/pause');
  if (!fs.existsSync(p) && fs.existsSync(path.join(REPO, 'native/Makefile'))) {
    try {
      execFileSync('make', ['-s', '-C', path.join(REPO, 'native')], { stdio: 'inherit' });
    } catch (e) {
      return { skip: `make -C native failed: ${e.message}` };
    }
  }
  if (!fs.existsSync(p)) return { skip: 'native/build/pause not found (native/Makefile missing or does not build it)' };
  const info = execFileSync('file', ['-L', p], { encoding: 'utf8' });
  if (!/statically linked|static-pie/.test(info)) log(`warning: ${p} does not look static: ${info.trim()}`);
  return { path: p };
}

// --------------------------------------------------------------------- main

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  const results = [];

  const pause = pauseBinary();
  if (pause.skip) log(`SKIP pause.tar: ${pause.skip}`);
  else {
    const layer = await packTar([{ name: 'pause', content: fs.readFileSync(pause.path), mode: 0o755 }]);
    const d = await writeOciArchive(path.join(OUT, 'pause.tar'), {
      ref: 'registry.k8s.io/pause:3.9',
      layers: [layer],
      config: { User: '65535:65535', Entrypoint: ['/pause'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], WorkingDir: '/' },
    });
    results.push(['pause.tar', d]);
  }

  const bb = busyboxLayer();
  if (bb.skip) log(`SKIP busybox.tar, busybox-docker.tar: ${bb.skip}`);
  else {
    const layer = await packTar(bb.entries);
    const config = { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] };
    const d = await writeOciArchive(path.join(OUT, 'busybox.tar'), { ref: 'docker.io/library/busybox:latest', layers: [layer], config });
    results.push(['busybox.tar', d]);
    await writeDockerArchive(path.join(OUT, 'busybox-docker.tar'), { ref: 'docker.io/library/busybox:latest', familiar: 'busybox:latest', layers: [layer], config });
    results.push(['busybox-docker.tar', `sha256:${sha256(fs.readFileSync(path.join(OUT, 'busybox-docker.tar')))} (file)`]);
    if (process.argv.includes('--check')) checkBusybox(bb.entries);
  }
  for (const [f, d] of results) log(`${f}: ${d}`);
}

/** Unpacks the busybox rootfs with GNU tar into a temp dir and runs sh in a chroot. */
function checkBusybox() {
  const tmp = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'peapod-bb-'));
  try {
    execFileSync('tar', ['-xf', path.join(OUT, 'busybox-docker.tar'), '-C', tmp]);
    const m = JSON.parse(fs.readFileSync(path.join(tmp, 'manifest.json'), 'utf8'))[0];
    const root = path.join(tmp, 'rootfs');
    fs.mkdirSync(root);
    execFileSync('tar', ['-xpf', path.join(tmp, m.Layers[0]), '-C', root]);
    const out = execFileSync('/usr/sbin/chroot', [root, '/bin/sh', '-c', 'id -un; ls /bin | wc -l; echo ok'], { encoding: 'utf8', env: { PATH: '/bin' } });
    log(`busybox chroot check: ${out.trim().split('\n').join(' | ')}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error('[images] failed:', e);
  process.exit(1);
});
