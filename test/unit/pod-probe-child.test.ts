// The HTTP/TCP probe helper's runProbe against a local server: a path without
// its leading slash is requested as the kubelet's formatURL does ("/healthz"),
// and a request Node refuses to build (an invalid header name) is a failed
// probe with a message, never a rejection (which killed the helper).
// Redirects and bodies as the kubelet's HTTP prober: redirects followed to the
// same host (at most 10), one to another host a success with a warning; at
// most 10 KiB of the body read, then the status code decides.

import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ProbeRequest, runProbe } from '../../src/pod/probe-child.js';

let server: Server;
let port: number;
const paths: string[] = [];
const hosts = new Map<string, string>();

/** Streams `chunk` every 5 ms until the client goes. */
function stream(res: ServerResponse, chunk: string): void {
  res.write(chunk);
  const t = setInterval(() => res.write(chunk), 5);
  res.once('close', () => clearInterval(t));
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = req.url!;
    paths.push(url);
    hosts.set(url, req.headers.host!);
    const redirect = (location: string) => {
      res.writeHead(302, { Location: location });
      res.end();
    };
    const loop = /^\/loop\/(\d+)$/.exec(url);
    if (loop) return redirect(`/loop/${Number(loop[1]) + 1}`);
    // localhost is this server too: a redirect followed ends in a plain success.
    const other = /^\/other-host\/(\w+)$/.exec(url);
    if (other) return redirect(`http://localhost:${port}/healthz-${other[1]}`);
    switch (url) {
      case '/relative':
        return redirect('healthz');
      case '/absolute':
        return redirect(`http://127.0.0.1:${port}/healthz`);
      case '/endless':
        res.writeHead(200);
        return stream(res, 'x'.repeat(1024));
      case '/endless-500':
        res.writeHead(500);
        return stream(res, 'x'.repeat(1024));
      case '/stalls':
        res.writeHead(200);
        return void res.write('a little');
    }
    res.statusCode = url.startsWith('/healthz') ? 200 : 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const get = (path: string, more: Partial<ProbeRequest> = {}) => runProbe({ type: 'http', host: '127.0.0.1', port, path, timeoutMs: 5000, ...more });

describe('runProbe (http)', () => {
  it('requests a path given without a leading slash under /', async () => {
    const r = await runProbe({ type: 'http', host: '127.0.0.1', port, path: 'healthz', timeoutMs: 5000 });
    expect(r).toEqual({ ok: true, message: '' });
    expect(paths).toContain('/healthz');
  });

  it('an invalid header name is a failed probe with a message', async () => {
    const r = await runProbe({ type: 'http', host: '127.0.0.1', port, path: '/healthz', headers: [{ name: 'bad name', value: 'x' }], timeoutMs: 5000 });
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/^Get "http:\/\/127\.0\.0\.1:\d+\/healthz": .*header.*"bad name"/i);
  });

  it('follows redirects to the same host, keeping a Host header only for a relative Location', async () => {
    const headers = [{ name: 'Host', value: 'web.example' }];
    expect(await get('/relative', { headers })).toEqual({ ok: true, message: '' });
    expect(hosts.get('/healthz')).toBe('web.example');
    expect(await get('/absolute', { headers })).toEqual({ ok: true, message: '' });
    expect(hosts.get('/healthz')).toBe(`127.0.0.1:${port}`);
  });

  it('gives up at the 10th redirect: a failure', async () => {
    const r = await get('/loop/0');
    expect(r).toEqual({ ok: false, message: `Get "http://127.0.0.1:${port}/loop/10": stopped after 10 redirects` });
    expect(paths.filter((p) => p.startsWith('/loop/'))).toEqual([...Array(10).keys()].map((i) => `/loop/${i}`));
  });

  it('does not follow a redirect to another host: a success with a warning', async () => {
    const r = await get('/other-host/probe');
    expect(r).toEqual({ ok: true, outcome: 'warning', message: 'Probe terminated redirects, Response body: ' });
    expect(paths).not.toContain('/healthz-probe');
  });

  it('a hook follows a redirect to another host', async () => {
    expect(await get('/other-host/hook', { hook: true })).toEqual({ ok: true, message: '' });
    expect(paths).toContain('/healthz-hook');
  });

  it.each([
    ['/endless', { ok: true, message: '' }],
    ['/endless-500', { ok: false, message: 'HTTP probe failed with statuscode: 500' }],
  ])('a body that never ends (%s) is decided by the status code after 10 KiB', async (path, want) => {
    const began = Date.now();
    expect(await get(path)).toEqual(want);
    expect(Date.now() - began).toBeLessThan(2000);
  });

  it('a body that stalls until the timeout is an error, not a failure', async () => {
    const r = await get('/stalls', { timeoutMs: 300 });
    expect(r).toEqual({ ok: false, outcome: 'error', message: 'reading the response body: timeout after 300ms' });
  });
});
