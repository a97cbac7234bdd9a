/**
 * LevelDB-backed KvStore (the `level` package). LevelDB allows one process per
 * directory: loomd holds the lock; every other tool asks loomd.
 */
import { Level } from 'level';
import { KvOp, KvStore } from './kv';

export class LevelKv implements KvStore {
  private constructor(private readonly db: Level<string, unknown>) {}

  static async open(dir: string): Promise<LevelKv> {
    const db = new Level<string, unknown>(dir, { valueEncoding: 'json' });
    await db.open();
    return new LevelKv(db);
  }

  async get<T>(key: string): Promise<T | undefined> {
    const value = await this.db.get(key);
    return value === undefined ? undefined : (value as T);
  }

  async list<T>(prefix: string): Promise<Array<{ key: string; value: T }>> {
    const out: Array<{ key: string; value: T }> = [];
    // '\uffff' sorts after every character used in loom keys.
    for await (const [key, value] of this.db.iterator({ gte: prefix, lt: `${prefix}\uffff` })) {
      out.push({ key, value: value as T });
    }
    return out;
  }

  async batch(ops: KvOp[]): Promise<void> {
    if (ops.length === 0) return;
    await this.db.batch(
      ops.map((op) => (op.type === 'put' ? { type: 'put' as const, key: op.key, value: op.value } : { type: 'del' as const, key: op.key })),
    );
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
