// CDI devices at CreateContainer, from spec dirs given with --cdi-spec-dir
// (a later dir overriding an earlier one): a requested device's env, device
// node (its cgroup rule included), bind mount and additional GID reach the
// container, its init and its execs, and stay with it across a server
// restart without the spec file; a container without the request has none
// of them. The device node is a loop device made with mknod in a temp dir,
// only ever opened for reading.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execText, grpcCode, podConfig } from '../support/cri-client.js';
import { preloadBusybox, sleeper } from '../support/images.js';
import { runtime, startServer, type TestServer } from '../support/server.js';

/** The shell's message for a redirection to `path` the kernel refused with EPERM. */
const refused = (path: string) => new RegExp(`can't (open|create) '?${path}'?: Operation not permitted`);

describe(`CDI devices [server on ${runtime}]`, () => {
  const base = mkdtempSync(join(tmpdir(), 'peapod-cdi-'));
  const early = join(base, 'early');
  const specs = join(base, 'specs');
  const share = join(base, 'share');
  const node = join(base, 'loop0');
  let s: TestServer;
  let podId: string;
  let n = 0;

  /** A spec (JSON is YAML too) whose device `name` has the env, the loop node, the read-only share and GID 4242. */
  const fullSpec = (kind: string, name: string, env: string[]) =>
    JSON.stringify({
      cdiVersion: '0.7.0',
      kind,
      containerEdits: { env: ['PEAPOD_CDI_SPEC=yes'] },
      devices: [
        {
          name,
          containerEdits: {
            env,
            deviceNodes: [{ path: '/dev/cdi-loop', hostPath: node, permissions: 'r' }],
            // As NVIDIA's generated specs give their mounts.
            mounts: [{ hostPath: share, containerPath: '/cdi-share', options: ['ro', 'nosuid', 'nodev', 'noexec', 'rbind'] }],
            additionalGids: [4242],
          },
        },
        { name: 'hooked', containerEdits: { hooks: [{ hookName: 'createContainer', path: '/bin/true' }] } },
      ],
    });

  beforeAll(async () => {
    for (const d of [early, specs, share]) mkdirSync(d);
    writeFileSync(join(share, 'file'), 'from the host\n');
    execFileSync('mknod', [node, 'b', '7', '0']);
    // The later dir's definition wins.
    writeFileSync(join(early, 'dev.json'), JSON.stringify({ cdiVersion: '0.3.0', kind: 'test.peapod.io/dev', devices: [{ name: 'loop', containerEdits: { env: ['PEAPOD_CDI=early'] } }] }));
    writeFileSync(join(specs, 'dev.yaml'), fullSpec('test.peapod.io/dev', 'loop', ['PEAPOD_CDI=loop', 'WHO=cdi']));
    writeFileSync(join(specs, 'broken.json'), '{ "cdiVersion": ');
    s = await startServer({}, preloadBusybox, { args: ['--cdi-spec-dir', early, '--cdi-spec-dir', specs] });
    podId = (await s.runtime.RunPodSandbox({ config: podConfig('cdi') })).podSandboxId;
  });
  afterAll(async () => {
    try {
      await s?.cleanup();
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  async function container(extra: Record<string, unknown> = {}) {
    // The init records what it got before anything else runs in the container.
    const command = ['sh', '-c', 'env >/tmp/init; id -G >>/tmp/init; exec sleep 300'];
    const { containerId } = await s.runtime.CreateContainer({ podSandboxId: podId, config: sleeper(`c${++n}`, { command, ...extra }), sandboxConfig: podConfig('cdi') });
    await s.runtime.StartContainer({ containerId });
    return containerId;
  }
  const sh = (id: string, script: string) => execText(s.runtime, id, ['sh', '-c', script]);

  /** What a container with the device sees: its env, node, mount and group, in the init and an exec alike. */
  async function expectDevice(id: string) {
    const init = await sh(id, 'until grep -q "^[0-9]" /tmp/init 2>/dev/null; do sleep 0.05; done; cat /tmp/init');
    const exec = await sh(id, 'env; id -G');
    for (const out of [init.out, exec.out]) {
      expect(out).toMatch(/^PEAPOD_CDI=loop$/m);
      expect(out).toMatch(/^PEAPOD_CDI_SPEC=yes$/m);
      expect(out).toMatch(/^WHO=cdi$/m); // after the CRI env: the later wins
      expect(out).toMatch(/^(\d+ )*4242( \d+)*$/m);
    }
    const dev = await sh(id, "stat -c '%F %t:%T' /dev/cdi-loop; dd if=/dev/cdi-loop of=/dev/null bs=512 count=1 && echo read");
    expect(dev.out).toBe('block special file 7:0\nread\n');
    const mnt = await sh(id, "cat /cdi-share/file; touch /cdi-share/new || echo read-only; grep ' /cdi-share ' /proc/mounts | cut -d' ' -f4");
    const [file, ro, opts] = mnt.out.split('\n');
    expect([file, ro]).toEqual(['from the host', 'read-only']);
    expect(opts!.split(',')).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
  }

  it('gives a requested device\'s env, node, mount and group; a container without it has none', async () => {
    const id = await container({ CDIDevices: [{ name: 'test.peapod.io/dev=loop' }], envs: [{ key: 'WHO', value: 'cri' }] });
    await expectDevice(id);
    const status = (await s.runtime.ContainerStatus({ containerId: id })).status!;
    expect(status.mounts).toContainEqual(expect.objectContaining({ containerPath: '/cdi-share', hostPath: share, readonly: true }));

    const other = await container();
    const r = await sh(other, 'env | grep CDI; id -G; ls /dev/cdi-loop /cdi-share; mknod /dev/x b 7 0 && true </dev/x && echo opened');
    expect(r.out).not.toMatch(/CDI|4242|opened/);
    expect(r.err).toMatch(/\/dev\/cdi-loop/);
    expect(r.err).toMatch(refused('/dev/x'));
    // The broken spec file did not keep the device from use, and was logged.
    expect(s.output()).toMatch(/CDI spec file skipped.*broken\.json/);
  });

  it('takes a request from a cdi.k8s.io/ annotation, as containerd does', async () => {
    const id = await container({ annotations: { 'cdi.k8s.io/test': 'test.peapod.io/dev=loop' } });
    await expectDevice(id);
  });

  it('keeps what it resolved in the record: a restarted server without the spec file serves the same container', async () => {
    const file = join(specs, 'moving.json');
    writeFileSync(file, fullSpec('test.peapod.io/moving', 'loop', ['PEAPOD_CDI=loop', 'WHO=cdi']));
    const id = await container({ CDIDevices: [{ name: 'test.peapod.io/moving=loop' }] });
    rmSync(file);
    await s.restart();
    await expectDevice(id);
    const err = await s.runtime
      .CreateContainer({ podSandboxId: podId, config: sleeper('gone', { CDIDevices: [{ name: 'test.peapod.io/moving=loop' }] }), sandboxConfig: podConfig('cdi') })
      .then(() => new Error('accepted'), (e: unknown) => e as Error);
    expect(grpcCode(err)).toBe('INVALID_ARGUMENT');
  });

  it.each([
    ['an unknown device', { CDIDevices: [{ name: 'test.peapod.io/dev=nope' }] }, /unresolvable CDI devices: "test.peapod.io\/dev=nope"/],
    ['an unknown kind', { CDIDevices: [{ name: 'test.peapod.io/dev=loop' }, { name: 'other.io/x=y' }] }, /unresolvable CDI devices: "other.io\/x=y"/],
    ['a malformed name', { annotations: { 'cdi.k8s.io/x': 'loop0' } }, /CDI device name "loop0" is malformed/],
    ['a device with hooks', { CDIDevices: [{ name: 'test.peapod.io/dev=hooked' }] }, /CDI device "test.peapod.io\/dev=hooked" .* needs OCI hooks/],
  ])('refuses %s as INVALID_ARGUMENT and leaves no container', async (_, extra, message) => {
    const before = (await s.runtime.ListContainers({})).containers.length;
    const err = await s.runtime
      .CreateContainer({ podSandboxId: podId, config: sleeper('refused', extra), sandboxConfig: podConfig('cdi') })
      .then(() => new Error('accepted'), (e: unknown) => e as Error);
    expect(grpcCode(err)).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(message);
    const after = (await s.runtime.ListContainers({})).containers;
    expect(after.length).toBe(before);
    expect(after.map((c) => c.metadata?.name)).not.toContain('refused');
  });
});
