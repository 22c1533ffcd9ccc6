import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import { packageRoot } from '../config.js';
import type { ProtoGrpcType } from './generated/api.js';

/**
 * Decoding options shared by the server and the test client: int64 as
 * decimal strings (nanosecond times exceed 2^53), enums by name, defaults
 * filled in so handlers never see undefined scalars.
 */
export const loaderOptions: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

export const protoPath = join(packageRoot, 'proto', 'api.proto');

let cached: ProtoGrpcType | undefined;

export function criProto(): ProtoGrpcType {
  cached ??= grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, loaderOptions)) as unknown as ProtoGrpcType;
  return cached;
}
