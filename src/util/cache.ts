/** Answers that never change (about content-addressed layers), kept for the last `max` keys asked. */
export class BoundedCache<V> {
  private readonly entries = new Map<string, V>();

  constructor(private readonly max: number) {}

  get(key: string, compute: () => V): V {
    if (this.entries.has(key)) return this.entries.get(key)!;
    const value = compute();
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, value);
    return value;
  }
}
