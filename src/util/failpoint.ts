import { internal } from '../errors.js';

/**
 * Fault injection for tests: PEAPOD_FAILPOINTS="name[=action],..." where
 * action is "error" (default: the step throws) or "exit" (the server dies at
 * once, as with kill -9). Unset in production, where this is a map lookup.
 */
const points = new Map<string, string>();
for (const item of (process.env.PEAPOD_FAILPOINTS ?? '').split(',')) {
  const [name, action] = item.split('=');
  if (name) points.set(name.trim(), (action ?? 'error').trim());
}

export function failpoint(name: string): void {
  const action = points.get(name);
  if (action === undefined) return;
  if (action === 'exit') process.kill(process.pid, 'SIGKILL');
  throw internal(`failpoint ${name} triggered`);
}
