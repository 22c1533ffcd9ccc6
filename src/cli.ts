import { parseArgs } from 'node:util';
import { imageCommand, imageUsage } from './cli/image.js';
import { UsageError } from './cli/usage.js';
import { defaultConfig, version, type ServerConfig } from './config.js';
import { startDaemon } from './daemon.js';
import { createLogger, isLogLevel } from './log.js';

const usage = `peapod ${version}: a Kubernetes CRI v1 pod runtime

Usage:
  peapod serve [--socket PATH] [--root DIR] [--state DIR] [--log-level debug|info|warn|error]
${imageUsage}
  peapod --version
  peapod --help

serve     runs the CRI server (RuntimeService and ImageService) on a unix socket
          defaults: --socket ${defaultConfig.socket} --root ${defaultConfig.root} --state ${defaultConfig.state}
image     talks to a running server on --socket: load imports OCI-layout or docker-archive
          tarballs (optionally gzipped; --name names an unnamed archive or completes a
          tag-only ref.name); ls, rm and pull use CRI ImageService, as crictl does
`;

async function serve(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      socket: { type: 'string' },
      root: { type: 'string' },
      state: { type: 'string' },
      'log-level': { type: 'string' },
    },
    strict: true,
  });
  const level = values['log-level'] ?? defaultConfig.logLevel;
  if (!isLogLevel(level)) throw new UsageError(`--log-level must be debug, info, warn or error (got "${level}")`);
  const config: ServerConfig = {
    ...defaultConfig,
    socket: values.socket ?? defaultConfig.socket,
    root: values.root ?? defaultConfig.root,
    state: values.state ?? defaultConfig.state,
    logLevel: level,
  };
  const log = createLogger(level);
  const daemon = await startDaemon(config, log);
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info('shutting down; pods keep running', { signal });
    daemon.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'serve':
        await serve(rest);
        return -1; // keeps running
      case 'image':
        return await imageCommand(rest);
      case '--version':
      case 'version':
        process.stdout.write(`peapod ${version}\n`);
        return 0;
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        process.stdout.write(usage);
        return cmd === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (err) {
    const usageErr = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`peapod: ${(err as Error).message}\n`);
    if (usageErr) process.stderr.write(`Run "peapod --help" for usage.\n`);
    return usageErr ? 2 : 1;
  }
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exit(code);
