// The exec client's input relay (src/stream/client.ts) under whichever
// runtime runs this file, as test/unit/exec-client-runtimes.test.ts runs it
// under Node, Bun and Deno: the probe's own stdin, a pipe the test fills and
// closes, is relayed to a minimal v5 remote-command server here, which
// answers the end of input with the exit status. Prints one JSON line: the
// bytes the server got, their digest, and whether the input's end came through.

import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { WebSocketServer } from 'ws';
import { connectRemoteCommand } from '../../src/stream/client.js';
import { CLOSE, ERROR, STDIN } from '../../src/stream/websocket.js';

const hash = createHash('sha256');
let received = 0;
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => 'v5.channel.k8s.io' });
wss.on('connection', (ws) => {
  ws.on('message', (raw: Buffer) => {
    if (raw[0] === STDIN) {
      received += raw.length - 1;
      hash.update(raw.subarray(1));
    } else if (raw[0] === CLOSE && raw[1] === STDIN) {
      ws.send(Buffer.concat([Buffer.from([ERROR]), Buffer.from('{"metadata":{},"status":"Success"}')]), () => ws.close());
    }
  });
});
await new Promise((r) => wss.once('listening', r));
const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
const remote = await connectRemoteCommand(`http://127.0.0.1:${(wss.address() as AddressInfo).port}/exec/x`, { stdin: process.stdin, stdout: sink(), stderr: sink() });
// Without the input's end the server never answers: give up after a while and say so.
const code = await Promise.race([remote.exitCode, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000))]);
console.log(JSON.stringify({ ended: code === 0, received, sha256: hash.digest('hex') }));
process.exit(0);
