/** A mistake in the command line: `peapod` prints it with a hint and exits 2. */
export class UsageError extends Error {}
