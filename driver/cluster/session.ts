/**
 * This host's session with etcd: its lease, kept alive one request at a time, and its
 * watches, each started from a consistent listing (full resync) and re-created whenever
 * the server cancels it (compaction) or the client is replaced.
 *
 * One reconnect loop per daemon (single flight): lease loss, failed keep-alives, watch
 * cancellations and failed calls elsewhere all `kick()` it; while it runs, a kick only
 * asks for one more pass. Between failed attempts it sleeps a capped exponential backoff
 * with jitter, and after a failed attempt it replaces the etcd client (`renew`), so a
 * connection stuck in TCP back-off after a partition is never waited on. It logs the first
 * failure and then once per `logEveryMs`, never per attempt.
 *
 * Memory is constant: one loop, one keep-alive timer, one sleep timer, one entry per watch.
 */
import type { Logger } from '../../lib/logger';
import { Backoff, BackoffOptions } from '../../lib/cluster/backoff';
import { ClusterHealth, isClusterUnavailable } from '../../lib/cluster/health';
import type { KeyValue, RawClusterStore, Watch, WatchEvent } from '../../lib/cluster/store';

/**
 * Deadline of the session's own calls (lease, listings, watch creation). Short: while etcd
 * hangs each attempt ends by it, and the next one (on a fresh client) starts soon after.
 */
const SESSION_DEADLINE_MS = 2_000;

export interface WatchSpec<T = unknown> {
  prefix: string;
  /** The whole prefix, at start and after every re-creation (events may have been missed). */
  onResync(all: Array<KeyValue<T>>): void;
  onEvent(ev: WatchEvent<T>): void;
}

export interface SessionOptions {
  ttlS: number;
  /** A new lease was granted: this host's leased keys must be written again. */
  onLeaseGranted(): void;
  backoff?: BackoffOptions;
  logEveryMs?: number;
  random?: () => number;
}

interface WatchSlot {
  spec: WatchSpec<unknown>;
  handle: Watch | undefined;
  /** Bumped per creation: events of a replaced watch are ignored. */
  generation: number;
}

export class ClusterSession {
  private lease: string | undefined;
  private readonly watches: WatchSlot[] = [];
  private loop: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private ticker: NodeJS.Timeout | undefined;
  private ticking = false;
  private sleeper: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  private lastLogAt = 0;
  /** Counters for status and metrics. */
  readonly stats = { attempts: 0, failures: 0, leaseGrants: 0, watchResyncs: 0, renewals: 0 };

  constructor(
    private readonly raw: RawClusterStore,
    private readonly health: ClusterHealth,
    private readonly log: Logger,
    private readonly opts: SessionOptions,
  ) {}

  get leaseId(): string | undefined {
    return this.lease;
  }

  get reconnecting(): boolean {
    return this.loop !== undefined;
  }

  /** Registers a watch (before start). */
  addWatch<T>(spec: WatchSpec<T>): void {
    this.watches.push({ spec: spec as WatchSpec<unknown>, handle: undefined, generation: 0 });
  }

  start(): void {
    const every = Math.max(250, (this.opts.ttlS * 1000) / 3);
    this.ticker = setInterval(() => void this.tick(), every);
    this.ticker.unref();
    this.kick('start');
  }

  /**
   * Asks for the session to be (re-)established. At most one loop runs; `recovery` (a sign
   * that etcd may be back) also cuts the loop's current backoff sleep short.
   */
  kick(reason: string, recovery = false): void {
    if (this.stopped) return;
    if (this.loop) {
      this.again = true;
      if (recovery) this.sleeper?.wake();
      return;
    }
    this.loop = this.run(reason).finally(() => (this.loop = undefined));
  }

  private async run(reason: string): Promise<void> {
    const backoff = new Backoff(this.opts.backoff ?? { initialMs: 250, maxMs: 5_000 }, this.opts.random);
    let failed = false;
    for (let attempt = 0; !this.stopped; attempt++) {
      this.again = false;
      this.stats.attempts++;
      try {
        if (failed) this.renew();
        await this.establish();
        if (failed) this.log.info({ attempts: attempt + 1, reason }, 'cluster session re-established');
        failed = false;
        if (!this.again) return;
      } catch (err) {
        failed = true;
        this.stats.failures++;
        if (isClusterUnavailable(err)) this.health.failed(err);
        const delay = backoff.next();
        this.logFailure(err, attempt, delay, reason);
        await this.sleep(delay);
        continue;
      }
      await this.sleep(backoff.next()); // asked again while establishing: one more pass, not at once
    }
  }

