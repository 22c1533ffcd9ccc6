import { createReadStream, existsSync, promises as fsp, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { durationMs, packageRoot, type ServerConfig } from './config.js';
import { CdiDevices } from './container/cdi.js';
import { ContainerManager } from './container/manager.js';
import { containerHandlers } from './cri/container.js';
import { eventHandlers } from './cri/events.js';
import { imageHandlers } from './cri/image.js';
import { metricHandlers } from './cri/metrics.js';
import { peapodHandlers } from './cri/peapod.js';
import { podHandlers } from './cri/pods.js';
import { PodRunner } from './pod/runner.js';
import { StaticPods } from './pod/static.js';
import { pullImage } from './image/registry.js';
import { runtimeInfoHandlers } from './cri/runtime.js';
import { sandboxHandlers } from './cri/sandbox.js';
import { checkSocketPath, serveCri, SHUTDOWN_GRACE_MS } from './cri/server.js';
import { streamHandlers } from './cri/stream.js';
import { isSyscallError, loadLibc, LOCK_EX, LOCK_NB, O_CLOEXEC, O_CREAT, O_RDWR, type Libc } from './ffi/index.js';
import { ImageService } from './image/service.js';
import { StreamBackend } from './stream/backend.js';
import { StreamServer } from './stream/server.js';
import type { RegistryConfig } from './image/registry.js';
import type { Logger } from './log.js';
import { Cgroups } from './linux/cgroups.js';
import { HostNamespaces } from './linux/namespaces.js';
import { Helpers } from './linux/helpers.js';
import { bindReadOnly, unmount } from './linux/mount.js';
import { Reaper } from './linux/reaper.js';
import { CniNetwork } from './network/cni.js';
import { serveMetrics } from './metrics.js';
import { loopbackOnlyNetwork } from './network/status.js';
import { SandboxManager } from './sandbox/manager.js';
import { EventBus } from './util/events.js';
import { Rollback } from './util/rollback.js';

export interface Daemon {
  sandboxes: SandboxManager;
  containers: ContainerManager;
  images: ImageService;
  close(): Promise<void>;
  /** Removes the socket at once, for a process about to exit without closing. */
  abort(): void;
}

function registryConfig(config: ServerConfig): RegistryConfig {
  return { mirrors: config.registryMirrors, insecure: config.insecureRegistries, dockerConfigPath: config.dockerConfig };
}

/** The pause image peapod ships (images/build/pause.tar), so sandboxes never need a pull. */
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.9';

async function importEmbeddedPause(images: ImageService, log: Logger): Promise<void> {
  const tar = join(packageRoot, 'images', 'build', 'pause.tar');
  if (images.resolve(PAUSE_IMAGE) || !existsSync(tar)) return;
  try {
    await images.import(createReadStream(tar));
    log.info('imported the embedded pause image', { image: PAUSE_IMAGE });
  } catch (err) {
    log.warn('cannot import the embedded pause image', { tar, err });
  }
}

function metricGauges(sandboxes: SandboxManager, containers: ContainerManager, images: ImageService) {
  const byState: Record<string, number> = { CREATED: 0, RUNNING: 0, EXITED: 0, UNKNOWN: 0 };
  for (const c of containers.list()) byState[containers.stateOf(c)]!++;
  return {
    pods: sandboxes.list().length,
    containers: byState,
    imageBytes: images.list().reduce((sum, i) => sum + i.size, 0),
  };
}

/**
 * Holds `<dir>/peapod.lock` (an exclusive flock) until the process ends, or
 * throws naming the server that holds it: two servers on one root or state
 * dir take each other's pods over and replace each other's helpers socket.
 * The fd is close-on-exec, so no helper that outlives the server keeps it.
 */
function lockDir(libc: Libc, dir: string, flag: string): number {
  const path = join(dir, 'peapod.lock');
  const fd = libc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600);
  try {
    libc.flock(fd, LOCK_EX | LOCK_NB);
  } catch (err) {
    libc.close(fd);
    if (!isSyscallError(err, 'EAGAIN')) throw err;
    // Empty while the holder has not written its pid yet.
    const pid = readFileSync(path, 'utf8').trim();
    throw new Error(`another peapod server${pid ? ` (pid ${pid})` : ''} is using ${flag} ${dir} (${path} is locked); stop it or choose another ${flag}`);
  }
  writeFileSync(path, `${process.pid}\n`);
  return fd;
}

