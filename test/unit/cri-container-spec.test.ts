// CRI seccomp settings → what the launcher applies: privileged ignores the
// profile; a localhost (JSON) profile is read at create, and one that cannot
// be read is refused with a message naming it rather than run unconfined.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toContainerSpec } from '../../src/cri/container.js';
import type { ContainerConfig__Output } from '../../src/cri/generated/runtime/v1/ContainerConfig.js';
import { isKind } from '../../src/errors.js';

const config = (securityContext: Record<string, unknown>) =>
  ({
    metadata: { name: 'c', attempt: 0 },
    image: { image: 'busybox' },
    command: [],
    args: [],
    workingDir: '',
    envs: [],
    mounts: [],
    devices: [],
    CDIDevices: [],
    labels: {},
    annotations: {},
    logPath: '',
    stdin: false,
    stdinOnce: false,
    tty: false,
    linux: { securityContext: { supplementalGroups: [], maskedPaths: [], readonlyPaths: [], apparmorProfile: '', ...securityContext } },
  }) as unknown as ContainerConfig__Output;

const dir = mkdtempSync(join(tmpdir(), 'peapod-cri-seccomp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const localhostProfiles = [
  { seccomp: { profileType: 'Localhost', localhostRef: '/var/lib/kubelet/seccomp/audit.json' } },
  { seccompProfilePath: 'localhost//var/lib/kubelet/seccomp/audit.json' },
];

describe('CRI seccomp settings', () => {
  it('privileged ignores the profile, a localhost one included', () => {
    for (const sc of localhostProfiles) expect(toContainerSpec(config({ ...sc, privileged: true })).security.seccomp).toBe('unconfined');
  });

  it('refuses a localhost profile that cannot be read as INVALID_ARGUMENT, naming it', () => {
    for (const sc of localhostProfiles) {
      let err: unknown;
      try {
        toContainerSpec(config(sc));
      } catch (e) {
        err = e;
      }
      expect(isKind(err, 'InvalidArgument')).toBe(true);
      expect((err as Error).message).toMatch(/audit\.json.*cannot read it: no such file/);
    }
  });

  it('reads a localhost profile, from either field', () => {
    const path = join(dir, 'deny-mkdir.json');
    writeFileSync(path, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] }));
    for (const sc of [{ seccomp: { profileType: 'Localhost', localhostRef: path } }, { seccompProfilePath: `localhost/${path}` }]) {
      expect(toContainerSpec(config(sc)).security.seccomp).toMatchObject({ path, defaultAction: { action: 'allow' } });
    }
  });

  it('maps the built-in profiles', () => {
    expect(toContainerSpec(config({ seccomp: { profileType: 'RuntimeDefault' } })).security.seccomp).toBe('default');
    expect(toContainerSpec(config({ seccompProfilePath: 'docker/default' })).security.seccomp).toBe('default');
    expect(toContainerSpec(config({})).security.seccomp).toBe('unconfined');
  });
});
