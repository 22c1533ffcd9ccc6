// `peapod doctor`: checks this host and prints CHECK / STATUS / DETAIL / FIX.
// Exit code 0 when nothing is ERROR, 1 otherwise (2 for a bad command line).

import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, defaultConfig, defaultConfigPath, loadConfig, type ServerConfig } from '../config.js';
import { formatTable, hostInputs, runChecks, type CheckResult } from '../doctor/checks.js';
import { serveFlags, serveOptions } from './serve-flags.js';

export async function doctorCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      // The server's own flags: the checks are those of the server they would start.
      ...serveOptions,
      json: { type: 'boolean' },
      // Read host facts from DIR instead of /proc (tests point it at a fake one).
      proc: { type: 'string' },
    },
    strict: true,
  });
  const flags = serveFlags(values);
  let config: ServerConfig;
  let configRow: CheckResult;
  try {
    config = loadConfig(flags, values.config);
    const file = values.config ?? defaultConfigPath;
    const used = values.config !== undefined || existsSync(file);
    configRow = { name: 'config', status: 'OK', detail: used ? `read ${file}` : `defaults (no ${file})` };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    config = { ...defaultConfig, ...flags };
    configRow = {
      name: 'config',
      status: 'ERROR',
      detail: err.message,
      fix: 'correct the config file (keys and types as in ServerConfig, see README "Config file"); the checks below use the defaults and flags',
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
