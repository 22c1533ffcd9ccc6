// Localhost seccomp profiles in pod manifests: looked up below <root>/seccomp
// (the kubelet's <root-dir>/seccomp), applied on the kernel; a missing one is
// CreateContainerError naming the file; a privileged container's is not read.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOCAL_BUSYBOX, podManifest, podServer } from '../support/pods.js';
import { runtime } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const DENY_MKDIR = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };
// One stream: stdout and stderr reach the log through separate pipes, in no set order.
const TRY_MKDIR = `command: ["sh", "-c", "exec 2>&1; mkdir /made; echo rc=$?; sleep 3600"]`;

describe(`pod manifests with Localhost seccomp profiles [server on ${runtime}]`, () => {
  const k = podServer('peapod-pod-seccomp-');
  const { cli, pod, apply } = k;

  const logs = async (name: string, container: string) => (await cli(['logs', name, '-c', container])).out;

  it('applies a profile below <root>/seccomp, from the pod or the container, and reports a missing one', async () => {
    const dir = join(k.server().root, 'seccomp', 'profiles');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'deny-mkdir.json'), JSON.stringify(DENY_MKDIR));
    await apply(
      podManifest(
        'sc',
        `  securityContext: {seccompProfile: {type: Localhost, localhostProfile: profiles/deny-mkdir.json}}
  containers:
    - name: pod-level
      ${LOCAL_BUSYBOX}
      ${TRY_MKDIR}
    - name: own
      ${LOCAL_BUSYBOX}
      ${TRY_MKDIR}
      securityContext: {seccompProfile: {type: RuntimeDefault}}
    - name: missing
      ${LOCAL_BUSYBOX}
      ${TRY_MKDIR}
      securityContext: {seccompProfile: {type: Localhost, localhostProfile: profiles/nope.json}}
    - name: privileged
      ${LOCAL_BUSYBOX}
      ${TRY_MKDIR}
      securityContext: {privileged: true, seccompProfile: {type: Localhost, localhostProfile: profiles/nope.json}}
`,
      ),
    );
    await waitFor('rc lines', async () => ((await logs('sc', 'pod-level')).includes('rc=') && (await logs('sc', 'own')).includes('rc=') && (await logs('sc', 'privileged')).includes('rc=') ? true : undefined));
    // EPERM from the profile's errnoRet: busybox prints "Operation not permitted".
    expect(await logs('sc', 'pod-level')).toMatch(/Operation not permitted\nrc=1\n$/);
    expect(await logs('sc', 'own')).toBe('rc=0\n');
    // (A privileged container may first warn that the runtime lacks a capability.)
    expect(await logs('sc', 'privileged')).toMatch(/(^|\n)rc=0\n$/);
    const missing = await waitFor('CreateContainerError', async () => {
      const s = (await pod('sc')).status.containerStatuses.find((c) => c.name === 'missing');
      return s?.state.waiting?.reason === 'CreateContainerError' ? s.state.waiting : undefined;
    });
    expect(missing.message).toContain(join(dir, 'nope.json'));
    expect(missing.message).toMatch(/no such file/);
    await cli(['delete', 'sc', '--force']);
  });
});
