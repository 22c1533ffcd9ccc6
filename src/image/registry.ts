// OCI distribution pull client: resolves a reference against a registry (and its
// mirrors), fetches manifest, config and layers into the ImageService and commits
// the image.
//
// Endpoints (containerd semantics): the mirrors configured for the reference's
// registry host in order, then the registry itself (docker.io → registry-1.docker.io)
// unless the host is listed in `exclusiveMirrors`. Each endpoint is tried for the
// whole pull (manifest, config, layers); the first endpoint that completes wins.
// Blobs already stored are not fetched again, so a fallback after a partial pull
// only fetches what is missing. When every endpoint fails, the error reported is
// the first one that was not a 404 (else NotFound). Requests to a mirror name the
// registry meant in `?ns=` (see Session.url).
//
// Errors (all PeapodError; RegistryError adds endpoint/status/code):
//   unknown repository/tag/digest (404, MANIFEST_UNKNOWN, NAME_UNKNOWN)  → NotFound
//   auth denied (401 after the challenge was answered, 403, token server 401/403)
//                                            → FailedPrecondition, message "pull access
//     denied for <repo>, repository does not exist or may require authorization: …"
//     (containerd returns Unknown with the same text; FailedPrecondition because
//     retrying without new credentials cannot succeed.)
//   429                                      → ResourceExhausted (the next endpoint is
//                                              tried, as for a 5xx; only our own full
//                                              disk stops the pull at once)
//   network errors, 5xx, corrupt content (digest/size mismatch), protocol errors,
//   malformed JSON                           → Internal, naming the endpoint
//   schema 1 manifests                       → Unimplemented
//   no manifest for this platform in an index → NotFound (a lone manifest is
//     taken whatever platform its config names, as containerd takes it: only
//     an index's entries are chosen by platform)
//   no response headers within timeouts.headersMs, or a body without data for
//   timeouts.idleMs                          → DeadlineExceeded (next endpoint tried)
//   cancelled via opts.signal                → DeadlineExceeded
//
// "insecure" hosts are reached over plain HTTP (fetch cannot portably skip TLS
// verification). Loopback hosts (localhost, 127.0.0.0/8, [::1]) are plain HTTP too,
// as Docker treats them. Mirror endpoints carry their own scheme.

import { createHash } from 'node:crypto';
import { PeapodError, type ErrorKind, invalidArgument, isKind, isNoSpace, resourceExhausted } from '../errors.js';
import {
  basicCredentials,
  type Challenge,
  credentialsFor,
  defaultTokenCache,
  DOCKER_HUB_HOSTS,
  dockerConfigAuth,
  parseWwwAuthenticate,
  type PullAuth,
  TokenCache,
} from './auth.js';
import { formatReference, parseReference, type Reference, repository } from './reference.js';
import { checkIndex, checkManifest, isObject } from './schema.js';
import type { Image, ImageService, LogFn } from './service.js';
import {
  type Descriptor,
  type IndexJson,
  indexPlatforms,
  type ManifestJson,
  MT,
  platformString,
  runtimePlatform,
  selectPlatform,
} from './types.js';

export type { PullAuth } from './auth.js';
export { selectPlatform } from './types.js';

export interface RegistryConfig {
  /**
   * registry host → endpoints tried in order before the registry itself, e.g.
   * { 'registry.k8s.io': ['http://127.0.0.1:5000'], 'docker.io': ['https://mirror.gcr.io'] }.
   * An endpoint is scheme://host[:port][/path]; "/v2" is appended unless the path ends with it.
   * Docker Hub may be keyed docker.io, index.docker.io or registry-1.docker.io.
   */
  mirrors: Record<string, string[]>;
  /** hosts (host[:port]) to reach over plain HTTP. */
  insecure: string[];
  /** node-level credentials: path to a docker config.json ({"auths":{"host":{"auth":base64(user:pass)}}}). */
  dockerConfigPath?: string;
  /** hosts whose mirrors are exclusive: the registry itself is never contacted. */
  exclusiveMirrors?: string[];
}

export interface PullOptions {
  config: RegistryConfig;
  /**
   * CRI AuthConfig credentials: used for the endpoint whose host is
   * auth.serverAddress, or for every endpoint (mirrors too) when that is empty,
   * as containerd's ParseAuth does. An endpoint they are not for uses the
   * docker config.json credentials for its host, if any.
   */
  auth?: PullAuth;
  log?: LogFn;
  /** stops the pull (e.g. the CRI call was cancelled); nothing of it is kept */
  signal?: AbortSignal;
  /** blobs fetched at once (default 4) */
  concurrency?: number;
  /** bearer token cache (default: one per process) */
  tokenCache?: TokenCache;
  timeouts?: PullTimeouts;
}

