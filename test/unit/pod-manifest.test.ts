import { describe, expect, it } from 'vitest';
import { containerEnv, downwardAPIContent, expand } from '../../src/pod/env.js';
import { parseManifests } from '../../src/pod/manifest.js';
import { parseQuantity } from '../../src/util/quantity.js';
import { podColumns } from '../../src/pod/status.js';
import { nodeAllocatable } from '../../src/pod/allocatable.js';
import type { DownwardAPIItem, PodRecord } from '../../src/pod/types.js';

const pod = (spec: string) => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n${spec}`;
const one = (spec: string) => parseManifests(pod(spec))[0]!.spec;

describe('pod manifests', () => {
  it('parses defaults, several documents and JSON', () => {
    const [a, b] = parseManifests(pod('  containers: [{name: c, image: busybox}]') + '\n---\n' + JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'q', namespace: 'x', uid: 'u1' }, spec: { containers: [{ name: 'c', image: 'busybox:1.36' }] } }));
    expect(a!.spec).toMatchObject({ name: 'p', namespace: 'default', restartPolicy: 'Always', terminationGracePeriodSeconds: 30, activeDeadlineSeconds: null });
    expect(a!.spec.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(a!.spec.containers[0]!.imagePullPolicy).toBe('Always');
    expect(b!.spec).toMatchObject({ name: 'q', namespace: 'x', uid: 'u1' });
    expect(b!.spec.containers[0]!.imagePullPolicy).toBe('IfNotPresent');
  });

  it('applies probe defaults and marks sidecars', () => {
    const s = one(`  initContainers:
    - {name: side, image: busybox, restartPolicy: Always, readinessProbe: {tcpSocket: {port: 80}}}
    - {name: init, image: busybox}
  containers:
    - name: c
      image: busybox
      livenessProbe: {httpGet: {path: /h, port: http}}
      ports: [{name: http, containerPort: 8080}]`);
    expect(s.initContainers[0]!.restartPolicy).toBe('Always');
    expect(s.containers[0]!.livenessProbe).toMatchObject({ initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3, httpGet: { scheme: 'HTTP', path: '/h', port: 'http' } });
  });

  it.each([
    ['  containers: [{name: c, image: busybox, volumeDevices: []}]', 'spec.containers[0].volumeDevices is not supported'],
    ['  affinity: {}\n  containers: [{name: c, image: busybox}]', 'spec.affinity is not supported'],
    ['  containers: [{name: c, image: busybox, resources: {limits: {nvidia.com/gpu: 1}}}]', 'spec.containers[0].resources.limits.nvidia.com/gpu is not supported'],
    ['  volumes: [{name: v, configMap: {name: x}}]\n  containers: [{name: c, image: busybox}]', 'spec.volumes[0].configMap is not supported'],
    ['  containers: [{name: c, image: busybox, restartPolicy: Always}]', 'spec.containers[0].restartPolicy'],
    ['  containers: [{name: c, image: busybox, livenessProbe: {exec: {command: [x]}, successThreshold: 2}}]', 'successThreshold must be 1'],
    ['  containers: [{name: c, image: busybox, volumeMounts: [{name: nope, mountPath: /x}]}]', 'is not a volume of the pod'],
    ['  containers: [{name: c, image: busybox}, {name: c, image: busybox}]', 'is used by another container'],
    ['  containers: [{name: c, image: busybox, env: [{name: X, valueFrom: {secretKeyRef: {name: s, key: k}}}]}]', 'spec.containers[0].env[0].valueFrom.secretKeyRef is not supported'],
    ['  containers: [{name: c, image: busybox, securityContext: {seccompProfile: {type: Localhost}}}]', 'localhostProfile is required for type Localhost'],
    ['  containers: [{name: c, image: busybox, securityContext: {seccompProfile: {type: Localhost, localhostProfile: /etc/p.json}}}]', 'must be a relative path without ".."'],
    ['  containers: [{name: c, image: busybox, securityContext: {seccompProfile: {type: Localhost, localhostProfile: a/../../p.json}}}]', 'must be a relative path without ".."'],
    ['  securityContext: {seccompProfile: {type: RuntimeDefault, localhostProfile: p.json}}\n  containers: [{name: c, image: busybox}]', 'may only be set for type Localhost'],
    ['  containers: [{name: c, image: busybox, securityContext: {seccompProfile: {type: Strict}}}]', 'must be RuntimeDefault, Unconfined or Localhost'],
    ['  containers: [{name: c, image: busybox, resources: {limits: {cpu: 500m}, requests: {cpu: 1}}}]', 'spec.containers[0].resources.requests.cpu "1" must be less than or equal to the cpu limit of "500m"'],
    ['  initContainers: [{name: i, image: busybox, resources: {limits: {memory: 64Mi}, requests: {memory: 1Gi}}}]\n  containers: [{name: c, image: busybox}]', 'spec.initContainers[0].resources.requests.memory "1Gi" must be less than or equal to the memory limit of "64Mi"'],
    ['  volumes: [{name: v, emptyDir: {}}, {name: w, emptyDir: {}}]\n  containers: [{name: c, image: busybox, volumeMounts: [{name: v, mountPath: /data}, {name: w, mountPath: /data}]}]', 'spec.containers[0].volumeMounts[1].mountPath "/data" must be unique'],
    ['  containers: [{name: c, image: busybox, env: [{name: A, value: x}, {name: "A=B", value: x}]}]', 'spec.containers[0].env[1].name "A=B" must consist only of printable ASCII characters other than "="'],
    ['  containers: [{name: c, image: busybox, env: [{name: "A\\tB", value: x}]}]', 'spec.containers[0].env[0].name "A\\tB" must consist only of printable ASCII'],
    ['  volumes: [{name: v, hostPath: {path: /var/../etc}}]\n  containers: [{name: c, image: busybox}]', "spec.volumes[0].hostPath.path must not contain '..'"],
    ['  containers: [{name: c, image: busybox, env: [{name: X, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1k}}}]}]', "only divisor's values 1m and 1 are supported with the cpu resource"],
    ['  containers: [{name: c, image: busybox, env: [{name: X, valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 10m}}}]}]', "only divisor's values 1m and 1 are supported with the cpu resource"],
    ['  containers: [{name: c, image: busybox, env: [{name: X, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 3Mi}}}]}]', "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource"],
    ['  containers: [{name: c, image: busybox, env: [{name: X, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1m}}}]}]', 'spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor'],
    // Canonical forms "1024", "1048576" and "1e3": the right value in the wrong family (an unquoted 1e3 is YAML's number 1000).
    ...['1024', '1048576', '"1e3"', '"1024"'].map((d) => [
      `  containers: [{name: c, image: busybox, env: [{name: X, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: ${d}}}}]}]`,
      "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource",
    ]),
    ['  containers: [{name: c, image: busybox, env: [{name: X, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: "1e-3"}}}]}]', "only divisor's values 1m and 1 are supported with the cpu resource"],
    ['  containers: [{name: c, image: busybox, env: [{name: X, value: x, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]}]', 'value and valueFrom are mutually exclusive'],
    ['  containers: [{name: c, image: busybox, readinessProbe: {grpc: {port: grpc}}}]', 'spec.containers[0].readinessProbe.grpc.port must be a port number (1-65535)'],
    ...[
      ['{path: ../x, fieldRef: {fieldPath: metadata.name}}', 'spec.volumes[0].downwardAPI.items[0].path must be a relative path without ".."'],
      ['{path: /x, fieldRef: {fieldPath: metadata.name}}', 'spec.volumes[0].downwardAPI.items[0].path must be a relative path without ".."'],
      ['{path: ip, fieldRef: {fieldPath: status.podIP}}', 'spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath "status.podIP" is not supported'],
      ['{path: cpu, resourceFieldRef: {resource: limits.cpu}}', 'spec.volumes[0].downwardAPI.items[0].resourceFieldRef.containerName is required'],
      ['{path: x, fieldRef: {fieldPath: metadata.name}, resourceFieldRef: {containerName: c, resource: limits.cpu}}', 'spec.volumes[0].downwardAPI.items[0] must have exactly one of fieldRef, resourceFieldRef'],
      ['{path: x, mode: 512, fieldRef: {fieldPath: metadata.name}}', 'spec.volumes[0].downwardAPI.items[0].mode must be a number between 0 and 0777 (octal), both inclusive'],
    ].map(([item, message]) => [`  volumes: [{name: v, downwardAPI: {items: [${item}]}}]\n  containers: [{name: c, image: busybox}]`, message]),
    ['  containers: [{name: c, image: busybox, readinessProbe: {sleep: {seconds: 1}}}]', 'spec.containers[0].readinessProbe must have exactly one of exec, httpGet, tcpSocket, grpc'],
    ['  containers: [{name: c, image: busybox, lifecycle: {preStop: {grpc: {port: 9000}}}}]', 'spec.containers[0].lifecycle.preStop must have exactly one of exec, httpGet, sleep'],
    ['  terminationGracePeriodSeconds: 5\n  containers: [{name: c, image: busybox, lifecycle: {preStop: {sleep: {seconds: 6}}}}]', 'spec.containers[0].lifecycle.preStop.sleep.seconds must be non-negative and less than terminationGracePeriodSeconds (5)'],
    ['  containers: [{name: c, image: busybox, lifecycle: {postStart: {sleep: {seconds: -1}}}}]', 'must be non-negative and less than terminationGracePeriodSeconds (30)'],
  ])('rejects %s', (spec, msg) => {
    expect(() => one(spec)).toThrow(msg);
  });

  it('takes a downwardAPI volume: metadata fields and container resources, modes (0644 by default)', () => {
    const s = one(`  volumes:
    - name: info
      downwardAPI:
        defaultMode: 0440
        items:
          - {path: labels, fieldRef: {fieldPath: metadata.labels}}
          - {path: dir/name, mode: 0600, fieldRef: {fieldPath: "metadata.annotations['a']"}}
          - {path: cpu, resourceFieldRef: {containerName: c, resource: limits.cpu, divisor: 1m}}
  containers: [{name: c, image: busybox}]`);
    expect(s.volumes[0]!.downwardAPI).toEqual({
      defaultMode: 0o440,
      items: [
        { path: 'labels', mode: null, fieldRef: { fieldPath: 'metadata.labels' } },
        { path: 'dir/name', mode: 0o600, fieldRef: { fieldPath: "metadata.annotations['a']" } },
        { path: 'cpu', mode: null, resourceFieldRef: { containerName: 'c', resource: 'limits.cpu', divisor: '1m' } },
      ],
    });
  });

  it('reads YAML as Kubernetes does (1.1): 0644 is octal, an unquoted yes or on is a boolean', () => {
    const s = one(`  volumes: [{name: v, downwardAPI: {defaultMode: 0644, items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}}]\n  containers: [{name: c, image: busybox}]`);
    expect(s.volumes[0]!.downwardAPI!.defaultMode).toBe(0o644);
    expect(() => one('  containers: [{name: c, image: busybox, env: [{name: A, value: yes}]}]')).toThrow('spec.containers[0].env[0].value must be a string');
    expect(one('  containers: [{name: c, image: busybox, env: [{name: A, value: "on"}]}]').containers[0]!.env[0]!.value).toBe('on');
    // No base-60 numbers in go-yaml, and a date read as a string.
    const env = one('  containers: [{name: c, image: busybox, env: [{name: A, value: 1:20}, {name: B, value: 2024-01-01}]}]').containers[0]!.env;
    expect(env.map((e) => e.value)).toEqual(['1:20', '2024-01-01']);
  });

  it('takes gRPC probes (a port number, a service) and sleep hooks (0 up to the grace period)', () => {
    const s = one(`  terminationGracePeriodSeconds: 5
  containers:
    - name: c
      image: busybox
      livenessProbe: {grpc: {port: 9000, service: app}}
      readinessProbe: {grpc: {port: 9000}}
      lifecycle: {postStart: {sleep: {seconds: 0}}, preStop: {sleep: {seconds: 5}}}`);
    const c = s.containers[0]!;
    expect([c.livenessProbe?.grpc, c.readinessProbe?.grpc]).toEqual([{ port: 9000, service: 'app' }, { port: 9000, service: '' }]);
    expect([c.lifecycle.postStart?.sleep, c.lifecycle.preStop?.sleep]).toEqual([{ seconds: 0 }, { seconds: 5 }]);
  });

  it('accepts requests up to their limits, the same mount path in two containers and any printable env var name but "="', () => {
    const s = one(`  volumes: [{name: v, emptyDir: {}}]
  containers:
    - {name: a, image: busybox, resources: {limits: {cpu: "1", memory: 1Gi}, requests: {cpu: 1000m, memory: 1024Mi}}, volumeMounts: [{name: v, mountPath: /data}]}
    - {name: b, image: busybox, volumeMounts: [{name: v, mountPath: /data}], env: [{name: "my.var-1 (x)", value: "y"}]}`);
    expect(s.containers[0]!.resources.requests).toEqual({ cpu: 1, memory: 2 ** 30 });
    expect(s.containers[1]!.env[0]!.name).toBe('my.var-1 (x)');
  });

  it.each(['../x', '.', '..', 'a/b', 'a\0b', 'u'.repeat(129)])('rejects metadata.uid %j, which would be a path component', (uid) => {
    const text = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', uid }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });
    expect(() => parseManifests(text)).toThrow(expect.objectContaining({ kind: 'InvalidArgument', message: expect.stringContaining('metadata.uid') }));
  });

  it('takes a Localhost seccomp profile from the pod or the container, the container first', () => {
    const p = one('  securityContext: {seccompProfile: {type: Localhost, localhostProfile: profiles/pod.json}}\n  containers: [{name: a, image: busybox}, {name: b, image: busybox, securityContext: {seccompProfile: {type: RuntimeDefault}}}]');
    expect(p.containers[0]!.security.seccomp).toEqual({ localhostProfile: 'profiles/pod.json' });
    expect(p.containers[1]!.security.seccomp).toBe('RuntimeDefault');
  });

  it('accepts serviceAccount together with serviceAccountName', () => {
    expect(one('  serviceAccount: default\n  serviceAccountName: default\n  containers: [{name: c, image: busybox}]').serviceAccountName).toBe('default');
    expect(one('  serviceAccount: legacy\n  containers: [{name: c, image: busybox}]').serviceAccountName).toBe('legacy');
  });

  it('names the document of an error and rejects other kinds', () => {
    expect(() => parseManifests(pod('  containers: [{name: c, image: b}]') + '\n---\n' + pod('  containers: [{name: c, image: b, tty: true}]'))).toThrow(/^document 2: /);
    expect(() => parseManifests('apiVersion: apps/v1\nkind: Deployment\n')).toThrow('only apiVersion: v1, kind: Pod');
  });

  it('parses quantities', () => {
    expect(parseQuantity('64Mi', 'x')).toBe(67108864);
    expect(parseQuantity('500m', 'x')).toBe(0.5);
    expect(parseQuantity('1G', 'x')).toBe(1e9);
    expect(parseQuantity(2, 'x')).toBe(2);
    expect(() => parseQuantity('12 apples', 'x')).toThrow('not a valid quantity');
    expect(parseQuantity('1e3', 'x')).toBe(1000);
    expect(parseQuantity('0.5Gi', 'x')).toBe(2 ** 29);
    // A suffix or an exponent, not both.
    expect(() => parseQuantity('1e3Mi', 'x')).toThrow('not a valid quantity');
    expect(() => parseQuantity('5e-1Ki', 'x')).toThrow('not a valid quantity');
  });
});

describe('environment', () => {
  // A node of 4 CPUs and 8 GiB: allocatable memory is 100 MiB less (the kubelet's default evictionHard).
  const allocatable = nodeAllocatable(8 * 2 ** 30, 4);
  const values = { podIPs: [] as string[], hostIP: '1.2.3.4', nodeName: 'n', serviceAccountName: 'default', allocatable };
  it('expands $(VAR) like Kubernetes', () => {
    const vars: Record<string, string> = { A: 'a', B: 'b' };
    const look = (n: string) => vars[n];
    expect(expand('$(A)-$(B)', look)).toBe('a-b');
    expect(expand('$$(A)', look)).toBe('$(A)');
    expect(expand('$(MISSING)', look)).toBe('$(MISSING)');
    expect(expand('$$', look)).toBe('$');
    expect(expand('$x $(A', look)).toBe('$x $(A');
    expect(expand('trailing $', look)).toBe('trailing $');
  });

  it('resolves fieldRef and resourceFieldRef', () => {
    const s = one(`  containers:
    - name: c
      image: busybox
      resources: {limits: {memory: 64Mi, cpu: 250m}}
      env:
        - {name: A, value: x}
        - {name: B, value: "$(A)y"}
        - {name: M, valueFrom: {resourceFieldRef: {resource: limits.memory}}}
        - {name: MI, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
        - {name: CPU, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}
        - {name: RCPU, valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}}
        - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        - {name: L, valueFrom: {fieldRef: {fieldPath: "metadata.labels['none']"}}}`);
    const env = Object.fromEntries(containerEnv(s, s.containers[0]!, { ...values, podIPs: ['10.0.0.5'] }).map((e) => [e.key, e.value]));
    expect(env).toEqual({ A: 'x', B: 'xy', M: '67108864', MI: '64', CPU: '1', RCPU: '250', IP: '10.0.0.5', L: '' });
  });

  it('status.podIPs joins every pod IP with ","', () => {
    const s = one('  containers: [{name: c, image: busybox, env: [{name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}, {name: IPS, valueFrom: {fieldRef: {fieldPath: status.podIPs}}}]}]');
    const env = containerEnv(s, s.containers[0]!, { ...values, podIPs: ['10.0.0.5', 'fd00::5'] });
    expect(env).toEqual([
      { key: 'IP', value: '10.0.0.5' },
      { key: 'IPS', value: '10.0.0.5,fd00::5' },
    ]);
  });

  it('downwardAPI files: labels and annotations as sorted key="value" lines (quoted, no last newline), a field, a resource', () => {
    const s = parseManifests(
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {b: "2", a: "1"}\n  annotations: {note: 'say "hi"'}\nspec:\n  containers: [{name: c, image: busybox, resources: {limits: {memory: 64Mi}}}]`,
    )[0]!.spec;
    const file = (item: Omit<DownwardAPIItem, 'path' | 'mode'>) => downwardAPIContent(s, { path: 'f', mode: null, ...item }, allocatable);
    expect(file({ fieldRef: { fieldPath: 'metadata.labels' } })).toBe('a="1"\nb="2"');
    expect(file({ fieldRef: { fieldPath: 'metadata.annotations' } })).toBe('note="say \\"hi\\""');
    expect(file({ fieldRef: { fieldPath: "metadata.labels['b']" } })).toBe('2');
    expect(file({ resourceFieldRef: { containerName: 'c', resource: 'limits.memory', divisor: '1Mi' } })).toBe('64');
  });

  it('takes valueFrom beside an empty value, as the API allows', () => {
    const s = one('  containers: [{name: c, image: busybox, env: [{name: "N", value: "", valueFrom: {fieldRef: {fieldPath: metadata.name}}}]}]');
    expect(containerEnv(s, s.containers[0]!, values)).toEqual([{ key: 'N', value: 'p' }]);
  });

  it('resourceFieldRef: a divisor of 0 is 1; a limit of 0 is the node\'s allocatable, as a missing one', () => {
    const s = one(`  containers:
    - name: c
      image: busybox
      resources: {limits: {cpu: 0, memory: 0}}
      env:
        - {name: CPU, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 0}}}
        - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Ki}}}
        - {name: KB, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1k}}}`);
    const env = Object.fromEntries(containerEnv(s, s.containers[0]!, values).map((e) => [e.key, e.value]));
    const memory = 8 * 2 ** 30 - 100 * 2 ** 20;
    expect(env).toEqual({ CPU: '4', MEM: String(memory / 1024), KB: String(Math.ceil(memory / 1000)) });
  });
  it('resourceFieldRef: a divisor written in its own family is taken whatever its spelling ("1000" is 1k, "1024Ki" is 1Mi, "0.001" is 1m)', () => {
    const s = one(`  containers:
    - name: c
      image: busybox
      resources: {limits: {cpu: 2, memory: 4Mi}}
      env:
        - {name: K, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: "1000"}}}
        - {name: MI, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1024Ki}}}
        - {name: M, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: "0.001"}}}
        - {name: ONE, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1000m}}}`);
    const env = Object.fromEntries(containerEnv(s, s.containers[0]!, values).map((e) => [e.key, e.value]));
    expect(env).toEqual({ K: String(Math.ceil((4 * 2 ** 20) / 1000)), MI: '4', M: '2000', ONE: '2' });
  });
});