  private logFailure(err: unknown, attempt: number, nextMs: number, reason: string): void {
    const now = Date.now();
    const fields = { err: err instanceof Error ? err.message : String(err), attempts: attempt + 1, nextRetryMs: nextMs, reason };
    if (attempt === 0 || now - this.lastLogAt >= (this.opts.logEveryMs ?? 30_000)) {
      this.lastLogAt = now;
      this.log.warn(fields, attempt === 0 ? 'cluster store (etcd) unreachable; retrying in the background with backoff' : 'cluster store (etcd) still unreachable; retrying with backoff');
    } else this.log.debug(fields, 'cluster session attempt failed');
  }

  /** Lease (kept or new), then every watch not running (listing first), then etcd is up. */
  private async establish(): Promise<void> {
    const deadline = (): number => Date.now() + SESSION_DEADLINE_MS;
    if (this.lease && (await this.raw.keepAlive(this.lease, { deadline: deadline() })) <= 0) {
      this.log.warn({ lease: this.lease }, 'cluster lease expired in etcd; granting a new one and writing this host\'s keys again');
      this.lease = undefined;
    }
    if (!this.lease) {
      this.lease = await this.raw.grantLease(this.opts.ttlS, { deadline: deadline() });
      this.stats.leaseGrants++;
      this.opts.onLeaseGranted();
    }
    this.health.ok();
    for (const slot of this.watches) if (!slot.handle) await this.startWatch(slot, deadline);
  }

  private async startWatch(slot: WatchSlot, deadline: () => number): Promise<void> {
    const generation = ++slot.generation;
    const snap = await this.raw.snapshot(slot.spec.prefix, { deadline: deadline() });
    slot.spec.onResync(snap.kvs);
    this.stats.watchResyncs++;
    const current = (): boolean => slot.generation === generation && !this.stopped;
    slot.handle = await this.raw.watch(
      slot.spec.prefix,
      String(BigInt(snap.revision) + 1n),
      {
        onEvent: (ev) => {
          if (current()) slot.spec.onEvent(ev);
        },
        onCancelled: (why) => {
          if (!current()) return;
          slot.handle = undefined;
          this.log.warn({ prefix: slot.spec.prefix, reason: why }, 'cluster watch cancelled by etcd; re-creating it with a full resync');
          this.kick('watch cancelled', true);
        },
        onDisconnected: () => {
          if (current()) this.kick('watch stream lost');
        },
      },
      { deadline: deadline() },
    );
  }

  /** A fresh etcd client: every watch must be re-created (with a resync). */
  private renew(): void {
    this.stats.renewals++;
    for (const slot of this.watches) {
      slot.generation++;
      slot.handle = undefined;
    }
    this.raw.renew();
  }

  /** Keep-alive every ttl/3, also the heartbeat that finds a hung or unreachable etcd. */
  private async tick(): Promise<void> {
    if (this.loop || this.ticking || this.stopped) return;
    if (!this.lease) return this.kick('no lease');
    this.ticking = true;
    try {
      const ttl = await this.raw.keepAlive(this.lease, { deadline: Date.now() + Math.min(2_000, (this.opts.ttlS * 1000) / 3) });
      if (ttl > 0) this.health.ok();
      else this.kick('lease expired', true);
    } catch (err) {
      if (isClusterUnavailable(err)) this.health.failed(err);
      this.kick('keep-alive failed');
    } finally {
      this.ticking = false;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleeper = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      timer.unref();
      this.sleeper = { timer, wake };
    });
  }

  /** Stops the loop and the keep-alive; closes the watches; gives the lease back (bounded). */
  async stop(revoke = true): Promise<void> {
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    this.sleeper?.wake();
    await this.loop;
    for (const slot of this.watches) await slot.handle?.close().catch(() => undefined);
    if (revoke && this.lease) await this.raw.revokeLease(this.lease, { deadline: Date.now() + 1_000 }).catch(() => undefined);
    await this.raw.close();
  }
}
