// Runs one HTTP, TCP or gRPC probe and prints its ProbeResult as JSON.
// The runner spawns it inside the pod's network namespace (the fork happens
// in a synchronous namespace window), because a socket opened by the server
// itself would be created later, on the event loop, in the host's namespace.

import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { grpcProbe } from './probe-grpc.js';

export interface ProbeRequest {
  type: 'http' | 'tcp' | 'grpc';
  host: string;
  port: number;
  scheme?: 'HTTP' | 'HTTPS';
  path?: string;
  headers?: Array<{ name: string; value: string }>;
  timeoutMs: number;
  userAgent?: string;
  /** A lifecycle hook: any HTTP answer succeeds (the kubelet's runHTTPHandler checks the transport only). */
  hook?: boolean;
  /** gRPC: the service asked about ("" is the server as a whole). */
  service?: string;
}

export interface ProbeResult {
  ok: boolean;
  message: string;
  /**
   * 'error': the probe could not be run (a port name that does not resolve, a
   * helper that failed): the kubelet's prober error, which is not counted.
   * 'warning': a success the kubelet reports (a redirect not followed).
   */
  outcome?: 'error' | 'warning';
}

const KUBE_PROBE = 'kube-probe/1.31';
/** The kubelet reads at most this much of a response body, then decides by the status code. */
const BODY_LIMIT = 10 * 1024;
/** Go's client gives up at the 10th redirect, after 10 requests. */
const MAX_REDIRECTS = 10;
/** The statuses Go's client follows (with a Location). */
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export function runProbe(req: ProbeRequest): Promise<ProbeResult> {
  if (req.type === 'grpc') {
    return grpcProbe({ host: req.host, port: req.port, service: req.service ?? '', timeoutMs: req.timeoutMs, userAgent: req.userAgent ?? KUBE_PROBE });
  }
  return new Promise((resolve) => {
    let cleanup = () => {};
    /** The status code's verdict once the headers are in and the body is being read. */
    let verdict: ProbeResult | undefined;
    const done = (r: ProbeResult) => {
      clearTimeout(timer);
      cleanup();
      resolve(r);
    };
    const timer = setTimeout(() => {
      if (!verdict) done({ ok: false, message: `timeout after ${req.timeoutMs}ms` });
      // Go's client timeout also covers the body: a read cut short is the prober's error (a hook has its answer).
      else done(req.hook ? verdict : { ok: false, outcome: 'error', message: `reading the response body: timeout after ${req.timeoutMs}ms` });
    }, req.timeoutMs);
    if (req.type === 'tcp') {
      const s = net.connect({ host: req.host, port: req.port });
      cleanup = () => s.destroy();
      s.once('connect', () => done({ ok: true, message: '' }));
      s.on('error', (e) => done({ ok: false, message: `dial tcp ${req.host}:${req.port}: ${e.message}` }));
      return;
    }
    const headers: Record<string, string> = { 'User-Agent': req.userAgent ?? KUBE_PROBE, Accept: '*/*' };
    for (const h of req.headers ?? []) headers[h.name] = h.value;
    // As the kubelet's formatURL: a path is requested under / even when given without the slash.
    const path = req.path?.startsWith('/') ? req.path : `/${req.path ?? ''}`;
    const first = `${req.scheme === 'HTTPS' ? 'https' : 'http'}://${req.host.includes(':') ? `[${req.host}]` : req.host}:${req.port}${path}`;

    /** One request of the chain; `via` requests were made before it. */
    const get = (url: string, hdrs: Record<string, string>, via: number) => {
      let r: http.ClientRequest;
      try {
        const mod = url.startsWith('https:') ? https : http;
        // No keep-alive, as the kubelet's transport.
        r = mod.request(url, { method: 'GET', headers: hdrs, agent: false, rejectUnauthorized: false } as https.RequestOptions, (res) => {
          const code = res.statusCode ?? 0;
          const location = res.headers.location;
          if (REDIRECTS.has(code) && location) {
            const next = follow(url, hdrs, location);
            if (next === null) return done({ ok: false, message: `Get "${url}": failed to parse Location header ${JSON.stringify(location)}` });
            // A probe follows redirects to the same host only (the kubelet's redirect checker); a hook, as Go's default client, any.
            if (req.hook || new URL(next.url).hostname === new URL(first).hostname) {
              res.resume();
              if (via + 1 >= MAX_REDIRECTS) return done({ ok: false, message: `Get "${next.url}": stopped after ${MAX_REDIRECTS} redirects` });
              return get(next.url, next.headers, via + 1);
            }
          }
          read(res, code);
        });
      } catch (e) {
        // A request Node will not build (an invalid header name or value): a failed probe, as Go's client error.
        return done({ ok: false, message: `Get "${url}": ${(e as Error).message}` });
      }
      cleanup = () => r.destroy();
      r.on('error', (e) => done({ ok: false, message: `Get "${url}": ${e.message}` }));
      r.end();
    };

    /** Reads up to BODY_LIMIT of the body, then answers by the status code. */
    const read = (res: http.IncomingMessage, code: number) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const body = () => Buffer.concat(chunks).subarray(0, BODY_LIMIT).toString('utf8');
      if (req.hook || (code >= 200 && code < 300)) verdict = { ok: true, message: '' };
      else if (code >= 300 && code < 400) verdict = { ok: true, message: '', outcome: 'warning' };
      else verdict = { ok: false, message: `HTTP probe failed with statuscode: ${code}` };
      const finish = () => done(verdict!.outcome === 'warning' ? { ...verdict!, message: `Probe terminated redirects, Response body: ${body()}` } : verdict!);
      res.on('data', (d: Buffer) => {
        chunks.push(d);
        size += d.length;
        if (size >= BODY_LIMIT) finish();
      });
      res.once('end', finish);
      // A body cut short: the prober's error, as the kubelet's body read; a hook has its answer.
      res.on('error', (e) => done(req.hook ? verdict! : { ok: false, outcome: 'error', message: `reading the response body: ${e.message}` }));
    };

    get(first, headers, 0);
  });
}

/**
 * The next request of a redirect, as Go's client makes it: the Location
 * resolved against the URL; a Host header of the caller's kept only when the
 * Location is relative. null: a Location that is not a URL.
 */
function follow(url: string, headers: Record<string, string>, location: string): { url: string; headers: Record<string, string> } | null {
  let next: string;
  try {
    next = new URL(location, url).href;
  } catch {
    return null;
  }
  if (!/^[a-z][a-z0-9+.-]*:/i.test(location)) return { url: next, headers };
  return { url: next, headers: Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'host')) };
}

const isMain = process.argv[2] !== undefined && /probe-child\.[jt]s$/.test(process.argv[1] ?? '');
if (isMain) {
  const req = JSON.parse(process.argv[2]!) as ProbeRequest;
  runProbe(req).then((r) => {
    process.stdout.write(JSON.stringify(r));
    process.exit(0);
  });
}
