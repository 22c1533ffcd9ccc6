import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileTempDir } from '../support/tmp.js';

// Packaging as a user meets it: `peapod doctor` on this machine, the systemd
// unit, the Vagrantfile and the npm tarball. Needs a build (dist/).

const repo = resolve(import.meta.dirname, '../..');
const cli = join(repo, 'dist', 'cli.js');
const tmp = fileTempDir('peapod-packaging-');

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function doctor(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, 'doctor', ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Roots on the temporary dir, so the checks do not depend on /var/lib/peapod. */
const roots = () => ['--root', join(tmp(), 'root'), '--state', join(tmp(), 'state'), '--socket', join(tmp(), 'state', 'peapod.sock')];

describe('peapod doctor on this machine', () => {
  it('finds no ERROR with the real checks, and prints the table', () => {
    const r = doctor(...roots());
    expect(r.err).toBe('');
    expect(r.out).toMatch(/^CHECK\s+STATUS\s+DETAIL \/ FIX\n/);
    expect(r.out).not.toMatch(/^\S+\s+ERROR\s/m);
    expect(r.code).toBe(0);
    for (const name of ['kernel', 'ns-net', 'ns-ipc', 'ns-uts', 'ns-pid', 'ns-mnt', 'overlayfs', 'seccomp', 'mount-propagation',
      'cni', 'socket', 'disk-root', 'disk-state', 'runtime', 'native-helpers', 'cap-sys-resource']) {
      expect(r.out).toMatch(new RegExp(`^${name}\\s+(OK|WARN)\\s`, 'm'));
    }
    expect(r.out).toMatch(/^cgroup(s|-controllers)\s+(OK|WARN)\s/m);
    expect(r.out).toMatch(/^runtime\s+OK\s+node \d+\.\d+\.\d+; FFI backend koffi loads libc/m);
  });

  it('--json gives the same checks as data', () => {
    const r = doctor(...roots(), '--json');
    expect(r.code).toBe(0);
    const json = JSON.parse(r.out) as { ok: boolean; checks: { name: string; status: string; detail: string }[] };
    expect(json.ok).toBe(true);
    expect(json.checks.map((c) => c.name)).toContain('overlayfs');
    for (const c of json.checks) expect(['OK', 'WARN']).toContain(c.status);
  });

  it('a missing feature is an ERROR with its fix, and exit code 1', () => {
    // Native helpers from a config file pointing at an empty dir; overlay from a fake /proc.
    const empty = join(tmp(), 'no-native');
    mkdirSync(empty, { recursive: true });
    const config = join(tmp(), 'config.json');
    writeFileSync(config, JSON.stringify({ nativeDir: empty }));
    let r = doctor(...roots(), '--config', config);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^config\s+OK\s+read .*config\.json$/m);
    expect(r.out).toMatch(/^native-helpers\s+ERROR\s+missing or not executable in .*no-native: pause, peapod-sandbox, peapod-monitor, peapod-exec\n\s+fix: make -C /m);

    const proc = join(tmp(), 'proc');
    mkdirSync(join(proc, 'sys/kernel'), { recursive: true });
    mkdirSync(join(proc, 'self'), { recursive: true });
    writeFileSync(join(proc, 'sys/kernel/osrelease'), '6.1.0-fake\n');
    writeFileSync(join(proc, 'filesystems'), 'nodev\tproc\n\text4\n');
    r = doctor(...roots(), '--proc', proc);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^overlayfs\s+ERROR\s+.*\n\s+fix: modprobe overlay/m);
  });

  it('an invalid config file is an ERROR naming the key', () => {
    const config = join(tmp(), 'bad.json');
    writeFileSync(config, JSON.stringify({ sockt: '/x' }));
    const r = doctor(...roots(), '--config', config);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^config\s+ERROR\s+.*unknown key "sockt"/m);
  });

  it('serve refuses an invalid config file before doing anything', () => {
    const config = join(tmp(), 'bad-serve.json');
    writeFileSync(config, JSON.stringify({ logLevel: 'loud' }));
    const r = spawnSync(process.execPath, [cli, 'serve', '--config', config, ...roots()], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/"logLevel" must be one of "debug", "info", "warn", "error"/);
    expect(existsSync(join(tmp(), 'state', 'peapod.sock'))).toBe(false);
  });
});