/** Limits on one HTTP request of a pull; an endpoint exceeding one is given up for the next. */
export interface PullTimeouts {
  /** time for a response's headers to arrive (default 60 s) */
  headersMs?: number;
  /** time a response body may go without data (default 5 min, containerd's image_pull_progress_timeout) */
  idleMs?: number;
}

const DEFAULT_TIMEOUTS: Required<PullTimeouts> = { headersMs: 60_000, idleMs: 5 * 60_000 };

export class RegistryError extends PeapodError {
  constructor(
    kind: ErrorKind,
    message: string,
    readonly details: { endpoint?: string; status?: number; code?: string } = {},
    cause?: unknown,
  ) {
    super(kind, message, { cause });
  }
}

const MANIFEST_ACCEPT = [MT.ociIndex, MT.ociManifest, MT.dockerList, MT.dockerManifest].join(', ');
const SCHEMA1_TYPES = new Set([
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
]);
const MAX_MANIFEST_BYTES = 4 << 20;
const USER_AGENT = 'peapod/0.1';
const DOCKER_HUB_API = 'registry-1.docker.io';
const SHA256_RE = /^sha256:[a-f0-9]{64}$/;

// ------------------------------------------------------------------ endpoints

export interface Endpoint {
  /** base URL including /v2, no trailing slash: "http://127.0.0.1:5000/v2" */
  base: string;
  /** host[:port] of the endpoint (for credentials lookup) */
  host: string;
  mirror: boolean;
}

const HOST_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$/;

function isLoopback(host: string): boolean {
  const h = host.replace(/:[0-9]+$/, '').toLowerCase();
  return h === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '[::1]';
}

/** Validates a mirror endpoint URL and returns its normalised /v2 base. */
function endpointBase(endpoint: string): { base: string; host: string } {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw invalidArgument(`invalid mirror endpoint "${endpoint}": not a URL (want http://host[:port] or https://host[:port])`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw invalidArgument(`invalid mirror endpoint "${endpoint}": scheme must be http or https`);
  }
  if (u.username || u.password) throw invalidArgument(`invalid mirror endpoint "${endpoint}": credentials in the URL are not supported`);
  if (u.search || u.hash) throw invalidArgument(`invalid mirror endpoint "${endpoint}": query or fragment not allowed`);
  let p = u.pathname.replace(/\/+$/, '');
  if (!p.endsWith('/v2')) p += '/v2';
  return { base: `${u.protocol}//${u.host}${p}`, host: u.host };
}

function mirrorsFor(config: RegistryConfig, host: string): string[] {
  const keys = DOCKER_HUB_HOSTS.includes(host) ? DOCKER_HUB_HOSTS : [host];
  const out: string[] = [];
  for (const k of keys) for (const e of config.mirrors[k] ?? []) if (!out.includes(e)) out.push(e);
  return out;
}

/** The endpoints tried for registry `host` (a reference's domain), in order. */
export function endpointsFor(config: RegistryConfig, host: string): Endpoint[] {
  const out: Endpoint[] = [];
  for (const e of mirrorsFor(config, host)) out.push({ ...endpointBase(e), mirror: true });
  const hub = DOCKER_HUB_HOSTS.includes(host);
  const exclusive = (config.exclusiveMirrors ?? []).some((h) => h === host || (hub && DOCKER_HUB_HOSTS.includes(h)));
  if (!exclusive) {
    const api = hub ? DOCKER_HUB_API : host;
    const insecure = (config.insecure ?? []).some((h) => {
      const k = h.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
      return k === host || k === api;
    });
    const scheme = insecure || isLoopback(api) ? 'http' : 'https';
    out.push({ base: `${scheme}://${api}/v2`, host: api, mirror: false });
  }
  return out;
}

