// Pod runner semantics checked against kernel facts: host namespaces
// (hostNetwork, hostPID, hostIPC) and shareProcessNamespace by namespace
// inodes and visible pids; a sandbox whose pause is killed re-created as the
// kubelet does; the kubelet's /etc/hosts (subdomain, hostAliases, rewritten
// at each container start); emptyDir
// sizeLimit eviction.
//
// Pods get an IP from a fake CNI plugin that only answers ADD with an address
// (it configures nothing, so nothing on the host changes): that is all the
// hosts file needs, and the server stays in the host's namespaces, which the
// host-namespace tests compare against.

import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { preloadBusybox } from '../support/images.js';
import { podCli } from '../support/pods.js';
import { runtime, startServer, type TestServer } from '../support/server.js';
import { sleep, waitFor } from '../support/wait.js';

const POD_IP = '10.99.0.5';
const EVICTION_PERIOD_MS = 500;

describe(`pod runner: host namespaces, sandbox re-creation, /etc/hosts, eviction [server on ${runtime}]`, () => {
  let s: TestServer;
  let base: string;
  const k = podCli(() => s);

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'peapod-podhost-'));
    const confDir = join(base, 'net.d');
    const binDir = join(base, 'bin');
    for (const d of [confDir, binDir]) mkdirSync(d);
    writeFileSync(join(confDir, '10-fake.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'fake', plugins: [{ type: 'fakeip' }] }));
    writeFileSync(
      join(binDir, 'fakeip'),
      `#!/bin/sh
cat >/dev/null
if [ "$CNI_COMMAND" = ADD ]; then
  echo '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"'"$CNI_NETNS"'"}],"ips":[{"address":"${POD_IP}/24","interface":0}]}'
fi
exit 0
`,
    );
    chmodSync(join(binDir, 'fakeip'), 0o755);
    s = await startServer({ PEAPOD_BACKOFF_BASE_MS: '300', PEAPOD_EVICTION_PERIOD_MS: String(EVICTION_PERIOD_MS) }, preloadBusybox, {
      network: 'cni',
      args: ['--pod-log-dir', join(base, 'logs'), '--cni-conf-dir', confDir, '--cni-bin-dir', binDir],
    });
  });
  afterEach(async () => {
    await k.deleteAll();
  });
  afterAll(async () => {
    if (s) await s.cleanup();
    rmSync(base, { recursive: true, force: true });
  });

  const manifest = (name: string, spec: string) =>
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\nspec:\n  terminationGracePeriodSeconds: 1\n${spec}`;
  const bb = 'image: busybox\n      imagePullPolicy: IfNotPresent';
  const running = (name: string, n = 1) =>
    waitFor(`${name} running`, async () => {
      const p = await k.pod(name);
      return p.status.containerStatuses.filter((c) => c.state.running).length === n ? p : undefined;
    });
  const hostNs = (ns: string) => readlinkSync(`/proc/self/ns/${ns}`);
  /** The container's own namespaces, as its first process printed them. */
  const reportNs = 'for n in net pid ipc; do echo "$n=$(readlink /proc/self/ns/$n)"; done';
  const logsOf = async (name: string, container: string) => {
    const r = await k.cli(['logs', name, '-c', container]);
    expect(r.code, r.err).toBe(0);
    return r.out;
  };
  const nsFrom = (log: string) => Object.fromEntries([...log.matchAll(/^(net|pid|ipc)=(.+)$/gm)].map((m) => [m[1]!, m[2]!]));

  it('hostNetwork, hostPID, hostIPC: the container is in the host net, pid and ipc namespaces and sees host pids', async () => {
    await k.apply(
      manifest(
        'host-all',
        `  hostNetwork: true
  hostPID: true
  hostIPC: true
  containers:
    - name: c
      ${bb}
      command: ["sh", "-c", '${reportNs}; test -d /proc/${process.pid} && echo sees-test-pid; exec sleep 3600']`,
      ),
    );
    const v = await running('host-all');
    const log = await waitFor('the report', async () => ((await logsOf('host-all', 'c')).includes('ipc=') ? logsOf('host-all', 'c') : undefined));
    expect(nsFrom(log)).toEqual({ net: hostNs('net'), pid: hostNs('pid'), ipc: hostNs('ipc') });
    expect(log).toContain('sees-test-pid');
    // As the kubelet: the pod IP is the node's, /etc/hosts the node's own under the managed header.
    expect(v.status.podIP).toBe(v.status.hostIP);
    expect(await k.exec('host-all', 'c', ['cat', '/etc/hosts'])).toBe('# Kubernetes-managed hosts file (host network).\n' + readFileSync('/etc/hosts', 'utf8'));
  });

  it('without them every namespace is the pod’s own, and each container’s command is PID 1 of its own', async () => {
    await k.apply(
      manifest(
        'own-ns',
        `  containers:
    - name: a
      ${bb}
      command: ["sh", "-c", '${reportNs}; exec sleep 3600']
    - name: b
      ${bb}
      command: ["sleep", "3601"]`,
      ),
    );
    await running('own-ns', 2);
    const log = await waitFor('the report', async () => ((await logsOf('own-ns', 'a')).includes('ipc=') ? logsOf('own-ns', 'a') : undefined));
    const ns = nsFrom(log);
    for (const n of ['net', 'pid', 'ipc'] as const) expect(ns[n], n).not.toBe(hostNs(n));
    expect(await k.exec('own-ns', 'a', ['cat', '/proc/1/cmdline'])).toBe('sleep\x003600\x00');
    expect(await k.exec('own-ns', 'b', ['cat', '/proc/1/cmdline'])).toBe('sleep\x003601\x00');
    expect(await k.exec('own-ns', 'a', ['ps', '-o', 'args'])).not.toContain('sleep 3601');
    expect(await k.exec('own-ns', 'a', ['sh', '-c', `test -d /proc/${process.pid} && echo visible || echo hidden`])).toBe('hidden\n');
    // Both containers share the pod's network and IPC namespaces all the same.
    const other = await k.exec('own-ns', 'b', ['sh', '-c', 'readlink /proc/self/ns/net; readlink /proc/self/ns/ipc']);
    expect(other).toBe(`${ns.net}\n${ns.ipc}\n`);
  });

  it('shareProcessNamespace: pause is PID 1 and the containers see each other’s processes', async () => {
    await k.apply(
      manifest(
        'shared-pid',
        `  shareProcessNamespace: true
  containers:
    - name: a
      ${bb}
      command: ["sleep", "3600"]
    - name: b
      ${bb}
      command: ["sleep", "3601"]`,
      ),
    );
    await running('shared-pid', 2);
    expect(await k.exec('shared-pid', 'a', ['cat', '/proc/1/comm'])).toBe('pause\n');
    expect(await k.exec('shared-pid', 'a', ['ps', '-o', 'args'])).toContain('sleep 3601');
    expect(await k.exec('shared-pid', 'b', ['ps', '-o', 'args'])).toContain('sleep 3600');
    const pidNs = (c: string) => k.exec('shared-pid', c, ['readlink', '/proc/self/ns/pid']);
    expect(await pidNs('a')).toBe(await pidNs('b'));
  });

  const sandboxOf = async (id: string) => {
    const r = await s.runtime.PodSandboxStatus({ podSandboxId: id, verbose: true });
    return { status: r.status!, pid: JSON.parse(r.info.info!).pid as number };
  };

  it('a killed pause: the kubelet re-creates the sandbox (attempt 1) and restarts the containers in it', async () => {
    await k.apply(manifest('recreate', `  containers:\n    - name: c\n      ${bb}\n      command: ["sleep", "3600"]`));
    const before = await running('recreate');
    const old = await sandboxOf(before.sandboxId);
    expect(old.status.metadata!.attempt).toBe(0);
    const oldNet = await k.exec('recreate', 'c', ['readlink', '/proc/self/ns/net']);
    expect(oldNet.trim()).toBe(readlinkSync(`/proc/${old.pid}/ns/net`));
    process.kill(old.pid, 'SIGKILL');
    const after = await waitFor('a new sandbox with c running again', async () => {
      const p = await k.pod('recreate');
      const c = p.status.containerStatuses[0]!;
      return p.sandboxId !== before.sandboxId && p.sandboxId !== '' && c.state.running && c.restartCount === 1 ? p : undefined;
    });
    const fresh = await sandboxOf(after.sandboxId);
    expect(fresh.status.metadata!.attempt).toBe(1);
    expect(fresh.status.state).toBe('SANDBOX_READY');
    expect(fresh.pid).not.toBe(old.pid);
    // In the new sandbox's netns. (Not "an inode other than the old one": the
    // old netns is freed with its sandbox and the kernel may hand its inode
    // number to the new one.)
    const newNet = await k.exec('recreate', 'c', ['readlink', '/proc/self/ns/net']);
    expect(newNet.trim()).toBe(readlinkSync(`/proc/${fresh.pid}/ns/net`));
    // The old instance was killed by the kubelet's kill of the pod, not lost.
    expect(after.status.containerStatuses[0]!.lastState.terminated).toMatchObject({ exitCode: 137 });
    expect(after.events.map((e) => e.reason)).toContain('SandboxChanged');
    expect((await s.runtime.ListPodSandbox({})).items.map((i) => i.id)).not.toContain(before.sandboxId);
    // The pod's /etc/hosts names the new sandbox's IP.
    expect(await k.exec('recreate', 'c', ['cat', '/etc/hosts'])).toContain(`${after.status.podIP}\trecreate\n`);
  });

  it('a killed pause with restartPolicy Never: no new sandbox, the killed container fails the pod', async () => {
    await k.apply(manifest('recreate-never', `  restartPolicy: Never\n  containers:\n    - name: c\n      ${bb}\n      command: ["sleep", "3600"]`));
    const before = await running('recreate-never');
    process.kill((await sandboxOf(before.sandboxId)).pid, 'SIGKILL');
    const after = await waitFor('Failed', async () => {
      const p = await k.pod('recreate-never');
      return p.status.phase === 'Failed' ? p : undefined;
    });
    expect(after.sandboxId).toBe('');
    expect(after.status.containerStatuses[0]!.state.terminated).toMatchObject({ exitCode: 137 });
    expect(after.status.containerStatuses[0]!.restartCount).toBe(0);
    const pods = (await s.runtime.ListPodSandbox({})).items.filter((i) => i.metadata!.name === 'recreate-never');
    expect(pods).toEqual([]);
  });

  it('/etc/hosts: HOST.SUBDOMAIN.NS.svc.cluster.local for a pod with a subdomain, then the hostAliases', async () => {
    await k.apply(
      manifest(
        'sub',
        `  hostname: web
  subdomain: backend
  hostAliases:
    - {ip: 10.1.2.3, hostnames: [foo.local, bar.local]}
    - {ip: "fd00::1", hostnames: [six.local]}
  containers:
    - name: c
      ${bb}
      command: ["sleep", "3600"]`,
      ),
    );
    const v = await running('sub');
    expect(v.status.podIP).toBe(POD_IP);
    expect(await k.exec('sub', 'c', ['cat', '/etc/hosts'])).toBe(
      '# Kubernetes-managed hosts file.\n' +
        '127.0.0.1\tlocalhost\n' +
        '::1\tlocalhost ip6-localhost ip6-loopback\n' +
        'fe00::0\tip6-localnet\n' +
        'fe00::0\tip6-mcastprefix\n' +
        'fe00::1\tip6-allnodes\n' +
        'fe00::2\tip6-allrouters\n' +
        `${POD_IP}\tweb.backend.default.svc.cluster.local\tweb\n` +
        '\n# Entries added by HostAliases.\n' +
        '10.1.2.3\tfoo.local\tbar.local\n' +
        'fd00::1\tsix.local\n',
    );
    expect(await k.exec('sub', 'c', ['hostname'])).toBe('web\n');

    await k.apply(manifest('nosub', `  containers:\n    - name: c\n      ${bb}\n      command: ["sleep", "3600"]`));
    await running('nosub');
    const plain = await k.exec('nosub', 'c', ['cat', '/etc/hosts']);
    expect(plain).toMatch(new RegExp(`\\n${POD_IP.replace(/\./g, '\\.')}\\tnosub\\n$`));
    expect(plain).not.toContain('HostAliases');
  });

  it('/etc/hosts is rewritten in place at each container start, as the kubelet\'s: an edit is undone for the running containers too', async () => {
    await k.apply(
      manifest(
        'rewrite',
        `  volumes: [{name: d, emptyDir: {}}]
  containers:
    - name: a
      ${bb}
      command: ["sleep", "3600"]
      volumeMounts: [{name: d, mountPath: /d}]
    - name: b
      ${bb}
      # Exits (and is restarted) once told to, through the shared volume.
      command: ["sh", "-c", "until [ -e /d/go ]; do sleep 0.1; done; rm /d/go; exit 1"]
      volumeMounts: [{name: d, mountPath: /d}]`,
      ),
    );
    await running('rewrite', 2);
    await k.exec('rewrite', 'a', ['sh', '-c', 'echo "10.9.9.9\tedited" >> /etc/hosts']);
    expect(await k.exec('rewrite', 'a', ['cat', '/etc/hosts'])).toContain('edited');
    await k.exec('rewrite', 'a', ['touch', '/d/go']);
    await waitFor('b started again', async () => {
      const b = (await k.pod('rewrite')).status.containerStatuses[1]!;
      return b.restartCount === 1 && !!b.state.running;
    });
    const hosts = await k.exec('rewrite', 'a', ['cat', '/etc/hosts']);
    expect(hosts).not.toContain('edited');
    expect(hosts).toMatch(new RegExp(`\\n${POD_IP.replace(/\./g, '\\.')}\\trewrite\\n$`));
  });

  it('emptyDir sizeLimit: a pod writing past it is evicted (Failed, Evicted, never restarted); one under it keeps running', async () => {
    const pod = (name: string, limit: string, mib: number) =>
      manifest(
        name,
        `  volumes: [{name: scratch, emptyDir: {sizeLimit: ${limit}}}]
  containers:
    - name: c
      ${bb}
      command: ["sh", "-c", "dd if=/dev/zero of=/scratch/f bs=1048576 count=${mib} && exec sleep 3600"]
      volumeMounts: [{name: scratch, mountPath: /scratch}]`,
      );
    await k.apply(pod('over', '1Mi', 3));
    await k.apply(pod('under', '8Mi', 1));
    const v = await waitFor('over evicted', async () => {
      const p = await k.pod('over');
      return p.status.phase === 'Failed' ? p : undefined;
    });
    const message = 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi".';
    expect(v.status.reason).toBe('Evicted');
    expect(v.status.message).toBe(message);
    expect(v.status.display).toBe('Evicted');
    expect(v.status.containerStatuses[0]!.state.terminated).toMatchObject({ exitCode: 137 });
    expect(v.events).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'Evicted', message }));
    const table = await k.cli(['get', 'pods', 'over']);
    expect(table.out).toMatch(/^over\s+0\/1\s+Evicted\s+0\s/m);
    const described = await k.cli(['describe', 'pod', 'over']);
    expect(described.out).toMatch(/^Status:\s+Failed$/m);
    expect(described.out).toMatch(/^Reason:\s+Evicted$/m);
    expect(described.out.split('\n')).toContainEqual(expect.stringMatching(/^Message:\s+Usage of EmptyDir volume "scratch" exceeds the limit "1Mi"\.$/));

    // Several more measurements: the evicted pod stays down, the one under its limit stays up.
    await sleep(EVICTION_PERIOD_MS * 4);
    const again = await k.pod('over');
    expect(again.status.phase).toBe('Failed');
    expect(again.status.containerStatuses[0]!.restartCount).toBe(0);
    const under = await k.pod('under');
    expect(under.status.phase).toBe('Running');
    expect(under.status.containerStatuses[0]!.state.running).toBeDefined();
    expect(await k.exec('under', 'c', ['ls', '-l', '/scratch/f'])).toContain('1048576');
  });
});
