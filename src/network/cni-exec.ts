import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { WNOHANG } from '../ffi/constants.js';
import { errnoName, libc } from '../ffi/index.js';
import { readProcStat } from '../linux/proc.js';
import { sleep } from '../util/time.js';

/** What a plugin answered with a non-zero exit: the CNI error object, when it printed one. */
export class PluginError extends Error {
  constructor(
    message: string,
    readonly code: number | undefined,
    readonly timedOut = false,
    /** The spawn's error code, when the plugin could not be started at all. */
    readonly spawnError?: string,
  ) {
    super(message);
    this.name = 'PluginError';
  }
}

const OUTPUT_LIMIT = 4 * 1024 * 1024;
/** As libcni: a binary being written ("text file busy", a CNI DaemonSet updating its plugins) is tried again, 1 s apart. */
const BUSY_TRIES = 5;
const BUSY_WAIT_MS = 1000;

export interface ExecRequest {
  /** Executable of the plugin. */
  path: string;
  /** The CNI_* variables; the server's own environment comes too (plugins need PATH for iptables). */
  cniEnv: Record<string, string>;
  stdin: string;
  timeoutMs: number;
  /** Aborted when the call that needs the plugin is given up: the plugin is killed as at the timeout. */
  signal?: AbortSignal;
}

/**
 * Runs one plugin invocation: config on stdin, result on stdout, killed after
 * the timeout. Resolves to the parsed stdout (undefined when empty, as DEL
 * answers); rejects with a PluginError carrying the plugin's `msg`/`details`.
 * The plugin leads a process group of its own, so that the timeout kills the
 * IPAM plugins it delegated to as well; the call ends at the timeout (or
 * the abort) even when a process that escaped the group still holds its
 * stdout or stderr.
 */
export async function execPlugin(req: ExecRequest): Promise<unknown> {
  for (let attempt = 1; ; attempt++) {
    req.signal?.throwIfAborted();
    try {
      return await execOnce(req);
    } catch (err) {
      if (!(err instanceof PluginError && err.spawnError === 'ETXTBSY') || attempt === BUSY_TRIES) throw err;
      await sleep(BUSY_WAIT_MS);
    }
  }
}

/**
 * The errno name of a failed spawn: Node and Bun give it as `code`; Deno
 * only says it in the message ("Text file busy (os error 26)").
 */
function spawnErrorCode(err: NodeJS.ErrnoException): string | undefined {
  if (err.code) return err.code;
  const os = /\(os error (\d+)\)/.exec(err.message);
  return os ? errnoName(Number(os[1])) : undefined;
}

function execOnce(req: ExecRequest): Promise<unknown> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('CNI_')) env[k] = v;
  }
  Object.assign(env, req.cniEnv);
  const label = `CNI plugin ${req.path} (${req.cniEnv.CNI_COMMAND})`;
  return new Promise((resolve, reject) => {
    const spawnFailed = (err: NodeJS.ErrnoException) => new PluginError(`${label}: ${err.message}`, undefined, false, spawnErrorCode(err));
    let child: ChildProcess;
    try {
      child = spawn(req.path, [], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    } catch (err) {
      // Node throws some exec failures (ETXTBSY) at once rather than emitting them.
      reject(spawnFailed(err as NodeJS.ErrnoException));
      return;
    }
    const out: Buffer[] = [];
    const errOut: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let settled = false;
    const finish = (err: Error | undefined, value?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(value);
    };
    const killed = (err: PluginError) => {
      if (settled) return;
      const pgid = child.pid!;
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // the whole group is gone already
      }
      for (const s of [child.stdin, child.stdout, child.stderr]) s?.destroy();
      reapGroup(pgid);
      finish(err);
    };
    const timer = setTimeout(() => killed(new PluginError(`${label} timed out after ${req.timeoutMs / 1000} s`, undefined, true)), req.timeoutMs);
    const onAbort = () => killed(new PluginError(`${label} stopped: ${(req.signal!.reason as Error | undefined)?.message ?? 'aborted'}`, undefined));
    req.signal?.addEventListener('abort', onAbort);
    child.stdout!.on('data', (d: Buffer) => {
      if (outLen < OUTPUT_LIMIT) out.push(d);
      outLen += d.length;
    });
    child.stderr!.on('data', (d: Buffer) => {
      if (errLen < 64 * 1024) errOut.push(d);
      errLen += d.length;
    });
    // A plugin that exits without reading stdin makes the write fail with EPIPE: its exit status tells.
    child.stdin!.on('error', () => {});
    child.stdin!.end(req.stdin);
    child.once('error', (err: NodeJS.ErrnoException) => finish(spawnFailed(err)));
    child.once('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString('utf8').trim();
      const stderr = Buffer.concat(errOut).toString('utf8').trim();
      let parsed: unknown;
      try {
        parsed = stdout === '' ? undefined : JSON.parse(stdout);
      } catch {
        parsed = undefined;
      }
      if (code !== 0) {
        const e = parsed as { code?: number; msg?: string; details?: string } | undefined;
        if (e && typeof e.msg === 'string') {
          const details = e.details ? `: ${e.details}` : '';
          finish(new PluginError(`${label} failed: ${e.msg}${details}`, typeof e.code === 'number' ? e.code : undefined));
        } else {
          const why = signal ? `killed by ${signal}` : `exit status ${code}`;
          const text = (stderr || stdout).slice(0, 2000);
          finish(new PluginError(`${label} failed (${why})${text ? `: ${text}` : ''}`, undefined));
        }
        return;
      }
      if (stdout !== '' && parsed === undefined) {
        finish(new PluginError(`${label}: output is not JSON: ${stdout.slice(0, 500)}`, undefined));
        return;
      }
      finish(undefined, parsed);
    });
  });
}

/**
 * After a timeout's kill: the group's processes whose parent died with them
 * are re-parented to the server (a child subreaper), and only it can reap
 * them; else they stay zombies for the server's lifetime. Polled in the
 * background for a few seconds. The plugin itself is the runtime's child,
 * reaped by the runtime.
 */
function reapGroup(pgid: number): void {
  const deadline = Date.now() + 5000;
  const sweep = () => {
    let members = 0;
    for (const name of readdirSync('/proc')) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || pid === pgid) continue;
      const st = readProcStat(pid);
      if (st?.pgrp !== pgid) continue;
      members++;
      // A zombie cannot change pid: this waitpid reaps exactly that process.
      if (st.state === 'Z' && st.ppid === process.pid) {
        try {
          libc().waitpid(pid, WNOHANG);
        } catch {
          // reaped meanwhile
        }
      }
    }
    if (members > 0 && Date.now() < deadline) setTimeout(sweep, 50).unref?.();
  };
  sweep();
}
