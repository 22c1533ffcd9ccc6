// CNI pod networking against the real Debian plugins (bridge, host-local,
// portmap). Safety: the server runs in a network namespace of its own (the
// "node", pinned by `unshare --net=FILE` in the temp dir and entered with
// nsenter, so that it outlives a restart of the server as a node's does), so the bridge, the
// veths, the iptables rules and all traffic stay inside namespaces this test
// creates and vanish with them; host-local keeps its state in the temp dir.
// Afterwards the host's links and iptables are checked to be unchanged.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcCode, podConfig, runtimeCallWithDeadline } from '../support/cri-client.js';
import { BUSYBOX, preloadBusybox } from '../support/images.js';
import { LOCAL_BUSYBOX, podCli, podManifest } from '../support/pods.js';
import { mountsContaining, runtime, startServer, type TestServer } from '../support/server.js';

const rand = Math.floor(Math.random() * 200) + 20;
const subnetPrefix = `10.${rand}.77.`;
const subnet = `${subnetPrefix}0/24`;
const gateway = `${subnetPrefix}1`;
const bridge = `peapodt${rand}`;

const hostLinks = () =>
  execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '')
    .filter((n) => /^(peapod|veth)/.test(n))
    .sort();
const hostRules = () => {
  const r = spawnSync('iptables-save', [], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').filter((l) => l.includes(subnetPrefix) || l.includes(bridge));
};

function bridgeConf(name: string, extraPlugins: object[] = []) {
  return {
    cniVersion: '1.0.0',
    name,
    plugins: [
      {
        type: 'bridge',
        bridge,
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet }]],
          routes: [{ dst: '0.0.0.0/0' }],
          dataDir: '', // filled in below
        },
      },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      ...extraPlugins,
    ],
  };
}

