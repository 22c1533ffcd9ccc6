import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameParser, SPDY_DICTIONARY, decodeHeaderBlock } from '../../src/stream/spdy.js';
import { grpcCode, podConfig } from '../support/cri-client.js';
import { BUSYBOX, preloadBusybox } from '../support/images.js';
import { runtime, startServer, type TestServer } from '../support/server.js';
import { collect, connect, readAll, readHead, spdyExec, spdyUpgrade, upgradeRequest } from '../support/spdy-client.js';
import { wsConnect } from '../support/ws-client.js';
import { until } from '../support/wait.js';
import { headersOf, type SpdySession } from '../../src/stream/spdy.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}
const TTL_MS = 2000;

describe(`streaming exec and port-forward [server on ${runtime}]`, () => {
  let s: TestServer;
  let logDir: string;
  let pod: string;
  let ctr: string;

  beforeAll(async () => {
    s = await startServer({ PEAPOD_STREAM_TOKEN_TTL_MS: String(TTL_MS) }, preloadBusybox);
    logDir = mkdtempSync(join(tmpdir(), 'peapod-logs-'));
    pod = (await s.runtime.RunPodSandbox({ config: podConfig('streams', { logDirectory: logDir }) })).podSandboxId;
    ctr = await run(pod, 'sleeper', ['sleep', '3600']);
  });
  afterAll(async () => {
    await s?.cleanup();
    rmSync(logDir, { recursive: true, force: true });
  });

  async function run(podId: string, name: string, command: string[]) {
    const { containerId } = await s.runtime.CreateContainer({
      podSandboxId: podId,
      config: { metadata: { name }, image: { image: BUSYBOX }, command, logPath: `${name}.log` },
    });
    await s.runtime.StartContainer({ containerId });
    return containerId;
  }

  const execUrl = async (cmd: string[], o: { tty?: boolean; stdin?: boolean; stdout?: boolean; stderr?: boolean } = {}) => {
    const { url } = await s.runtime.Exec({ containerId: ctr, cmd, stdin: o.stdin ?? false, stdout: o.stdout ?? true, stderr: o.stderr ?? !o.tty, tty: o.tty ?? false });
    return url;
  };

  const status = (code: number, cmd: string[]) =>
    code === 0
      ? { metadata: {}, status: 'Success' }
      : {
          metadata: {},
          status: 'Failure',
          message: `command terminated with non-zero exit code: error executing command [${cmd.join(' ')}], exit code ${code}`,
          reason: 'NonZeroExitCode',
          details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
        };

  it('returns an absolute URL on 127.0.0.1', async () => {
    expect(await execUrl(['true'])).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]{16,}$/);
    const { url } = await s.runtime.PortForward({ podSandboxId: pod, port: [8080] });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/portforward\/[A-Za-z0-9_-]{16,}$/);
  });

  it('execs without a tty: stdin piped, stdout and stderr apart, exit codes as v4 Status', async () => {
    const cmd = ['sh', '-c', 'cat; echo to-stderr >&2; exit 3'];
    const r = await spdyExec(await execUrl(cmd, { stdin: true }), { stdin: 'hello\nworld\n' });
    expect(r.protocol).toBe('v4.channel.k8s.io');
    expect(r.stdout).toBe('hello\nworld\n');
    expect(r.stderr).toBe('to-stderr\n');
    expect(JSON.parse(r.error)).toEqual(status(3, cmd));

    const ok = await spdyExec(await execUrl(['echo', 'fine']));
    expect([ok.stdout, ok.stderr]).toEqual(['fine\n', '']);
    expect(JSON.parse(ok.error)).toEqual({ metadata: {}, status: 'Success' });
  });

  it('passes large output through and exit codes exactly', async () => {
    const r = await spdyExec(await execUrl(['sh', '-c', 'head -c 300000 /dev/zero | tr "\\0" x; exit 42']));
    expect(r.stdout.length).toBe(300000);
    expect(JSON.parse(r.error).details.causes[0].message).toBe('42');
    const missing = await spdyExec(await execUrl(['/no/such/program']));
    expect(JSON.parse(missing.error).details.causes[0].message).toBe('127');
  });

  it('a client that stops reading for a while still gets all the output, exactly (SPDY and WebSocket)', async () => {
    // More than loopback buffers hold while nothing reads: the server has to hold the command back, then go on.
    const size = 8_000_000;
    const cmd = ['sh', '-c', `head -c ${size} /dev/zero | tr "\\0" x; exit 7`];
    const up = await spdyUpgrade(await execUrl(cmd), ['v4.channel.k8s.io']);
    if (!up.ok) throw new Error(`upgrade: ${up.status}`);
    up.session.socket.pause();
    const [error, stdout] = ['error', 'stdout', 'stderr'].map((t) => collect(up.session.openStream(headersOf({ streamType: t }))));
    await sleep(1000);
    up.session.socket.resume();
    const out = await stdout!;
    expect(out.length).toBe(size);
    expect(out.every((b) => b === 0x78)).toBe(true);
    expect(JSON.parse((await error!).toString())).toEqual(status(7, cmd));
    up.session.destroy();

    const ws = await wsConnect(await execUrl(cmd), ['v5.channel.k8s.io']);
    if (!ws.ok) throw new Error(`upgrade: ${ws.status}`);
    // The helper client has no pause of its own: stop reading its socket.
    const raw = (ws.client as unknown as { socket: import('node:net').Socket }).socket;
    raw.pause();
    await sleep(1000);
    raw.resume();
    const ch = await ws.client.channels();
    expect(ch.get(1)?.length).toBe(size);
    expect(JSON.parse(ch.get(3)!.toString())).toEqual(status(7, cmd));
  });

  it('speaks the older versions: v2 and channel.k8s.io report failures as text', async () => {
    for (const v of ['v2.channel.k8s.io', 'channel.k8s.io']) {
      const bad = await spdyExec(await execUrl(['sh', '-c', 'echo out; exit 5']), { protocols: [v] });
      expect(bad.protocol).toBe(v);
      expect(bad.stdout).toBe('out\n');
      expect(bad.error).toMatch(/non-zero exit code.*exit code 5$/);
      const good = await spdyExec(await execUrl(['true']), { protocols: [v] });
      expect(good.error).toBe('');
    }
  });

  it('execs with a tty: resize reaches the terminal, output on stdout only', async () => {
    const url = await execUrl(['sh', '-c', 'read line; stty size; tty; echo "[$line]"; echo to-err >&2'], { tty: true, stdin: true });
    const r = await spdyExec(url, { tty: true, resize: { Width: 77, Height: 33 }, stdin: 'typed\n' });
    expect(r.stdout).toContain('33 77\r\n');
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+\r\n/);
    expect(r.stdout).toContain('[typed]\r\n');
    expect(r.stdout).toContain('to-err\r\n');
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.error)).toEqual({ metadata: {}, status: 'Success' });

    const env = await spdyExec(await execUrl(['sh', '-c', 'echo $TERM; exit 4'], { tty: true }), { tty: true });
    expect(env.stdout).toBe('xterm\r\n');
    expect(JSON.parse(env.error).details.causes[0].message).toBe('4');
  });

  it('a tty command that does not read its input: output, exit and kill go on while the input waits', async () => {
    const ttyExec = async (cmd: string[], inputKiB: number) => {
      const up = await spdyUpgrade(await execUrl(cmd, { tty: true, stdin: true }), ['v4.channel.k8s.io']);
      if (!up.ok) throw new Error(`upgrade: ${up.status}`);
      const open = (t: string) => up.session.openStream(headersOf({ streamType: t }));
      const error = collect(open('error')).then(String);
      const stdin = open('stdin');
      const stdout = open('stdout');
      open('resize').write(JSON.stringify({ Width: 80, Height: 24 }));
      let bytes = 0;
      stdout.on('data', (d: Buffer) => (bytes += d.length));
      stdin.write('y\n'.repeat(inputKiB * 512)); // at once, far more than the terminal holds
      return { session: up.session, error, bytes: () => bytes };
    };
    const busy = await ttyExec(['sh', '-c', 'head -c 2000000 /dev/zero | tr "\\0" x; head -n1 >/dev/null'], 512);
    expect(JSON.parse(await within(busy.error, 15_000, 'the exit status'))).toEqual({ metadata: {}, status: 'Success' });
    expect(busy.bytes()).toBeGreaterThanOrEqual(2_000_000);
    busy.session.destroy();

    // Less input: what the pipes hold, so the session is not paused reading
    // (a full stdin stops the reading of the whole SPDY session, and with it
    // the sight of the client's end, until the command reads or exits).
    const stuck = await ttyExec(['sh', '-c', 'sleep 1001'], 64);
    const sleeping = async () => {
      const r = await s.runtime.ExecSync({ containerId: ctr, cmd: ['sh', '-c', 'ps | grep "[s]leep 1001" || true'], timeout: '5' });
      return Buffer.from(r.stdout).toString().trim() !== '';
    };
    for (let i = 0; i < 100 && !(await sleeping()); i++) await sleep(20);
    expect(await sleeping()).toBe(true);
    await sleep(200); // the input has filled the terminal
    stuck.session.destroy();
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline && (await sleeping())) await sleep(50);
    expect(await sleeping()).toBe(false);
  });

  it('answers the handshake and a hand-built SYN_STREAM byte for byte', async () => {
    const url = await execUrl(['echo', 'raw']);
    const socket = await connect(url);
    socket.write(upgradeRequest(url, ['v9.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io']));
    const head = await readHead(socket);
    expect(head.status).toBe(101);
    expect(head.headers['upgrade']).toBe('SPDY/3.1');
    expect(head.headers['connection']).toMatch(/upgrade/i);
    expect(head.headers['x-stream-protocol-version']).toBe('v4.channel.k8s.io');

    // SYN_STREAM, stream 1, headers {streamtype: error}, compressed by hand.
    const name = Buffer.from('streamtype');
    const value = Buffer.from('error');
    const block = Buffer.alloc(4 + 4 + name.length + 4 + value.length);
    let o = block.writeUInt32BE(1, 0);
    o = block.writeUInt32BE(name.length, o);
    o += name.copy(block, o);
    o = block.writeUInt32BE(value.length, o);
    value.copy(block, o);
    const z = zlib.deflateSync(block, { dictionary: SPDY_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    const payload = Buffer.concat([Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), z]);
    const frameHead = Buffer.from([0x80, 0x03, 0x00, 0x01, 0x00, 0, 0, 0]);
    frameHead.writeUIntBE(payload.length, 5, 3);
    socket.write(Buffer.concat([frameHead, payload]));
    const reply = await new Promise<Buffer>((resolve) => {
      let buf = head.rest;
      const check = () => (buf.length >= 8 && buf.length >= 8 + (buf.readUInt32BE(4) & 0xffffff) ? resolve(buf) : undefined);
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        check();
      });
      socket.resume();
      check();
    });
    expect([...reply.subarray(0, 5)]).toEqual([0x80, 0x03, 0x00, 0x02, 0x00]); // SYN_REPLY, no flags
    expect(reply.readUInt32BE(8) & 0x7fffffff).toBe(1);
    const frames = new FrameParser().push(reply);
    const inflated = zlib.inflateSync(frames[0]!.payload.subarray(4), { dictionary: SPDY_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    expect(decodeHeaderBlock(inflated).size).toBe(0);
    socket.destroy();
  });

  it('refuses versions it does not speak with 403 and the accepted list', async () => {
    const up = await spdyUpgrade(await execUrl(['true']), ['v9.channel.k8s.io']);
    expect(up.ok).toBe(false);
    if (up.ok) return;
    expect(up.status).toBe(403);
    expect(up.head.headers['x-accepted-stream-protocol-versions']).toContain('v4.channel.k8s.io');
  });

  it('refuses a WebSocket client that offers only protocols it does not speak, with 403, as the kubelet', async () => {
    for (const url of [await execUrl(['true']), (await s.runtime.PortForward({ podSandboxId: pod, port: [80] })).url]) {
      const up = await wsConnect(url, ['v9.channel.k8s.io', 'unknown']);
      expect(up.ok).toBe(false);
      if (up.ok) return;
      expect(up.status).toBe(403);
      expect(up.body).toContain('requested protocol(s) are not supported: ["v9.channel.k8s.io","unknown"]');
    }
  });

  it('execs over WebSocket v5 (stdin close signal) and v4', async () => {
    const cmd = ['sh', '-c', 'cat; echo e >&2; exit 3'];
    const up = await wsConnect(await execUrl(cmd, { stdin: true }), ['v5.channel.k8s.io', 'v4.channel.k8s.io']);
    expect(up.ok).toBe(true);
    if (!up.ok) return;
    expect(up.client.protocol).toBe('v5.channel.k8s.io');
    up.client.sendChannel(0, 'over-ws\n');
    up.client.sendChannel(255, Buffer.from([0])); // close stdin
    const ch = await up.client.channels();
    expect(ch.get(1)?.toString()).toBe('over-ws\n');
    expect(ch.get(2)?.toString()).toBe('e\n');
    expect(JSON.parse(ch.get(3)!.toString())).toEqual(status(3, cmd));
    expect(up.client.closeCode).toBe(1000);

    const v4 = await wsConnect(await execUrl(['sh', '-c', 'echo out; echo err >&2']), ['v4.channel.k8s.io']);
    expect(v4.ok).toBe(true);
    if (!v4.ok) return;
    expect(v4.client.protocol).toBe('v4.channel.k8s.io');
    const ch4 = await v4.client.channels();
    expect(ch4.get(1)?.toString()).toBe('out\n');
    expect(ch4.get(2)?.toString()).toBe('err\n');
    expect(JSON.parse(ch4.get(3)!.toString())).toEqual({ metadata: {}, status: 'Success' });
  });

  it('resizes a WebSocket tty', async () => {
    const up = await wsConnect(await execUrl(['sh', '-c', 'read x; stty size'], { tty: true, stdin: true }), ['v5.channel.k8s.io']);
    if (!up.ok) throw new Error(`upgrade: ${up.status}`);
    up.client.sendChannel(4, JSON.stringify({ Width: 120, Height: 40 }));
    up.client.sendChannel(0, '\n');
    const ch = await up.client.channels();
    expect(ch.get(1)?.toString()).toContain('40 120\r\n');
    expect(ch.has(2)).toBe(false);
  });

  describe('port-forward', () => {
    let p: string;
    const page = 'peapod-port-forward';
    const GET = (path: string) => `GET ${path} HTTP/1.0\r\n\r\n`;

    beforeAll(async () => {
      p = (await s.runtime.RunPodSandbox({ config: podConfig('pf', { logDirectory: logDir }) })).podSandboxId;
      await run(p, 'httpd', [
        'sh',
        '-c',
        `mkdir -p /www && echo ${page} > /www/index.html && head -c 8000000 /dev/zero | tr "\\0" y > /www/big && exec httpd -f -p 127.0.0.1:8080 -h /www`,
      ]);
      // Each connection: whatever comes in stays unread, so its close is a reset.
      // -ll keeps listening while a connection is served: a loop of `nc -l` has
      // no listener between two connections, and a connect there is refused.
      await run(p, 'resetter', ['sh', '-c', 'exec nc -ll -p 9000 -e sleep 1']);
    });
    afterAll(async () => {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    });

    const session = async (port: number) => {
      const { url } = await s.runtime.PortForward({ podSandboxId: p, port: [port] });
      const up = await spdyUpgrade(url, ['portforward.k8s.io']);
      if (!up.ok) throw new Error(`upgrade: ${up.status} ${up.body}`);
      expect(up.protocol).toBe('portforward.k8s.io');
      return up.session;
    };
    /** One forwarded connection, as client-go opens it: error stream, then data stream. */
    const connection = (session: SpdySession, requestId: string, port: number) => {
      const h = { port: String(port), requestID: requestId };
      const error = session.openStream(headersOf({ streamType: 'error', ...h }));
      const data = session.openStream(headersOf({ streamType: 'data', ...h }));
      return { data, error: collect(error).then(String), out: collect(data).then(String) };
    };
    /** A request whose data stream the client ends, with what came back. */
    const get = async (requestId: string, port: number, path = '/index.html') => {
      const sess = await session(port);
      const c = connection(sess, requestId, port);
      c.data.write(GET(path));
      c.data.end();
      const [error, data] = await Promise.all([c.error, c.out]);
      sess.destroy();
      return { error, data };
    };
    /** Until the pod's listener on `port` takes connections. */
    const listening = async (port: number) => {
      for (let i = 0; i < 50; i++) {
        const r = await get(String(i), port);
        if (!/refused/.test(r.error)) return;
        await sleep(100);
      }
    };

    it('forwards a port to a listener on 127.0.0.1 inside the pod', async () => {
      await listening(8080);
      const r = await get('0', 8080);
      expect(r.error).toBe('');
      expect(r.data).toMatch(/^HTTP\/1\.[01] 200/);
      expect(r.data).toContain(page);

      const refused = await get('x', 8081);
      expect(refused.error).toMatch(/error forwarding port 8081 to pod .*Connection refused/);
      expect(refused.data).toBe('');
    });

    it('ends the data stream when the pod closes the connection, the client still sending', async () => {
      await listening(8080);
      const sess = await session(8080);
      const c = connection(sess, '1', 8080);
      c.data.write(GET('/index.html')); // and no end: httpd closes after its reply
      expect(await within(c.out, 5000, 'the page and EOF')).toContain(page);
      expect(await within(c.error, 5000, 'the end of the error stream')).toBe('');
      sess.destroy();
    });

    it('a client done with a connection (end, then RST of the data stream, as client-go) is no error; the session goes on', async () => {
      await listening(8080);
      const sess = await session(8080);
      const c = connection(sess, '1', 8080);
      const first = new Promise<Buffer>((resolve) => c.data.once('data', resolve));
      c.data.write(GET('/big'));
      expect((await within(first, 5000, 'the first chunk')).length).toBeGreaterThan(0);
      c.data.end();
      c.data.rst();
      expect(await within(c.error, 5000, 'the end of the error stream')).toBe('');

      const again = connection(sess, '2', 8080);
      again.data.write(GET('/index.html'));
      again.data.end();
      expect(await within(again.out, 5000, 'the second page')).toContain(page);
      expect(await again.error).toBe('');
      expect(sess.closed).toBe(false);
      sess.destroy();
    });

    it('reports a connection the pod resets on the error stream', async () => {
      await listening(9000);
      const sess = await session(9000);
      const c = connection(sess, '1', 9000);
      c.data.write('unread\n');
      expect(await within(c.error, 10_000, 'the error stream')).toMatch(/^error forwarding port 9000 to pod [0-9a-f]+: read from connection: Connection reset by peer$/);
      sess.destroy();
    });

    it('forwards the ports of the request over WebSocket (v4.channel.k8s.io, v4.base64.channel.k8s.io)', async () => {
      await listening(8080);
      const { url } = await s.runtime.PortForward({ podSandboxId: p, port: [8080] });
      const up = await wsConnect(url, ['v4.channel.k8s.io']);
      expect(up.ok ? 101 : up.status).toBe(101);
      if (!up.ok) return;
      expect(up.client.protocol).toBe('v4.channel.k8s.io');
      await until('the port on both channels', () => up.client.messages.length >= 2);
      // Channel 0 data, 1 error, each opened by the port (8080 = 0x1f90, little-endian).
      expect(up.client.messages.slice(0, 2).map((m) => [...m.data])).toEqual([
        [0, 0x90, 0x1f],
        [1, 0x90, 0x1f],
      ]);
      up.client.sendChannel(0, GET('/index.html'));
      // The pod closes: the connection's only port is done, the server closes.
      const ch = await within(up.client.channels(), 10_000, 'the server to close');
      expect(ch.get(0)!.subarray(2).toString()).toMatch(new RegExp(`^HTTP/1\\.[01] 200[^]*${page}`));
      expect([...ch.get(1)!]).toEqual([0x90, 0x1f]); // no error
      expect(up.client.closeCode).toBe(1000);

      const b64 = await wsConnect((await s.runtime.PortForward({ podSandboxId: p, port: [8080] })).url, ['v4.base64.channel.k8s.io']);
      if (!b64.ok) throw new Error(`upgrade: ${b64.status}`);
      expect(b64.client.protocol).toBe('v4.base64.channel.k8s.io');
      await until('the port on both channels', () => b64.client.messages.length >= 2);
      expect(b64.client.messages.slice(0, 2).map((m) => [m.opcode, m.data.toString()])).toEqual([
        [1, '0kB8='],
        [1, '1kB8='],
      ]);
      b64.client.send(1, Buffer.from('0' + Buffer.from(GET('/index.html')).toString('base64')));
      await within(b64.client.closed, 10_000, 'the server to close');
      const text = b64.client.messages
        .slice(2)
        .filter((m) => m.data[0] === 0x30)
        .map((m) => Buffer.from(m.data.subarray(1).toString(), 'base64').toString())
        .join('');
      expect(text).toContain(page);
    });
  });

  it('serves each token once; unknown, used and expired tokens are 404', async () => {
    const url = await execUrl(['true']);
    expect((await spdyExec(url)).error).toContain('Success');
    for (const u of [url, url.replace(/[^/]+$/, 'no-such-token'), url.replace('/exec/', '/portforward/')]) {
      const again = await spdyUpgrade(u, ['v4.channel.k8s.io']);
      expect(again.ok ? 101 : again.status).toBe(404);
    }
    const ws = await wsConnect(url, ['v5.channel.k8s.io']);
    expect(ws.ok ? 101 : ws.status).toBe(404);

    const late = await execUrl(['true']);
    await sleep(TTL_MS + 200);
    const expired = await spdyUpgrade(late, ['v4.channel.k8s.io']);
    expect(expired.ok ? 101 : expired.status).toBe(404);

    // A plain GET is no upgrade: 400 for a live token (then used up), 404 after.
    const plain = await execUrl(['true']);
    const get = async () => {
      const sock = await connect(plain);
      sock.write(`GET ${new URL(plain).pathname} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      const head = await readHead(sock);
      await readAll(sock, head.rest);
      return head.status;
    };
    expect(await get()).toBe(400);
    expect(await get()).toBe(404);
  });

  it('validates requests: tty with stderr, no stream, missing or stopped containers and pods', async () => {
    const code = (p: Promise<unknown>) => p.then(() => 'OK', grpcCode);
    expect(await code(s.runtime.Exec({ containerId: ctr, cmd: ['true'], tty: true, stdout: true, stderr: true }))).toBe('INVALID_ARGUMENT');
    expect(await code(s.runtime.Exec({ containerId: ctr, cmd: ['true'] }))).toBe('INVALID_ARGUMENT');
    expect(await code(s.runtime.Exec({ containerId: ctr, cmd: [], stdout: true }))).toBe('INVALID_ARGUMENT');
    expect(await code(s.runtime.Exec({ containerId: 'no-such-container', cmd: ['true'], stdout: true }))).toBe('NOT_FOUND');
    expect(await code(s.runtime.Attach({ containerId: ctr, tty: true, stdout: true, stderr: true }))).toBe('INVALID_ARGUMENT');
    expect(await code(s.runtime.PortForward({ podSandboxId: 'no-such-pod', port: [80] }))).toBe('NOT_FOUND');
    expect(await code(s.runtime.PortForward({ podSandboxId: pod, port: [70000] }))).toBe('INVALID_ARGUMENT');

    const done = await run(pod, 'done', ['true']);
    for (let i = 0; i < 100; i++) {
      if ((await s.runtime.ContainerStatus({ containerId: done })).status!.state === 'CONTAINER_EXITED') break;
      await sleep(20);
    }
    expect(await code(s.runtime.Exec({ containerId: done, cmd: ['true'], stdout: true }))).toBe('FAILED_PRECONDITION');

    const stopped = (await s.runtime.RunPodSandbox({ config: podConfig('stopped', { logDirectory: logDir }) })).podSandboxId;
    await s.runtime.StopPodSandbox({ podSandboxId: stopped });
    expect(await code(s.runtime.PortForward({ podSandboxId: stopped, port: [80] }))).toBe('FAILED_PRECONDITION');
    await s.runtime.RemovePodSandbox({ podSandboxId: stopped });
  });

  it('kills the command when the client goes away', async () => {
    const url = await execUrl(['sh', '-c', 'sleep 1000; echo never'], { stdin: true });
    const up = await spdyUpgrade(url, ['v4.channel.k8s.io']);
    if (!up.ok) throw new Error('upgrade');
    for (const t of ['error', 'stdin', 'stdout', 'stderr']) up.session.openStream(headersOf({ streamType: t }));
    const sleeping = async () => {
      const r = await s.runtime.ExecSync({ containerId: ctr, cmd: ['sh', '-c', 'ps | grep "[s]leep 1000" || true'], timeout: '5' });
      return Buffer.from(r.stdout).toString().trim() !== '';
    };
    for (let i = 0; i < 100 && !(await sleeping()); i++) await sleep(20);
    expect(await sleeping()).toBe(true);
    up.session.destroy();
    for (let i = 0; i < 100 && (await sleeping()); i++) await sleep(20);
    expect(await sleeping()).toBe(false);
  });
});
