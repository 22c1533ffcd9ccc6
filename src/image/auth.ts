// Registry authentication: WWW-Authenticate parsing, credentials (CRI AuthConfig
// and docker config.json) and the distribution token flow with a token cache.
//
// Token flow (https://distribution.github.io/distribution/spec/auth/token/):
//   registry answers 401 + `WWW-Authenticate: Bearer realm="…",service="…",scope="…"`
//   → GET realm?service=…&scope=… (anonymous, or with Basic user:pass)
//     or, with an identity token, POST realm (grant_type=refresh_token, OAuth2 form)
//   → {"token": "…"} or {"access_token": "…"}, optional expires_in / issued_at
//   → retry with `Authorization: Bearer <token>`.
// A `Basic` challenge is answered with the credentials directly.

import * as fs from 'node:fs';
import { internal } from '../errors.js';

export interface PullAuth {
  username?: string;
  password?: string;
  /** base64("user:pass"), as in docker config.json and CRI AuthConfig.auth */
  auth?: string;
  /** OAuth2 refresh token (docker config "identitytoken") */
  identityToken?: string;
  /** a bearer token to send to the registry as is */
  registryToken?: string;
  /**
   * CRI AuthConfig.server_address: the registry host (or URL) these credentials
   * are for; empty means every endpoint of the pull (see credentialsFor).
   */
  serverAddress?: string;
}

export interface Challenge {
  /** lower-cased scheme: "bearer", "basic", … */
  scheme: string;
  /** parameters, keys lower-cased */
  params: Record<string, string>;
}

/**
 * Parses a WWW-Authenticate value (RFC 7235), which may hold several challenges
 * (fetch joins repeated headers with ", "): `Bearer realm="a",scope="b", Basic realm="c"`.
 * Quoted strings may contain commas and backslash escapes. Malformed parts are skipped.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  const s = header;
  let i = 0;
  const n = s.length;
  const ws = () => {
    while (i < n && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const token = (): string => {
    const m = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/.exec(s.slice(i));
    if (!m) return '';
    i += m[0].length;
    return m[0];
  };
  let cur: Challenge | undefined;
  while (i < n) {
    ws();
    if (s[i] === ',') {
      i++;
      continue;
    }
    const tok = token();
    if (tok === '') {
      // a stray character: skip to the next comma
      while (i < n && s[i] !== ',') i++;
      continue;
    }
    ws();
    if (s[i] === '=' && cur) {
      // auth-param (or a token68 ending in '=' right after the scheme)
      i++;
      ws();
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < n && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < n) i++;
          value += s[i];
          i++;
        }
        i++; // closing quote
      } else {
        const m = /^[^,\s]*/.exec(s.slice(i))!;
        value = m[0];
        i += m[0].length;
      }
      cur.params[tok.toLowerCase()] = value;
      continue;
    }
    if (s[i] === '=' && !cur) {
      // a parameter without a scheme: malformed, skip to the next comma
      while (i < n && s[i] !== ',') i++;
      continue;
    }
    // a new challenge: scheme, maybe followed by a token68
    cur = { scheme: tok.toLowerCase(), params: {} };
    out.push(cur);
    const t68 = /^([A-Za-z0-9\-._~+/]+=*)\s*(?:,|$)/.exec(s.slice(i));
    if (t68) {
      cur.params['token68'] = t68[1]!;
      i += t68[1]!.length;
    }
  }
  return out;
}

/** Basic credentials from a PullAuth, if it has any. */
export function basicCredentials(a: PullAuth | undefined): { username: string; password: string } | undefined {
  if (!a) return undefined;
  if (a.username !== undefined && a.username !== '') return { username: a.username, password: a.password ?? '' };
  if (a.auth) {
    const dec = Buffer.from(a.auth, 'base64').toString('utf8');
    const c = dec.indexOf(':');
    if (c > 0) return { username: dec.slice(0, c), password: dec.slice(c + 1) };
  }
  return undefined;
}