/** Parses "registry.k8s.io=http://127.0.0.1:5000" (a --registry-mirror flag). */
export function parseMirrorFlag(s: string): { host: string; endpoint: string } {
  const eq = s.indexOf('=');
  if (eq <= 0) throw invalidArgument(`invalid registry mirror "${s}": want HOST=URL, e.g. registry.k8s.io=http://127.0.0.1:5000`);
  const host = s.slice(0, eq).trim();
  const endpoint = s.slice(eq + 1).trim();
  if (!HOST_RE.test(host)) throw invalidArgument(`invalid registry mirror "${s}": "${host}" is not a registry host[:port]`);
  if (endpoint === '') throw invalidArgument(`invalid registry mirror "${s}": empty endpoint URL`);
  if (!/^https?:\/\//i.test(endpoint)) {
    throw invalidArgument(`invalid registry mirror "${s}": endpoint "${endpoint}" must start with http:// or https://`);
  }
  endpointBase(endpoint); // validates
  return { host: host.toLowerCase(), endpoint: endpoint.replace(/\/+$/, '') };
}

// ---------------------------------------------------------------- http layer

interface RegistryErrorBody {
  errors?: Array<{ code?: string; message?: string; detail?: unknown }>;
}

function describeErrorBody(text: string): { code?: string; message: string } {
  try {
    const b = JSON.parse(text) as RegistryErrorBody;
    const e = b.errors?.[0];
    if (e) {
      const out: { code?: string; message: string } = { message: [e.code, e.message].filter(Boolean).join(': ') };
      if (e.code) out.code = e.code;
      return out;
    }
  } catch {
    // not JSON
  }
  return { message: text.trim().slice(0, 200) };
}

/** A response body being read: what it is, from where, and how long it may stall. */
interface BodyOf {
  what: string;
  endpoint: string;
  idleMs: number;
}

async function readLimited(res: Response, max: number, b: BodyOf): Promise<Buffer> {
  const len = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(len) && len > max) {
    await res.body?.cancel().catch(() => {});
    throw new RegistryError('Internal', `${b.what} from ${b.endpoint} is ${len} bytes, more than the ${max} allowed`, { endpoint: b.endpoint });
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of bodyChunks(res, b)) {
    n += c.byteLength;
    if (n > max) throw new RegistryError('Internal', `${b.what} from ${b.endpoint} is more than the ${max} bytes allowed`, { endpoint: b.endpoint });
    chunks.push(Buffer.from(c));
  }
  return Buffer.concat(chunks);
}

/** The body's chunks; a body that sends nothing for b.idleMs fails (and is cancelled, closing the connection). */
async function* bodyChunks(res: Response, b: BodyOf): AsyncGenerator<Uint8Array> {
  if (!res.body) return;
  const reader = res.body.getReader();
  try {
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new RegistryError('DeadlineExceeded', `${b.what} from ${b.endpoint}: no data for ${seconds(b.idleMs)}`, { endpoint: b.endpoint })),
          b.idleMs,
        );
      });
      let r: Awaited<ReturnType<typeof reader.read>>;
      try {
        r = await Promise.race([reader.read(), stalled]);
      } finally {
        clearTimeout(timer);
      }
      if (r.done) return;
      if (r.value.byteLength) yield r.value;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function seconds(ms: number): string {
  return `${ms / 1000} s`;
}

async function discard(res: Response, idleMs: number): Promise<string> {
  try {
    return (await readLimited(res, 64 << 10, { what: 'error body', endpoint: '', idleMs })).toString('utf8');
  } catch {
    return '';
  }
}

function causeMessage(e: unknown): string {
  const err = e as { message?: string; cause?: { message?: string; code?: string } };
  const c = err?.cause;
  if (c && (c.code || c.message)) return [c.code, c.message].filter(Boolean).join(' ').replace(/^(\w+) \1\b/, '$1');
  return err?.message ?? String(e);
}

/** One endpoint's HTTP session for one repository: remembers the auth challenge. */
class Session {
  private authorization: string | undefined;
  /** whether `authorization` came from the token cache */
  private fromCache = false;
  private refreshing: Promise<string | undefined> | undefined;

  /** "?ns=<registry>" for a mirror, else "" (see url). */
  private readonly ns: string;

  constructor(
    readonly ep: Endpoint,
    readonly repoPath: string,
    readonly name: string,
    domain: string,
    private readonly creds: PullAuth | undefined,
    private readonly tokens: TokenCache,
    private readonly signal: AbortSignal,
    private readonly limits: Required<PullTimeouts>,
    private readonly log: LogFn,
  ) {
    // containerd's addNamespace (isProxy): an endpoint that is not the
    // reference's own registry is told which upstream is meant, so that one
    // mirror can serve several.
    const own = ep.host === domain || (domain === 'docker.io' && ep.host === DOCKER_HUB_API);
    this.ns = own ? '' : `?${new URLSearchParams({ ns: domain })}`;
  }

