// Kubernetes remote command (exec, attach) over SPDY: the stream-per-channel
// protocol of k8s.io/apimachinery/pkg/util/remotecommand, versions
// channel.k8s.io (v1), v2, v3 (adds resize) and v4 (exit status as a
// metav1.Status JSON on the error stream).
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../log.js';
import { InputRelay, relay, type Sink } from './flow.js';
import { RstStatus, type SpdySession, type SpdyStream } from './spdy.js';

export const SPDY_EXEC_PROTOCOLS = ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'] as const;

export interface ExecOptions {
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  /** The client's terminal size when it is known before the start. */
  size?: { width: number; height: number };
}

/** A running exec (or attach): what the protocols relay. */
export interface ExecProcess {
  stdin: Writable | null;
  stdout: Readable | null;
  stderr: Readable | null;
  resize(width: number, height: number): void;
  /** The exit code, once the process has exited and its output is drained. */
  exited: Promise<number>;
  /** Ends the command (the client went away). */
  kill(): void;
}

/** Starts the command of a stream request; throws (domain errors) when it cannot. */
export type ExecStarter = (opts: ExecOptions) => ExecProcess;

/** Where a started command's output and end go, in either protocol (output without a sink is discarded). */
export interface ExecSinks {
  stdout: Sink | undefined;
  stderr: Sink | undefined;
  finish(result: number | Error): void;
}

/**
 * Starts the command once the protocol is ready (its streams open, the first
 * terminal size known): hands it the client's input (what came before, and
 * the rest), wires its output and its end. Returns null when it could not
 * start (`finish` got the error).
 */
export function startExec(start: ExecStarter, opts: ExecOptions, input: InputRelay | null, sinks: ExecSinks): ExecProcess | null {
  let p: ExecProcess;
  try {
    p = start(opts);
  } catch (err) {
    sinks.finish(err as Error);
    return null;
  }
  input?.start(p.stdin);
  for (const [src, sink] of [[p.stdout, sinks.stdout], [p.stderr, sinks.stderr]] as const) {
    if (src && sink) relay(src, sink);
    else src?.resume();
  }
  p.exited.then(sinks.finish, (e: Error) => sinks.finish(e));
  return p;
}

/** How long a client may take to open its streams after the upgrade. */
export const STREAM_CREATION_TIMEOUT_MS = 30_000;

/**
 * The client offers versions in X-Stream-Protocol-Version (repeated headers,
 * joined with commas by the HTTP parser); its first one the server knows wins.
 */
export function negotiate(offered: string | string[] | undefined, supported: readonly string[]): string | null {
  const list = (Array.isArray(offered) ? offered : [offered ?? ''])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
  return list.find((p) => supported.includes(p)) ?? null;
}

export function isStatusProtocol(protocol: string): boolean {
  return protocol === 'v4.channel.k8s.io' || protocol === 'v5.channel.k8s.io' || protocol === 'v4.base64.channel.k8s.io';
}

/**
 * What goes on the error stream when the command is over: v4 and later a
 * metav1.Status JSON (always), older versions the message of a failure only.
 */
export function exitReport(protocol: string, exitCode: number | Error, cmd: string[]): Buffer | null {
  let status: Record<string, unknown>;
  if (exitCode instanceof Error) {
    status = { metadata: {}, status: 'Failure', message: `error executing command in container: ${exitCode.message}`, reason: 'InternalError', code: 500 };
  } else if (exitCode === 0) {
    status = { metadata: {}, status: 'Success' };
  } else {
    status = {
      metadata: {},
      status: 'Failure',
      message: `command terminated with non-zero exit code: error executing command [${cmd.join(' ')}], exit code ${exitCode}`,
      reason: 'NonZeroExitCode',
      details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
    };
  }
  if (isStatusProtocol(protocol)) return Buffer.from(JSON.stringify(status));
  return status.status === 'Success' ? null : Buffer.from(String(status.message));
}

/**
 * The client's reading of an exitReport (v4 and later): Success is 0, a
 * NonZeroExitCode failure its ExitCode cause; any other failure is an error.
 */
export function exitCodeOf(report: string): number {
  let status: { status?: string; message?: string; reason?: string; details?: { causes?: Array<{ reason?: string; message?: string }> } };
  try {
    status = JSON.parse(report) as typeof status;
  } catch {
    throw new Error(`malformed exit status from the server: ${report.slice(0, 200)}`);
  }
  if (status.status === 'Success') return 0;
  const code = status.details?.causes?.find((c) => c.reason === 'ExitCode')?.message;
  if (status.reason === 'NonZeroExitCode' && code !== undefined && /^\d+$/.test(code)) return Number(code);
  throw new Error(status.message || `the command failed: ${report.slice(0, 200)}`);
}

