import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import { packageRoot } from '../config.js';
import type { ProtoGrpcType } from './generated/api.js';
import type { ProtoGrpcType as PeapodProtoGrpcType } from './generated/peapod.js';

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
/** peapod's own service (image loading, later the pod runner), served beside CRI. */
export const peapodProtoPath = join(packageRoot, 'proto', 'peapod.proto');

let cached: ProtoGrpcType | undefined;
let cachedPeapod: PeapodProtoGrpcType | undefined;

export function criProto(): ProtoGrpcType {
  cached ??= grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, loaderOptions)) as unknown as ProtoGrpcType;
  return cached;
}

export function peapodProto(): PeapodProtoGrpcType {
  cachedPeapod ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(peapodProtoPath, loaderOptions),
  ) as unknown as PeapodProtoGrpcType;
  return cachedPeapod;
}
