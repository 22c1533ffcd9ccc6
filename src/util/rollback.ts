/**
 * Undo steps of a multi-step operation. Each completed step registers its
 * undo; on failure they run newest first, and every one runs even if an
 * earlier one throws, so a failed operation leaves nothing half-made.
 */
export class Rollback {
  private readonly undos: Array<{ what: string; fn: () => unknown }> = [];

  add(what: string, fn: () => unknown): void {
    this.undos.push({ what, fn });
  }

  async run(onError: (what: string, err: unknown) => void): Promise<void> {
    while (this.undos.length > 0) {
      const { what, fn } = this.undos.pop()!;
      try {
        await fn();
      } catch (err) {
        onError(what, err);
      }
    }
  }

  /** The operation succeeded: keep what it made. */
  commit(): void {
    this.undos.length = 0;
  }
}
