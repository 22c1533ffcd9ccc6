// Runs one HTTP or TCP probe and prints {"ok":bool,"message":string}.
// The runner spawns it inside the pod's network namespace (the fork happens
// in a synchronous namespace window), because a socket opened by the server
// itself would be created later, on the event loop, in the host's namespace.

import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';

export interface ProbeRequest {
  type: 'http' | 'tcp';
  host: string;
  port: number;
  scheme?: 'HTTP' | 'HTTPS';
  path?: string;
  headers?: Array<{ name: string; value: string }>;
  timeoutMs: number;
  userAgent?: string;
  /** A lifecycle hook: any HTTP answer succeeds (the kubelet's runHTTPHandler checks the transport only). */
  hook?: boolean;
}

export interface ProbeResult {
  ok: boolean;
  message: string;
}

const BODY_LIMIT = 10 * 1024;

export function runProbe(req: ProbeRequest): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const done = (r: ProbeResult) => {
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, message: `timeout after ${req.timeoutMs}ms` }), req.timeoutMs);
    if (req.type === 'tcp') {
      const s = net.connect({ host: req.host, port: req.port });
      s.once('connect', () => {
        s.destroy();
        done({ ok: true, message: '' });
      });
      s.once('error', (e) => done({ ok: false, message: `dial tcp ${req.host}:${req.port}: ${e.message}` }));
      return;
    }
    const mod = req.scheme === 'HTTPS' ? https : http;
    const headers: Record<string, string> = { 'User-Agent': req.userAgent ?? 'kube-probe/1.31', Accept: '*/*' };
    for (const h of req.headers ?? []) headers[h.name] = h.value;
    // As the kubelet's formatURL: a path is requested under / even when given without the slash.
    const path = req.path?.startsWith('/') ? req.path : `/${req.path ?? ''}`;
    const url = `${req.scheme === 'HTTPS' ? 'https' : 'http'}://${req.host.includes(':') ? `[${req.host}]` : req.host}:${req.port}${path}`;
    let r: http.ClientRequest;
    try {
      r = mod.request(url, { method: 'GET', headers, rejectUnauthorized: false } as https.RequestOptions, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          if (body.length < BODY_LIMIT) body += d.toString('utf8').slice(0, BODY_LIMIT - body.length);
        });
        const finish = () => {
          const code = res.statusCode ?? 0;
          if (req.hook || (code >= 200 && code < 400)) done({ ok: true, message: '' });
          else done({ ok: false, message: `HTTP probe failed with statuscode: ${code}` });
        };
        res.once('end', finish);
        res.once('error', finish);
      });
    } catch (e) {
      // A request Node will not build (an invalid header name or value): a failed probe, as Go's client error.
      done({ ok: false, message: `Get "${url}": ${(e as Error).message}` });
      return;
    }
    r.once('error', (e) => done({ ok: false, message: `Get "${url}": ${e.message}` }));
    r.end();
  });
}

const isMain = process.argv[2] !== undefined && /probe-child\.[jt]s$/.test(process.argv[1] ?? '');
if (isMain) {
  const req = JSON.parse(process.argv[2]!) as ProbeRequest;
  runProbe(req).then((r) => {
    process.stdout.write(JSON.stringify(r));
    process.exit(0);
  });
}
