// Shape checks for the image JSON peapod reads from archives and registries
// (index, manifest, config): anything that is not what the code below it
// relies on becomes an InvalidArgument naming the field, never a TypeError.
import { invalidArgument } from '../errors.js';
import type { Descriptor, ImageConfigJson, IndexJson, ManifestJson } from './types.js';

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringMap = (v: unknown) => isObject(v) && Object.values(v).every((x) => typeof x === 'string');
const isStringArray = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');

function kind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

export function checkDescriptor(d: unknown, what: string): Descriptor {
  if (!isObject(d)) throw invalidArgument(`${what}: descriptor is ${kind(d)}, not an object`);
  if (typeof d.digest !== 'string') throw invalidArgument(`${what}: descriptor digest is ${kind(d.digest)}, not a string`);
  if (d.size !== undefined && !(Number.isSafeInteger(d.size) && (d.size as number) >= 0)) {
    throw invalidArgument(`${what}: descriptor ${d.digest.slice(0, 80)} size ${String(d.size).slice(0, 40)} is not a byte count`);
  }
  if (d.mediaType !== undefined && typeof d.mediaType !== 'string') throw invalidArgument(`${what}: descriptor mediaType is ${kind(d.mediaType)}, not a string`);
  if (d.annotations !== undefined && !isStringMap(d.annotations)) throw invalidArgument(`${what}: descriptor annotations must map strings to strings`);
  if (d.platform !== undefined) {
    const p = d.platform;
    if (!isObject(p) || typeof p.os !== 'string' || typeof p.architecture !== 'string' || (p.variant !== undefined && typeof p.variant !== 'string')) {
      throw invalidArgument(`${what}: descriptor platform must have string os and architecture`);
    }
  }
  return d as unknown as Descriptor;
}

export function checkIndex(j: unknown, what: string): IndexJson {
  if (!isObject(j)) throw invalidArgument(`${what}: index is ${kind(j)}, not an object`);
  if (!Array.isArray(j.manifests)) throw invalidArgument(`${what}: index has no manifests array`);
  j.manifests.forEach((d, i) => checkDescriptor(d, `${what} manifests[${i}]`));
  return j as unknown as IndexJson;
}

export function checkManifest(j: unknown, what: string): ManifestJson {
  if (!isObject(j) || !isObject(j.config) || !Array.isArray(j.layers)) throw invalidArgument(`${what}: not an image manifest (config and layers)`);
  checkDescriptor(j.config, `${what} config`);
  j.layers.forEach((d, i) => checkDescriptor(d, `${what} layers[${i}]`));
  return j as unknown as ManifestJson;
}

/** The config fields peapod uses; null stands for absent, as docker writes it. */
export function checkConfig(j: unknown, what: string): ImageConfigJson {
  if (!isObject(j)) throw invalidArgument(`${what}: config is ${kind(j)}, not an object`);
  if (!isObject(j.rootfs) || !isStringArray(j.rootfs.diff_ids)) throw invalidArgument(`${what}: config has no rootfs.diff_ids array of digests`);
  for (const f of ['os', 'architecture', 'variant'] as const) {
    if (j[f] !== undefined && j[f] !== null && typeof j[f] !== 'string') throw invalidArgument(`${what}: config ${f} is ${kind(j[f])}, not a string`);
  }
  const c = j.config;
  if (c !== undefined && c !== null) {
    if (!isObject(c)) throw invalidArgument(`${what}: config.config is ${kind(c)}, not an object`);
    for (const f of ['User', 'WorkingDir', 'StopSignal'] as const) {
      if (c[f] !== undefined && c[f] !== null && typeof c[f] !== 'string') throw invalidArgument(`${what}: config.config.${f} is ${kind(c[f])}, not a string`);
    }
    for (const f of ['Env', 'Entrypoint', 'Cmd'] as const) {
      if (c[f] !== undefined && c[f] !== null && !isStringArray(c[f])) throw invalidArgument(`${what}: config.config.${f} must be an array of strings`);
    }
    if (c.Labels !== undefined && c.Labels !== null && !isStringMap(c.Labels)) throw invalidArgument(`${what}: config.config.Labels must map strings to strings`);
  }
  return j as unknown as ImageConfigJson;
}
