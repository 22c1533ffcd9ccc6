// Docker image reference parsing and normalisation, following the grammar of
// github.com/distribution/reference (the one `docker pull` and containerd use):
//
//   reference  := name [ ":" tag ] [ "@" digest ]
//   name       := [domain "/"] path-component ["/" path-component]*
//   domain     := host [":" port]      (host: dns labels, "localhost" or [ipv6])
//
// Normalisation (ParseNormalizedNamed + TagNameOnly):
//   busybox                → docker.io/library/busybox:latest
//   user/app               → docker.io/user/app:latest
//   index.docker.io/x      → docker.io/library/x:latest
//   host:5000/x            → host:5000/x:latest        (host kept)
//   localhost/x            → localhost/x:latest
//   x@sha256:<64 hex>      → docker.io/library/x@sha256:<hex>   (no :latest added)
//   x:1@sha256:<hex>       → docker.io/library/x:1@sha256:<hex> (both kept)

import { invalidArgument } from '../errors.js';

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';
const NAME_TOTAL_MAX = 255;

const ALNUM = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const DOMAIN_LABEL = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_LABEL}(?:\\.${DOMAIN_LABEL})*`;
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const HOST = `(?:${DOMAIN_NAME}|${IPV6})`;
const DOMAIN = `${HOST}(?::[0-9]+)?`;

const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const SHA256_HEX_RE = /^[a-f0-9]{64}$/;

export interface Reference {
  /** Registry host, with port if any: "docker.io", "host:5000". */
  readonly domain: string;
  /** Repository path inside the registry: "library/busybox". */
  readonly path: string;
  /** Tag, if any (normalised references without digest always have one). */
  readonly tag?: string;
  /** Digest ("sha256:<hex>"), if any. */
  readonly digest?: string;
}

/** domain/path — the repository name. */
export function repository(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

export function formatReference(ref: Reference): string {
  let s = repository(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** Validates a digest string ("sha256:<64 lowercase hex>" for sha256). */
export function isValidDigest(d: string): boolean {
  if (!DIGEST_RE.test(d)) return false;
  const [alg, hex] = d.split(':', 2) as [string, string];
  if (alg === 'sha256') return SHA256_HEX_RE.test(hex);
  return true;
}

/** Splits a domain off a (still un-normalised) name, the way Docker does. */
function splitDockerDomain(name: string): { domain: string; path: string } {
  const i = name.indexOf('/');
  let domain: string;
  let path: string;
  if (
    i === -1 ||
    (!/[.:]/.test(name.slice(0, i)) && name.slice(0, i) !== 'localhost' && name.slice(0, i).toLowerCase() === name.slice(0, i))
  ) {
    domain = DEFAULT_DOMAIN;
    path = name;
  } else {
    domain = name.slice(0, i);
    path = name.slice(i + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_REPO_PREFIX + path;
  return { domain, path };
}

/**
 * Parses a reference as Docker does and normalises it. When `defaultTag` is true
 * (the default) a reference without tag and digest gets ":latest".
 * Throws InvalidArgument on anything Docker would reject.
 */
export function parseReference(input: string, opts: { defaultTag?: boolean } = {}): Reference {
  const s = input.trim();
  if (s === '') throw invalidArgument('invalid reference: empty');
  if (s !== input) throw invalidArgument(`invalid reference "${input}": surrounding whitespace`);

  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isValidDigest(digest)) throw invalidArgument(`invalid reference "${input}": invalid digest "${digest}"`);
  }
  // A tag follows the last ':' if there's no '/' after it (otherwise it's a port).
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon !== -1 && !rest.slice(colon + 1).includes('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw invalidArgument(`invalid reference "${input}": invalid tag "${tag}"`);
  }
  const name = rest;
  if (name === '') throw invalidArgument(`invalid reference "${input}": empty name`);
  if (SHA256_HEX_RE.test(name)) {
    throw invalidArgument(`invalid reference "${input}": cannot specify 64-byte hexadecimal strings as a name`);
  }
  const { domain, path } = splitDockerDomain(name);
  if (!DOMAIN_RE.test(domain)) throw invalidArgument(`invalid reference "${input}": invalid domain "${domain}"`);
  if (path !== path.toLowerCase()) {
    throw invalidArgument(`invalid reference "${input}": repository name must be lowercase`);
  }
  if (!PATH_RE.test(path)) throw invalidArgument(`invalid reference "${input}": invalid repository name "${path}"`);
  if (domain.length + 1 + path.length > NAME_TOTAL_MAX) {
    throw invalidArgument(`invalid reference "${input}": repository name longer than ${NAME_TOTAL_MAX} characters`);
  }
  if (tag === undefined && digest === undefined && opts.defaultTag !== false) tag = DEFAULT_TAG;
  const ref: { domain: string; path: string; tag?: string; digest?: string } = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** Normalised string form: `busybox` → `docker.io/library/busybox:latest`. */
export function normalizeReference(input: string): string {
  return formatReference(parseReference(input));
}

/** Like parseReference but returns undefined instead of throwing. */
export function tryParseReference(input: string): Reference | undefined {
  try {
    return parseReference(input);
  } catch {
    return undefined;
  }
}

/** True if `s` is a bare tag (what skopeo/umoci write into ref.name). */
export function isTagOnly(s: string): boolean {
  return TAG_RE.test(s) && !s.includes('/');
}

/** Short, human form as Docker prints it: docker.io/library/busybox:latest → busybox:latest. */
export function familiarString(ref: Reference): string {
  let name = repository(ref);
  if (ref.domain === DEFAULT_DOMAIN) {
    name = ref.path.startsWith(OFFICIAL_REPO_PREFIX) ? ref.path.slice(OFFICIAL_REPO_PREFIX.length) : ref.path;
  }
  return formatReference({ ...ref, domain: '', path: name }).replace(/^\//, '');
}