  /** The URL of one of the repository's manifests or blobs. */
  url(kind: 'manifests' | 'blobs', ref: string): string {
    return `${this.ep.base}/${this.repoPath}/${kind}/${ref}${this.ns}`;
  }

  /** How a body from this endpoint is read: `what` names it in errors. */
  body(what: string): BodyOf {
    return { what, endpoint: this.ep.base, idleMs: this.limits.idleMs };
  }

  /**
   * fetch under the session's signal and the headers time limit. The body stays
   * under the signal only: its reads have their own (idle) limit.
   */
  private async request(url: string | URL, init: RequestInit): Promise<Response> {
    const limit = new AbortController();
    const timer = setTimeout(() => limit.abort(), this.limits.headersMs);
    try {
      return await fetch(url, { ...init, signal: AbortSignal.any([this.signal, limit.signal]) });
    } catch (e) {
      if (limit.signal.aborted && !this.signal.aborted) {
        const why = `${String(url)}: no response within ${seconds(this.limits.headersMs)} (${this.ep.base})`;
        throw new RegistryError('DeadlineExceeded', why, { endpoint: this.ep.base }, e);
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  private denied(detail: string, status?: number, code?: string): RegistryError {
    const d: { endpoint: string; status?: number; code?: string } = { endpoint: this.ep.base };
    if (status !== undefined) d.status = status;
    if (code !== undefined) d.code = code;
    return new RegistryError(
      'FailedPrecondition',
      `pull access denied for ${this.name}, repository does not exist or may require authorization: ${detail} (${this.ep.base})`,
      d,
    );
  }

  async fetch(url: string, init: { method?: string; headers?: Record<string, string> } = {}): Promise<Response> {
    let sent = this.authorization;
    let res = await this.send(url, init, sent);
    // Round 1 answers the challenge; a second round only when round 1 used a
    // cached token (it may have been revoked): then a fresh one is fetched.
    for (let round = 0; res.status === 401 && round < 2; round++) {
      const info = describeErrorBody(await discard(res, this.limits.idleMs));
      const chs = parseWwwAuthenticate(res.headers.get('www-authenticate') ?? '');
      const ch = chs.find((c) => c.scheme === 'bearer') ?? chs.find((c) => c.scheme === 'basic');
      if (!ch) throw this.denied(`401 without a usable WWW-Authenticate challenge${info.message ? `: ${info.message}` : ''}`, 401, info.code);
      const why = ch.params['error'] ? `${ch.params['error']}${info.message ? `: ${info.message}` : ''}` : info.message || 'unauthorized';
      if (round === 1 && !this.fromCache) throw this.denied(why, 401, info.code);
      const next = await this.reauthorize(ch, sent);
      if (next === undefined || next === sent) throw this.denied(why, 401, info.code);
      sent = next;
      res = await this.send(url, init, sent);
    }
    if (res.status === 401) {
      const info = describeErrorBody(await discard(res, this.limits.idleMs));
      throw this.denied(info.message || 'unauthorized', 401, info.code);
    }
    return res;
  }

  private async send(url: string, init: { method?: string; headers?: Record<string, string> }, authz: string | undefined): Promise<Response> {
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...init.headers };
    if (authz) headers['authorization'] = authz;
    try {
      // Redirects are followed (blob GETs go to storage); fetch drops the
      // Authorization header on cross-origin redirects.
      return await this.request(url, { method: init.method ?? 'GET', headers, redirect: 'follow' });
    } catch (e) {
      throw this.networkError(e, url);
    }
  }

  networkError(e: unknown, url: string): PeapodError {
    if (e instanceof PeapodError) return e;
    if (this.signal.aborted) return abortError(this.signal, e);
    return new RegistryError('Internal', `registry endpoint ${this.ep.base} unreachable (${url}): ${causeMessage(e)}`, { endpoint: this.ep.base }, e);
  }

  /** A new Authorization value for challenge `ch`, or undefined when we have nothing to offer. */
  private reauthorize(ch: Challenge, sent: string | undefined): Promise<string | undefined> {
    // Concurrent 401s (parallel blobs) share one token request.
    if (!this.refreshing) {
      this.refreshing = this.answer(ch, sent).finally(() => {
        this.refreshing = undefined;
      });
    }
    return this.refreshing.then((a) => {
      this.authorization = a;
      return a;
    });
  }

  private async answer(ch: Challenge, sent: string | undefined): Promise<string | undefined> {
    if (this.authorization !== sent && this.authorization !== undefined) return this.authorization; // someone refreshed already
    this.fromCache = false;
    const basic = basicCredentials(this.creds);
    if (ch.scheme === 'basic') {
      if (!basic) return undefined;
      return `Basic ${Buffer.from(`${basic.username}:${basic.password}`).toString('base64')}`;
    }
    if (this.creds?.registryToken) return `Bearer ${this.creds.registryToken}`;
    const realm = ch.params['realm'];
    if (!realm) throw this.denied('bearer challenge without realm', 401);
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch {
      throw new RegistryError('Internal', `registry ${this.ep.base} sent an invalid token realm "${realm}"`, { endpoint: this.ep.base });
    }
    if (realmUrl.protocol !== 'https:' && realmUrl.protocol !== 'http:') {
      throw new RegistryError('Internal', `registry ${this.ep.base} sent a token realm with scheme ${realmUrl.protocol}`, { endpoint: this.ep.base });
    }
    const service = ch.params['service'] ?? '';
    const scope = ch.params['scope'] || `repository:${this.repoPath}:pull`;
    const identity = this.creds?.identityToken
      ? `refresh:${hash(this.creds.identityToken)}`
      : basic
        ? `basic:${hash(`${basic.username}:${basic.password}`)}`
        : 'anonymous';
    const key = `${realm}\n${service}\n${scope}\n${identity}`;
    const cached = this.tokens.get(key);
    if (cached && `Bearer ${cached}` !== sent) {
      this.fromCache = true;
      return `Bearer ${cached}`;
    }
    this.tokens.delete(key);
    const { token, expiresIn } = await this.fetchToken(realmUrl, service, scope, basic);
    this.tokens.set(key, token, expiresIn);
    this.fromCache = false;
    return `Bearer ${token}`;
  }

  private async fetchToken(
    realm: URL,
    service: string,
    scope: string,
    basic: { username: string; password: string } | undefined,
  ): Promise<{ token: string; expiresIn: number }> {
    let res: Response;
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, accept: 'application/json' };
    try {
      if (this.creds?.identityToken) {
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: this.creds.identityToken, client_id: 'peapod' });
        if (service) form.set('service', service);
        for (const s of scope.split(' ').filter(Boolean)) form.append('scope', s);
        headers['content-type'] = 'application/x-www-form-urlencoded';
        res = await this.request(realm, { method: 'POST', headers, body: form.toString() });
      } else {
        const u = new URL(realm);
        if (service) u.searchParams.set('service', service);
        for (const s of scope.split(' ').filter(Boolean)) u.searchParams.append('scope', s);
        if (basic) {
          u.searchParams.set('account', basic.username);
          headers['authorization'] = `Basic ${Buffer.from(`${basic.username}:${basic.password}`).toString('base64')}`;
        }
        res = await this.request(u, { headers });
      }
    } catch (e) {
      if (e instanceof PeapodError) throw e;
      if (this.signal.aborted) throw abortError(this.signal, e);
      throw new RegistryError('Internal', `token server ${realm.origin}${realm.pathname} unreachable: ${causeMessage(e)}`, { endpoint: this.ep.base }, e);
    }
    const text = (await readLimited(res, 1 << 20, { ...this.body('token response'), endpoint: realm.origin })).toString('utf8');
    if (res.status === 401 || res.status === 403) {
      throw this.denied(`token server ${realm.origin}${realm.pathname} answered ${res.status}: ${describeErrorBody(text).message || 'denied'}`, res.status);
    }
    if (!res.ok) {
      throw new RegistryError('Internal', `token server ${realm.origin}${realm.pathname} answered ${res.status}: ${describeErrorBody(text).message}`, {
        endpoint: this.ep.base,
        status: res.status,
      });
    }
    let j: unknown;
    try {
      j = JSON.parse(text);
    } catch {
      throw new RegistryError('Internal', `token server ${realm.origin}${realm.pathname} answered invalid JSON`, { endpoint: this.ep.base });
    }
    const server = `token server ${realm.origin}${realm.pathname}`;
    if (!isObject(j)) throw new RegistryError('Internal', `${server} answered ${text.slice(0, 40)}, not a JSON object`, { endpoint: this.ep.base });
    const token = typeof j['token'] === 'string' && j['token'] ? j['token'] : j['access_token'];
    if (typeof token !== 'string' || !token) throw new RegistryError('Internal', `${server} answered no token`, { endpoint: this.ep.base });
    const expiresIn = typeof j['expires_in'] === 'number' && j['expires_in'] > 0 ? j['expires_in'] : 60;
    this.log('debug', 'registry token obtained', { realm: `${realm.origin}${realm.pathname}`, service, scope });
    return { token, expiresIn };
  }

  /** Throws the typed error for a non-2xx response (body consumed). */
  async fail(res: Response, what: string, ref: string): Promise<never> {
    const info = describeErrorBody(await discard(res, this.limits.idleMs));
    const d: { endpoint: string; status: number; code?: string } = { endpoint: this.ep.base, status: res.status };
    if (info.code) d.code = info.code;
    const detail = info.message || `HTTP ${res.status}`;
    if (res.status === 404 || info.code === 'MANIFEST_UNKNOWN' || info.code === 'NAME_UNKNOWN' || info.code === 'BLOB_UNKNOWN') {
      throw new RegistryError('NotFound', `${what} not found: ${ref}: ${detail} (${this.ep.base})`, d);
    }
    if (res.status === 403 || info.code === 'DENIED' || info.code === 'UNAUTHORIZED') throw this.denied(detail, res.status, info.code);
    if (res.status === 429) throw new RegistryError('ResourceExhausted', `registry ${this.ep.base} rate-limited the pull of ${ref}: ${detail}`, d);
    throw new RegistryError('Internal', `registry ${this.ep.base} answered ${res.status} for ${what} of ${ref}: ${detail}`, d);
  }
}

