/**
 * In-memory RawClusterStore for unit tests of the control plane's logic. Several "hosts"
 * share one MemoryCluster (each gets its own view). It behaves like etcd where loom
 * depends on it: revisions, leases that expire with their keys, watches that replay from
 * a revision, and a bounded event history that compaction cuts (an older watch is
 * cancelled). Faults: `down` (every call fails at once), `hung` (calls answer only at their
 * deadline, with an error), a view's `partitioned` (that host alone is cut off; its
 * watches get nothing meanwhile). Never used by loomd itself.
 */
import { ClusterUnavailableError } from '../../lib/cluster/health';
import type { CallOpts, KeyValue, RawClusterStore, Watch, WatchEvent, WatchHandlers } from '../../lib/cluster/store';

interface Entry {
  value: string;
  revision: number;
  lease: string | undefined;
}

interface Subscriber {
  prefix: string;
  handlers: WatchHandlers<unknown>;
  view: MemoryStore | undefined;
}

const HISTORY = 1_000;

export class MemoryCluster {
  readonly data = new Map<string, Entry>();
  revision = 0;
  private nextLease = 1;
  readonly leases = new Set<string>();
  private readonly history: Array<{ revision: number; ev: WatchEvent<unknown> }> = [];
  private readonly subscribers = new Set<Subscriber>();
  /** While true every call fails at once, as if etcd refused connections. */
  down = false;
  /** While true every call waits for its deadline and fails, as if etcd were hung. */
  hung = false;
  /** Calls made (tests count them to prove fail-fast). */
  calls = 0;

  view(): MemoryStore {
    return new MemoryStore(this);
  }

  newLease(): string {
    const id = String(this.nextLease++);
    this.leases.add(id);
    return id;
  }

  /** Expires a lease: its keys are deleted (and watchers told). */
  expire(lease: string | number): void {
    const id = String(lease);
    this.leases.delete(id);
    for (const [k, e] of [...this.data]) if (e.lease === id) this.remove(k);
  }

  write(key: string, value: unknown, lease: string | undefined): void {
    const text = JSON.stringify(value);
    this.data.set(key, { value: text, revision: ++this.revision, lease });
    this.emit({ type: 'put', key, value: JSON.parse(text) });
  }

  remove(key: string): void {
    if (!this.data.delete(key)) return;
    this.revision++;
    this.emit({ type: 'delete', key });
  }

  private emit(ev: WatchEvent<unknown>): void {
    this.history.push({ revision: this.revision, ev });
    if (this.history.length > HISTORY) this.history.shift();
    for (const s of [...this.subscribers]) if (ev.key.startsWith(s.prefix) && !s.view?.partitioned) s.handlers.onEvent(ev);
  }

  /** Drops the event history up to now: watches that resume from an older revision are cancelled. */
  compact(): void {
    this.history.length = 0;
  }

  /** The server cancels every watch (as etcd does on compaction of a lagging watcher). */
  cancelWatches(reason = 'mvcc: required revision has been compacted'): void {
    for (const s of [...this.subscribers]) {
      if (!s.view) continue;
      this.subscribers.delete(s);
      s.handlers.onCancelled(reason);
    }
  }

  /** Calls `fn` for every later change under `prefix` (tests that play another host's reactions). */
  subscribe(prefix: string, fn: (ev: WatchEvent<unknown>) => void): () => void {
    const s: Subscriber = { prefix, handlers: { onEvent: fn, onCancelled: () => undefined }, view: undefined };
    this.subscribers.add(s);
    return () => this.subscribers.delete(s);
  }

  attach(prefix: string, from: number, handlers: WatchHandlers<unknown>, view: MemoryStore): () => void {
    const oldest = this.history[0]?.revision ?? this.revision + 1;
    if (from < oldest && from <= this.revision) throw new ClusterUnavailableError('etcd: mvcc: required revision has been compacted');
    for (const h of this.history) if (h.revision >= from && h.ev.key.startsWith(prefix)) handlers.onEvent(h.ev);
    const s = { prefix, handlers, view };
    this.subscribers.add(s);
    return () => this.subscribers.delete(s);
  }

  /** Drops a view's subscriptions without telling them (its client was replaced). */
  dropView(view: MemoryStore): void {
    for (const s of [...this.subscribers]) if (s.view === view) this.subscribers.delete(s);
  }
}

/** Raw options, plus `leased` so that a view also serves directly as a ClusterStore in tests. */
type MemOpts = CallOpts & { leased?: boolean };

