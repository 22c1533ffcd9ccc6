// A gRPC probe as the kubelet's (pkg/probe/grpc): one grpc.health.v1.Health/
// Check call over plaintext HTTP/2, its verdict and messages worded as the
// kubelet words them. Spoken with node:http2 directly: the call is one
// request, and the probe child stays as light as the HTTP and TCP ones.

import * as http2 from 'node:http2';

export interface GrpcProbeRequest {
  host: string;
  port: number;
  service: string;
  timeoutMs: number;
  userAgent: string;
}

export interface GrpcProbeResult {
  ok: boolean;
  message: string;
}

/** HealthCheckResponse.ServingStatus. */
const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];
/** gRPC status codes by number, as Go's codes.Code prints them. */
const CODES = ['OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied', 'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated'];
const UNIMPLEMENTED = 12;
const DEADLINE_EXCEEDED = 4;

/** A varint of a protobuf message at `at`: its value and where the next field starts. */
function varint(b: Buffer, at: number): [number, number] {
  let v = 0;
  for (let shift = 0; at < b.length && shift < 35; shift += 7) {
    const byte = b[at++]!;
    v += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [v, at];
  }
  throw new Error('a truncated varint');
}

/** HealthCheckRequest{service}: field 1, a string; empty is left out. */
export function healthCheckRequest(service: string): Buffer {
  const s = Buffer.from(service);
  const len: number[] = [];
  for (let n = s.length; ; n = Math.floor(n / 128)) {
    len.push(n >= 128 ? (n & 0x7f) | 0x80 : n);
    if (n < 128) break;
  }
  const msg = s.length > 0 ? Buffer.concat([Buffer.from([0x0a, ...len]), s]) : Buffer.alloc(0);
  // The gRPC frame: not compressed, the length big-endian, the message.
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

/** HealthCheckResponse.status (field 1, a varint) of the first gRPC frame; 0 when absent. */
export function healthCheckStatus(body: Buffer): number {
  if (body.length < 5) throw new Error('no response message');
  if (body[0] !== 0) throw new Error('a compressed response');
  const msg = body.subarray(5, 5 + body.readUInt32BE(1));
  let status = 0;
  for (let at = 0; at < msg.length; ) {
    const [key, next] = varint(msg, at);
    at = next;
    const wire = key & 7;
    if (wire === 0) {
      const [v, after] = varint(msg, at);
      if (key >>> 3 === 1) status = v;
      at = after;
    } else if (wire === 2) {
      const [len, after] = varint(msg, at);
      at = after + len;
    } else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else throw new Error(`a field of wire type ${wire}`);
  }
  return status;
}

export function grpcProbe(req: GrpcProbeRequest): Promise<GrpcProbeResult> {
  const addr = `${req.host.includes(':') ? `[${req.host}]` : req.host}:${req.port}`;
  const within = `${req.timeoutMs / 1000}s`;
  return new Promise((resolve) => {
    let session: http2.ClientHttp2Session | undefined;
    let connected = false;
    let settled = false;
    const done = (r: GrpcProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session?.destroy();
      resolve(r);
    };
    // The kubelet dials with WithBlock: a refused or unreachable address is retried until the timeout.
    const timer = setTimeout(
      () =>
        done(
          connected
            ? { ok: false, message: `timeout: health rpc did not complete within ${within}` }
            : { ok: false, message: `timeout: failed to connect service ${JSON.stringify(addr)} within ${within}: context deadline exceeded` },
        ),
      req.timeoutMs,
    );
    const dial = () => {
      if (settled) return;
      const s = http2.connect(`http://${addr}`);
      session = s;
      s.on('error', () => {
        if (!connected) setTimeout(dial, 100);
      });
      s.once('connect', () => {
        connected = true;
        call(s);
      });
    };
    const call = (s: http2.ClientHttp2Session) => {
      const r = s.request({
        ':method': 'POST',
        ':path': '/grpc.health.v1.Health/Check',
        'content-type': 'application/grpc',
        te: 'trailers',
        'user-agent': req.userAgent,
        'grpc-timeout': `${Math.max(1, req.timeoutMs)}m`,
      });
      let body = Buffer.alloc(0);
      let status: string | undefined;
      let grpcMessage = '';
      const takeStatus = (h: http2.IncomingHttpHeaders) => {
        if (h['grpc-status'] !== undefined) {
          status = String(h['grpc-status']);
          grpcMessage = decodeURIComponent(String(h['grpc-message'] ?? ''));
        }
      };
      r.on('response', (h) => {
        // A Trailers-Only answer (an error) carries its status in the headers.
        takeStatus(h);
        const code = Number(h[':status']);
        if (code !== 200 && status === undefined) {
          done({ ok: false, message: `error: health rpc probe failed: rpc error: code = Unknown desc = unexpected HTTP status code received from server: ${code}` });
        }
      });
      r.on('trailers', takeStatus);
      r.on('data', (d: Buffer) => (body = Buffer.concat([body, d])));
      r.on('error', (e) => done({ ok: false, message: `error: health rpc probe failed: rpc error: code = Unavailable desc = ${e.message}` }));
      r.on('end', () => {
        const code = Number(status ?? 2);
        if (code === UNIMPLEMENTED) return done({ ok: false, message: `this server does not implement the grpc health protocol (grpc.health.v1.Health): ${grpcMessage}` });
        if (code === DEADLINE_EXCEEDED) return done({ ok: false, message: `timeout: health rpc did not complete within ${within}` });
        if (code !== 0) return done({ ok: false, message: `error: health rpc probe failed: rpc error: code = ${CODES[code] ?? `Code(${code})`} desc = ${grpcMessage}` });
        let serving: number;
        try {
          serving = healthCheckStatus(body);
        } catch (e) {
          return done({ ok: false, message: `error: health rpc probe failed: rpc error: code = Internal desc = ${(e as Error).message}` });
        }
        if (serving !== 1) return done({ ok: false, message: `service unhealthy (responded with ${JSON.stringify(SERVING_STATUS[serving] ?? String(serving))})` });
        done({ ok: true, message: 'service healthy' });
      });
      r.end(healthCheckRequest(req.service));
    };
    dial();
  });
}
