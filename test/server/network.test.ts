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
import { grpcCode, podConfig } from '../support/cri-client.js';
import { BUSYBOX, preloadBusybox } from '../support/images.js';
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
    for (const p of c.plugins ?? []) if (p.ipam) p.ipam.dataDir = ipamDir;
    writeFileSync(join(confDir, file), JSON.stringify(c, null, 2));
  };
  const clearConf = () => {
    for (const f of readdirSync(confDir)) rmSync(join(confDir, f));
  };
  const status = async (id: string) => (await s.runtime.PodSandboxStatus({ podSandboxId: id, verbose: true })).status!;
  const netnsOf = async (id: string) =>
    JSON.parse((await s.runtime.PodSandboxStatus({ podSandboxId: id, verbose: true })).info.info!).namespaces.net as string;
  const networkCondition = async () => (await s.runtime.Status({})).status!.conditions.find((c) => c.type === 'NetworkReady')!;
  const allocatedIps = () =>
    existsSync(join(ipamDir, 'peapod-test'))
      ? readdirSync(join(ipamDir, 'peapod-test')).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f))
      : [];
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
    faildel) [ -e "$dir/add-ok" ] && { echo '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"'"$CNI_NETNS"'"}],"ips":[{"address":"10.99.0.7/24","interface":0}]}'; exit 0; } ;&
    fail) echo '{"cniVersion":"1.0.0","code":7,"msg":"fake plugin refuses","details":"no addresses left"}'; exit 1 ;;
  esac
fi
if [ "$CNI_COMMAND" = DEL ] && [ "$name" = faildel ] && [ -e "$dir/del-fails" ]; then
  echo '{"cniVersion":"1.0.0","code":11,"msg":"fake plugin cannot delete","details":"xtables lock"}'; exit 1
fi
exit 0
`;
    nodePin = join(tmp, 'node-netns');
    writeFileSync(nodePin, '');
    execFileSync('unshare', [`--net=${nodePin}`, 'true']);
    for (const name of ['rec1', 'rec2', 'fail', 'faildel']) {
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
    await s?.cleanup();
    execFileSync('umount', [nodePin]);
    rmSync(tmp, { recursive: true, force: true });
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
    const envOf = (f: string) => readFileSync(join(logDir, f), 'utf8').trim().split('\n');
    const stdinOf = (f: string) => JSON.parse(readFileSync(join(logDir, f), 'utf8'));
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
      const cache = JSON.parse(readFileSync(join(s.state, 'sandboxes', id, 'cni-result.json'), 'utf8'));
      expect(cache.result).toEqual(rec2Result);

      await s.runtime.StopPodSandbox({ podSandboxId: id });
      expect(readFileSync(join(logDir, 'calls'), 'utf8')).toBe('rec1 ADD\nrec2 ADD\nrec2 DEL\nrec1 DEL\n');
      expect(envOf('rec1.DEL.env')).toEqual(env('DEL'));
      expect(stdinOf('rec2.DEL.stdin')).toMatchObject({ type: 'rec2', prevResult: rec2Result });
      expect(stdinOf('rec1.DEL.stdin')).toMatchObject({ type: 'rec1', prevResult: rec2Result, runtimeConfig: { dns } });
      expect(existsSync(join(s.state, 'sandboxes', id, 'cni-result.json'))).toBe(false);
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

  it('keeps a pod whose ADD failed and whose DEL failed too, NOTREADY, and tries the DEL again on remove', async () => {
    writeConf('10-test.conflist', bridgeConf('peapod-test', [{ type: 'faildel' }]));
    rmSync(join(logDir, 'calls'), { force: true });
    writeFileSync(join(logDir, 'del-fails'), '');
    const err = await s.runtime.RunPodSandbox({ config: podConfig('faildel') }).catch((e) => e);
    expect(err.details).toContain('fake plugin refuses: no addresses left');
    expect(readFileSync(join(logDir, 'calls'), 'utf8')).toBe('faildel ADD\nfaildel DEL\n');
    const { items } = await s.runtime.ListPodSandbox({});
    const kept = items!.filter((p) => p.metadata!.name === 'faildel');
    expect(kept.map((p) => p.state)).toEqual(['SANDBOX_NOTREADY']);
    const id = kept[0]!.id!;
    expect(existsSync(join(s.state, 'sandboxes', id, 'record.json'))).toBe(true);
    // Still failing: the stop fails and the pod stays.
    expect(grpcCode(await s.runtime.StopPodSandbox({ podSandboxId: id }).catch((e) => e))).not.toBe('OK');
    rmSync(join(logDir, 'del-fails'));
    await s.runtime.RemovePodSandbox({ podSandboxId: id });
    expect(readFileSync(join(logDir, 'calls'), 'utf8')).toBe('faildel ADD\nfaildel DEL\nfaildel DEL\nfaildel DEL\n');
    expect((await s.runtime.ListPodSandbox({})).items!.filter((p) => p.metadata!.name === 'faildel')).toEqual([]);
    expect(readdirSync(join(s.state, 'sandboxes'))).toEqual([]);
    expect(mountsContaining(join(s.state, 'sandboxes'))).toEqual([]);
    expect(allocatedIps()).toEqual([]);
    expect(nodeVeths()).toEqual([]);
    clearConf();
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
      expect(existsSync(join(s.state, 'sandboxes', kept[0]!.id!, 'cni-result.json'))).toBe(true);
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
