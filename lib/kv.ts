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

export interface BatchOptions {
  /** Wait for the write to reach the disk (default true). */
  sync?: boolean;
}

export interface KvStore {
  get<T>(key: string): Promise<T | undefined>;
  /** Every entry whose key starts with `prefix`, in key order. */
  list<T>(prefix: string): Promise<Array<{ key: string; value: T }>>;
  /**
   * Applies all operations atomically. `opts.sync: false`: the promise settles once the write is
   * in the store's log (it survives the process being killed, not a power cut); for facts that a
   * power cut makes moot anyway (a container's sandbox: every sandbox ends with the host).
   */
  batch(ops: KvOp[], opts?: BatchOptions): Promise<void>;
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

  async batch(ops: KvOp[], _opts?: BatchOptions): Promise<void> {
    for (const op of ops) {
      if (op.type === 'put') this.data.set(op.key, JSON.stringify(op.value));
      else this.data.delete(op.key);
    }
  }

  async close(): Promise<void> {}
}
