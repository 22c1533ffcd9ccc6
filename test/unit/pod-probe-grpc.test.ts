// The gRPC prober against a real grpc-js server (test/support/grpc-health-server.mjs):
// the kubelet's verdicts and messages for SERVING, NOT_SERVING, an unknown
// service (NotFound), a server without the health service (Unimplemented) and
// a port nobody listens on (retried until the timeout, as the kubelet's
// blocking dial); and the request and response messages' encoding.

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcProbe, healthCheckRequest, healthCheckStatus } from '../../src/pod/probe-grpc.js';
import { repoRoot } from '../support/server.js';

const script = join(repoRoot, 'test', 'support', 'grpc-health-server.mjs');
const servers: ChildProcessWithoutNullStreams[] = [];

async function healthServer(...args: string[]): Promise<{ port: number; set: (status: string) => void }> {
  const child = spawn(process.execPath, [script, '0', ...args], { cwd: repoRoot });
  servers.push(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  while (!/port \d+\n/.test(out)) await once(child.stdout, 'data');
  return { port: Number(/port (\d+)/.exec(out)![1]), set: (status) => child.stdin.write(`${status}\n`) };
}

const probe = (port: number, service = '', timeoutMs = 2000) => grpcProbe({ host: '127.0.0.1', port, service, timeoutMs, userAgent: 'kube-probe/1.31' });

let health: Awaited<ReturnType<typeof healthServer>>;
beforeAll(async () => {
  health = await healthServer();
});
afterAll(() => {
  for (const s of servers) s.kill('SIGKILL');
});

describe('gRPC probe', () => {
  it('SERVING is healthy; NOT_SERVING and UNKNOWN are unhealthy, named as the kubelet names them', async () => {
    expect(await probe(health.port)).toEqual({ ok: true, message: 'service healthy' });
    expect(await probe(health.port, 'app')).toEqual({ ok: true, message: 'service healthy' });
    health.set('NOT_SERVING');
    expect(await probe(health.port)).toEqual({ ok: false, message: 'service unhealthy (responded with "NOT_SERVING")' });
    health.set('UNKNOWN');
    expect(await probe(health.port)).toEqual({ ok: false, message: 'service unhealthy (responded with "UNKNOWN")' });
    health.set('SERVING');
    expect((await probe(health.port)).ok).toBe(true);
  });

  it('an unknown service and a server without the health service fail with the kubelet\'s messages', async () => {
    expect(await probe(health.port, 'other')).toEqual({ ok: false, message: 'error: health rpc probe failed: rpc error: code = NotFound desc = unknown service' });
    const bare = await healthServer('--no-health');
    const r = await probe(bare.port);
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/^this server does not implement the grpc health protocol \(grpc\.health\.v1\.Health\): /);
  });

  it('a port nobody listens on is dialled until the timeout, then named', async () => {
    const free = createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port = (free.address() as { port: number }).port;
    free.close();
    const t0 = Date.now();
    expect(await probe(port, '', 1000)).toEqual({ ok: false, message: `timeout: failed to connect service "127.0.0.1:${port}" within 1s: context deadline exceeded` });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(990);
  });

  it('encodes HealthCheckRequest and decodes HealthCheckResponse as protobuf in a gRPC frame', () => {
    expect(healthCheckRequest('')).toEqual(Buffer.from([0, 0, 0, 0, 0]));
    expect(healthCheckRequest('app')).toEqual(Buffer.from([0, 0, 0, 0, 5, 0x0a, 3, 0x61, 0x70, 0x70]));
    // A 200-byte service name takes a two-byte length.
    expect(healthCheckRequest('s'.repeat(200)).subarray(5, 8)).toEqual(Buffer.from([0x0a, 0xc8, 0x01]));
    expect(healthCheckStatus(Buffer.from([0, 0, 0, 0, 2, 0x08, 2]))).toBe(2);
    // An unknown field first is skipped; no status field is UNKNOWN (0).
    expect(healthCheckStatus(Buffer.from([0, 0, 0, 0, 5, 0x12, 1, 0x41, 0x08, 1]))).toBe(1);
    expect(healthCheckStatus(Buffer.from([0, 0, 0, 0, 0]))).toBe(0);
    expect(() => healthCheckStatus(Buffer.alloc(0))).toThrow('no response message');
  });
});