function hash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 16);
}

function abortError(signal: AbortSignal, cause: unknown): PeapodError {
  const r = signal.reason as { name?: string; message?: string } | undefined;
  const why = r?.name === 'TimeoutError' ? 'timed out' : 'cancelled';
  return new PeapodError('DeadlineExceeded', `image pull ${why}${r?.message ? `: ${r.message}` : ''}`, { cause: cause ?? r });
}

function sha256(b: Uint8Array): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

// -------------------------------------------------------------------- pull

interface Fetched {
  bytes: Buffer;
  digest: string;
  mediaType: string;
}

async function getManifest(s: Session, reference: string, refStr: string, expected?: Descriptor): Promise<Fetched> {
  const url = s.url('manifests', reference);
  const res = await s.fetch(url, { headers: { accept: MANIFEST_ACCEPT } });
  if (!res.ok) await s.fail(res, expected ? `manifest ${reference} of image` : 'image', refStr);
  let bytes: Buffer;
  try {
    bytes = await readLimited(res, MAX_MANIFEST_BYTES, s.body(`manifest ${reference}`));
  } catch (e) {
    throw s.networkError(e, url);
  }
  const digest = sha256(bytes);
  const isDigest = reference.includes(':');
  if (isDigest && digest !== reference) {
    throw new RegistryError('Internal', `manifest ${reference} of ${refStr} from ${s.ep.base}: digest mismatch: got ${digest}`, { endpoint: s.ep.base });
  }
  const hdr = res.headers.get('docker-content-digest');
  if (!isDigest && hdr && hdr.startsWith('sha256:') && hdr !== digest) {
    throw new RegistryError('Internal', `manifest of ${refStr} from ${s.ep.base}: Docker-Content-Digest ${hdr} does not match the content (${digest})`, {
      endpoint: s.ep.base,
    });
  }
  if (expected && expected.size !== undefined && expected.size !== bytes.length) {
    throw new RegistryError('Internal', `manifest ${reference} of ${refStr} from ${s.ep.base}: ${bytes.length} bytes, index says ${expected.size}`, {
      endpoint: s.ep.base,
    });
  }
  const ct = (res.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  return { bytes, digest, mediaType: ct };
}

type Parsed = { kind: 'index'; json: IndexJson } | { kind: 'manifest'; json: ManifestJson };

function parseManifest(f: Fetched, refStr: string, endpoint: string): Parsed {
  const what = `manifest ${f.digest} of ${refStr} from ${endpoint}`;
  let j: unknown;
  try {
    j = JSON.parse(f.bytes.toString('utf8'));
  } catch (e) {
    throw new RegistryError('Internal', `${what} is not valid JSON: ${(e as Error).message}`, { endpoint });
  }
  if (!isObject(j)) throw new RegistryError('Internal', `${what} is ${j === null ? 'null' : 'not a JSON object'}`, { endpoint });
  const mt = typeof j['mediaType'] === 'string' ? j['mediaType'] : f.mediaType;
  if (j['schemaVersion'] === 1 || SCHEMA1_TYPES.has(mt) || SCHEMA1_TYPES.has(f.mediaType)) {
    throw new RegistryError(
      'Unimplemented',
      `image ${refStr} uses Docker image manifest schema 1 (${endpoint}), which is not supported: push it again with a current client (schema 2 or OCI)`,
      { endpoint },
    );
  }
  const isIndex = Array.isArray(j['manifests']);
  if (!isIndex && !('config' in j && 'layers' in j)) {
    throw new RegistryError('Internal', `${what} is neither an image index nor an image manifest (media type "${mt}")`, { endpoint });
  }
  try {
    return isIndex ? { kind: 'index', json: checkIndex(j, what) } : { kind: 'manifest', json: checkManifest(j, what) };
  } catch (e) {
    // The registry sent it: its fault, not the caller's (and another endpoint may do better).
    throw new RegistryError('Internal', (e as Error).message, { endpoint }, e);
  }
}

async function pool<T>(items: T[], limit: number, signal: AbortSignal, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { e: unknown } | undefined;
  const worker = async () => {
    while (!failed && next < items.length && !signal.aborted) {
      const t = items[next++]!;
      try {
        await fn(t);
      } catch (e) {
        failed ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed) throw failed.e;
}

async function fetchBlob(s: Session, images: ImageService, d: Descriptor, refStr: string, log: LogFn): Promise<number> {
  const url = s.url('blobs', d.digest);
  const res = await s.fetch(url);
  if (!res.ok) await s.fail(res, `blob ${d.digest} of image`, refStr);
  let n = 0;
  const body = s.body(`blob ${d.digest} of ${refStr}`);
  const counted = (async function* () {
    for await (const c of bodyChunks(res, body)) {
      n += c.byteLength;
      yield c;
    }
  })();
  try {
    await images.ingestBlob(d.digest, d.size, counted);
  } catch (e) {
    if (e instanceof PeapodError && e.kind === 'InvalidArgument') {
      // digest/size mismatch: the registry served something else
      throw new RegistryError('Internal', `blob ${d.digest} of ${refStr} from ${s.ep.base}: ${e.message}`, { endpoint: s.ep.base }, e);
    }
    // Our disk, not the endpoint: as for an archive import.
    if (isNoSpace(e)) throw resourceExhausted(`storing blob ${d.digest} of ${refStr}: ${(e as Error).message}`);
    throw s.networkError(e, url);
  }
  log('debug', 'blob fetched', { digest: d.digest, bytes: n, endpoint: s.ep.base });
  return n;
}

async function pullFrom(
  images: ImageService,
  r: Reference,
  refStr: string,
  ep: Endpoint,
  opts: PullOptions,
  log: LogFn,
  signal: AbortSignal,
): Promise<Image> {
  let creds = credentialsFor(opts.auth, ep.host);
  if (!creds && opts.config.dockerConfigPath) creds = dockerConfigAuth(opts.config.dockerConfigPath, ep.host);
  const ac = new AbortController();
  const onAbort = () => ac.abort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  try {
    const limits = {
      headersMs: opts.timeouts?.headersMs ?? DEFAULT_TIMEOUTS.headersMs,
      idleMs: opts.timeouts?.idleMs ?? DEFAULT_TIMEOUTS.idleMs,
    };
    const s = new Session(ep, r.path, repository(r), r.domain, creds, opts.tokenCache ?? defaultTokenCache, ac.signal, limits, log);
    const top = await getManifest(s, r.digest ?? r.tag!, refStr);
    let parsed = parseManifest(top, refStr, ep.base);
    let manifest = top;
    if (parsed.kind === 'index') {
      const want = runtimePlatform();
      const pick = selectPlatform(parsed.json, want);
      if (!pick) {
        throw new RegistryError('NotFound', `image ${refStr} has no manifest for ${platformString(want)} (has: ${indexPlatforms(parsed.json)})`, {
          endpoint: ep.base,
        });
      }
      if (!SHA256_RE.test(pick.digest)) {
        throw new RegistryError('Internal', `index of ${refStr} from ${ep.base} references "${pick.digest}", not a sha256 digest`, { endpoint: ep.base });
      }
      manifest = await getManifest(s, pick.digest, refStr, pick);
      parsed = parseManifest(manifest, refStr, ep.base);
      if (parsed.kind !== 'manifest') {
        throw new RegistryError('Internal', `index of ${refStr} from ${ep.base}: entry ${pick.digest} is an index too (nested indexes are not supported)`, {
          endpoint: ep.base,
        });
      }
    }
    const m = parsed.json;
    const want = new Map<string, Descriptor>();
    for (const d of [m.config, ...m.layers]) {
      const bad = !SHA256_RE.test(d.digest)
        ? `references "${d.digest}", not a sha256 digest`
        : d.size === undefined
          ? `has no size for blob ${d.digest}`
          : undefined;
      if (bad) throw new RegistryError('Internal', `manifest ${manifest.digest} of ${refStr} from ${ep.base} ${bad}`, { endpoint: ep.base });
      if (!want.has(d.digest)) want.set(d.digest, d);
    }
    let bytes = 0;
    const fetchOne = async (d: Descriptor) => {
      bytes += (await images.ingestOnce(d.digest, ac.signal, () => fetchBlob(s, images, d, refStr, log))) ?? 0;
    };
    // The lease keeps the blobs we skip (stored) from being collected until the commit.
    const img = await images.withBlobLease([...want.keys()], async (missingDigests) => {
      const missing = missingDigests.map((d) => want.get(d)!);
      log('info', 'pulling image', { ref: refStr, endpoint: ep.base, manifest: manifest.digest, blobs: want.size, missing: missing.length });
      await pool(missing, opts.concurrency ?? 4, ac.signal, async (d) => {
        try {
          await fetchOne(d);
        } catch (e) {
          ac.abort(e); // stop the other transfers
          throw e;
        }
      });
      const indexSize = manifest === top ? undefined : top.bytes.length;
      return images.commitManifest(manifest.bytes, formatReference({ ...r, digest: top.digest }), indexSize);
    });
    log('info', 'image pulled', { ref: refStr, id: img.id, endpoint: ep.base, digest: top.digest, bytes });
    return img;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * Pulls `ref` into `images`. Returns the committed image: tagged with the
 * normalised reference when pulled by tag, with repo digest `repo@<digest pulled>`
 * (the index digest for multi-platform images, as containerd records it). A
 * reference with both a tag and a digest is pulled by digest and tags nothing
 * (containerd's ParseDockerRef drops the tag).
 */
export async function pullImage(images: ImageService, ref: string, opts: PullOptions): Promise<Image> {
  const named = parseReference(ref);
  if (named.digest !== undefined && !SHA256_RE.test(named.digest)) {
    throw invalidArgument(`invalid reference "${ref}": only sha256 digests are supported`);
  }
  const r: Reference = named.digest === undefined ? named : { domain: named.domain, path: named.path, digest: named.digest };
  const refStr = formatReference(r);
  const log: LogFn = opts.log ?? (() => {});
  const signal = opts.signal ?? new AbortController().signal;
  const eps = endpointsFor(opts.config, r.domain);
  if (eps.length === 0) throw invalidArgument(`no endpoint for registry ${r.domain}: its mirrors are exclusive and none is configured`);
  let firstErr: unknown;
  let notFoundErr: unknown;
  for (const ep of eps) {
    if (signal.aborted) throw abortError(signal, undefined);
    try {
      return await pullFrom(images, r, refStr, ep, opts, log, signal);
    } catch (e) {
      if (signal.aborted) throw e instanceof PeapodError && e.kind === 'DeadlineExceeded' ? e : abortError(signal, e);
      // Our own disk is full: another endpoint will not help. (A registry's 429
      // is a RegistryError: the next endpoint is tried, as for a 503.)
      if (isKind(e, 'ResourceExhausted') && !(e instanceof RegistryError)) throw e;
      log(eps.length > 1 ? 'warn' : 'debug', 'pull from endpoint failed', { ref: refStr, endpoint: ep.base, error: (e as Error).message });
      if (e instanceof PeapodError && e.kind === 'NotFound') notFoundErr ??= e;
      else firstErr ??= e;
    }
  }
  throw firstErr ?? notFoundErr;
}
