// Client connections coming and going. The server runs with MALLOC_PERTURB_
// set, so glibc fills freed memory: a use after free in the server's HTTP/2
// (Deno's node:http2 on a client's GOAWAY, denoland/deno#36788, which
// src/cri/h2-filter.ts keeps away) crashes it at once instead of once in
// a while.

import { connect as http2Connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { criClient } from '../support/cri-client.js';
import { runtime, startServer, type TestServer } from '../support/server.js';

describe(`client connections [server on ${runtime}]`, () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer({ MALLOC_PERTURB_: '165' });
  });
  afterAll(async () => {
    await s?.cleanup(); // fails the file if the server died on its own
  });

  it('serves clients that each make one call and hang up with a GOAWAY, and goes on serving', async () => {
    for (let i = 0; i < 150; i++) {
      const client = criClient(s.socket);
      try {
        expect((await client.runtime.Version({})).runtimeName).toBe('peapod');
      } finally {
        client.close(); // grpc-js: GOAWAY, then the socket closes
      }
    }
    const { items } = await s.runtime.ListPodSandbox({});
    expect(items).toEqual([]);
    expect(() => process.kill(s.pid, 0)).not.toThrow(); // and cleanup() fails the file had it died on its own
  });

  it('serves a client that names the socket\'s path as :authority, as grpc-go before 1.52 (crictl and kubelets up to 1.26) does', async () => {
    // HTTP/2 servers refuse a "/" there (PROTOCOL_ERROR on every call); containerd takes it.
    const session = http2Connect('http://localhost', { createConnection: () => netConnect(s.socket) });
    const version = () =>
      new Promise<{ status: string | undefined; body: string; rst: number }>((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': '/runtime.v1.RuntimeService/Version', ':authority': s.socket, 'content-type': 'application/grpc', te: 'trailers' });
        let status: string | undefined;
        const body: Buffer[] = [];
        req.on('trailers', (t) => (status = t['grpc-status'] as string | undefined));
        req.on('data', (d: Buffer) => body.push(d));
        req.on('close', () => resolve({ status, body: Buffer.concat(body).toString('latin1'), rst: req.rstCode ?? 0 }));
        req.once('error', reject); // a reset: "Stream closed with error code NGHTTP2_PROTOCOL_ERROR"
        req.end(Buffer.alloc(5)); // an empty VersionRequest
      });
    try {
      // The second call's :authority comes from the HPACK dynamic table the first filled.
      for (let i = 0; i < 2; i++) {
        const r = await version();
        expect([r.rst, r.status], `call ${i + 1}`).toEqual([0, '0']);
        expect(r.body).toContain('peapod');
      }
    } finally {
      session.close();
    }
  });

  it('a client kept across a server restart connects again for its next call', async () => {
    const client = criClient(s.socket);
    try {
      expect((await client.runtime.Version({})).runtimeName).toBe('peapod');
      await s.restart(); // killed with -9: the client's connection just ends
      expect((await client.runtime.Version({})).runtimeName).toBe('peapod');
      expect((await client.runtime.ListPodSandbox({})).items).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('serves many calls at once on one connection and on several', async () => {
    const clients = Array.from({ length: 4 }, () => criClient(s.socket));
    try {
      const all = clients.flatMap((c) => Array.from({ length: 25 }, () => c.runtime.Version({})));
      const versions = await Promise.all(all);
      expect(versions.length).toBe(100);
      expect(new Set(versions.map((v) => v.runtimeApiVersion))).toEqual(new Set(['v1']));
    } finally {
      for (const c of clients) c.close();
    }
  });
});
