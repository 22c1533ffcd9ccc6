import { constants as osConstants } from 'node:os';
import { parseArgs } from 'node:util';
import { serveFlags, serveFlagsUsage, serveOptions } from './cli/serve-flags.js';
import { imageUsage, podUsage, UsageError } from './cli/usage.js';
import { defaultConfig, defaultConfigPath, loadConfig, version, type ServerConfig } from './config.js';
import { createLogger } from './log.js';

const usage = `peapod ${version}: a Kubernetes CRI v1 pod runtime

Usage:
  peapod serve ${serveFlagsUsage}
  peapod doctor [the flags of serve] [--json]
${imageUsage}
${podUsage}
  peapod --version
  peapod --help

serve     runs the CRI server (RuntimeService and ImageService) on a unix socket
          defaults: --socket ${defaultConfig.socket} --root ${defaultConfig.root} --state ${defaultConfig.state}
          --config: a JSON file of ServerConfig keys (default ${defaultConfigPath} if it exists);
          flags override the file, the file overrides the defaults
          --streaming-port: the 127.0.0.1 port of the exec/port-forward server (default 0: ephemeral)
          --stream-idle-timeout 4h: close an exec/attach/port-forward connection idle that long (0: never)
          --network cni (default): pods get their network from the CNI config in --cni-conf-dir
          (default ${defaultConfig.cniConfDir}), plugins from --cni-bin-dir (repeatable, default
          ${defaultConfig.cniBinDirs.join(':')}); none: pods get loopback only
          --registry-mirror registry.k8s.io=http://127.0.0.1:5000: try that endpoint first for
          pulls from that registry (repeatable); --insecure-registry: reach HOST over plain HTTP
          --metrics-address 127.0.0.1:9090: serve Prometheus metrics at /metrics (default: off)
          --manifest-dir DIR: static pods (a manifest file added starts its pods, changed recreates
          them, removed deletes them); --pod-log-dir: pod logs (default ${defaultConfig.podLogDir})
          --pod-cgroup-root: the cgroup of pods given no cgroup_parent (default ${defaultConfig.podCgroupRoot})
          --cdi-spec-dir DIR: where CDI device specs are (repeatable, a later one wins; default
          ${defaultConfig.cdiSpecDirs.join(' then ')})
doctor    checks this host for what the server with the same config file and flags needs;
          prints OK / WARN / ERROR with a fix each; exits 1 when any check is ERROR
image     talks to a running server on --socket: load imports OCI-layout or docker-archive
          tarballs (optionally gzipped; --name names an unnamed archive or completes a
          tag-only ref.name); ls, rm and pull use CRI ImageService, as crictl does
run, get, describe, logs, exec, delete
          kubectl-style commands for the server's pod runner; logs -f follows the container
          across restarts, instance after instance, until no instance follows or the pod is
          deleted; exec streams the command's output and exits with its code; -i streams stdin
          in (its end closes the command's); -it gives the command a terminal when stdin is one
          (raw mode, resizes)
`;

async function serve(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: serveOptions, strict: true });
  // Flags override the config file (--config, else /etc/peapod/config.json if present), which overrides defaults.
  const config: ServerConfig = loadConfig(serveFlags(values), values.config);
  // A log line whose reader is gone (`peapod serve 2>&1 | head`) is lost; the server lives on.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  const log = createLogger(config.logLevel);
  // Each command loads what it needs when run: `peapod get pods` starts in a third less time without the server's modules.
  const { startDaemon } = await import('./daemon.js');
  const daemon = await startDaemon(config, log);
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) {
      log.warn('shutting down at once', { signal });
      daemon.abort();
      process.exit(1);
    }
    closing = true;
    log.info('shutting down; pods keep running (a second signal exits at once)', { signal });
    daemon.close().then(
      () => exitFlushed(0),
      (err: unknown) => {
        log.error('shutdown failed', { err });
        return exitFlushed(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/**
 * Where stdout is a pipe, Bun and Deno write it asynchronously: exiting at
 * once could drop the end of an exec's output or the last log line. Bun calls
 * an empty write back at once, with the writes before it still queued (and
 * `writableLength` 0); `end()` calls back once everything is written, on all three.
 */
async function exitFlushed(code: number): Promise<never> {
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => s.end(resolve))));
  process.exit(code);
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  // Node ignores SIGPIPE: a reader that went away (`peapod logs x | head`) would be an EPIPE
  // thrown at the next write. End as a program the signal killed, quietly (an exec's stream
  // closes with the process, and the server kills the command).
  if (cmd !== 'serve') {
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      process.exit(128 + osConstants.signals.SIGPIPE);
    });
  }
  try {
    switch (cmd) {
      case 'serve':
        await serve(rest);
        return -1; // keeps running
      case 'image':
        return await (await import('./cli/image.js')).imageCommand(rest);
      case 'doctor':
        return await (await import('./cli/doctor.js')).doctorCommand(rest);
      case 'run':
      case 'get':
      case 'describe':
      case 'logs':
      case 'exec':
      case 'delete':
        return await (await import('./cli/pod.js')).podCommand(cmd, rest);
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
if (code >= 0) await exitFlushed(code);
