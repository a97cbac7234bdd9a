/**
 * Cluster writes that never wait inside a plugin call: this host's leased keys (host,
 * memberships, endpoints), subnet claims settled or released, blocks and reservations
 * given back, overlays deleted by their origin. Each is queued under a key; a newer write
 * for the same key replaces a pending one (the key's latest desired state wins), and the
 * queue is written in order, one at a time, in the background.
 *
 * While etcd is down the queue waits for ClusterHealth to report it back (no polling of
 * its own: the session is the only prober) and then drains. A write that fails for
 * another reason (a bug, a value etcd refuses) is retried with backoff, moved behind the
 * others so it blocks nobody, and dropped with an error log after `maxTries`; a write
 * that failed for want of etcd (or of this host's lease) is never dropped.
 *
 * Memory: one entry per key, and keys name objects that exist on this host (its
 * endpoints, pools, overlays), so the queue is bounded by the host's own state.
 */
import type { Logger } from '../logger';
import { Backoff } from './backoff';
import { ClusterHealth, isClusterUnavailable } from './health';

export type Write = () => Promise<void>;

interface Entry {
  label: string;
  write: Write;
  tries: number;
}

export class DeferredWrites {
  private readonly pending = new Map<string, Entry>();
  private running: Promise<void> | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private resume: (() => void) | undefined;
  private readonly backoff: Backoff;

  constructor(
    private readonly health: ClusterHealth,
    private readonly log: Logger,
    private readonly maxTries = 8,
    backoff = { initialMs: 200, maxMs: 5_000 },
  ) {
    this.backoff = new Backoff(backoff);
  }

  /** Writes waiting (metrics, status). */
  get size(): number {
    return this.pending.size;
  }

  has(key: string): boolean {
    return this.pending.has(key);
  }

  /** Queues `write` as the desired state of `key` (replacing a pending one). */
  set(key: string, label: string, write: Write): void {
    if (this.stopped) return;
    this.pending.delete(key); // re-inserted last: the newest desired state goes after older ones
    this.pending.set(key, { label, write, tries: 0 });
    this.start();
  }

  cancel(key: string): void {
    this.pending.delete(key);
  }

  /** Cuts a backoff sleep short (this host's lease is back: the writes waiting for it can go). */
  wake(): void {
    if (this.timer) clearTimeout(this.timer);
    this.resume?.();
  }

  /** Waits until nothing is pending for `key` (false after `timeoutMs`). */
  async flushed(key: string, timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (this.pending.has(key)) {
      if (Date.now() > end || this.stopped) return false;
      await new Promise((r) => setTimeout(r, 20).unref());
    }
    return true;
  }

  private start(): void {
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  private async drain(): Promise<void> {
    while (!this.stopped && this.pending.size > 0) {
      if (this.health.isDown) {
        await Promise.race([this.health.whenUp(), new Promise<void>((r) => (this.resume = r))]);
        this.resume = undefined;
        continue;
      }
      const [key, entry] = this.pending.entries().next().value as [string, Entry];
      try {
        await entry.write();
        if (this.pending.get(key) === entry) this.pending.delete(key);
        this.backoff.reset();
      } catch (err) {
        if (isClusterUnavailable(err)) {
          // etcd (or this host's lease) is not there: never dropped; waits for etcd above, or backs off.
          if (!this.health.isDown) await this.sleep(this.backoff.next());
          continue;
        }
        entry.tries++;
        if (this.pending.get(key) === entry) {
          this.pending.delete(key);
          if (entry.tries < this.maxTries) this.pending.set(key, entry);
        }
        if (entry.tries >= this.maxTries) this.log.error({ key, write: entry.label, err: String(err) }, 'cluster store write failed repeatedly; dropped (the reconciler repairs what it can)');
        else if (entry.tries === 1) this.log.warn({ key, write: entry.label, err: String(err) }, 'cluster store write failed; will retry');
        await this.sleep(this.backoff.next());
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => {
      this.resume = r;
      this.timer = setTimeout(r, ms);
      this.timer.unref();
    });
  }

  /** Stops writing; what is pending is dropped (leased keys expire; the rest is repaired later). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.resume?.();
    await this.running;
  }
}
