import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { failedPrecondition, internal, PeapodError } from '../errors.js';
import type { Helpers, SpawnedHelper } from '../linux/helpers.js';
import { identify, type ProcessIdentity } from '../linux/proc.js';
import { libc } from '../ffi/index.js';
import { O_CLOEXEC, O_DIRECTORY, O_PATH } from '../ffi/constants.js';

/**
 * Spawns the per-container native monitor (native/monitor.c): it forks the
 * container init, owns its stdio and log, and records its exit in
 * <dir>/exit.json, so none of that depends on the server staying alive.
 * It joins the pod's namespaces from the spec; it reports under the
 * container id. (Most creates take a spare instead: SpareMonitors.)
 */
export function spawnMonitor(helpers: Helpers, nativeDir: string, id: string, specPath: string, dir: string): SpawnedHelper {
  return helpers.spawn(join(nativeDir, 'peapod-monitor'), monitorArgs(specPath, dir), id, { stderr: join(dir, 'monitor.log') });
}

/** The end of a monitor's argv: it names the container's runtime dir, so an unrecorded monitor can be found. */
export function monitorArgs(specPath: string, dir: string): string[] {
  return ['--spec', specPath, '--dir', dir];
}

/**
 * Waits until the monitor reports the container init ready to exec (CREATED); `monitor`: its identity when known (a spare's).
 * `warning`: what the set-up could not do without failing (an OOM score or capabilities the runtime lacks).
 */
export async function awaitCreated(
  started: SpawnedHelper,
  known?: ProcessIdentity,
): Promise<{ monitor: ProcessIdentity; init: ProcessIdentity; warning?: string }> {
  let m;
  try {
    m = await started.report;
  } catch (err) {
    throw failedPrecondition(`container set-up failed: ${(err as Error).message}`);
  }
  if (m.word !== 'created') throw failedPrecondition(`container set-up failed: ${m.text}`);
  const monitor = known ?? identify(started.pid);
  // "PID START [WARNING]": the monitor read the init's start time, which spares a /proc read here.
  const [pid, startTime, ...warning] = m.text.split(' ');
  if (!monitor || !startTime) throw internal(`container monitor exited at once, or reported no init start time ("${m.text}")`);
  return { monitor, init: { pid: Number(pid), startTime }, ...(warning.length > 0 && { warning: warning.join(' ') }) };
}

/**
 * One request to container `id`'s monitor: "start", "reopen", "ping". Goes
 * on the connection its "created" report came on while the server holds it
 * (no connection to make), else on its control socket. A command whose
 * connection is lost before the reply is asked again on the control socket
 * (the monitor may or may not have had it; each command is safe to repeat).
 */
export async function control(helpers: Helpers, id: string, dir: string, command: string, timeoutMs = 30_000): Promise<string> {
  const kept = helpers.command(id, command, timeoutMs);
  if (kept) {
    let line: string | undefined;
    try {
      line = await kept;
    } catch (e) {
      if (e instanceof PeapodError) throw e; // no answer in time: asking again would wait as long
    }
    if (line !== undefined) return parseReply(line);
  }
  return parseReply(await controlSocket(dir, command, timeoutMs));
}

function parseReply(line: string): string {
  if (line === 'ok' || line.startsWith('ok ')) return line.slice(3);
  throw failedPrecondition(line.replace(/^error /, ''));
}

/**
 * One request on the monitor's control socket, resolving to the reply line.
 * Connects through /proc/self/fd/<dir fd>/ because the full path can exceed
 * the 108 bytes a unix socket address holds.
 */
function controlSocket(dir: string, command: string, timeoutMs: number): Promise<string> {
  const dirFd = libc().open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  return new Promise<string>((resolve, reject) => {
    const sock = connect(`/proc/self/fd/${dirFd}/control.sock`);
    let reply = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(internal(`container monitor did not answer "${command}" within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(command + '\n'));
    sock.on('data', (d: string) => {
      reply += d;
      const nl = reply.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.destroy();
      resolve(reply.slice(0, nl));
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(failedPrecondition(`container monitor is not reachable: ${e.message}`));
    });
  }).finally(() => libc().close(dirFd));
}

export interface ExitRecord {
  exitCode: number;
  signal: number;
  finishedAt: bigint;
  startedAt: bigint;
  /** Why the start failed, when it did (the program never ran). */
  startError?: string;
}

/** The exit the monitor recorded, or undefined while the container runs. */
export function readExit(dir: string): ExitRecord | undefined {
  const path = join(dir, 'exit.json');
  // Asked for every running container on every list: a missing file costs no exception.
  if (!existsSync(path)) return undefined;
  let raw: { exitCode: number; signal: number; finishedAt: string; startedAt: string; error?: string };
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
  return {
    exitCode: raw.exitCode,
    signal: raw.signal,
    finishedAt: BigInt(raw.finishedAt),
    startedAt: BigInt(raw.startedAt),
    ...(raw.error !== undefined && { startError: raw.error }),
  };
}

/** The time of the start in the monitor's answer to "start" ("ok STARTED_AT" less its "ok "). */
export function startedAtOf(reply: string): bigint | undefined {
  return /^[1-9][0-9]*$/.test(reply) ? BigInt(reply) : undefined;
}

/** When the monitor saw the exec succeed (monitor.json, written before it answers "start"). */
export function readStartedAt(dir: string): bigint | undefined {
  try {
    const raw = JSON.parse(readFileSync(join(dir, 'monitor.json'), 'utf8')) as { startedAt?: string };
    return raw.startedAt ? BigInt(raw.startedAt) : undefined;
  } catch {
    return undefined;
  }
}
