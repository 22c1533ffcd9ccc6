import { spawn } from 'node:child_process';

/** What a plugin answered with a non-zero exit: the CNI error object, when it printed one. */
export class PluginError extends Error {
  constructor(
    message: string,
    readonly code: number | undefined,
    readonly timedOut = false,
  ) {
    super(message);
    this.name = 'PluginError';
  }
}

const OUTPUT_LIMIT = 4 * 1024 * 1024;

export interface ExecRequest {
  /** Executable of the plugin. */
  path: string;
  /** The CNI_* variables; the server's own environment comes too (plugins need PATH for iptables). */
  cniEnv: Record<string, string>;
  stdin: string;
  timeoutMs: number;
}

/**
 * Runs one plugin invocation: config on stdin, result on stdout, killed after
 * the timeout. Resolves to the parsed stdout (undefined when empty, as DEL
 * answers); rejects with a PluginError carrying the plugin's `msg`/`details`.
 */
export function execPlugin(req: ExecRequest): Promise<unknown> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('CNI_')) env[k] = v;
  }
  Object.assign(env, req.cniEnv);
  const label = `CNI plugin ${req.path} (${req.cniEnv.CNI_COMMAND})`;
  return new Promise((resolve, reject) => {
    const child = spawn(req.path, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const errOut: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, req.timeoutMs);
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
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new PluginError(`${label}: ${err.message}`, undefined));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8').trim();
      const stderr = Buffer.concat(errOut).toString('utf8').trim();
      if (timedOut) {
        reject(new PluginError(`${label} timed out after ${req.timeoutMs / 1000} s`, undefined, true));
        return;
      }
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
          reject(new PluginError(`${label} failed: ${e.msg}${details}`, typeof e.code === 'number' ? e.code : undefined));
        } else {
          const why = signal ? `killed by ${signal}` : `exit status ${code}`;
          const text = (stderr || stdout).slice(0, 2000);
          reject(new PluginError(`${label} failed (${why})${text ? `: ${text}` : ''}`, undefined));
        }
        return;
      }
      if (stdout !== '' && parsed === undefined) {
        reject(new PluginError(`${label}: output is not JSON: ${stdout.slice(0, 500)}`, undefined));
        return;
      }
      resolve(parsed);
    });
  });
}
