/**
 * The ClusterStore loom's cluster logic uses: the raw store (etcd) behind a deadline on
 * every call, health bookkeeping, and fail-fast while etcd is known to be down.
 *
 * - Every call has a deadline: `deadlineMs` (1 s by default: the foreground view, used
 *   inside plugin calls) or the background view's (5 s: publication, session).
 * - A call that fails to reach etcd marks it down (ClusterHealth) and rejects with a
 *   ClusterUnavailableError naming etcd; while down, calls reject at once without
 *   touching the network (the session's probes, not callers, find out when etcd returns).
 * - `leased` writes use this host's current lease (session.ts); without one they fail as
 *   etcd being unavailable (the lease comes back with etcd).
 */
import { timedEtcdWait } from './etcd-wait';
import type { ClusterHealth } from './health';
import { ClusterUnavailableError, isClusterUnavailable } from './health';
import type { CallOpts, ClusterStore, KeyValue, RawClusterStore } from './store';

export const FOREGROUND_DEADLINE_MS = 1_000;
export const BACKGROUND_DEADLINE_MS = 5_000;

export class GuardedStore implements ClusterStore {
  constructor(
    private readonly raw: RawClusterStore,
    readonly health: ClusterHealth,
    private readonly lease: () => string | undefined,
    private readonly deadlineMs = FOREGROUND_DEADLINE_MS,
    private readonly failFast = true,
  ) {}

  /** The same store with another deadline (and, with failFast false, probing while down). */
  with(deadlineMs: number, failFast = this.failFast): GuardedStore {
    return new GuardedStore(this.raw, this.health, this.lease, deadlineMs, failFast);
  }

  private async run<T>(what: string, fn: (opts: CallOpts) => Promise<T>, leased = false): Promise<T> {
    if (this.failFast) this.health.check(what);
    const opts: CallOpts = { deadline: Date.now() + this.deadlineMs };
    if (leased) {
      const lease = this.lease();
      if (!lease) throw new ClusterUnavailableError(`${what}: no host lease yet (etcd unreachable or just back)`);
      opts.lease = lease;
    }
    try {
      const v = await timedEtcdWait(() => fn(opts));
      this.health.ok();
      return v;
    } catch (err) {
      if (isClusterUnavailable(err)) {
        // A lease etcd no longer knows is not etcd being down: the session grants a new one.
        if (!/requested lease not found/.test(err.message)) this.health.failed(err);
        throw new ClusterUnavailableError(`${what}: the cluster store (etcd) did not answer: ${err.message.replace(/^etcd: /, '')}`);
      }
      throw err;
    }
  }

  get<T>(key: string): Promise<KeyValue<T> | undefined> {
    return this.run(`read ${key}`, (o) => this.raw.get<T>(key, o));
  }

  list<T>(prefix: string): Promise<Array<KeyValue<T>>> {
    return this.run(`list ${prefix}`, (o) => this.raw.list<T>(prefix, o));
  }

  put(key: string, value: unknown, opts?: { leased?: boolean }): Promise<void> {
    return this.run(`write ${key}`, (o) => this.raw.put(key, value, o), opts?.leased === true);
  }

  create(key: string, value: unknown, opts?: { leased?: boolean }): Promise<boolean> {
    return this.run(`create ${key}`, (o) => this.raw.create(key, value, o), opts?.leased === true);
  }

  cas(key: string, revision: string, value: unknown | undefined): Promise<boolean> {
    return this.run(`update ${key}`, (o) => this.raw.cas(key, revision, value, o));
  }

  delete(key: string): Promise<void> {
    return this.run(`delete ${key}`, (o) => this.raw.delete(key, o));
  }

  commit(conditions: Array<{ key: string; revision: string }>, writes: Array<{ key: string; value: unknown | undefined }>): Promise<boolean> {
    return this.run('transaction', (o) => this.raw.commit(conditions, writes, o));
  }
}

/**
 * How long a plugin call waits for etcd on work that may be published later instead (a
 * subnet claim, giving back a claim, a block or a reservation): Docker's local calls keep
 * their normal latency while etcd hangs, before health has noticed.
 */
export const DEFERRABLE_BUDGET_MS = 300;

/** `p`, or a ClusterUnavailableError after `ms` (p keeps running; its outcome is then ignored). */
export function withinBudget<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  p.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new ClusterUnavailableError(`${what}: the cluster store (etcd) did not answer within ${ms} ms`)), ms);
    t.unref();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
