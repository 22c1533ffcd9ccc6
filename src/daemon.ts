import { createReadStream, existsSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { packageRoot, type ServerConfig } from './config.js';
import { ContainerManager } from './container/manager.js';
import { containerHandlers } from './cri/container.js';
import { eventHandlers } from './cri/events.js';
import { imageHandlers } from './cri/image.js';
import { peapodHandlers } from './cri/peapod.js';
import { podHandlers } from './cri/pods.js';
import { PodRunner } from './pod/runner.js';
import { StaticPods } from './pod/static.js';
import { pullImage } from './image/registry.js';
import { runtimeInfoHandlers } from './cri/runtime.js';
import { sandboxHandlers } from './cri/sandbox.js';
import { serveCri, type CriServer } from './cri/server.js';
import { streamHandlers } from './cri/stream.js';
import { loadLibc } from './ffi/index.js';
import { ImageService } from './image/service.js';
import { StreamBackend } from './stream/backend.js';
import { StreamServer } from './stream/server.js';
import type { RegistryConfig } from './image/registry.js';
import type { Logger } from './log.js';
import { Cgroups } from './linux/cgroups.js';
import { HostNamespaces } from './linux/namespaces.js';
import { Helpers } from './linux/helpers.js';
import { Reaper } from './linux/reaper.js';
import { CniNetwork } from './network/cni.js';
import { serveMetrics } from './metrics.js';
import { loopbackOnlyNetwork } from './network/status.js';
import { SandboxManager } from './sandbox/manager.js';
import { EventBus } from './util/events.js';

export interface Daemon {
  sandboxes: SandboxManager;
  containers: ContainerManager;
  images: ImageService;
  close(): Promise<void>;
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

/** Builds every subsystem from its state on disk, then opens the socket. */
export async function startDaemon(config: ServerConfig, log: Logger): Promise<Daemon> {
  const libc = await loadLibc();
  await fsp.mkdir(config.root, { recursive: true, mode: 0o700 });
  await fsp.mkdir(config.state, { recursive: true, mode: 0o700 });
  const hostNs = HostNamespaces.open();
  const reaper = new Reaper();
  reaper.start();
  const helpers = new Helpers(join(config.state, 'helpers.sock'), reaper);
  await helpers.listen();
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
      : new CniNetwork({ confDir: config.cniConfDir, binDirs: config.cniBinDirs, state: config.state, log });
  const sandboxes = new SandboxManager({
    ...config,
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
  containers = new ContainerManager({ ...config, log, sandboxes, images, cgroups: Cgroups.detect(), events, reaper, helpers });
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
    pull: async (ref) => {
      await pullImage(images, ref, { config: registryConfig(config), log: (level, msg, fields) => log[level](msg, fields) });
    },
    backoffBaseMs: Number(process.env.PEAPOD_BACKOFF_BASE_MS) || undefined,
    evictionPeriodMs: Number(process.env.PEAPOD_EVICTION_PERIOD_MS) || undefined,
    clusterDomain: config.clusterDomain,
  });
  await pods.load();
  const staticPods = config.manifestDir ? new StaticPods(config.manifestDir, pods, log) : undefined;
  staticPods?.start();
  const streamBackend = new StreamBackend({ containers, sandboxes, nativeDir: config.nativeDir });
  const streaming = await StreamServer.start({ port: config.streamingPort, backend: streamBackend, log });

  const runtime = {
    ...runtimeInfoHandlers(
      () => network.status(),
      () => ({ ...config, ffi: libc.backend, podNetwork: network.info() }),
      (cidr) => network.setPodCidr(cidr),
    ),
    ...sandboxHandlers(sandboxes, containers),
    ...streamHandlers(streamBackend, streaming),
    ...containerHandlers(containers, sandboxes, (id) => join(config.root, 'containers', id)),
    ...eventHandlers(events, containers, sandboxes, log),
  };
  // Monitors report exits on the helpers socket; an exit whose report found no
  // server (during a restart) is noticed by polling exit.json while anyone
  // listens for events.
  const exitPoll = setInterval(() => {
    if (events.listenerCount > 0) containers.list();
  }, 500);
  exitPoll.unref?.();
  const metricsServer = config.metricsAddress
    ? await serveMetrics(config.metricsAddress, () => metricGauges(sandboxes, containers, images), log)
    : undefined;
  let server: CriServer;
  try {
    server = await serveCri(config.socket, { runtime, image: imageHandlers(images, () => registryConfig(config), log), peapod: { ...peapodHandlers(images), ...podHandlers(pods) } }, log);
  } catch (err) {
    await containers.close();
    await streaming.close();
    await helpers.close();
    reaper.stop();
    clearInterval(exitPoll);
    metricsServer?.close();
    throw err;
  }
  log.info('peapod serving', { socket: config.socket, root: config.root, state: config.state, ffi: libc.backend });

  return {
    sandboxes,
    containers,
    images,
    async close() {
      // Pods outlive the server: only the socket and timers go.
      staticPods?.stop();
      await pods.close();
      await server.close();
      await containers.close();
      await streaming.close();
      await helpers.close();
      reaper.stop();
      clearInterval(exitPoll);
      await new Promise<void>((resolve) => (metricsServer ? metricsServer.close(() => resolve()) : resolve()));
      await fsp.rm(config.socket, { force: true });
    },
  };
}
