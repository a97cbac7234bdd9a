/**
 * Serializes async work per key (a network id, a pool id); different keys run
 * in parallel. Entries are dropped when no one holds or waits for them, so the
 * map never grows with the number of keys ever seen.
 */
import { Mutex } from 'async-mutex';

export class KeyedMutex {
  private readonly locks = new Map<string, { mutex: Mutex; users: number }>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let entry = this.locks.get(key);
    if (!entry) {
      entry = { mutex: new Mutex(), users: 0 };
      this.locks.set(key, entry);
    }
    entry.users++;
    try {
      return await entry.mutex.runExclusive(fn);
    } finally {
      entry.users--;
      if (entry.users === 0) this.locks.delete(key);
    }
  }

  /** Number of keys currently held or awaited (for tests and metrics). */
  get size(): number {
    return this.locks.size;
  }
}