describe('STATUS and RESTARTS columns', () => {
  const rec = (over: Partial<PodRecord> = {}) => ({ phase: 'Pending', reason: '', initialized: false, deleting: false, ...over }) as PodRecord;
  const st = (state: object, extra: object = {}) => ({ name: 'x', state, lastState: {}, ready: false, started: false, restartCount: 0, image: '', containerID: '', probes: {}, ...extra });
  it('follows kubectl', () => {
    const done = st({ terminated: { exitCode: 0, reason: 'Completed', startedAt: '', finishedAt: '', containerID: '' } });
    const running = st({ running: { startedAt: '' } }, { ready: true });
    expect(podColumns(rec(), [{ ...running, sidecar: false }, { ...st({ waiting: { reason: 'PodInitializing' } }), sidecar: false }], [], false).status).toBe('Init:0/2');
    expect(podColumns(rec(), [{ ...done, sidecar: false }, { ...running, sidecar: false }], [], false).status).toBe('Init:1/2');
    expect(podColumns(rec({ phase: 'Running', initialized: true }), [{ ...done, sidecar: false }], [running], false).status).toBe('Running');
    expect(podColumns(rec({ phase: 'Running', initialized: true }), [], [st({ waiting: { reason: 'CrashLoopBackOff' } })], false).status).toBe('CrashLoopBackOff');
    expect(podColumns(rec({ phase: 'Succeeded', initialized: true }), [], [done], false).status).toBe('Completed');
    expect(podColumns(rec({ phase: 'Running', initialized: true, deleting: true }), [], [running], false).status).toBe('Terminating');
    expect(podColumns(rec({ phase: 'Failed', initialized: true }), [], [st({ terminated: { exitCode: 1, reason: 'Error', startedAt: '', finishedAt: '', containerID: '' } })], false).status).toBe('Error');
    expect(podColumns(rec(), [{ ...running, started: true, sidecar: true }, { ...running, sidecar: false }], [], false).status).toBe('Init:1/2');
  });

  it('RESTARTS as kubectl: the init containers up to the current one while initializing, then the sidecars\' and the apps\', with the latest restart', () => {
    const ended = (at: string, restartCount: number, state: object, sidecar = false) =>
      ({ ...st(state, { restartCount, lastState: { terminated: { exitCode: 1, reason: 'Error', startedAt: '', finishedAt: at, containerID: '' } } }), sidecar });
    const done = { terminated: { exitCode: 0, reason: 'Completed', startedAt: '', finishedAt: '', containerID: '' } };
    const up = { running: { startedAt: '' } };
    const t1 = '2026-01-01T00:00:01.000Z';
    const t2 = '2026-01-01T00:00:02.000Z';
    const t3 = '2026-01-01T00:00:03.000Z';
    // Initializing: the first init container's 2 and the current one's 1; the next init and the app not yet.
    const initializing = podColumns(rec(), [ended(t1, 2, done), ended(t2, 1, up), ended(t3, 4, {})], [ended(t3, 5, {})], false);
    expect([initializing.status, initializing.restarts, initializing.lastRestart]).toEqual(['Init:1/3', 3, Date.parse(t2)]);
    // Initialized: a regular init container's restarts no longer count, a sidecar's do.
    const initialized = podColumns(rec({ phase: 'Running', initialized: true }), [ended(t3, 2, done), ended(t1, 1, up, true)], [ended(t2, 3, up)], false);
    expect([initialized.restarts, initialized.lastRestart]).toEqual([4, Date.parse(t2)]);
    // No restart: no time, whatever the last state says.
    expect(podColumns(rec({ phase: 'Running', initialized: true }), [], [ended(t1, 0, up)], false)).toMatchObject({ restarts: 0, lastRestart: 0 });
  });

  it('a completed container beside a running one: Running if the pod is Ready, else NotReady, as kubectl', () => {
    const done = st({ terminated: { exitCode: 0, reason: 'Completed', startedAt: '', finishedAt: '', containerID: '' } });
    const ready = st({ running: { startedAt: '' } }, { ready: true });
    const unready = st({ running: { startedAt: '' } });
    const running = rec({ phase: 'Running', initialized: true });
    expect(podColumns(running, [], [done, ready], false).status).toBe('NotReady');
    expect(podColumns(running, [], [done, ready], true).status).toBe('Running');
    // kubectl counts only a ready running container as running.
    expect(podColumns(running, [], [done, unready], false).status).toBe('Completed');
  });
});
