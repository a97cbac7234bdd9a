/**
 * LevelDB-backed KvStore (the `level` package). LevelDB allows one process per
 * directory: loomd holds the lock; every other tool asks loomd (the offline recovery
 * commands in store-recovery.ts run only while loomd is stopped).
 *
 * Durability: every batch is written with `sync: true` (fdatasync of the write-ahead log)
 * before its promise resolves, so a call answered to Docker survives a power cut. LevelDB's
 * own recovery drops a torn log tail, which then only holds writes nobody was told about.
 * Concurrent batches share one sync (group-commit.ts).
 *
 * Every write also bumps `meta/commit` (a sequence number) in the same atomic batch, and the
 * sequence of the last synced write is copied to a small mark file beside the store. A store
 * that comes back with a lower sequence than the mark lost acknowledged writes (a truncated or
 * damaged log, which LevelDB replays silently): store-integrity.ts refuses to start on it.
 *
 * A failed write (disk full, I/O error) fails exactly the callers whose batches were in it.
 * LevelDB may or may not replay such a write later (its log record may be complete), so the
 * store reopens before the next write and puts back the values the failed write's keys had
 * before it, so the store never holds a write nobody was told about. Those values are read
 * only when a write failed, from a LevelDB snapshot taken just before it (the store as it was
 * before the write, whatever the write did); the snapshot is kept until they were read, and
 * the store is not reopened before that.
 */
