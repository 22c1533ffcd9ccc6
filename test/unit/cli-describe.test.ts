// `peapod describe pod`'s events and probes as kubectl describe prints them, and
// `get -w`'s pod-at-a-time printing, from a controller's own record.
import { afterEach, expect, it } from 'vitest';
import { parseCustomColumns, parseJsonPath } from '../../src/cli/jsonpath.js';
import { describePod, describeProbe, PodPrinter, type PrinterOptions } from '../../src/cli/pod.js';
import { podSummary } from '../../src/cri/pods.js';
import { podView } from '../../src/pod/status.js';
import { FakeNode } from '../support/pod-fakes.js';

const node = new FakeNode();
afterEach(() => node.dispose());

it('a repeated event shows its latest age, the count and the time since the first; a single one its age', () => {
  const ctl = node.controller(`apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers: [{name: a, image: busybox}]`);
  const now = Date.now();
  ctl.rec.events = [
    { time: now - 5_000, first: now - 65_000, type: 'Warning', reason: 'BackOff', object: 'spec.containers{a}', message: 'Back-off restarting failed container a', count: 3 },
    { time: now - 2_000, first: now - 2_000, type: 'Normal', reason: 'Pulled', object: 'spec.containers{a}', message: 'Container image "busybox" already present on machine', count: 1 },
    // A record from before first occurrences were kept.
    { time: now - 7_000, type: 'Normal', reason: 'Killing', object: 'spec.containers{a}', message: 'Stopping container a', count: 2 },
  ];
  const events = describePod(podView(ctl, 'node')).split('Events:\n')[1]!;
  expect(events).toMatch(/^ {2}Warning\s+BackOff\s+5s \(x3 over 65s\)\s+peapod spec\.containers\{a\}\s+Back-off restarting failed container a$/m);
  expect(events).toMatch(/^ {2}Normal\s+Pulled\s+2s\s+peapod spec\.containers\{a\}\s+Container image "busybox" already present on machine$/m);
  expect(events).toMatch(/^ {2}Normal\s+Killing\s+7s \(x2 over 7s\)\s+/m);
});

it('the controller keeps an event\'s first occurrence when it repeats', async () => {
  const ctl = node.controller(`apiVersion: v1\nkind: Pod\nmetadata:\n  name: q\nspec:\n  containers: [{name: a, image: busybox}]`);
  ctl.event('Warning', 'BackOff', 'spec.containers{a}', 'Back-off');
  const first = ctl.rec.events[0]!.time;
  await new Promise((r) => setTimeout(r, 20));
  ctl.event('Warning', 'BackOff', 'spec.containers{a}', 'Back-off');
  expect(ctl.rec.events).toHaveLength(1);
  expect(ctl.rec.events[0]).toMatchObject({ first, count: 2 });
  expect(ctl.rec.events[0]!.time).toBeGreaterThan(first);
});

it('prints probes as kubectl describe does, with the API\'s defaults', () => {
  expect(describeProbe({ exec: { command: ['cat', '/tmp/healthy'] }, initialDelaySeconds: 5, periodSeconds: 5 })).toBe('exec [cat /tmp/healthy] delay=5s timeout=1s period=5s #success=1 #failure=3');
  expect(describeProbe({ httpGet: { path: '/healthz', port: 8080 } })).toBe('http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3');
  expect(describeProbe({ httpGet: { port: 'web', scheme: 'HTTPS', host: 'fd00::1' }, failureThreshold: 1 })).toBe('http-get https://[fd00::1]:web/ delay=0s timeout=1s period=10s #success=1 #failure=1');
  expect(describeProbe({ tcpSocket: { port: 53 }, timeoutSeconds: 2 })).toBe('tcp-socket :53 delay=0s timeout=2s period=10s #success=1 #failure=3');
  expect(describeProbe({ grpc: { port: 9555, service: 'app' } })).toBe('grpc <pod>:9555 app delay=0s timeout=1s period=10s #success=1 #failure=3');
  const ctl = node.controller(`apiVersion: v1\nkind: Pod\nmetadata:\n  name: r\nspec:\n  containers: [{name: a, image: busybox}]`);
  ctl.rec.manifest = { spec: { containers: [{ name: 'a', image: 'busybox', readinessProbe: { tcpSocket: { port: 80 } } }] } };
  expect(describePod(podView(ctl, 'node'))).toMatch(/^ {4}Readiness: +tcp-socket :80 delay=0s timeout=1s period=10s #success=1 #failure=3$/m);
});

it('get -w prints one pod at a time as kubectl: headers once, YAML documents apart, templates per pod', () => {
  const pods = ['a', 'b'].map((n) => podSummary(podView(node.controller(`apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${n}\n  labels: {app: ${n}}\nspec:\n  containers: [{name: c, image: busybox}]`), 'node'), true));
  const each = (o: Partial<PrinterOptions>) => {
    const p = new PodPrinter({ format: '', jsonPath: undefined, columns: undefined, namespaces: false, labels: false, headers: true, ...o });
    return pods.map((pod) => p.one(pod));
  };
  const [first, second] = each({});
  expect(first).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\na\s+0\/1\s+\S+\s+0\s+\S+\n$/);
  expect(second).toMatch(/^b\s+0\/1\s+\S+\s+0\s+\S+\n$/);
  expect(each({ headers: false })[0]).toMatch(/^a\s/);
  expect(each({ format: 'name' })).toEqual(['pod/a\n', 'pod/b\n']);
  const yaml = each({ format: 'yaml' });
  expect(yaml[0]).toMatch(/^apiVersion: v1\nkind: Pod\n/);
  expect(yaml[1]).toMatch(/^---\napiVersion: v1\n/);
  expect(each({ format: 'json' }).map((j) => JSON.parse(j).metadata.name)).toEqual(['a', 'b']);
  expect(each({ format: 'jsonpath', jsonPath: parseJsonPath('{.metadata.labels.app};') })).toEqual(['a;', 'b;']);
  expect(each({ format: 'custom-columns', columns: parseCustomColumns('N:.metadata.name,L:.metadata.labels') })).toEqual(['N   L\na   map[app:a]\n', 'b   map[app:b]\n']);
});
