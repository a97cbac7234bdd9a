/**
 * The key-value store behind every repository. Values are JSON documents; a
 * batch is atomic (LevelDB write batch). Two implementations: LevelDB on disk
 * (production) and an in-memory map (unit tests only).
 */
export interface KvPut {
  type: 'put';
  key: string;
  value: unknown;
}
export interface KvDel {
  type: 'del';
  key: string;
}
export type KvOp = KvPut | KvDel;

export interface KvStore {
  get<T>(key: string): Promise<T | undefined>;
  /** Every entry whose key starts with `prefix`, in key order. */
  list<T>(prefix: string): Promise<Array<{ key: string; value: T }>>;
  /** Applies all operations atomically. */
  batch(ops: KvOp[]): Promise<void>;
  close(): Promise<void>;
}

/** In-memory store for unit tests; deep-copies values so callers cannot alias stored state. */
export class MemoryKv implements KvStore {
  readonly data = new Map<string, string>();

  async get<T>(key: string): Promise<T | undefined> {
    const raw = this.data.get(key);
    return raw === undefined ? undefined : (JSON.parse(raw) as T);
  }

  async list<T>(prefix: string): Promise<Array<{ key: string; value: T }>> {
    return [...this.data.keys()]
      .filter((k) => k.startsWith(prefix))
      .sort()
      .map((key) => ({ key, value: JSON.parse(this.data.get(key) as string) as T }));
  }

  async batch(ops: KvOp[]): Promise<void> {
    for (const op of ops) {
      if (op.type === 'put') this.data.set(op.key, JSON.stringify(op.value));
      else this.data.delete(op.key);
    }
  }

  async close(): Promise<void> {}
}