import * as fs from 'node:fs';
import { Level } from 'level';
import { LoomError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { GroupCommit, GroupStats } from './group-commit';
import { BatchOptions, KvOp, KvStore } from '../../lib/kv';

export const COMMIT_KEY = 'meta/commit';

export interface CommitMeta {
  seq: number;
  at: string;
}

export interface LevelKvOptions {
  /** Create the store when the directory holds none (only for a new state directory). */
  create: boolean;
  /** Sync every write (default true; false only for benchmarks comparing the cost). */
  sync?: boolean;
  /** File that receives the sequence of the last synced write (see above). */
  markFile?: string;
  /** Where failed writes and the store's recovery from them are logged. */
  log?: Logger;
}

type Raw = Uint8Array | undefined;
type Snapshot = ReturnType<Level<string, unknown>['snapshot']>;

export class LevelKv implements KvStore {
  private readonly group: GroupCommit<KvOp>;
  /** The error of the last failed write, until the store was reopened and undone. */
  private broken: unknown;
  /** Values (raw) the keys of a failed write had before it; put back after reopening. */
  private undo = new Map<string, Raw>();
  /** A failed write's keys and the snapshot taken before it, until their values are in `undo`. */
  private undoPending: { keys: string[]; snap: Snapshot } | undefined;
  private markFd: number | undefined;
  /** Called after each successful write (the snapshot scheduler listens). */
  onCommit: (() => void) | undefined;

  private constructor(
    private db: Level<string, unknown>,
    private readonly dir: string,
    private readonly opts: LevelKvOptions,
    /** Sequence of the last write in the store (meta/commit). */
    public seq: number,
  ) {
    this.group = new GroupCommit<KvOp>((ops, durable) => this.commit(ops, durable));
    if (opts.markFile) this.markFd = fs.openSync(opts.markFile, fs.existsSync(opts.markFile) ? 'r+' : 'w', 0o600);
  }

  /** Opens the store; rejects with LevelDB's own error (store-integrity.ts names the damage). */
  static async open(dir: string, opts: LevelKvOptions): Promise<LevelKv> {
    const db = await openLevel(dir, opts.create);
    try {
      const meta = (await db.get(COMMIT_KEY)) as CommitMeta | undefined;
      return new LevelKv(db, dir, opts, meta?.seq ?? 0);
    } catch (err) {
      await db.close().catch(() => undefined);
      throw err;
    }
  }

  get location(): string {
    return this.dir;
  }

  get stats(): GroupStats {
    return this.group.stats;
  }

  async get<T>(key: string): Promise<T | undefined> {
    const value = await this.db.get(key);
    return value === undefined ? undefined : (value as T);
  }

  async list<T>(prefix: string): Promise<Array<{ key: string; value: T }>> {
    // '\uffff' sorts after every character used in loom keys. One all() instead of a next() per
    // entry: start-up lists every record (1,000 endpoints: about a third of the time).
    const entries = await this.db.iterator({ gte: prefix, lt: `${prefix}\uffff` }).all();
    return entries.map(([key, value]) => ({ key, value: value as T }));
  }

  /** Every entry in key order, read from one LevelDB snapshot (a consistent view), in batches. */
  async *entries(): AsyncGenerator<[string, unknown]> {
    const it = this.db.iterator();
    let failed = false;
    try {
      for (let batch = await it.nextv(1_000); batch.length > 0; batch = await it.nextv(1_000)) yield* batch;
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      // A read error (a damaged table, named by the integrity check) is not masked by a failing close.
      await (failed ? it.close().catch(() => undefined) : it.close());
    }
  }

  /** Applies `ops` atomically and durably (unless `sync: false`); concurrent calls share one sync. */
  async batch(ops: KvOp[], opts?: BatchOptions): Promise<void> {
    if (ops.length === 0) return;
    await this.group.submit(ops, opts?.sync !== false);
  }

  async close(): Promise<void> {
    await this.group.flushed();
    await this.db.close();
    if (this.markFd !== undefined) {
      fs.fsyncSync(this.markFd);
      fs.closeSync(this.markFd);
      this.markFd = undefined;
    }
  }

  /**
   * One group's write: repair after an earlier failure, then the batch with the next sequence.
   * A group that need not be durable is written without a sync and without a sequence (the
   * mark counts synced writes only: a power cut may take such a write without it being a loss).
   */
  private async commit(ops: KvOp[], durable: boolean): Promise<void> {
    if (this.broken !== undefined) await this.recover();
    const seq = durable ? this.seq + 1 : this.seq;
    // One op per key, the last one (the group is one atomic write, so applying only the last op
    // on a key ends where applying them all in order would): a pool record rewritten by every
    // allocation of a group (its next-fit cursor) is encoded and written once.
    const last = new Map<string, KvOp>();
    for (const op of ops) last.set(op.key, op);
    if (durable) last.set(COMMIT_KEY, { type: 'put', key: COMMIT_KEY, value: { seq, at: new Date().toISOString() } satisfies CommitMeta });
    // Read only if the write fails (no read before every write: that cost a thread-pool round trip per group).
    let snap: Snapshot;
    try {
      snap = this.db.snapshot();
    } catch (err) {
      throw storeWriteError(err, this.dir);
    }
    // A chained batch (one LevelDB WriteBatch, written atomically like the array form): about
    // half the CPU of db.batch(array) per op, which copies and normalizes every operation.
    const batch = this.db.batch();
    try {
      for (const op of last.values()) {
        if (op.type === 'put') batch.put(op.key, op.value);
        else batch.del(op.key);
      }
      await batch.write({ sync: durable && this.opts.sync !== false });
    } catch (err) {
      await batch.close().catch(() => undefined);
      if (this.broken === undefined) this.opts.log?.error({ err: levelMessage(err), ops: ops.length }, 'state store write failed: the calls in it fail; the store reopens before the next write');
      this.broken = err;
      this.undoPending = { keys: [...last.keys()], snap };
      // Read now if possible; otherwise recover() reads them (from the same snapshot) before reopening.
      await this.readUndo().catch(() => undefined);
      throw storeWriteError(err, this.dir);
    }
    snap.close().catch(() => undefined);
    if (durable) {
      this.seq = seq;
      this.writeMark();
    }
    this.onCommit?.();
  }

  /** Reopens the store after a failed write and puts back what that write may have changed. */
  private async recover(): Promise<void> {
    try {
      await this.readUndo();
      await this.db.close().catch(() => undefined);
      this.db = await openLevel(this.dir, false);
      const ops = [...this.undo].map(([key, raw]) => (raw === undefined ? { type: 'del' as const, key } : { type: 'put' as const, key, value: raw, valueEncoding: 'view' }));
      if (ops.length) await this.db.batch(ops, { sync: true });
    } catch (err) {
      throw storeWriteError(err, this.dir);
    }
    this.opts.log?.warn({ undone: this.undo.size }, 'state store writable again: reopened, and the failed write undone');
    this.undo.clear();
    this.broken = undefined;
  }

  /** The failed write's keys as they were before it (from its snapshot) into `undo`; the earliest value of a key wins. */
  private async readUndo(): Promise<void> {
    const pending = this.undoPending;
    if (!pending) return;
    const before = await this.db.getMany<string, Uint8Array>(pending.keys, { valueEncoding: 'view', snapshot: pending.snap });
    pending.keys.forEach((k, i) => {
      if (!this.undo.has(k)) this.undo.set(k, before[i]);
    });
    this.undoPending = undefined;
    await pending.snap.close().catch(() => undefined);
  }

  /** Fixed-length record at offset 0: a torn write cannot leave a longer, stale tail. */
  private writeMark(): void {
    if (this.markFd === undefined) return;
    const text = JSON.stringify({ seq: this.seq });
    fs.writeSync(this.markFd, Buffer.from(text.padEnd(63) + '\n'), 0, 64, 0);
  }
}

async function openLevel(dir: string, create: boolean): Promise<Level<string, unknown>> {
  const db = new Level<string, unknown>(dir, { valueEncoding: 'json', createIfMissing: create });
  await db.open();
  return db;
}

/** LevelDB's message (the cause when the error wraps one). */
export function levelMessage(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string } };
  return e?.cause?.message ?? e?.message ?? String(err);
}

function storeWriteError(err: unknown, dir: string): LoomError {
  const msg = levelMessage(err);
  const what = /No space left/i.test(msg) ? 'the disk is full' : /Read-only file system/i.test(msg) ? 'the file system is read-only' : 'an I/O error';
  return new LoomError('unavailable', `loom's state store (${dir}) could not record this change: ${what} (${msg}); nothing was changed`);
}

/** Reads the mark file written by a LevelKv (undefined when absent or unreadable). */
export function readCommitMark(file: string): number | undefined {
  try {
    const seq = (JSON.parse(fs.readFileSync(file, 'utf8')) as { seq?: unknown }).seq;
    return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0 ? seq : undefined;
  } catch {
    return undefined;
  }
}
