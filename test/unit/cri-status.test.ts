// The one mapping of errors to gRPC statuses: a full disk is
// RESOURCE_EXHAUSTED also when an internal error wraps it.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { toServiceError } from '../../src/cri/status.js';
import { internal, invalidArgument, notFound } from '../../src/errors.js';

const noSpace = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });

describe('toServiceError', () => {
  it('maps each kind, and a bare error to INTERNAL with its message only', () => {
    expect(toServiceError(notFound('container x not found'))).toEqual({ code: grpc.status.NOT_FOUND, details: 'container x not found' });
    expect(toServiceError(new Error('boom'))).toEqual({ code: grpc.status.INTERNAL, details: 'boom' });
  });

  it('a full disk, bare or as the cause (however deep) of an internal error, is RESOURCE_EXHAUSTED with the outer message', () => {
    expect(toServiceError(noSpace()).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const wrapped = internal('unpacking layer sha256:ab', internal('writing meta.json', noSpace()));
    expect(toServiceError(wrapped)).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'unpacking layer sha256:ab' });
  });

  it('a classified error keeps its code whatever its cause', () => {
    const e = invalidArgument('image archive: truncated');
    e.cause = noSpace();
    expect(toServiceError(e).code).toBe(grpc.status.INVALID_ARGUMENT);
  });
});
