// A gRPC server for probe tests: grpc.health.v1.Health/Check answers the
// status last written on stdin (a line SERVING, NOT_SERVING…) for the service
// "" and "app", NOT_FOUND for any other; with --no-health it serves nothing
// (every call is UNIMPLEMENTED). Prints "port N" once listening.
// Usage: node grpc-health-server.mjs PORT [--no-health]   (0: any port; on 127.0.0.1)
import * as grpc from '@grpc/grpc-js';
import { createInterface } from 'node:readline';

const STATUS = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2 };
let status = STATUS.SERVING;
createInterface({ input: process.stdin }).on('line', (l) => {
  if (l in STATUS) status = STATUS[l];
});
process.stdin.on('end', () => process.exit(0));

const raw = (b) => b;
const server = new grpc.Server();
if (!process.argv.includes('--no-health')) {
  const check = { path: '/grpc.health.v1.Health/Check', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw };
  server.addService({ Check: check }, {
    Check: (call, cb) => {
      // HealthCheckRequest{service = 1}: a short string, if any.
      const req = call.request;
      const service = req.length > 2 && req[0] === 0x0a ? req.subarray(2, 2 + req[1]).toString() : '';
      if (service !== '' && service !== 'app') return cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
      cb(null, Buffer.from([0x08, status]));
    },
  });
}
server.bindAsync(`127.0.0.1:${process.argv[2] ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(err.message);
    process.exit(1);
  }
  process.stdout.write(`port ${port}\n`);
});
