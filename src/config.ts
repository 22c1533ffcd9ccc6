import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import type { LogLevel } from './log.js';

/** Where the package lives: dist/.. or src/.. alike. */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface ServerConfig {
  /** gRPC unix socket (CRI and peapod's own service). */
  socket: string;
  /** Persistent state: images, sandbox and container records. */
  root: string;
  /** Runtime state that dies with a reboot: pinned namespaces, pid files. */
  state: string;
  logLevel: LogLevel;
  /** Native helpers built from native/. */
  nativeDir: string;
}

export const defaultConfig: ServerConfig = {
  socket: '/run/peapod/peapod.sock',
  root: '/var/lib/peapod',
  state: '/run/peapod',
  logLevel: 'info',
  nativeDir: process.env.PEAPOD_NATIVE_DIR ?? join(packageRoot, 'native', 'build'),
};

export const version = '0.1.0';
