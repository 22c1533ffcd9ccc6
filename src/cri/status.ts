import * as grpc from '@grpc/grpc-js';
import { isNoSpace, PeapodError, type ErrorKind } from '../errors.js';

const codes: Record<ErrorKind, grpc.status> = {
  InvalidArgument: grpc.status.INVALID_ARGUMENT,
  NotFound: grpc.status.NOT_FOUND,
  AlreadyExists: grpc.status.ALREADY_EXISTS,
  FailedPrecondition: grpc.status.FAILED_PRECONDITION,
  Unimplemented: grpc.status.UNIMPLEMENTED,
  DeadlineExceeded: grpc.status.DEADLINE_EXCEEDED,
  ResourceExhausted: grpc.status.RESOURCE_EXHAUSTED,
  Unavailable: grpc.status.UNAVAILABLE,
  Internal: grpc.status.INTERNAL,
};

/** The one place where errors become gRPC statuses. */
export function toServiceError(err: unknown): Partial<grpc.StatusObject> {
  // ENOSPC/EDQUOT from the FFI (SyscallError) or from node:fs alike, also as the cause of an internal error.
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (isNoSpace(e)) return { code: grpc.status.RESOURCE_EXHAUSTED, details: (err as Error).message };
    if (e instanceof PeapodError && e.kind !== 'Internal') break;
  }
  if (err instanceof PeapodError) return { code: codes[err.kind], details: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: grpc.status.INTERNAL, details: message };
}
