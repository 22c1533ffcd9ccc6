// Probe and hook actions (exec, httpGet, tcpSocket, grpc, sleep) and the per-container
// probe workers (startup, liveness, readiness).

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ContainerManager } from '../container/manager.js';
import { isKind } from '../errors.js';
import type { HostNamespaces } from '../linux/namespaces.js';
import { sleep } from '../util/time.js';
import type { ProbeRequest, ProbeResult } from './probe-child.js';
import type { Handler, PortSpec, Probe, ProbeKind, ProbeStatus } from './types.js';

export interface ActionTarget {
  containerId: string;
  /** The pod's pinned network namespace; undefined for host-network pods. */
  netns: string | undefined;
  podIP: string;
  ports: PortSpec[];
}

/** A probe that errors is tried again at once, up to this many tries in one period (the kubelet's maxProbeRetries). */
const PROBE_TRIES = 3;

const childScript = fileURLToPath(new URL('./probe-child.js', import.meta.url));

/** This runtime's command for a script: node, bun, or `deno run -A`. */
function scriptCommand(script: string, arg: string): string[] {
  const g = globalThis as { Deno?: unknown };
  if (g.Deno !== undefined) return [process.execPath, 'run', '-A', script, arg];
  return [process.execPath, script, arg];
}

export class Actions {
  constructor(
    private readonly containers: ContainerManager,
    private readonly hostNs: HostNamespaces,
  ) {}

  /**
   * Runs a hook or probe action; resolves to its result, never rejects. timeoutSeconds 0: no timeout (exec hooks).
   * A hook's httpGet succeeds on any HTTP answer, as the kubelet's runHTTPHandler.
   */
  async run(h: Handler, t: ActionTarget, timeoutSeconds: number, hook = false): Promise<ProbeResult> {
    if (timeoutSeconds <= 0) return this.runOnce(h, t, 0, hook);
    // A guard over the action's own timeout, so a stuck helper never stalls a probe worker.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const guard = new Promise<ProbeResult>((resolve) => {
      timer = setTimeout(() => resolve({ ok: false, outcome: 'error', message: `timed out after ${timeoutSeconds}s` }), timeoutSeconds * 1000 + 3000);
    });
    try {
      return await Promise.race([this.runOnce(h, t, timeoutSeconds, hook), guard]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Whatever keeps the action from running (a port name that does not resolve, a container not running) is an 'error' outcome. */
  private async runOnce(h: Handler, t: ActionTarget, timeoutSeconds: number, hook: boolean): Promise<ProbeResult> {
    try {
      if (h.exec) {
        let r: Awaited<ReturnType<ContainerManager['execSync']>>;
        try {
          r = await this.containers.execSync(t.containerId, h.exec.command, timeoutSeconds);
        } catch (err) {
          // A command that times out fails the probe, as in the kubelet's exec prober.
          if (isKind(err, 'DeadlineExceeded')) return { ok: false, message: (err as Error).message };
          throw err;
        }
        if (r.exitCode === 0) return { ok: true, message: '' };
        const out = (r.stdout.toString() + r.stderr.toString()).trim().slice(0, 1024);
        return { ok: false, message: `command ${JSON.stringify(h.exec.command)} exited with ${r.exitCode}${out ? `: ${out}` : ''}` };
      }
      if (h.httpGet) {
        const g = h.httpGet;
        return await this.inPod(t, {
          type: 'http',
          host: g.host || t.podIP || '127.0.0.1',
          port: resolvePort(g.port, t.ports),
          scheme: g.scheme,
          path: g.path,
          headers: g.httpHeaders,
          timeoutMs: (timeoutSeconds || 30) * 1000,
          ...(hook ? { hook, userAgent: 'kube-lifecycle/1.31' } : {}),
        });
      }
      if (h.tcpSocket) {
        return await this.inPod(t, {
          type: 'tcp',
          host: h.tcpSocket.host || t.podIP || '127.0.0.1',
          port: resolvePort(h.tcpSocket.port, t.ports),
          timeoutMs: timeoutSeconds * 1000,
        });
      }
      if (h.grpc) {
        // The kubelet asks the pod's IP only (GRPCAction has no host).
        return await this.inPod(t, { type: 'grpc', host: t.podIP || '127.0.0.1', port: h.grpc.port, service: h.grpc.service, timeoutMs: timeoutSeconds * 1000 });
      }
      if (h.sleep) {
        await sleep(h.sleep.seconds * 1000);
        return { ok: true, message: '' };
      }
      return { ok: false, outcome: 'error', message: 'no action' };
    } catch (err) {
      return { ok: false, outcome: 'error', message: (err as Error).message };
    }
  }

  /** Spawns the probe child inside the pod's network namespace. */
  private inPod(t: ActionTarget, req: ProbeRequest): Promise<ProbeResult> {
    const [cmd, ...args] = scriptCommand(childScript, JSON.stringify(req));
    return new Promise((resolve) => {
      const child = this.hostNs.inExisting(t.netns ? { net: t.netns } : {}, () =>
        spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } }),
      );
      let out = '';
      let err = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (err += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), req.timeoutMs + 5000);
      child.on('error', (e) => {
        clearTimeout(timer);
        resolve({ ok: false, outcome: 'error', message: `probe helper: ${e.message}` });
      });
      child.on('close', () => {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(out) as ProbeResult);
        } catch {
          resolve({ ok: false, outcome: 'error', message: `probe helper failed: ${err.trim().slice(0, 500) || 'no output'}` });
        }
      });
    });
  }
}

