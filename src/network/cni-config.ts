import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** CNI spec versions peapod speaks (0.3.x results have the 0.4.0 shape). */
export const supportedVersions = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'];

/** One plugin entry of a network configuration list, as written in the file. */
export type PluginConf = Record<string, unknown> & { type: string };

export interface ConfList {
  name: string;
  cniVersion: string;
  plugins: PluginConf[];
  /** The file it came from. */
  file: string;
}

export type LoadResult =
  | { ok: true; list: ConfList; binaries: string[] }
  | { ok: false; message: string };

const extensions = ['.conflist', '.conf', '.json'];

/** Parses one config file; a single-plugin `.conf`/`.json` is wrapped into a list. */
export function parseConfFile(file: string, text: string): ConfList {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${file}: not a JSON object`);
  const obj = raw as Record<string, unknown>;
  const isList = file.endsWith('.conflist') || Array.isArray(obj.plugins);
  const plugins = isList ? obj.plugins : [obj];
  if (!Array.isArray(plugins) || plugins.length === 0) throw new Error(`${file}: "plugins" must be a non-empty array`);
  if (typeof obj.name !== 'string' || obj.name === '') throw new Error(`${file}: "name" is required`);
  const cniVersion = typeof obj.cniVersion === 'string' ? obj.cniVersion : '';
  if (!supportedVersions.includes(cniVersion)) {
    throw new Error(`${file}: cniVersion "${cniVersion}" is not supported (peapod speaks ${supportedVersions.join(', ')})`);
  }
  for (const [i, p] of plugins.entries()) {
    if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new Error(`${file}: plugin ${i} is not an object`);
    const type = (p as Record<string, unknown>).type;
    if (typeof type !== 'string' || type === '' || type.includes('/') || type.startsWith('.')) {
      throw new Error(`${file}: plugin ${i} has no valid "type"`);
    }
  }
  return { name: obj.name, cniVersion, plugins: plugins as PluginConf[], file };
}

/** The executable for a plugin type: the first of the bin dirs that has it. */
export function findPlugin(type: string, binDirs: string[]): string | undefined {
  for (const dir of binDirs) {
    const path = join(dir, type);
    try {
      if (!statSync(path).isFile()) continue;
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not in this dir
    }
  }
  return undefined;
}

/**
 * Reads the network configuration: the first valid `.conflist`/`.conf`/`.json`
 * of the conf dir by file name, as libcni and containerd order them, and
 * checks that every plugin it names exists. Invalid files are skipped (their
 * errors are reported if no file is usable).
 */
export function loadNetwork(confDir: string, binDirs: string[]): LoadResult {
  let names: string[];
  try {
    names = readdirSync(confDir);
  } catch {
    return { ok: false, message: `no CNI network config: ${confDir} does not exist` };
  }
  const candidates = names.filter((n) => extensions.some((e) => n.endsWith(e))).sort();
  const errors: string[] = [];
  for (const name of candidates) {
    const file = join(confDir, name);
    let list: ConfList;
    try {
      list = parseConfFile(file, readFileSync(file, 'utf8'));
    } catch (err) {
      errors.push((err as Error).message);
      continue;
    }
    const binaries: string[] = [];
    const missing: string[] = [];
    for (const p of list.plugins) {
      const bin = findPlugin(p.type, binDirs);
      if (bin) binaries.push(bin);
      else missing.push(p.type);
    }
    if (missing.length > 0) {
      return {
        ok: false,
        message: `CNI plugin${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of network "${list.name}" (${file}) not found in ${binDirs.join(':')}`,
      };
    }
    return { ok: true, list, binaries };
  }
  const why = errors.length > 0 ? ` (invalid: ${errors.join('; ')})` : '';
  return { ok: false, message: `no CNI network config found in ${confDir}${why}` };
}