/** A listener that could not start, named by the setting that chose its address. */
function listenError(flag: string, value: string | number, err: unknown): Error {
  const why = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'address in use' : (err as Error).message;
  return new Error(`${flag} ${value}: ${why}`, { cause: err });
}

/**
 * Builds every subsystem from its state on disk, then opens the socket.
 * Nothing is touched before the root and state dirs are locked and the socket
 * is known to be free; a step that fails undoes every one before it.
 */
export async function startDaemon(config: ServerConfig, log: Logger): Promise<Daemon> {
  const libc = await loadLibc();
  await fsp.mkdir(config.root, { recursive: true, mode: 0o700 });
  await fsp.mkdir(config.state, { recursive: true, mode: 0o700 });
  const undo = new Rollback();
  try {
    const daemon = await build(config, log, libc, undo);
    undo.commit();
    return daemon;
  } catch (err) {
    await undo.run((what, e) => log.warn('undoing a failed start', { what, err: e }));
    throw err;
  }
}

/** startDaemon's steps; each that leaves something behind registers its undo. */
async function build(config: ServerConfig, log: Logger, libc: Libc, undo: Rollback): Promise<Daemon> {
  const locks = [lockDir(libc, config.state, '--state')];
  undo.add('unlock', () => locks.forEach((fd) => libc.close(fd)));
  // One lock when both are the same dir: a second flock of it would fail against the first.
  if (realpathSync(config.root) !== realpathSync(config.state)) locks.push(lockDir(libc, config.root, '--root'));
  await checkSocketPath(config.socket);
  // Helpers run from a read-only bind of the native dir: one a container made
  // execute itself in its namespaces (a `#!/proc/self/exe` program,
  // CVE-2019-5736) cannot be written through its /proc/<pid>/exe. Bound in
  // the root, not onto itself, so that a build or upgrade there still works.
  const nativeDir = join(config.root, 'native');
  bindReadOnly(config.nativeDir, nativeDir);
  undo.add('native dir bind', () => unmount(nativeDir));

  const hostNs = HostNamespaces.open();
  const reaper = new Reaper();
  reaper.start();
  undo.add('reaper', () => reaper.stop());
  const helpers = new Helpers(join(config.state, 'helpers.sock'), reaper);
  await helpers.listen();
  undo.add('helpers socket', () => helpers.close());
  const images = await ImageService.open({
    root: join(config.root, 'images'),
    log: (level, msg, fields) => log[level](msg, fields),
    // security.capability and overlay's opaque-dir marker need a real setxattr.
    setxattr: (file, name, value) => libc.lsetxattr(file, name, value),
  });
  await importEmbeddedPause(images, log);
  const events = new EventBus((err) => log.error('event listener failed', { err }));
  // Sandboxes and containers refer to each other through these hooks only.
  let containers!: ContainerManager;
  const network =
    config.network === 'none'
      ? loopbackOnlyNetwork()
      : new CniNetwork({ confDir: config.cniConfDir, binDirs: config.cniBinDirs, root: config.root, state: config.state, log });
  const sandboxes = new SandboxManager({
    ...config,
    nativeDir,
    network: config.network === 'none' ? undefined : network,
    log,
    hostNs,
    reaper,
    helpers,
    events,
    beforeStop: async (id) => {
      await containers.settleCreates(id);
      for (const c of containers.inSandbox(id)) await containers.stop(c.id, 0);
    },
    beforeRemove: async (sb) => {
      for (const c of containers.inSandbox(sb.id)) await containers.remove(c.id);
      await containers.removeSandboxCgroup(sb);
    },
  });
  containers = new ContainerManager({ ...config, nativeDir, log, sandboxes, images, cgroups: Cgroups.detect(), events, reaper, helpers });
  undo.add('spare monitors', () => containers.close());
  await sandboxes.load();
  await containers.load();
  const pods = new PodRunner({
    root: config.root,
    state: config.state,
    logRoot: config.podLogDir,
    sandboxes,
    containers,
    images,
    hostNs,
    log,
    pull: async (ref, signal) => {
      await pullImage(images, ref, { config: registryConfig(config), signal, log: (level, msg, fields) => log[level](msg, fields) });
    },
    backoffBaseMs: Number(process.env.PEAPOD_BACKOFF_BASE_MS) || undefined,
    evictionPeriodMs: Number(process.env.PEAPOD_EVICTION_PERIOD_MS) || undefined,
    clusterDomain: config.clusterDomain,
  });
  undo.add('pod loops', () => pods.close(SHUTDOWN_GRACE_MS));
  await pods.load();
  // As the kubelet: a manifest dir that does not exist is named, and watched all the same (it may come later).
  if (config.manifestDir && !existsSync(config.manifestDir)) log.warn('the static pod manifest directory does not exist', { manifestDir: config.manifestDir });
  const staticPods = config.manifestDir ? new StaticPods(config.manifestDir, pods, log) : undefined;
  staticPods?.start();
  if (staticPods) undo.add('static pods', () => staticPods.stop());
  const streamBackend = new StreamBackend({ containers, sandboxes, nativeDir });
  const streaming = await StreamServer.start({ port: config.streamingPort, idleTimeoutMs: durationMs(config.streamIdleTimeout), backend: streamBackend, log }).catch((err: unknown) => {
    throw listenError('--streaming-port', config.streamingPort, err);
  });
  undo.add('streaming server', () => streaming.close());

  const runtime = {
    ...runtimeInfoHandlers(
      () => network.probe(),
      () => ({ ...config, ffi: libc.backend, podNetwork: network.info() }),
      (cidr) => network.setPodCidr(cidr),
    ),
    ...sandboxHandlers(sandboxes, containers),
    ...streamHandlers(streamBackend, streaming),
    ...containerHandlers(containers, sandboxes, (id) => join(config.root, 'containers', id), new CdiDevices(config.cdiSpecDirs, log)),
    ...eventHandlers(events, containers, sandboxes, log),
    ...metricHandlers(containers, sandboxes),
  };
  // Monitors report exits on the helpers socket; an exit whose report found no
  // server (during a restart) is noticed by polling exit.json while anyone
  // listens for events.
  const exitPoll = setInterval(() => {
    if (events.listenerCount > 0) containers.list();
  }, 500);
  exitPoll.unref?.();
  undo.add('exit poll', () => clearInterval(exitPoll));
  const metricsServer = config.metricsAddress
    ? await serveMetrics(config.metricsAddress, () => metricGauges(sandboxes, containers, images), log).catch((err: unknown) => {
        throw listenError('--metrics-address', config.metricsAddress, err);
      })
    : undefined;
  if (metricsServer) undo.add('metrics server', () => new Promise<void>((resolve) => metricsServer.close(() => resolve())));
  const server = await serveCri(config.socket, { runtime, image: imageHandlers(images, () => registryConfig(config), log), peapod: { ...peapodHandlers(images), ...podHandlers(pods) } }, log);
  log.info('peapod serving', { socket: config.socket, root: config.root, state: config.state, ffi: libc.backend });

  return {
    sandboxes,
    containers,
    images,
    async close() {
      // Pods outlive the server: only the socket and timers go. No new call is
      // taken from here on; calls under way and the pod loops' syncs (a stop
      // can wait out a grace period) get SHUTDOWN_GRACE_MS: records are crash-safe
      // and the next server takes the pods over.
      staticPods?.stop();
      await Promise.all([server.close(), pods.close(SHUTDOWN_GRACE_MS)]);
      await containers.close();
      await streaming.close();
      await helpers.close();
      reaper.stop();
      clearInterval(exitPoll);
      await new Promise<void>((resolve) => (metricsServer ? metricsServer.close(() => resolve()) : resolve()));
      unmount(nativeDir);
      for (const fd of locks) libc.close(fd);
    },
    abort() {
      rmSync(config.socket, { force: true });
    },
  };
}
