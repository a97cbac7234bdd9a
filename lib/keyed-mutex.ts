/**
 * Serializes async work per key (a network id, a pool id); different keys run
 * in parallel, and the holders of one key run in arrival order. Entries are dropped when
 * no one holds or waits for them, so the map never grows with the number of keys ever seen.
 *
 * A promise chain per key rather than async-mutex: every IPAM allocation takes its pool's
 * key, and the chain costs one promise per run where the library's queue cost several.
 */
export class KeyedMutex {
  private readonly locks = new Map<string, { tail: Promise<void>; users: number }>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let entry = this.locks.get(key);
    if (!entry) {
      entry = { tail: Promise.resolve(), users: 0 };
      this.locks.set(key, entry);
    }
    entry.users++;
    const before = entry.tail;
    let release!: () => void;
    // Never rejects: a holder's failure is its caller's, not the next holder's.
    entry.tail = new Promise<void>((r) => (release = r));
    try {
      await before;
      return await fn();
    } finally {
      release();
      entry.users--;
      if (entry.users === 0) this.locks.delete(key);
    }
  }

  /** Number of keys currently held or awaited (for tests and metrics). */
  get size(): number {
    return this.locks.size;
  }
}
