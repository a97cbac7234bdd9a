/**
 * Group commit: many callers' write batches share one durable (synced) write.
 *
 * Invariants:
 * - A caller's promise settles only after the write that carried its ops settled: resolved
 *   when that write (synced by the writer) succeeded, rejected with that write's error when it
 *   failed. A failed write fails exactly the callers whose ops were in it; later groups are
 *   tried afresh.
 * - One write at a time. Batches queued while a write is in flight go out together in the
 *   next write, concatenated in arrival order, so the last op on a key wins as it would have
 *   one batch after another (per-key order preserved; each caller's batch stays atomic
 *   because the whole group is one atomic write).
 * - An idle queue writes at once: a lone caller waits for one sync, never for a timer.
 * - After a write, its callers are answered and the next group is taken one macrotask later
 *   (setImmediate, no timer): callers that submit again as soon as they are answered (the next
 *   allocation of a busy pool) join the group queued during the write instead of going alone
 *   in a write of their own, which halved the sharing with a steady number of callers.
 * - A group holds at most `maxOps` ops (a single larger batch goes alone), bounding the
 *   size of one write and the latency added to the callers queued behind it.
 * - A batch submitted as not durable (`durable: false`) does not need the sync: a group made
 *   only of such batches is written without one; a group with one durable batch is synced whole.
 */
export interface GroupStats {
  /** Writes issued (each one sync in the LevelDB store). */
  writes: number;
  /** Caller batches carried by those writes. */
  batches: number;
  /** Writes that failed. */
  failures: number;
  /** The largest number of caller batches one write carried. */
  maxGroup: number;
}

interface Waiting<Op> {
  ops: Op[];
  durable: boolean;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class GroupCommit<Op> {
  private queue: Array<Waiting<Op>> = [];
  private running: Promise<void> | undefined;
  readonly stats: GroupStats = { writes: 0, batches: 0, failures: 0, maxGroup: 0 };

  constructor(
    /** Writes all ops atomically (synced when `durable`); rejects when nothing or an unknown part was written. */
    private readonly write: (ops: Op[], durable: boolean) => Promise<void>,
    private readonly maxOps = 4096,
  ) {}

  /** Queues `ops`; settles when the write carrying them settled. */
  submit(ops: Op[], durable = true): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ops, durable, resolve, reject });
      this.running ??= this.drain();
    });
  }

  /** Settles when every batch submitted so far has been written (or failed). */
  async flushed(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length) {
        const group = this.take();
        const ops = group.flatMap((w) => w.ops);
        this.stats.writes++;
        this.stats.batches += group.length;
        this.stats.maxGroup = Math.max(this.stats.maxGroup, group.length);
        try {
          await this.write(ops, group.some((w) => w.durable));
        } catch (err) {
          this.stats.failures++;
          for (const w of group) w.reject(err);
          continue;
        }
        for (const w of group) w.resolve();
        // Let the callers just answered submit again before the next group is taken.
        await new Promise<void>((r) => setImmediate(r));
      }
    } finally {
      this.running = undefined;
    }
  }

  /** The next group: queued batches in order while they fit in maxOps (at least one). */
  private take(): Array<Waiting<Op>> {
    let n = 0;
    let count = 0;
    while (n < this.queue.length) {
      const size = (this.queue[n] as Waiting<Op>).ops.length;
      if (n > 0 && count + size > this.maxOps) break;
      count += size;
      n++;
    }
    return this.queue.splice(0, n);
  }
}
