// CRI seccomp settings → what the launcher applies: privileged ignores the
// profile; a localhost (JSON) profile, which peapod cannot apply, is refused
// with a message that says so rather than run unconfined.
import { describe, expect, it } from 'vitest';
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

const localhostProfiles = [
  { seccomp: { profileType: 'Localhost', localhostRef: '/var/lib/kubelet/seccomp/audit.json' } },
  { seccompProfilePath: 'localhost//var/lib/kubelet/seccomp/audit.json' },
];

describe('CRI seccomp settings', () => {
  it('privileged ignores the profile, a localhost one included', () => {
    for (const sc of localhostProfiles) expect(toContainerSpec(config({ ...sc, privileged: true })).security.seccomp).toBe('unconfined');
  });

  it('refuses a localhost profile of an unprivileged container as INVALID_ARGUMENT, naming it', () => {
    for (const sc of localhostProfiles) {
      let err: unknown;
      try {
        toContainerSpec(config(sc));
      } catch (e) {
        err = e;
      }
      expect(isKind(err, 'InvalidArgument')).toBe(true);
      expect((err as Error).message).toMatch(/audit\.json.*cannot apply/);
    }
  });

  it('maps the built-in profiles', () => {
    expect(toContainerSpec(config({ seccomp: { profileType: 'RuntimeDefault' } })).security.seccomp).toBe('default');
    expect(toContainerSpec(config({ seccompProfilePath: 'docker/default' })).security.seccomp).toBe('default');
    expect(toContainerSpec(config({})).security.seccomp).toBe('unconfined');
  });
});