describe(`CNI pod networking [server on ${runtime}]`, () => {
  let s: TestServer;
  let tmp: string;
  let confDir: string;
  let binDir: string;
  let ipamDir: string;
  let logDir: string;
  let nodePin: string;
  let linksBefore: string[];
  let rulesBefore: string[];
  const children: ChildProcess[] = [];

  const nodeNs = () => `/proc/${s.pid}/ns/net`;
  const inNode = (cmd: string, ...args: string[]) =>
    execFileSync('nsenter', [`--net=${nodeNs()}`, cmd, ...args], { encoding: 'utf8', timeout: 20_000 });
  const inNetns = (netns: string, cmd: string, ...args: string[]) =>
    spawnSync('nsenter', [`--net=${netns}`, cmd, ...args], { encoding: 'utf8', timeout: 20_000 });
  const writeConf = (file: string, conf: ReturnType<typeof bridgeConf> | Record<string, unknown>) => {
    const c = JSON.parse(JSON.stringify(conf));
    for (const p of c.plugins ?? [c]) if (p.ipam) p.ipam.dataDir = ipamDir;
    writeFileSync(join(confDir, file), JSON.stringify(c, null, 2));
  };
  const clearConf = () => {
    for (const f of readdirSync(confDir)) rmSync(join(confDir, f));
  };
  const status = async (id: string) => (await s.runtime.PodSandboxStatus({ podSandboxId: id, verbose: true })).status!;
  const netnsOf = async (id: string) =>
    JSON.parse((await s.runtime.PodSandboxStatus({ podSandboxId: id, verbose: true })).info.info!).namespaces.net as string;
  const networkCondition = async () => (await s.runtime.Status({})).status!.conditions.find((c) => c.type === 'NetworkReady')!;
  /** host-local's allocations in a network: a file named by each address. */
  const allocatedIps = (network = 'peapod-test') =>
    existsSync(join(ipamDir, network)) ? readdirSync(join(ipamDir, network)).filter((f) => /^[\d.]+$|:/.test(f)) : [];
  const calls = () => (existsSync(join(logDir, 'calls')) ? readFileSync(join(logDir, 'calls'), 'utf8') : '');
  const envOf = (f: string) => readFileSync(join(logDir, f), 'utf8').trim().split('\n');
  const stdinOf = (f: string) => JSON.parse(readFileSync(join(logDir, f), 'utf8'));
  /** Where the server caches a sandbox's ADD: on the root's disk, which outlives a reboot. */
  const resultsDir = () => join(s.root, 'cni', 'results');
  const cacheOf = (id: string) => join(resultsDir(), id);
  const recConf = (...plugins: object[]) => ({ cniVersion: '1.0.0', name: 'rec-net', plugins: plugins.length > 0 ? plugins : [{ type: 'rec1' }] });
  const waitFor = async (what: string, cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(cond(), what).toBe(true);
  };
  const nodeVeths = () =>
    inNode('ip', '-o', 'link')
      .split('\n')
      .filter((l) => /\bveth/.test(l));

  beforeAll(async () => {
    linksBefore = hostLinks();
    rulesBefore = hostRules();
    tmp = mkdtempSync(join(tmpdir(), 'peapod-cni-'));
    confDir = join(tmp, 'net.d');
    binDir = join(tmp, 'bin');
    ipamDir = join(tmp, 'ipam');
    logDir = join(tmp, 'log');
    for (const d of [confDir, binDir, ipamDir, logDir]) mkdirSync(d);
    // A fake plugin: records its CNI_* environment and stdin, answers per its name.
    const script = `#!/bin/bash
name=$(basename "$0")
dir=${logDir}
input=$(cat)
printf '%s %s\\n' "$name" "$CNI_COMMAND" >> "$dir/calls"
printf '%s' "$input" > "$dir/$name.$CNI_COMMAND.stdin"
env | grep '^CNI_' | sort > "$dir/$name.$CNI_COMMAND.env"
if [ "$CNI_COMMAND" = ADD ]; then
  case "$name" in
    rec1) echo '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"'"$CNI_NETNS"'"}],"ips":[{"address":"10.99.0.5/24","interface":0}]}' ;;
    rec2) echo '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"'"$CNI_NETNS"'"}],"ips":[{"address":"fd00::5/64","interface":0},{"address":"10.99.0.5/24","interface":0}]}' ;;
    loip) echo '{"cniVersion":"1.0.0","interfaces":[{"name":"lo","sandbox":"'"$CNI_NETNS"'"}],"ips":[{"address":"127.0.0.5/8","interface":0}]}' ;;
    slow) echo $$ > "$dir/slow.pid.new"; mv "$dir/slow.pid.new" "$dir/slow.pid"; sleep 30; exit 1 ;;
    faildel) [ -e "$dir/add-ok" ] && { echo '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"'"$CNI_NETNS"'"}],"ips":[{"address":"10.99.0.7/24","interface":0}]}'; exit 0; } ;&
    fail) echo '{"cniVersion":"1.0.0","code":7,"msg":"fake plugin refuses","details":"no addresses left"}'; exit 1 ;;
  esac
fi
if [ "$CNI_COMMAND" = DEL ] && [ "$name" = faildel ] && [ -e "$dir/del-fails" ]; then
  echo '{"cniVersion":"1.0.0","code":11,"msg":"fake plugin cannot delete","details":"xtables lock"}'; exit 1
fi
if [ "$CNI_COMMAND" = STATUS ] && [ -e "$dir/status-fails" ]; then
  echo '{"cniVersion":"1.1.0","code":50,"msg":"plugin not ready","details":"agent starting"}'; exit 1
fi
if [ "$CNI_COMMAND" = DEL ] && [ "$name" = faildel ] && [ -e "$dir/del-notfound" ]; then
  echo '{"cniVersion":"1.0.0","code":11,"msg":"endpoint for the pod not found"}'; exit 1
fi
exit 0
`;
    nodePin = join(tmp, 'node-netns');
    writeFileSync(nodePin, '');
    execFileSync('unshare', [`--net=${nodePin}`, 'true']);
    for (const name of ['rec1', 'rec2', 'fail', 'faildel', 'loip', 'slow']) {
      writeFileSync(join(binDir, name), script);
      chmodSync(join(binDir, name), 0o755);
    }
    s = await startServer({}, preloadBusybox, {
      network: 'cni',
      // The node: a network namespace of its own with lo up.
      wrapper: ['nsenter', `--net=${nodePin}`, '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh'],
      args: ['--cni-conf-dir', confDir, '--cni-bin-dir', '/usr/lib/cni', '--cni-bin-dir', binDir],
    });
    // What provisioning does on a real node for hostPorts on 127.0.0.1 (here inside the node netns only).
    inNode('sysctl', '-q', '-w', 'net.ipv4.conf.all.route_localnet=1');
    inNode('iptables', '-t', 'nat', '-A', 'POSTROUTING', '-s', '127.0.0.0/8', '!', '-d', '127.0.0.0/8', '-j', 'MASQUERADE');
  });

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    try {
      await s?.cleanup();
    } finally {
      // Also when a teardown failed in the clean-up: the node's namespace must not outlive the test.
      execFileSync('umount', [nodePin]);
      rmSync(tmp, { recursive: true, force: true });
    }
    // Everything CNI made lived in the node's namespace, gone with the server.
    expect(hostLinks()).toEqual(linksBefore);
    expect(hostRules()).toEqual(rulesBefore);
  });

  it('runs the server in a node network namespace of its own', () => {
    expect(execFileSync('readlink', [nodeNs()], { encoding: 'utf8' })).not.toBe(
      execFileSync('readlink', ['/proc/self/ns/net'], { encoding: 'utf8' }),
    );
    expect(inNode('ip', '-o', 'link')).not.toMatch(/eth0/);
  });

  it('reports NetworkReady false without a config; pods fail, host-network pods work', async () => {
    const cond = await networkCondition();
    expect(cond.status).toBe(false);
    expect(cond.reason).toBe('NetworkPluginNotReady');
    expect(cond.message).toContain(confDir);
    const err = await s.runtime.RunPodSandbox({ config: podConfig('no-net') }).catch((e) => e);
    expect(grpcCode(err)).toBe('FAILED_PRECONDITION');
    expect(err.details).toContain(confDir);
    expect(readdirSync(join(s.state, 'sandboxes'))).toEqual([]);
    const hostCfg = podConfig('host-net', { linux: { securityContext: { namespaceOptions: { network: 'NODE' } } } });
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config: hostCfg });
    expect((await status(podSandboxId)).state).toBe('SANDBOX_READY');
    await s.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('names missing plugins; picks up a config written later without a restart', async () => {
    writeConf('10-bogus.conflist', { cniVersion: '1.0.0', name: 'bogus', plugins: [{ type: 'no-such-plugin' }] });
    let cond = await networkCondition();
    expect(cond.status).toBe(false);
    expect(cond.message).toContain('no-such-plugin');
    const err = await s.runtime.RunPodSandbox({ config: podConfig('bogus') }).catch((e) => e);
    expect(grpcCode(err)).toBe('FAILED_PRECONDITION');
    expect(err.details).toContain('no-such-plugin');
    clearConf();
    writeConf('10-test.conflist', bridgeConf('peapod-test'));
    cond = await networkCondition();
    expect(cond.status).toBe(true);
    await s.runtime.UpdateRuntimeConfig({ runtimeConfig: { networkConfig: { podCidr: '10.244.1.0/24' } } });
    const st = await s.runtime.Status({ verbose: true });
    expect(JSON.parse(st.info.config!).podNetwork).toMatchObject({ mode: 'cni', podCidr: '10.244.1.0/24' });
    clearConf();
  });

  it('sends plugins the CNI environment and stdin: ADD in order with prevResult, DEL in reverse with the cached result', async () => {
    writeConf('00-rec.conflist', {
      cniVersion: '1.0.0',
      name: 'rec-net',
      plugins: [
        { type: 'rec1', capabilities: { dns: true, bandwidth: true }, custom: 42 },
        { type: 'rec2', capabilities: { portMappings: true } },
      ],
    });
    rmSync(join(logDir, 'calls'), { force: true });
    const cfg = podConfig('rec', {
      portMappings: [
        { protocol: 'TCP', containerPort: 80, hostPort: 8080 },
        { protocol: 'UDP', containerPort: 53, hostPort: 5353, hostIp: '127.0.0.1' },
        { protocol: 'TCP', containerPort: 9000 },
      ],
      dnsConfig: { servers: ['10.96.0.10'], searches: ['default.svc.cluster.local'], options: ['ndots:5'] },
    });
    const { podSandboxId: id } = await s.runtime.RunPodSandbox({ config: cfg });
    const netns = join(s.state, 'sandboxes', id, 'ns', 'net');
    const env = (cmd: string) =>
      [
        `CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=rec;K8S_POD_INFRA_CONTAINER_ID=${id};K8S_POD_UID=uid-rec`,
        `CNI_COMMAND=${cmd}`,
        `CNI_CONTAINERID=${id}`,
        `CNI_IFNAME=eth0`,
        `CNI_NETNS=${netns}`,
        `CNI_PATH=/usr/lib/cni:${binDir}`,
      ];
    try {
      expect(envOf('rec1.ADD.env')).toEqual(env('ADD'));
      expect(envOf('rec2.ADD.env')).toEqual(env('ADD'));
      const rec1Result = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: netns }], ips: [{ address: '10.99.0.5/24', interface: 0 }] };
      const rec2Result = {
        ...rec1Result,
        ips: [{ address: 'fd00::5/64', interface: 0 }, { address: '10.99.0.5/24', interface: 0 }],
      };
      const dns = { servers: ['10.96.0.10'], searches: ['default.svc.cluster.local'], options: ['ndots:5'] };
      expect(stdinOf('rec1.ADD.stdin')).toEqual({
        type: 'rec1',
        name: 'rec-net',
        cniVersion: '1.0.0',
        capabilities: { dns: true, bandwidth: true },
        custom: 42,
        runtimeConfig: { dns },
      });
      expect(stdinOf('rec2.ADD.stdin')).toEqual({
        type: 'rec2',
        name: 'rec-net',
        cniVersion: '1.0.0',
        capabilities: { portMappings: true },
        prevResult: rec1Result,
        runtimeConfig: {
          portMappings: [
            { hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '' },
            { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' },
          ],
        },
      });
      const st = await status(id);
      expect(st.network).toEqual({ ip: '10.99.0.5', additionalIps: [{ ip: 'fd00::5' }] });
      expect(readFileSync(join(s.state, 'sandboxes', id, 'hosts'), 'utf8')).toContain('10.99.0.5\trec');
      const cache = JSON.parse(readFileSync(cacheOf(id), 'utf8'));
      expect(cache.result).toEqual(rec2Result);

      await s.runtime.StopPodSandbox({ podSandboxId: id });
      expect(readFileSync(join(logDir, 'calls'), 'utf8')).toBe('rec1 ADD\nrec2 ADD\nrec2 DEL\nrec1 DEL\n');
      expect(envOf('rec1.DEL.env')).toEqual(env('DEL'));
      expect(stdinOf('rec2.DEL.stdin')).toMatchObject({ type: 'rec2', prevResult: rec2Result });
      expect(stdinOf('rec1.DEL.stdin')).toMatchObject({ type: 'rec1', prevResult: rec2Result, runtimeConfig: { dns } });
      expect(existsSync(cacheOf(id))).toBe(false);
      // Once torn down, neither a second stop nor the remove runs DEL again.
      await s.runtime.StopPodSandbox({ podSandboxId: id });
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: id });
      clearConf();
    }
    expect(readFileSync(join(logDir, 'calls'), 'utf8')).toBe('rec1 ADD\nrec2 ADD\nrec2 DEL\nrec1 DEL\n');
  });

  it('fails RunPodSandbox cleanly with the plugin message, after DEL of what was set up', async () => {
    writeConf('10-test.conflist', bridgeConf('peapod-test', [{ type: 'fail' }]));
    rmSync(join(logDir, 'calls'), { force: true });
    const err = await s.runtime.RunPodSandbox({ config: podConfig('failing') }).catch((e) => e);
    expect(grpcCode(err)).not.toBe('OK');
    expect(err.details).toContain('fake plugin refuses: no addresses left');
    expect(readFileSync(join(logDir, 'calls'), 'utf8')).toBe('fail ADD\nfail DEL\n');
    expect(readdirSync(join(s.state, 'sandboxes'))).toEqual([]);
    expect(existsSync(join(s.root, 'sandboxes'))).toBe(false); // sandbox records live in the state dir
    expect(mountsContaining(join(s.state, 'sandboxes'))).toEqual([]);
    expect(allocatedIps()).toEqual([]); // bridge's DEL released the address it had taken
    expect(nodeVeths()).toEqual([]);
    clearConf();
  });

  it('a RunPodSandbox its client gives up on kills the plugin running, as go-cni does, and undoes the sandbox: the name is free again', async () => {
    writeConf('00-rec.conflist', recConf({ type: 'rec1' }, { type: 'slow' }));
    rmSync(join(logDir, 'calls'), { force: true });
    rmSync(join(logDir, 'slow.pid'), { force: true });
    const err = await runtimeCallWithDeadline(s.socket, 'RunPodSandbox', { config: podConfig('given-up') }, 1500);
    expect(grpcCode(err)).toBe('DEADLINE_EXCEEDED');
    const pid = Number(readFileSync(join(logDir, 'slow.pid'), 'utf8'));
    expect(pid).toBeGreaterThan(1);
    // Its sleep is 30 s: gone within the wait, it was killed.
    await waitFor('the plugin killed', () => !existsSync(`/proc/${pid}`));
    await waitFor('the DEL of what was set up', () => calls() === 'rec1 ADD\nslow ADD\nslow DEL\nrec1 DEL\n');
    await waitFor('no sandbox left', () => readdirSync(join(s.state, 'sandboxes')).length === 0);
    expect((await s.runtime.ListPodSandbox({})).items!.filter((p) => p.metadata!.name === 'given-up')).toEqual([]);
    expect(mountsContaining(join(s.state, 'sandboxes'))).toEqual([]);
    clearConf();
    writeConf('00-rec.conflist', recConf());
    const again = (await s.runtime.RunPodSandbox({ config: podConfig('given-up') })).podSandboxId;
    await s.runtime.RemovePodSandbox({ podSandboxId: again });
    clearConf();
  });

  it("deleting a runner's pod while its sandbox is being made stops the plugin and undoes the sandbox, as the kubelet's cancelled sync", async () => {
    writeConf('00-rec.conflist', recConf({ type: 'rec1' }, { type: 'slow' }));
    rmSync(join(logDir, 'calls'), { force: true });
    rmSync(join(logDir, 'slow.pid'), { force: true });
    const k = podCli(() => s);
    await k.apply(podManifest('slow-net', `  containers:\n    - name: c\n      ${LOCAL_BUSYBOX}\n      command: ["sleep", "3600"]`));
    await waitFor('the slow plugin running', () => existsSync(join(logDir, 'slow.pid')));
    const pid = Number(readFileSync(join(logDir, 'slow.pid'), 'utf8'));
    expect(pid).toBeGreaterThan(1);
    const t0 = Date.now();
    await k.deleteAll();
    expect(Date.now() - t0).toBeLessThan(15_000); // the plugin sleeps 30 s
    expect(await k.pod('slow-net').catch((e) => grpcCode(e))).toBe('NOT_FOUND');
    await waitFor('the plugin killed', () => !existsSync(`/proc/${pid}`));
    expect(calls()).toBe('rec1 ADD\nslow ADD\nslow DEL\nrec1 DEL\n');
    expect(readdirSync(join(s.state, 'sandboxes'))).toEqual([]);
    expect(mountsContaining(join(s.state, 'sandboxes'))).toEqual([]);
    clearConf();
  });

  it('a pod whose ADD failed goes even when its DEL fails too, as in containerd; the DEL is tried again at the next start', async () => {
    writeConf('10-test.conflist', bridgeConf('peapod-test', [{ type: 'faildel' }]));
    rmSync(join(logDir, 'calls'), { force: true });
    writeFileSync(join(logDir, 'del-fails'), '');
    const err = await s.runtime.RunPodSandbox({ config: podConfig('faildel') }).catch((e) => e);
    expect(err.details).toContain('fake plugin refuses: no addresses left');
    expect(calls()).toBe('faildel ADD\nfaildel DEL\n');
    // Kept, it would fail every StopPodSandbox, and the kubelet would never make the pod a new sandbox.
    expect((await s.runtime.ListPodSandbox({})).items!.filter((p) => p.metadata!.name === 'faildel')).toEqual([]);
    expect(readdirSync(join(s.state, 'sandboxes'))).toEqual([]);
    expect(mountsContaining(join(s.state, 'sandboxes'))).toEqual([]);
    // Every plugin's DEL ran: bridge released its address and veth.
    expect(allocatedIps()).toEqual([]);
    expect(nodeVeths()).toEqual([]);
    const [id] = readdirSync(resultsDir()).filter((f) => !f.startsWith('.'));
    expect(id).toBeDefined();
    // The same pod can be asked for again at once.
    rmSync(join(logDir, 'del-fails'));
    clearConf();
    writeConf('00-rec.conflist', recConf());
    const again = (await s.runtime.RunPodSandbox({ config: podConfig('faildel') })).podSandboxId;
    await s.runtime.RemovePodSandbox({ podSandboxId: again });
    clearConf();
    rmSync(join(logDir, 'calls'));
    await s.restart();
    await waitFor('the DEL tried again at start-up', () => !existsSync(cacheOf(id!)));
    expect(calls()).toBe('faildel DEL\n');
  });

  it('a DEL a plugin answers with "not found" is done, as in go-cni: the stop succeeds', async () => {
    writeConf('10-test.conflist', { cniVersion: '1.0.0', name: 'nf-net', plugins: [{ type: 'faildel' }] });
    for (const f of ['add-ok', 'del-notfound']) writeFileSync(join(logDir, f), '');
    try {
      const id = (await s.runtime.RunPodSandbox({ config: podConfig('del-notfound') })).podSandboxId;
      rmSync(join(logDir, 'calls'), { force: true });
      await s.runtime.StopPodSandbox({ podSandboxId: id });
      expect(calls()).toBe('faildel DEL\n');
      expect(existsSync(cacheOf(id))).toBe(false);
      await s.runtime.RemovePodSandbox({ podSandboxId: id });
      expect(calls()).toBe('faildel DEL\n');
    } finally {
      for (const f of ['add-ok', 'del-notfound']) rmSync(join(logDir, f), { force: true });
      clearConf();
    }
  });

  it('keeps a pod whose DEL fails at the clean-up after a crash, NOTREADY, and tries the DEL again on remove', async () => {
    writeConf('10-test.conflist', bridgeConf('peapod-test', [{ type: 'faildel' }]));
    rmSync(join(logDir, 'calls'), { force: true });
    for (const f of ['add-ok', 'del-fails']) writeFileSync(join(logDir, f), '');
    try {
      // The server dies right after the ADD; the next one cleans the half-built pod up at start-up.
      await s.restart({ PEAPOD_FAILPOINTS: 'sandbox.after-network=exit' });
      await expect(s.runtime.RunPodSandbox({ config: podConfig('crash-faildel') })).rejects.toBeTruthy();
      await s.restart();
      expect(readFileSync(join(logDir, 'calls'), 'utf8')).toBe('faildel ADD\nfaildel DEL\n');
      const kept = (await s.runtime.ListPodSandbox({})).items!.filter((p) => p.metadata!.name === 'crash-faildel');
      expect(kept.map((p) => p.state)).toEqual(['SANDBOX_NOTREADY']);
      expect(existsSync(cacheOf(kept[0]!.id!))).toBe(true);
      rmSync(join(logDir, 'del-fails'));
      await s.runtime.RemovePodSandbox({ podSandboxId: kept[0]!.id! });
      expect(readFileSync(join(logDir, 'calls'), 'utf8')).toBe('faildel ADD\nfaildel DEL\nfaildel DEL\n');
      expect(readdirSync(join(s.state, 'sandboxes'))).toEqual([]);
      expect(mountsContaining(join(s.state, 'sandboxes'))).toEqual([]);
      expect(allocatedIps()).toEqual([]);
    } finally {
      for (const f of ['add-ok', 'del-fails']) rmSync(join(logDir, f), { force: true });
      clearConf();
    }
  });

  it('asks the plugins of a 1.1.0 config STATUS, as containerd through libcni: one that fails makes NetworkReady false', async () => {
    writeConf('10-status.conflist', { cniVersion: '1.1.0', name: 'status-net', plugins: [{ type: 'rec1' }, { type: 'rec2' }] });
    rmSync(join(logDir, 'calls'), { force: true });
    writeFileSync(join(logDir, 'status-fails'), '');
    try {
      const cond = await networkCondition();
      expect([cond.status, cond.reason]).toEqual([false, 'NetworkPluginNotReady']);
      expect(cond.message).toContain('plugin not ready: agent starting');
      expect(calls()).toBe('rec1 STATUS\n');
      expect(envOf('rec1.STATUS.env')).toEqual(['CNI_COMMAND=STATUS', `CNI_PATH=/usr/lib/cni:${binDir}`]);
      expect(stdinOf('rec1.STATUS.stdin')).toEqual({ type: 'rec1', name: 'status-net', cniVersion: '1.1.0' });
      rmSync(join(logDir, 'status-fails'));
      expect((await networkCondition()).status).toBe(true);
      expect(calls()).toBe('rec1 STATUS\nrec1 STATUS\nrec2 STATUS\n');
    } finally {
      rmSync(join(logDir, 'status-fails'), { force: true });
      clearConf();
    }
  });

  it('reports an invalid first config as NetworkReady false, naming the file and why, instead of using the next one', async () => {
    writeFileSync(join(confDir, '05-broken.conflist'), '{');
    writeConf('10-test.conflist', bridgeConf('peapod-test'));
    try {
      const cond = await networkCondition();
      expect(cond.status).toBe(false);
      expect(cond.message).toContain(join(confDir, '05-broken.conflist'));
      expect(cond.message).toContain('not JSON');
      const err = await s.runtime.RunPodSandbox({ config: podConfig('broken-conf') }).catch((e) => e);
      expect(grpcCode(err)).toBe('FAILED_PRECONDITION');
      expect(err.details).toContain('05-broken.conflist');
      expect(readdirSync(join(s.state, 'sandboxes'))).toEqual([]);
    } finally {
      clearConf();
    }
  });

  it('speaks CNI 1.1.0, choosing the highest version of cniVersions it knows', async () => {
    writeConf('00-rec.conflist', { ...recConf(), cniVersions: ['0.4.0', '1.1.0', '2.0.0'] });
    expect((await networkCondition()).status).toBe(true);
    const { podSandboxId: id } = await s.runtime.RunPodSandbox({ config: podConfig('v110') });
    try {
      expect(stdinOf('rec1.ADD.stdin')).toEqual({ type: 'rec1', name: 'rec-net', cniVersion: '1.1.0' });
      await s.runtime.StopPodSandbox({ podSandboxId: id });
      expect(stdinOf('rec1.DEL.stdin')).toMatchObject({ cniVersion: '1.1.0' });
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: id });
      clearConf();
    }
  });

  it('fails RunPodSandbox when the result gives eth0 no IP (one on lo is not the pod IP), after DEL of the ADD', async () => {
    writeConf('00-lo.conflist', { cniVersion: '1.0.0', name: 'lo-net', plugins: [{ type: 'loip' }] });
    rmSync(join(logDir, 'calls'), { force: true });
    try {
      const err = await s.runtime.RunPodSandbox({ config: podConfig('lo-only') }).then(
        () => undefined,
        (e) => e,
      );
      expect(err, 'RunPodSandbox succeeded').toBeDefined();
      expect(err.details).toContain('failed to find network info for sandbox');
      expect(calls()).toBe('loip ADD\nloip DEL\n');
      expect(readdirSync(join(s.state, 'sandboxes'))).toEqual([]);
      expect(readdirSync(resultsDir())).toEqual([]);
      expect(mountsContaining(join(s.state, 'sandboxes'))).toEqual([]);
    } finally {
      for (const p of (await s.runtime.ListPodSandbox({})).items!) await s.runtime.RemovePodSandbox({ podSandboxId: p.id! });
      clearConf();
    }
  });

  it('keeps a runtimeConfig written in the config unless capabilities the plugin declares are injected, which replace it (libcni)', async () => {
    const mac = (n: number) => `02:42:ac:11:00:0${n}`;
    writeConf(
      '00-rec.conflist',
      recConf(
        { type: 'rec1', capabilities: { portMappings: true }, runtimeConfig: { mac: mac(1), portMappings: [] } },
        { type: 'rec2', runtimeConfig: { mac: mac(2) } },
      ),
    );
    const cfg = podConfig('rtconf', { portMappings: [{ protocol: 'TCP', containerPort: 80, hostPort: 8080 }] });
    const { podSandboxId: id } = await s.runtime.RunPodSandbox({ config: cfg });
    try {
      const ports = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '' }];
      expect(stdinOf('rec1.ADD.stdin').runtimeConfig).toEqual({ portMappings: ports });
      expect(stdinOf('rec2.ADD.stdin').runtimeConfig).toEqual({ mac: mac(2) });
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: id });
      clearConf();
    }
  });

  it('gives DEL an empty CNI_NETNS when the pin left is a plain file, not a mounted network namespace', async () => {
    writeConf('00-rec.conflist', recConf());
    const { podSandboxId: id } = await s.runtime.RunPodSandbox({ config: podConfig('stale-pin') });
    try {
      const pin = join(s.state, 'sandboxes', id, 'ns', 'net');
      execFileSync('umount', [pin]);
      expect(existsSync(pin)).toBe(true);
      await s.runtime.StopPodSandbox({ podSandboxId: id });
      expect(envOf('rec1.DEL.env')).toContain('CNI_NETNS=');
      expect(existsSync(cacheOf(id))).toBe(false);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: id });
      clearConf();
    }
  });

  it('gives host-local one range per family of a dual-stack pod CIDR, refuses a bad CIDR, and keeps it across a restart', async () => {
    const v4 = `10.${rand}.88.`;
    const v6 = `fd00:${rand}:88::`;
    const cidrs = `${v4}0/24,${v6}/64`;
    const podCidr = async () => JSON.parse((await s.runtime.Status({ verbose: true })).info.config!).podNetwork.podCidr;
    writeConf('00-cidr.conflist', { cniVersion: '1.0.0', name: 'cidr-net', plugins: [{ type: 'host-local', capabilities: { ipRanges: true }, ipam: { type: 'host-local' } }] });
    const ids: string[] = [];
    try {
      await s.runtime.UpdateRuntimeConfig({ runtimeConfig: { networkConfig: { podCidr: cidrs } } });
      ids.push((await s.runtime.RunPodSandbox({ config: podConfig('cidr-a') })).podSandboxId);
      const a = (await status(ids[0]!)).network!;
      expect(a.ip!.startsWith(v4)).toBe(true);
      expect(a.additionalIps!.map((x) => x.ip!.startsWith(v6))).toEqual([true]);

      const bad = await s.runtime.UpdateRuntimeConfig({ runtimeConfig: { networkConfig: { podCidr: `10.${rand}.99.0/24,not-a-cidr` } } }).catch((e) => e);
      expect(grpcCode(bad)).toBe('INVALID_ARGUMENT');
      expect(await podCidr()).toBe(cidrs);
      // The kubelet sends the CIDR only when it changes: a restarted server must still have it.
      await s.restart();
      expect(await podCidr()).toBe(cidrs);
      ids.push((await s.runtime.RunPodSandbox({ config: podConfig('cidr-b') })).podSandboxId);
      expect((await status(ids[1]!)).network!.ip!.startsWith(v4)).toBe(true);
      expect(allocatedIps('cidr-net')).toHaveLength(4);
    } finally {
      for (const id of ids) await s.runtime.RemovePodSandbox({ podSandboxId: id });
      clearConf();
    }
    expect(allocatedIps('cidr-net')).toEqual([]);
  });

  it('reports no pod IP once StopPodSandbox ran DEL, also after a restart', async () => {
    writeConf('00-rec.conflist', recConf());
    const { podSandboxId: id } = await s.runtime.RunPodSandbox({ config: podConfig('stopped-ip') });
    try {
      expect((await status(id)).network).toEqual({ ip: '10.99.0.5', additionalIps: [] });
      await s.runtime.StopPodSandbox({ podSandboxId: id });
      expect((await status(id)).network).toEqual({ ip: '', additionalIps: [] });
      await s.restart();
      expect((await status(id)).network).toEqual({ ip: '', additionalIps: [] });
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: id });
      clearConf();
    }
  });

  it('runs DEL at start-up for the cached ADDs of sandboxes a reboot took away; one whose DEL fails is kept for the next start', async () => {
    writeConf('00-rec.conflist', recConf());
    const a = (await s.runtime.RunPodSandbox({ config: podConfig('reboot-a') })).podSandboxId;
    clearConf();
    writeConf('00-faildel.conflist', { cniVersion: '1.0.0', name: 'faildel-net', plugins: [{ type: 'faildel' }] });
    for (const f of ['add-ok', 'del-fails']) writeFileSync(join(logDir, f), '');
    try {
      const b = (await s.runtime.RunPodSandbox({ config: podConfig('reboot-b') })).podSandboxId;
      // DEL uses the cached config list, not the conf dir's.
      clearConf();
      const cachedA = JSON.parse(readFileSync(cacheOf(a), 'utf8'));
      expect(cachedA.result.ips).toEqual([{ address: '10.99.0.5/24', interface: 0 }]);
      const pauses = await Promise.all([a, b].map(async (id) => JSON.parse((await s.runtime.PodSandboxStatus({ podSandboxId: id, verbose: true })).info.info!).pid as number));
      rmSync(join(logDir, 'calls'), { force: true });

      // The reboot: the server and pauses gone, the pins with them, the state dir (a tmpfs) empty.
      await s.kill9();
      for (const pid of pauses) process.kill(pid, 'SIGKILL');
      for (const mp of mountsContaining(s.state).reverse()) execFileSync('umount', [mp]);
      rmSync(s.state, { recursive: true, force: true });
      await s.restart();
      // Both DELs are over (a plugin records its call first, its environment after).
      await waitFor('the DEL that succeeded dropped its entry', () => !existsSync(cacheOf(a)));
      await waitFor('the DEL that failed is logged', () => /gone since the last start failed/.test(s.output()));
      expect(calls().trim().split('\n').sort()).toEqual(['faildel DEL', 'rec1 DEL']);
      expect(envOf('rec1.DEL.env')).toEqual([
        `CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=reboot-a;K8S_POD_INFRA_CONTAINER_ID=${a};K8S_POD_UID=uid-reboot-a`,
        'CNI_COMMAND=DEL',
        `CNI_CONTAINERID=${a}`,
        'CNI_IFNAME=eth0',
        'CNI_NETNS=',
        `CNI_PATH=/usr/lib/cni:${binDir}`,
      ]);
      expect(stdinOf('rec1.DEL.stdin')).toEqual({ type: 'rec1', name: 'rec-net', cniVersion: '1.0.0', prevResult: cachedA.result });
      expect(existsSync(cacheOf(b))).toBe(true);

      rmSync(join(logDir, 'del-fails'));
      rmSync(join(logDir, 'calls'));
      await s.restart();
      await waitFor('the kept entry is torn down at the next start', () => !existsSync(cacheOf(b)));
      expect(calls()).toBe('faildel DEL\n');
      expect(readdirSync(resultsDir())).toEqual([]);
      expect((await s.runtime.ListPodSandbox({})).items).toEqual([]);
    } finally {
      for (const f of ['add-ok', 'del-fails']) rmSync(join(logDir, f), { force: true });
    }
  });

  it('moves an ADD result an older server cached in the state dir to the root, and DEL uses it', async () => {
    writeConf('00-rec.conflist', recConf());
    const { podSandboxId: id } = await s.runtime.RunPodSandbox({ config: podConfig('legacy-cache') });
    try {
      const cached = readFileSync(cacheOf(id), 'utf8');
      const legacy = join(s.state, 'sandboxes', id, 'cni-result.json');
      await s.kill9();
      writeFileSync(legacy, cached);
      rmSync(cacheOf(id));
      await s.restart();
      expect(existsSync(legacy)).toBe(false);
      expect(readFileSync(cacheOf(id), 'utf8')).toBe(cached);
      clearConf();
      rmSync(join(logDir, 'calls'), { force: true });
      await s.runtime.StopPodSandbox({ podSandboxId: id });
      expect(calls()).toBe('rec1 DEL\n');
      expect(stdinOf('rec1.DEL.stdin').prevResult).toEqual(JSON.parse(cached).result);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: id });
      clearConf();
    }
  });

  it('runs a cniVersion 0.2.0 .conf with the real bridge plugin, as libcni: the pod IP from ip4; DEL gets prevResult from 0.4.0 on', async () => {
    const [bridgePlugin] = bridgeConf('old-net').plugins;
    writeConf('10-old.conf', { ...bridgePlugin, cniVersion: '0.2.0', name: 'old-net' });
    const id = (await s.runtime.RunPodSandbox({ config: podConfig('cni-020') })).podSandboxId;
    try {
      const ip = (await status(id)).network!.ip!;
      expect(ip.startsWith(subnetPrefix)).toBe(true);
      expect(allocatedIps('old-net')).toEqual([ip]);
      expect(inNetns(await netnsOf(id), 'ip', '-o', '-4', 'addr', 'show', 'eth0').stdout).toContain(`${ip}/24`);
      expect(JSON.parse(readFileSync(cacheOf(id), 'utf8')).result).toMatchObject({ cniVersion: '0.2.0', ip4: { ip: `${ip}/24` } });
      await s.runtime.StopPodSandbox({ podSandboxId: id });
      expect(allocatedIps('old-net')).toEqual([]);
      expect(existsSync(cacheOf(id))).toBe(false);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: id });
      clearConf();
    }
    // The cached result goes to DEL from 0.4.0 on only.
    for (const [cniVersion, prevResult] of [['0.2.0', false], ['0.3.1', false], ['0.4.0', true]] as const) {
      writeConf('00-rec.conflist', { ...recConf(), cniVersion });
      const rec = (await s.runtime.RunPodSandbox({ config: podConfig(`cni-del-${cniVersion}`) })).podSandboxId;
      await s.runtime.RemovePodSandbox({ podSandboxId: rec });
      clearConf();
      expect(stdinOf('rec1.DEL.stdin'), cniVersion).toMatchObject({ cniVersion });
      expect('prevResult' in stdinOf('rec1.DEL.stdin'), cniVersion).toBe(prevResult);
    }
  });

  it('gives pods distinct IPs that reach each other and the node; forwards hostPorts; DEL on stop', async () => {
    writeConf('10-test.conflist', bridgeConf('peapod-test'));
    const a = (await s.runtime.RunPodSandbox({ config: podConfig('net-a') })).podSandboxId;
    const b = (
      await s.runtime.RunPodSandbox({
        config: podConfig('net-b', { portMappings: [{ protocol: 'TCP', containerPort: 80, hostPort: 8080 }] }),
      })
    ).podSandboxId;
    try {
      const ipA = (await status(a)).network!.ip!;
      const ipB = (await status(b)).network!.ip!;
      expect(ipA.startsWith(subnetPrefix)).toBe(true);
      expect(ipB.startsWith(subnetPrefix)).toBe(true);
      expect(ipA).not.toBe(ipB);
      expect(allocatedIps().sort()).toEqual([ipA, ipB].sort());
      const nsA = await netnsOf(a);
      const nsB = await netnsOf(b);
      expect(inNetns(nsA, 'ip', '-o', '-4', 'addr', 'show', 'eth0').stdout).toContain(`${ipA}/24`);

      const ping = (ns: string, ip: string) => inNetns(ns, 'busybox', 'ping', '-c1', '-W2', ip);
      expect(ping(nsA, ipB).status, 'pod A → pod B').toBe(0);
      expect(ping(nsB, ipA).status, 'pod B → pod A').toBe(0);
      expect(ping(nsA, gateway).status, 'pod → node').toBe(0);
      expect(ping(nodeNs(), ipA).status, 'node → pod').toBe(0);

      // A TCP server on port 80 in pod B's network namespace.
      const server = spawn(
        'nsenter',
        [`--net=${nsB}`, process.execPath, '-e', `require('net').createServer((c) => c.end('hello from pod\\n')).listen(80, () => console.log('listening'))`],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      children.push(server);
      await new Promise<void>((resolve, reject) => {
        server.stdout!.once('data', () => resolve());
        server.once('exit', (code) => reject(new Error(`pod server exited ${code}`)));
      });
      const fetchFrom = (ns: string, host: string, port: number) =>
        inNetns(
          ns,
          process.execPath,
          '-e',
          `const c = require('net').connect(${port}, '${host}'); let d = ''; c.on('data', (x) => (d += x)); c.on('end', () => { process.stdout.write(d); process.exit(0); }); c.on('error', (e) => { console.error(e.message); process.exit(1); }); setTimeout(() => process.exit(2), 5000);`,
        );
      expect(fetchFrom(nodeNs(), ipB, 80).stdout, 'node → pod:80').toBe('hello from pod\n');
      expect(fetchFrom(nodeNs(), gateway, 8080).stdout, 'node IP:hostPort').toBe('hello from pod\n');
      expect(fetchFrom(nsA, gateway, 8080).stdout, 'other pod → node IP:hostPort').toBe('hello from pod\n');
      expect(fetchFrom(nodeNs(), '127.0.0.1', 8080).stdout, '127.0.0.1:hostPort').toBe('hello from pod\n');
      server.kill('SIGKILL');

      const rules = inNode('iptables-save');
      expect(rules).toMatch(/--dports? 8080\b/);
      expect(rules).toContain(`${ipA}/32`);
      const vethsBefore = nodeVeths().length;
      expect(vethsBefore).toBe(2);
      await s.runtime.StopPodSandbox({ podSandboxId: b });
      expect(nodeVeths()).toHaveLength(1);
      expect(allocatedIps()).toEqual([ipA]);
      expect(inNode('iptables-save')).not.toMatch(/--dports? 8080\b/);
      expect(existsSync(nsB)).toBe(true); // the pin stays until remove
      expect((await status(b)).state).toBe('SANDBOX_NOTREADY');
      await s.runtime.StopPodSandbox({ podSandboxId: b });
      await s.runtime.RemovePodSandbox({ podSandboxId: b });
      await s.runtime.RemovePodSandbox({ podSandboxId: a });
      expect(nodeVeths()).toEqual([]);
      expect(allocatedIps()).toEqual([]);
      expect(inNode('iptables-save')).not.toContain(`${ipA}/32`);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: a });
      await s.runtime.RemovePodSandbox({ podSandboxId: b });
    }
  });

  it("reports the pod's interfaces in PodSandboxStats, eth0 the default; none for a host-network pod", async () => {
    writeConf('10-test.conflist', bridgeConf('peapod-test'));
    const a = (await s.runtime.RunPodSandbox({ config: podConfig('stats-net') })).podSandboxId;
    const hostCfg = podConfig('stats-host', { linux: { securityContext: { namespaceOptions: { network: 'NODE' } } } });
    const host = (await s.runtime.RunPodSandbox({ config: hostCfg })).podSandboxId;
    try {
      const ip = (await status(a)).network!.ip!;
      expect(inNetns(nodeNs(), 'busybox', 'ping', '-c2', '-W2', ip).status, 'node → pod').toBe(0);
      const net = (await s.runtime.PodSandboxStats({ podSandboxId: a })).stats!.linux!.network!;
      expect(BigInt(net.timestamp)).toBeGreaterThan(0n);
      expect(net.defaultInterface!.name).toBe('eth0');
      expect(Number(net.defaultInterface!.rxBytes!.value)).toBeGreaterThan(0);
      expect(Number(net.defaultInterface!.txBytes!.value)).toBeGreaterThan(0);
      expect(net.defaultInterface!.rxErrors!.value).toBe('0');
      // Every link but lo, the default one too (as cAdvisor lists them).
      expect(net.interfaces.map((i) => i.name)).toEqual(['eth0']);
      expect((await s.runtime.PodSandboxStats({ podSandboxId: host })).stats!.linux!.network).toBeNull();
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: a });
      await s.runtime.RemovePodSandbox({ podSandboxId: host });
    }
  });

  // Last: restarts replace the node namespace (a fresh one per server start).
  it('serves a busybox httpd through a hostPort; containers of one pod reach each other on localhost', async () => {
    writeConf('10-test.conflist', bridgeConf('peapod-test'));
    const cfg = podConfig('web', { portMappings: [{ protocol: 'TCP', containerPort: 80, hostPort: 8088 }] });
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config: cfg });
    try {
      const run = async (name: string, command: string[]) => {
        const { containerId } = await s.runtime.CreateContainer({
          podSandboxId,
          config: { metadata: { name }, image: { image: BUSYBOX }, command },
        });
        await s.runtime.StartContainer({ containerId });
        return containerId;
      };
      await run('httpd', ['sh', '-c', 'mkdir -p /tmp/www && echo hello-httpd > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www']);
      const client = await run('client', ['sleep', '300']);
      let fromPeer = '';
      for (let i = 0; i < 50 && fromPeer === ''; i++) {
        const r = await s.runtime.ExecSync({ containerId: client, cmd: ['wget', '-qO-', 'http://127.0.0.1:80/'], timeout: '5' });
        fromPeer = Buffer.from(r.stdout).toString();
        if (fromPeer === '') await new Promise((r) => setTimeout(r, 100));
      }
      expect(fromPeer, 'container → container on localhost').toBe('hello-httpd\n');
      const viaHostPort = inNetns(nodeNs(), 'busybox', 'wget', '-qO-', `http://${gateway}:8088/`);
      expect(viaHostPort.stdout, 'node → hostPort → httpd').toBe('hello-httpd\n');
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId });
      clearConf();
    }
  });

  it('undoes the ADD when a later step fails, and after a crash right after it (DEL at start-up)', async () => {
    writeConf('10-test.conflist', bridgeConf('peapod-test'));
    const clean = () => {
      expect(allocatedIps()).toEqual([]);
      expect(readdirSync(join(s.state, 'sandboxes'))).toEqual([]);
      expect(mountsContaining(join(s.state, 'sandboxes'))).toEqual([]);
    };
    await s.restart({ PEAPOD_FAILPOINTS: 'sandbox.after-network' });
    const err = await s.runtime.RunPodSandbox({ config: podConfig('fp-error') }).catch((e) => e);
    expect(err.details).toContain('failpoint sandbox.after-network');
    clean();
    expect(nodeVeths()).toEqual([]);

    await s.restart({ PEAPOD_FAILPOINTS: 'sandbox.after-network=exit' });
    await expect(s.runtime.RunPodSandbox({ config: podConfig('fp-exit') })).rejects.toBeTruthy();
    expect(allocatedIps()).toHaveLength(1); // the server died holding an address
    await s.restart();
    clean();
    expect((await s.runtime.Status({})).status!.conditions[1]!.status).toBe(true);
    clearConf();
  });
});