export function hasCredentials(a: PullAuth | undefined): boolean {
  return !!a && (basicCredentials(a) !== undefined || !!a.identityToken || !!a.registryToken);
}

/** The names of Docker Hub: its reference domain, legacy index and API host. */
export const DOCKER_HUB_HOSTS = ['docker.io', 'index.docker.io', 'registry-1.docker.io'];
const DOCKER_HUB_KEYS = new Set(DOCKER_HUB_HOSTS);

function sameRegistry(a: string, b: string): boolean {
  return a === b || (DOCKER_HUB_KEYS.has(a) && DOCKER_HUB_KEYS.has(b));
}

/** "https://index.docker.io/v1/" → "index.docker.io"; "host:5000" → "host:5000". */
function configKeyHost(key: string): string {
  let k = key.trim();
  k = k.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = k.indexOf('/');
  if (slash !== -1) k = k.slice(0, slash);
  return k.toLowerCase();
}

/**
 * The CRI credentials to use for endpoint `host` (host[:port]), as containerd's
 * ParseAuth decides: with a server address only for the host it names (Docker
 * Hub by any of its names), without one for every endpoint, mirrors included.
 */
export function credentialsFor(auth: PullAuth | undefined, host: string): PullAuth | undefined {
  if (!auth || !hasCredentials(auth)) return undefined;
  if (!auth.serverAddress) return auth;
  return sameRegistry(configKeyHost(auth.serverAddress), host.toLowerCase()) ? auth : undefined;
}

interface DockerConfigAuth {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

/**
 * Credentials for `host` (host[:port]) from a docker config.json ({"auths": {…}}).
 * Keys may be bare hosts or URLs; Docker Hub matches docker.io, index.docker.io and
 * registry-1.docker.io. credsStore/credHelpers are not supported (ignored).
 * Missing file → undefined; unreadable or invalid JSON → Internal error.
 */
export function dockerConfigAuth(configPath: string, host: string): PullAuth | undefined {
  let raw: string;
  try {
    raw = fs.readFileSync(configPath, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw internal(`cannot read docker config ${configPath}: ${(e as Error).message}`, e);
  }
  let cfg: { auths?: Record<string, DockerConfigAuth> };
  try {
    cfg = JSON.parse(raw) as typeof cfg;
  } catch (e) {
    throw internal(`docker config ${configPath} is not valid JSON: ${(e as Error).message}`, e);
  }
  const auths = cfg.auths ?? {};
  const want = host.toLowerCase();
  for (const [k, v] of Object.entries(auths)) {
    const h = configKeyHost(k);
    if (sameRegistry(h, want)) {
      const out: PullAuth = {};
      if (v.auth) out.auth = v.auth;
      if (v.username) out.username = v.username;
      if (v.password) out.password = v.password;
      if (v.identitytoken) out.identityToken = v.identitytoken;
      if (v.registrytoken) out.registryToken = v.registrytoken;
      return hasCredentials(out) ? out : undefined;
    }
  }
  return undefined;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Bearer tokens keyed by realm, service, scope and the identity that asked. */
export class TokenCache {
  private readonly m = new Map<string, CachedToken>();
  constructor(private readonly now: () => number = Date.now) {}

  get(key: string): string | undefined {
    const t = this.m.get(key);
    if (!t) return undefined;
    if (t.expiresAt <= this.now()) {
      this.m.delete(key);
      return undefined;
    }
    return t.token;
  }

  set(key: string, token: string, expiresInSec: number): void {
    // Keep a margin so a token does not expire between the check and its use.
    const ttl = Math.max(0, expiresInSec - 10) * 1000;
    if (ttl <= 0) return;
    this.m.set(key, { token, expiresAt: this.now() + ttl });
    if (this.m.size > 1000) this.m.delete(this.m.keys().next().value!);
  }

  delete(key: string): void {
    this.m.delete(key);
  }

  clear(): void {
    this.m.clear();
  }
}

/** Process-wide token cache used by pullImage unless one is given. */
export const defaultTokenCache = new TokenCache();
