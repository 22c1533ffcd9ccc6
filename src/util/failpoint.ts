import { internal } from '../errors.js';

/**
 * Fault injection for tests: PEAPOD_FAILPOINTS="name[=action],..." where
 * action is "error" (default: the step throws) or "exit" (the server dies at
 * once, as with kill -9), or at an awaited point "delay-MS". Unset in
 * production, where this is a map lookup. The helpers inherit the variable:
 * the monitor takes "delay-MS" at its own points (failpoint_delay, native/util.c).
 */
const points = new Map<string, string>();
for (const item of (process.env.PEAPOD_FAILPOINTS ?? '').split(',')) {
  const [name, action] = item.split('=');
  if (name) points.set(name.trim(), (action ?? 'error').trim());
}

/** As failpoint(), where an action "delay-MS" makes the step wait that long instead: a window for a race under test. */
export async function failpointAsync(name: string): Promise<void> {
  const ms = /^delay-(\d+)$/.exec(points.get(name) ?? '')?.[1];
  if (ms === undefined) return failpoint(name);
  // Said, so a test can act within the window rather than guess when it opens.
  process.stderr.write(`failpoint ${name}: waiting ${ms} ms\n`);
  await new Promise((r) => setTimeout(r, Number(ms)));
}

export function failpoint(name: string): void {
  const action = points.get(name);
  if (action === undefined) return;
  if (action === 'exit') process.kill(process.pid, 'SIGKILL');
  throw internal(`failpoint ${name} triggered`);
}
