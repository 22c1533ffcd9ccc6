import { accessSync, constants, readdirSync, readFileSync, statSync, type Dirent } from 'node:fs';
import { join } from 'node:path';

/**
 * CNI spec versions peapod speaks, as libcni: 0.1.0 and 0.2.0 results carry
 * `ip4`/`ip6`, 0.3.x ones have the 0.4.0 shape, 1.1.0 ones the 1.0.0 one.
 */
export const supportedVersions = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

/** One plugin entry of a network configuration list, as written in the file. */
export type PluginConf = Record<string, unknown> & { type: string };

export interface ConfList {
  name: string;
  /** The version peapod speaks with the plugins: the highest supported of `cniVersion` and `cniVersions`. */
  cniVersion: string;
  plugins: PluginConf[];
  /** A `.conflist`'s word that its plugins are all in it (none from `<conf dir>/<name>/*.conf`); true for a `.conf`. */
  loadOnlyInlinedPlugins: boolean;
  /** The file it came from. */
  file: string;
}

export type LoadResult =
  | { ok: true; list: ConfList; binaries: string[] }
  | { ok: false; message: string };

const extensions = ['.conflist', '.conf', '.json'];

/** A network name as libcni validates it (it also names the directory of plugin files). */
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * Parses one config file; a `.conf`/`.json` holds one plugin, wrapped into a
 * list. A `.conflist` may leave its plugins to files of their own
 * (loadNetwork reads them), unless it says `loadOnlyInlinedPlugins`.
 */
export function parseConfFile(file: string, text: string): ConfList {
  const obj = jsonObject(file, text);
  const isList = file.endsWith('.conflist');
  // As go-cni: a .conf/.json is one plugin, and a list put in one is an error, not taken.
  if (!isList && obj.type === undefined) throw new Error(`${file}: no "type"; perhaps this is a .conflist?`);
  if (typeof obj.name !== 'string' || obj.name === '') throw new Error(`${file}: "name" is required`);
  if (!NETWORK_NAME.test(obj.name)) {
    throw new Error(`${file}: network name "${obj.name}" is invalid: a letter or digit, then letters, digits, '_', '.' or '-'`);
  }
  const cniVersion = pickVersion(file, obj);
  if (!isList) return { name: obj.name, cniVersion, plugins: [checkPlugin(file, 'plugin 0', obj)], loadOnlyInlinedPlugins: true, file };
  // libcni reads these as booleans or "true"/"false": peapod calls neither CHECK nor GC, but a bad value is still an error.
  for (const key of ['disableCheck', 'disableGC']) listFlag(file, obj, key);
  const inlinedOnly = listFlag(file, obj, 'loadOnlyInlinedPlugins');
  if (obj.plugins === undefined && inlinedOnly) throw new Error(`${file}: "loadOnlyInlinedPlugins" is true, and there is no "plugins"`);
  const plugins = obj.plugins ?? [];
  if (!Array.isArray(plugins) || (obj.plugins !== undefined && plugins.length === 0)) throw new Error(`${file}: "plugins" must be a non-empty array`);
  return { name: obj.name, cniVersion, plugins: plugins.map((p, i) => checkPlugin(file, `plugin ${i}`, p)), loadOnlyInlinedPlugins: inlinedOnly, file };
}

function jsonObject(file: string, text: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${file}: not a JSON object`);
  return raw as Record<string, unknown>;
}

function checkPlugin(file: string, what: string, p: unknown): PluginConf {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new Error(`${file}: ${what} is not an object`);
  const type = (p as Record<string, unknown>).type;
  if (typeof type !== 'string' || type === '' || type.includes('/') || type.startsWith('.')) throw new Error(`${file}: ${what} has no valid "type"`);
  return p as PluginConf;
}

function listFlag(file: string, obj: Record<string, unknown>, key: string): boolean {
  const v = obj[key];
  if (v === undefined || typeof v === 'boolean') return v === true;
  if (typeof v === 'string' && ['true', 'false'].includes(v.toLowerCase())) return v.toLowerCase() === 'true';
  throw new Error(`${file}: invalid value ${JSON.stringify(v)} for "${key}" (true or false)`);
}

/**
 * A network's plugin files, as libcni 1.3 aggregates them for a `.conflist`:
 * `<conf dir>/<network name>/*.conf`, by file name, each one plugin
 * object, run after the list's own.
 */
function pluginFiles(confDir: string, network: string): PluginConf[] {
  const dir = join(confDir, network);
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`cannot read the plugin files of network "${network}": ${(err as Error).message}`);
  }
  const names = entries.filter((e) => !e.isDirectory() && e.name.endsWith('.conf')).map((e) => e.name);
  return names.sort().map((name) => {
    const file = join(dir, name);
    return checkPlugin(file, 'the plugin', jsonObject(file, readFileSync(file, 'utf8')));
  });
}

/**
 * As libcni (1.2 and later): `cniVersions` lists the versions the file is
 * written for, with `cniVersion` among them; the highest one peapod speaks
 * is used, and any above it are ignored.
 */
function pickVersion(file: string, obj: Record<string, unknown>): string {
  const listed = obj.cniVersions;
  if (listed !== undefined && (!Array.isArray(listed) || !listed.every((v) => typeof v === 'string'))) {
    throw new Error(`${file}: "cniVersions" must be an array of strings`);
  }
  const wanted = [...((listed as string[] | undefined) ?? []), ...(typeof obj.cniVersion === 'string' ? [obj.cniVersion] : [])];
  const usable = wanted.filter((v) => supportedVersions.includes(v)).sort(compareVersions);
  const picked = usable.at(-1);
  if (picked === undefined) {
    const asked = wanted.length > 0 ? wanted.map((v) => `"${v}"`).join(', ') : 'none';
    throw new Error(`${file}: cniVersion ${asked} is not supported (peapod speaks ${supportedVersions.join(', ')})`);
  }
  return picked;
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return 0;
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
 * Reads the network configuration: the first `.conflist`/`.conf`/`.json` of
 * the conf dir by file name, as libcni and containerd order them (with a
 * list's plugin files), and checks that every plugin it names exists. A
 * first file that is invalid is an error, as in go-cni: the next one is not
 * used instead.
 */
export function loadNetwork(confDir: string, binDirs: string[]): LoadResult {
  let entries: Dirent[];
  try {
    entries = readdirSync(confDir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false, message: `no CNI network config: ${confDir} does not exist` };
    return { ok: false, message: `cannot read the CNI config dir: ${(err as Error).message}` };
  }
  const name = entries
    .filter((e) => !e.isDirectory() && extensions.some((x) => e.name.endsWith(x)))
    .map((e) => e.name)
    .sort()[0];
  if (name === undefined) return { ok: false, message: `no CNI network config found in ${confDir}` };
  const file = join(confDir, name);
  let list: ConfList;
  try {
    // Both name the file: a read error its path, a parse error its prefix.
    list = parseConfFile(file, readFileSync(file, 'utf8'));
    if (!list.loadOnlyInlinedPlugins) list.plugins.push(...pluginFiles(confDir, list.name));
    if (list.plugins.length === 0) throw new Error(`${file}: no plugins, in the list or in ${join(confDir, list.name)}/*.conf`);
  } catch (err) {
    return { ok: false, message: `invalid CNI network config: ${(err as Error).message}` };
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