/** Terminal size messages: a sequence of JSON objects {"Width":W,"Height":H}. */
export class ResizeDecoder {
  private buf = '';

  push(chunk: Buffer): { width: number; height: number }[] {
    this.buf += chunk.toString('utf8');
    const out: { width: number; height: number }[] = [];
    for (;;) {
      const start = this.buf.indexOf('{');
      const end = this.buf.indexOf('}', start);
      if (start < 0 || end < 0) break;
      const text = this.buf.slice(start, end + 1);
      this.buf = this.buf.slice(end + 1);
      try {
        const v = JSON.parse(text) as { Width?: unknown; Height?: unknown };
        const width = Number(v.Width);
        const height = Number(v.Height);
        // A size without area is skipped, as the kubelet's HandleResizing does (no 0x0 TIOCSWINSZ).
        if (Number.isInteger(width) && Number.isInteger(height) && width >= 1 && height >= 1 && width <= 0xffff && height <= 0xffff) {
          out.push({ width, height });
        }
      } catch {
        // a malformed message is dropped, as the kubelet does
      }
    }
    if (this.buf.length > 4096) this.buf = '';
    return out;
  }
}

/**
 * Serves one exec/attach over an upgraded SPDY session: waits for the
 * client's streams (error, plus stdin/stdout/stderr/resize as the request
 * asked), starts the command, relays, then reports the exit on the error
 * stream and closes the session.
 */
export function serveSpdyExec(
  session: SpdySession,
  protocol: string,
  opts: ExecOptions,
  cmd: string[],
  start: ExecStarter,
  log: Logger,
): void {
  const withResize = opts.tty && (protocol === 'v3.channel.k8s.io' || protocol === 'v4.channel.k8s.io');
  const expected = new Set<string>(['error']);
  if (opts.stdin) expected.add('stdin');
  if (opts.stdout) expected.add('stdout');
  if (opts.stderr && !opts.tty) expected.add('stderr');
  if (withResize) expected.add('resize');

  const streams = new Map<string, SpdyStream>();
  let input: InputRelay | null = null; // made with the stdin stream
  let size: { width: number; height: number } | null = null;
  let proc: ExecProcess | null = null;
  let finished = false;

  const timer = setTimeout(() => {
    log.debug('stream: client did not open its streams in time', { protocol, have: [...streams.keys()] });
    session.close();
  }, STREAM_CREATION_TIMEOUT_MS);

  const finish = (result: number | Error) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    for (const t of ['stdout', 'stderr', 'stdin', 'resize']) {
      const s = streams.get(t);
      if (s && !s.localClosed) s.end();
    }
    const err = streams.get('error');
    const report = exitReport(protocol, result, cmd);
    if (err) err.end(report ?? undefined);
    session.close();
  };

  session.on('close', () => {
    clearTimeout(timer);
    if (!finished) {
      finished = true;
      proc?.kill();
    }
  });

  const begin = () => {
    clearTimeout(timer);
    const out = streams.get('stdout');
    const errOut = streams.get('stderr') ?? (opts.tty ? out : undefined);
    proc = startExec(start, { ...opts, size: size ?? undefined }, input, { stdout: out, stderr: errOut, finish });
  };

  session.on('stream', (s: SpdyStream) => {
    const type = s.header('streamtype') ?? '';
    if (finished || !['error', 'stdin', 'stdout', 'stderr', 'resize'].includes(type) || streams.has(type)) {
      s.rst(RstStatus.REFUSED_STREAM);
      return;
    }
    s.reply();
    streams.set(type, s);
    if (type === 'stdin') {
      const stdin = (input = new InputRelay(s));
      s.on('data', (d: Buffer) => stdin.write(d));
      s.on('end', () => stdin.end());
    } else if (type === 'resize') {
      const dec = new ResizeDecoder();
      s.on('data', (d: Buffer) => {
        for (const r of dec.push(d)) {
          if (proc) proc.resize(r.width, r.height);
          else size = r;
        }
      });
    } else {
      s.on('data', () => {}); // nothing is expected from the client on these
    }
    if (!proc && [...expected].every((t) => streams.has(t))) begin();
  });
}
