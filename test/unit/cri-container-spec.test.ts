// CRI seccomp settings → what the launcher applies: privileged ignores the
// profile; a localhost (JSON) profile is read at create, and one that cannot
// be read is refused with a message naming it rather than run unconfined.
// Mounts asking for what peapod cannot do are refused; ContainerStatus and
// ListContainers report the image as containerd does.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Container } from '../../src/container/types.js';
import { containerStatus, toContainerSpec } from '../../src/cri/container.js';
import type { ContainerConfig__Output } from '../../src/cri/generated/runtime/v1/ContainerConfig.js';
import { isKind } from '../../src/errors.js';
import { fileTempDir } from '../support/tmp.js';
import { containerSpec } from '../support/container-spec.js';
import { refusal } from '../support/errors.js';

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

const dir = fileTempDir('peapod-cri-seccomp-');

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
    const path = join(dir(), 'deny-mkdir.json');
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

describe('CRI mounts', () => {
  const withMount = (m: Record<string, unknown>) =>
    ({
      ...config({}),
      mounts: [{ containerPath: '/v', hostPath: '/tmp', readonly: true, propagation: 'PROPAGATION_PRIVATE', recursiveReadOnly: false, ...m }],
    }) as unknown as ContainerConfig__Output;

  it('refuses recursive_read_only, naming the mount: RuntimeHandlerFeatures says peapod has no recursive read-only mounts', () => {
    expect(refusal(() => toContainerSpec(withMount({ recursiveReadOnly: true })))).toMatch(/mount \/v \(host path \/tmp\).*recursive_read_only/);
    expect(toContainerSpec(withMount({})).mounts).toEqual([{ containerPath: '/v', hostPath: '/tmp', readonly: true, propagation: 'PRIVATE' }]);
  });
});

describe('the image of a container', () => {
  const sent = { image: 'sha256:' + 'a'.repeat(64), userSpecifiedImage: 'busybox', annotations: {}, runtimeHandler: '', imageRef: '' };

  it('keeps user_specified_image as sent', () => {
    expect(toContainerSpec({ ...config({}), image: sent } as unknown as ContainerConfig__Output)).toMatchObject({ image: sent.image, userSpecifiedImage: 'busybox' });
  });

  const container = (extra: Partial<Container>): Container => ({
    id: 'b'.repeat(64),
    sandboxId: 'c'.repeat(64),
    spec: containerSpec({ image: sent.image, userSpecifiedImage: 'busybox' }),
    imageId: sent.image,
    imageRef: 'docker.io/library/busybox@sha256:' + 'd'.repeat(64),
    process: { args: ['true'], env: [], cwd: '/', uid: 0, gid: 0, groups: [], capabilities: 0n, noNewPrivs: false, seccomp: 'unconfined' },
    createdAt: 1n,
    startedAt: 0n,
    logPath: '',
    cgroup: '',
    monitor: null,
    init: null,
    exit: null,
    ...extra,
  });

  // What the manager names now (test/server/container.test.ts looks it up in a real image store).
  const manager = { stateOf: () => 'CREATED' as const, currentImage: () => ({ name: 'docker.io/library/busybox:latest', ref: 'docker.io/library/busybox@sha256:' + 'd'.repeat(64) }) };

  it("ContainerStatus: the image's tag and repo digest as the manager names them, its id as image_id, user_specified_image as sent (containerd's ContainerStatus)", () => {
    const st = containerStatus(manager, container({}));
    expect(st.image).toEqual({ image: 'docker.io/library/busybox:latest', userSpecifiedImage: 'busybox' });
    expect(st.imageRef).toBe('docker.io/library/busybox@sha256:' + 'd'.repeat(64));
    expect(st.imageId).toBe(sent.image);
  });

  it('ContainerStatus of a record written before user_specified_image was kept: an empty one', () => {
    expect(containerStatus(manager, container({ spec: containerSpec({ image: sent.image }) })).image).toEqual({ image: 'docker.io/library/busybox:latest', userSpecifiedImage: '' });
  });
});