export function resolvePort(port: number | string, ports: PortSpec[]): number {
  if (typeof port === 'number') return port;
  const p = ports.find((x) => x.name === port);
  if (!p) throw new Error(`port name "${port}" is not a port of the container`);
  return p.containerPort;
}

/**
 * One probe of one container instance: waits until initialDelaySeconds after
 * the container started, then runs every periodSeconds, counting consecutive
 * results against the thresholds.
 */
export class ProbeWorker {
  private stopped = false;
  readonly status: ProbeStatus;

  constructor(
    readonly kind: ProbeKind,
    private readonly probe: Probe,
    /** When the container started (epoch ms): the initial delay counts from there, as the kubelet's. */
    private readonly startedAt: number,
    private readonly run: () => Promise<ProbeResult>,
    /** Called on every counted result, with the threshold crossing if any. */
    private readonly onResult: (status: ProbeStatus, crossed: 'success' | 'failure' | null) => void,
    /** A warning event: a probe that errored (not counted), or a success with a warning. */
    private readonly onWarning: (reason: 'Unhealthy' | 'ProbeWarning', message: string) => void,
    initial?: ProbeStatus,
  ) {
    this.status = initial ?? { kind, result: '', message: '', consecutiveSuccesses: 0, consecutiveFailures: 0, lastProbeAt: 0 };
  }

  start(): void {
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
  }

  get active(): boolean {
    return !this.stopped;
  }

  private async loop(): Promise<void> {
    await sleep(Math.max(0, this.startedAt + this.probe.initialDelaySeconds * 1000 - Date.now()));
    const label = this.kind[0]!.toUpperCase() + this.kind.slice(1);
    while (!this.stopped) {
      const began = Date.now();
      let r = await this.run();
      for (let tries = 1; r.outcome === 'error' && tries < PROBE_TRIES && !this.stopped; tries++) r = await this.run();
      if (this.stopped) return;
      if (r.outcome === 'error') {
        // The kubelet throws a prober error's result away: reported, never counted.
        this.onWarning('Unhealthy', `${label} probe errored: ${r.message}`);
      } else {
        if (r.outcome === 'warning') this.onWarning('ProbeWarning', `${label} probe warning: ${r.message}`);
        this.count(r);
      }
      const wait = this.probe.periodSeconds * 1000 - (Date.now() - began);
      if (wait > 0) await sleep(wait);
    }
  }

  private count(r: ProbeResult): void {
    const s = this.status;
    s.lastProbeAt = Date.now();
    s.message = r.message;
    let crossed: 'success' | 'failure' | null = null;
    if (r.ok) {
      s.consecutiveSuccesses++;
      s.consecutiveFailures = 0;
      if (s.consecutiveSuccesses >= this.probe.successThreshold && s.result !== 'success') crossed = 'success';
      if (s.consecutiveSuccesses >= this.probe.successThreshold) s.result = 'success';
    } else {
      s.consecutiveFailures++;
      s.consecutiveSuccesses = 0;
      if (s.consecutiveFailures >= this.probe.failureThreshold) {
        crossed = 'failure';
        s.result = 'failure';
      }
    }
    this.onResult(s, crossed);
  }
}