describe('packaging files', () => {
  const analyze = which('systemd-analyze');
  const noAnalyze = analyze ? '' : ' [SKIPPED: systemd-analyze is not installed; apt-get install systemd provides it]';
  it.skipIf(!analyze)(`packaging/peapod.service passes systemd-analyze verify without a warning${noAnalyze}`, () => {
    // verify wants every ExecStart binary present: /usr/bin/env and /bin/sh are.
    const r = spawnSync(analyze!, ['verify', join(repo, 'packaging', 'peapod.service')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it.skipIf(!analyze)(`systemd-analyze verify does catch a broken unit (the check above means something)${noAnalyze}`, () => {
    const bad = join(tmp(), 'bad.service');
    writeFileSync(bad, '[Service]\nExecStart=/usr/bin/env true\nKillMode=bogus\n');
    const r = spawnSync(analyze!, ['verify', bad], { encoding: 'utf8' });
    expect(r.stderr).toMatch(/KillMode|kill mode/);
  });

  it('the unit keeps pods across restarts and waits for the socket', async () => {
    const unit = readFileSync(join(repo, 'packaging', 'peapod.service'), 'utf8');
    for (const line of ['Type=exec', 'Restart=on-failure', 'Delegate=yes', 'KillMode=process', 'LimitNOFILE=1048576', 'OOMScoreAdjust=-999']) {
      expect(unit).toMatch(new RegExp(`^${line}$`, 'm'));
    }
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/env peapod serve$/m);
    // The readiness loop, run as systemd would (with $$ unescaped): it succeeds once the socket exists.
    const post = /^ExecStartPost=\/bin\/sh -c '(.*)'$/m.exec(unit)![1]!.replaceAll('$$', '$');
    const sock = join(tmp(), 'ready.sock');
    const script = post.replaceAll('/run/peapod/peapod.sock', sock);
    const server = createServer();
    await new Promise<void>((res) => server.listen(sock, res));
    try {
      const r = spawnSync('/bin/sh', ['-c', script], { env: { MAINPID: String(process.pid) }, encoding: 'utf8', timeout: 10_000 });
      expect(r.status).toBe(0);
    } finally {
      server.close();
    }
    // A main process that died: the loop gives up at once instead of waiting.
    const dead = spawnSync('/bin/sh', ['-c', script.replaceAll(sock, join(tmp(), 'never.sock'))], {
      env: { MAINPID: '999999999' },
      timeout: 10_000,
    });
    expect(dead.status).toBe(1);
  });

  const ruby = which('ruby');
  const noRuby = ruby ? '' : ' [SKIPPED: ruby is not installed; apt-get install ruby]';
  it.skipIf(!ruby)(`the Vagrantfile is valid Ruby (ruby -c)${noRuby}`, () => {
    const r = spawnSync(ruby!, ['-c', join(repo, 'Vagrantfile')], { encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('Syntax OK');
    expect(r.status).toBe(0);
  });

  it('the npm tarball has the CLI, dist, the native sources and the protos', () => {
    expect(existsSync(cli)).toBe(true); // built by npm run build
    const npm = which('npm');
    expect(npm).toBeDefined();
    const r = spawnSync(npm!, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repo, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const [pack] = JSON.parse(r.stdout) as { name: string; files: { path: string; mode: number }[] }[];
    const files = new Set(pack!.files.map((f) => f.path));
    for (const f of ['bin/peapod.js', 'dist/cli.js', 'dist/cli/doctor.js', 'native/Makefile', 'native/pause.c', 'proto/api.proto',
      'proto/peapod.proto', 'images/build.mjs', 'packaging/peapod.service', 'README.md', 'CHANGELOG.md', 'package.json']) {
      expect(files, f).toContain(f);
    }
    for (const f of files) {
      expect(f, 'no build outputs or tests in the tarball').not.toMatch(/^(native\/build|node_modules|test|src|images\/build)\//);
    }
    const bin = pack!.files.find((f) => f.path === 'bin/peapod.js')!;
    expect(bin.mode & 0o111).not.toBe(0);
  });
});
