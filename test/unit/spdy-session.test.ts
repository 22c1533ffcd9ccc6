// A SPDY session facing a peer that sends a corrupt header block: the
// session must end (GOAWAY, then close) and the command behind it with it.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { serveSpdyExec, type ExecProcess } from '../../src/stream/remotecommand.js';
import { controlFrame, FrameType, HeaderZlib, SpdyError, SpdySession } from '../../src/stream/spdy.js';
import { withinMs } from '../support/fuzz.js';
import { clientStreams, FakeSocket, quietLog } from '../support/stream-fakes.js';
import { until } from '../support/wait.js';

/** An exec session whose streams are open and whose command runs; `kills` counts kill() calls. */
async function runningExec() {
  const sock = new FakeSocket();
  const server = new SpdySession(sock, true);
  server.on('error', () => {});
  const state = { started: false, kills: 0 };
  const proc: ExecProcess = {
    stdin: null,
    stdout: new PassThrough(),
    stderr: null,
    resize() {},
    exited: new Promise(() => {}),
    kill: () => void state.kills++,
  };
  const opts = { tty: false, stdin: false, stdout: true, stderr: false };
  serveSpdyExec(server, 'v4.channel.k8s.io', opts, ['sleep', 'inf'], () => ((state.started = true), proc), quietLog);
  server.receive(await clientStreams(['error', 'stdout']));
  await until('exec start', () => state.started, 2000);
  return { sock, server, state, closed: new Promise<void>((r) => server.once('close', r)) };
}

const garbageHeaders = controlFrame(FrameType.HEADERS, 0, Buffer.concat([Buffer.from([0, 0, 0, 1]), Buffer.from('not zlib at all')]));

describe('SPDY session: corrupt header blocks', () => {
  it('an inflate error rejects with SpdyError, and later blocks too', async () => {
    const z = new HeaderZlib('inflate');
    await expect(withinMs(z.process(Buffer.from('garbage')), 2000, 'inflate')).rejects.toBeInstanceOf(SpdyError);
    await expect(withinMs(z.process(Buffer.from('x')), 2000, 'inflate')).rejects.toBeInstanceOf(SpdyError);
  });

  it('a garbage HEADERS block ends an exec session with GOAWAY(PROTOCOL_ERROR) and kills the command', async () => {
    const { sock, server, state, closed } = await runningExec();
    const before = sock.written();
    server.receive(garbageHeaders);
    await withinMs(closed, 1000, 'session close');
    expect(state.kills).toBe(1);
    expect(sock.destroyed).toBe(true);
    const goaway = controlFrame(FrameType.GOAWAY, 0, Buffer.from([0, 0, 0, 3, 0, 0, 0, 1])); // last stream 3, PROTOCOL_ERROR
    expect(Buffer.concat([before, sock.written()]).includes(goaway)).toBe(true);
  });

  it('a client that sent a garbage HEADERS block and went away: the command is killed', async () => {
    const { sock, server, state, closed } = await runningExec();
    server.receive(garbageHeaders);
    sock.emit('end');
    sock.emit('close');
    await withinMs(closed, 1000, 'session close');
    expect(state.kills).toBe(1);
  });
});