export class MemoryStore implements RawClusterStore {
  private lastLease: string | undefined;
  /** This view alone cannot reach the store (one host partitioned from etcd). */
  partitioned = false;

  constructor(private readonly c: MemoryCluster) {}

  /** Fails as etcd would while down or hung (a hung call fails at its deadline). */
  private async reach(opts?: CallOpts): Promise<void> {
    this.c.calls++;
    if (this.c.down || this.partitioned) throw new ClusterUnavailableError('etcd: connection refused');
    if (this.c.hung) {
      await new Promise((r) => setTimeout(r, Math.max(0, (opts?.deadline ?? Date.now() + 5_000) - Date.now())));
      throw new ClusterUnavailableError('etcd: deadline exceeded');
    }
  }

  private kv<T>(key: string, e: Entry): KeyValue<T> {
    return { key, value: JSON.parse(e.value) as T, revision: String(e.revision) };
  }

  async get<T>(key: string, opts?: CallOpts): Promise<KeyValue<T> | undefined> {
    await this.reach(opts);
    const e = this.c.data.get(key);
    return e ? this.kv<T>(key, e) : undefined;
  }

  async snapshot<T>(prefix: string, opts?: CallOpts): Promise<{ revision: string; kvs: Array<KeyValue<T>> }> {
    await this.reach(opts);
    const kvs = [...this.c.data.entries()]
      .filter(([k]) => k.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, e]) => this.kv<T>(key, e));
    return { revision: String(this.c.revision), kvs };
  }

  async list<T>(prefix: string, opts?: CallOpts): Promise<Array<KeyValue<T>>> {
    return (await this.snapshot<T>(prefix, opts)).kvs;
  }

  private leaseOf(opts?: MemOpts): string | undefined {
    const lease = opts?.lease ?? (opts?.leased ? this.lastLease : undefined);
    if (opts?.leased && lease === undefined) throw new ClusterUnavailableError('etcd: no host lease');
    if (lease !== undefined && !this.c.leases.has(lease)) throw new ClusterUnavailableError('etcd: etcdserver: requested lease not found');
    return lease;
  }

  async put(key: string, value: unknown, opts?: MemOpts): Promise<void> {
    await this.reach(opts);
    this.c.write(key, value, this.leaseOf(opts));
  }

  async create(key: string, value: unknown, opts?: MemOpts): Promise<boolean> {
    await this.reach(opts);
    if (this.c.data.has(key)) return false;
    this.c.write(key, value, this.leaseOf(opts));
    return true;
  }

  async cas(key: string, revision: string, value: unknown | undefined, opts?: CallOpts): Promise<boolean> {
    await this.reach(opts);
    const e = this.c.data.get(key);
    if ((e ? String(e.revision) : '0') !== revision) return false;
    if (value === undefined) this.c.remove(key);
    else this.c.write(key, value, undefined);
    return true;
  }

  async delete(key: string, opts?: CallOpts): Promise<void> {
    await this.reach(opts);
    this.c.remove(key);
  }

  async commit(conditions: Array<{ key: string; revision: string }>, writes: Array<{ key: string; value: unknown | undefined }>, opts?: CallOpts): Promise<boolean> {
    await this.reach(opts);
    for (const c of conditions) {
      const e = this.c.data.get(c.key);
      if ((e ? String(e.revision) : '0') !== c.revision) return false;
    }
    for (const w of writes) {
      if (w.value === undefined) this.c.remove(w.key);
      else this.c.write(w.key, w.value, undefined);
    }
    return true;
  }

  async watch<T>(prefix: string, fromRevision: string, handlers: WatchHandlers<T>, opts?: CallOpts): Promise<Watch> {
    await this.reach(opts);
    const off = this.c.attach(prefix, Number(fromRevision), handlers as WatchHandlers<unknown>, this);
    return { close: async () => void off() };
  }

  async grantLease(_ttlSeconds: number, opts?: CallOpts): Promise<string> {
    await this.reach(opts);
    this.lastLease = this.c.newLease();
    return this.lastLease;
  }

  async keepAlive(lease: string, opts?: CallOpts): Promise<number> {
    await this.reach(opts);
    return this.c.leases.has(lease) ? 10 : 0;
  }

  async revokeLease(lease: string, opts?: CallOpts): Promise<void> {
    await this.reach(opts);
    this.c.expire(lease);
  }

  renew(): void {
    this.c.dropView(this);
  }

  async close(): Promise<void> {
    this.c.dropView(this);
  }
}
