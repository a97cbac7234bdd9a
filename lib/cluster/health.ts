/**
 * Is the cluster store (etcd) answering? One ClusterHealth per daemon, fed by the outcome
 * of every etcd call (guarded-store.ts) and by the lease keep-alive (session.ts), read by
 * plugin-path code so that, while etcd is known to be down or hung, cluster work fails at
 * once with an error naming etcd (or proceeds from what this host holds) instead of
 * waiting on etcd inside a Docker call.
 *
 * States: `connecting` (no answer yet since start: calls are tried, with their deadline),
 * `up`, `down` (calls fail fast; only the session's probes go out). Memory is constant:
 * a few fields, listeners registered once at wiring time, one shared promise for waiters.
 */
import { LoomError } from '../errors';
import type { Logger } from '../logger';

export type ClusterState = 'connecting' | 'up' | 'down';

/** etcd did not answer (refused, timed out, TLS failure, no quorum...). Kind `unavailable`. */
export class ClusterUnavailableError extends LoomError {
  constructor(message: string) {
    super('unavailable', message);
  }
}

export const isClusterUnavailable = (err: unknown): err is ClusterUnavailableError => err instanceof ClusterUnavailableError;

export interface HealthView {
  state: ClusterState;
  /** When the current state began (ISO). */
  since: string;
  lastError?: string;
  /** Times etcd was lost since start. */
  outages: number;
}

export class ClusterHealth {
  private current: ClusterState = 'connecting';
  private sinceMs: number;
  private lastError: string | undefined;
  private outages = 0;
  private slowUntil = 0;
  private upWaiter: { promise: Promise<void>; resolve: () => void } | undefined;
  private readonly listeners: Array<(state: ClusterState) => void> = [];

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.sinceMs = now();
  }

  get state(): ClusterState {
    return this.current;
  }

  get isDown(): boolean {
    return this.current === 'down';
  }

  view(): HealthView {
    return { state: this.current, since: new Date(this.sinceMs).toISOString(), ...(this.lastError ? { lastError: this.lastError } : {}), outages: this.outages };
  }

  /** Registers a listener for state changes (wiring time only: the list never grows at run time). */
  onChange(fn: (state: ClusterState) => void): void {
    this.listeners.push(fn);
  }

  /**
   * A call gave up waiting on etcd (a budget ran out) before any call failed: for a moment
   * deferrable work does not wait at all (etcd is slow or hung, not yet known down).
   */
  slow(forMs = 2_000): void {
    this.slowUntil = this.now() + forMs;
  }

  /** How long deferrable work may wait on etcd now: `budgetMs`, or 0 while etcd is down or slow. */
  budget(budgetMs: number): number {
    return this.current === 'down' || this.now() < this.slowUntil ? 0 : budgetMs;
  }

  /** etcd answered. */
  ok(): void {
    this.slowUntil = 0;
    if (this.current === 'up') return;
    const was = this.current;
    const downForS = Math.round((this.now() - this.sinceMs) / 1000);
    this.set('up');
    if (was === 'down') this.log.info({ downForS }, 'cluster store (etcd) reachable again');
    else this.log.info('cluster store (etcd) reachable');
    const w = this.upWaiter;
    this.upWaiter = undefined;
    w?.resolve();
  }

  /** etcd did not answer. */
  failed(err: unknown): void {
    this.lastError = err instanceof Error ? err.message : String(err);
    if (this.current === 'down') return;
    this.outages++;
    this.set('down');
    this.log.warn({ err: this.lastError }, 'cluster store (etcd) unreachable: cluster work in plugin calls fails fast or is deferred; local networks are not affected');
  }

  /** Throws at once while etcd is known to be down (plugin paths call this before cluster work). */
  check(what: string): void {
    if (this.current !== 'down') return;
    throw new ClusterUnavailableError(`${what}: the cluster store (etcd) is unreachable since ${new Date(this.sinceMs).toISOString()}${this.lastError ? ` (${this.lastError})` : ''}`);
  }

  /** Resolves when etcd answers again (at once if it does now). One shared promise, whatever the number of waiters. */
  whenUp(): Promise<void> {
    if (this.current === 'up') return Promise.resolve();
    if (!this.upWaiter) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.upWaiter = { promise, resolve };
    }
    return this.upWaiter.promise;
  }

  private set(state: ClusterState): void {
    this.current = state;
    this.sinceMs = this.now();
    for (const fn of this.listeners) fn(state);
  }
}
