// `peapod doctor`: checks this host and prints CHECK / STATUS / DETAIL / FIX.
// Exit code 0 when nothing is ERROR, 1 otherwise (2 for a bad command line).

import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, defaultConfig, defaultConfigPath, loadConfig, type ServerConfig } from '../config.js';
import { formatTable, hostInputs, runChecks, type CheckResult } from '../doctor/checks.js';

export async function doctorCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      socket: { type: 'string' },
      root: { type: 'string' },
      state: { type: 'string' },
      json: { type: 'boolean' },
      // Read host facts from DIR instead of /proc (tests point it at a fake one).
      proc: { type: 'string' },
    },
    strict: true,
  });
  const flags = { socket: values.socket, root: values.root, state: values.state };
  let config: ServerConfig;
  let configRow: CheckResult;
  try {
    config = loadConfig(flags, values.config);
    const file = values.config ?? defaultConfigPath;
    const used = values.config !== undefined || existsSync(file);
    configRow = { name: 'config', status: 'OK', detail: used ? `read ${file}` : `defaults (no ${file})` };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    config = { ...defaultConfig, ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) };
    configRow = {
      name: 'config',
      status: 'ERROR',
      detail: err.message,
      fix: 'correct the config file (keys and types as in ServerConfig, see README "Config file"); the checks below use the defaults',
    };
  }
  const inputs = hostInputs(config);
  if (values.proc !== undefined) inputs.proc = values.proc;
  const results = [configRow, ...(await runChecks(inputs))];
  const ok = !results.some((r) => r.status === 'ERROR');
  if (values.json) process.stdout.write(JSON.stringify({ ok, checks: results }, null, 2) + '\n');
  else process.stdout.write(formatTable(results));
  return ok ? 0 : 1;
}
