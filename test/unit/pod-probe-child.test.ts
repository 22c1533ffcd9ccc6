// The HTTP/TCP probe helper's runProbe against a local server: a path without
// its leading slash is requested as the kubelet's formatURL does ("/healthz"),
// and a request Node refuses to build (an invalid header name) is a failed
// probe with a message, never a rejection (which killed the helper).

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProbe } from '../../src/pod/probe-child.js';

let server: Server;
let port: number;
const paths: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    paths.push(req.url!);
    res.statusCode = req.url === '/healthz' ? 200 : 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

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
});
