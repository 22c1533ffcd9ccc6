// Domain errors. Every module throws these; src/cri/status.ts maps them to
// gRPC status codes in one place.

export type ErrorKind =
  | 'InvalidArgument'
  | 'NotFound'
  | 'AlreadyExists'
  | 'FailedPrecondition'
  | 'Unimplemented'
  | 'DeadlineExceeded'
  | 'ResourceExhausted'
  | 'Unavailable'
  | 'Internal';

export class PeapodError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = `${kind}Error`;
  }
}

export const invalidArgument = (msg: string) => new PeapodError('InvalidArgument', msg);
export const notFound = (msg: string) => new PeapodError('NotFound', msg);
export const alreadyExists = (msg: string) => new PeapodError('AlreadyExists', msg);
export const failedPrecondition = (msg: string) => new PeapodError('FailedPrecondition', msg);
export const unimplemented = (msg: string) => new PeapodError('Unimplemented', msg);
export const deadlineExceeded = (msg: string) => new PeapodError('DeadlineExceeded', msg);
export const resourceExhausted = (msg: string) => new PeapodError('ResourceExhausted', msg);
export const unavailable = (msg: string) => new PeapodError('Unavailable', msg);
export const internal = (msg: string, cause?: unknown) => new PeapodError('Internal', msg, { cause });

/** A file system error meaning the disk (or the quota) is full: ENOSPC, EDQUOT. */
export function isNoSpace(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export function isKind(err: unknown, kind: ErrorKind): boolean {
  return err instanceof PeapodError && err.kind === kind;
}
