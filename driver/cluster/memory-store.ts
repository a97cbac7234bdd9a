/**
 * In-memory ClusterStore for unit tests of the control plane's logic. Several
 * "hosts" can share one MemoryCluster (each gets its own view with its own lease).
 * Never used by loomd itself.
 */
import { ClusterStore, KeyValue, Watch, WatchEvent } from './store';

interface Entry {
  value: string;
  revision: number;
  lease: number | undefined;
}

export class MemoryCluster {
  readonly data = new Map<string, Entry>();
  revision = 0;
  private nextLease = 1;
  private readonly watchers = new Set<{ prefix: string; fn: (ev: WatchEvent<unknown>) => void }>();
  /** While true every call fails, as if etcd were unreachable. */
  down = false;

  view(): ClusterStore {
    return new MemoryStore(this);
  }

  newLease(): number {
    return this.nextLease++;
  }

  /** Expires a lease: its keys are deleted (and watchers told). */
  expire(lease: number): void {
    for (const [k, e] of [...this.data]) if (e.lease === lease) this.remove(k);
  }

  write(key: string, value: unknown, lease: number | undefined): void {
    this.revision++;
    const text = JSON.stringify(value);
    this.data.set(key, { value: text, revision: this.revision, lease });
    for (const w of this.watchers) if (key.startsWith(w.prefix)) w.fn({ type: 'put', key, value: JSON.parse(text) });
  }

  remove(key: string): void {
    if (!this.data.delete(key)) return;
    this.revision++;
    for (const w of this.watchers) if (key.startsWith(w.prefix)) w.fn({ type: 'delete', key });
  }

  subscribe(prefix: string, fn: (ev: WatchEvent<unknown>) => void): () => void {
    const w = { prefix, fn };
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }
}

class MemoryStore implements ClusterStore {
  private lease: number | undefined;

  constructor(private readonly c: MemoryCluster) {}

  private check(): void {
    if (this.c.down) throw new Error('cluster store unavailable');
  }

  healthy(): boolean {
    return !this.c.down;
  }

  async get<T>(key: string): Promise<KeyValue<T> | undefined> {
    this.check();
    const e = this.c.data.get(key);
    return e ? { key, value: JSON.parse(e.value) as T, revision: String(e.revision) } : undefined;
  }

  async list<T>(prefix: string): Promise<Array<KeyValue<T>>> {
    this.check();
    return [...this.c.data.entries()]
      .filter(([k]) => k.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, e]) => ({ key, value: JSON.parse(e.value) as T, revision: String(e.revision) }));
  }

  private leaseFor(opts?: { leased?: boolean }): number | undefined {
    if (!opts?.leased) return undefined;
    if (this.lease === undefined) throw new Error('no host lease: startLease first');
    return this.lease;
  }

  async put(key: string, value: unknown, opts?: { leased?: boolean }): Promise<void> {
    this.check();
    this.c.write(key, value, this.leaseFor(opts));
  }

  async create(key: string, value: unknown, opts?: { leased?: boolean }): Promise<boolean> {
    this.check();
    if (this.c.data.has(key)) return false;
    this.c.write(key, value, this.leaseFor(opts));
    return true;
  }

  async cas(key: string, revision: string, value: unknown | undefined): Promise<boolean> {
    this.check();
    const e = this.c.data.get(key);
    if ((e ? String(e.revision) : '0') !== revision) return false;
    if (value === undefined) this.c.remove(key);
    else this.c.write(key, value, e?.lease);
    return true;
  }

  async delete(key: string): Promise<void> {
    this.check();
    this.c.remove(key);
  }

  async commit(conditions: Array<{ key: string; revision: string }>, writes: Array<{ key: string; value: unknown | undefined }>): Promise<boolean> {
    this.check();
    for (const c of conditions) {
      const e = this.c.data.get(c.key);
      if ((e ? String(e.revision) : '0') !== c.revision) return false;
    }
    for (const w of writes) {
      if (w.value === undefined) this.c.remove(w.key);
      else this.c.write(w.key, w.value, this.c.data.get(w.key)?.lease);
    }
    return true;
  }

  async watch<T>(prefix: string, handlers: { onEvent(ev: WatchEvent<T>): void; onResync(all: Array<KeyValue<T>>): void }): Promise<Watch> {
    handlers.onResync(await this.list<T>(prefix));
    const off = this.c.subscribe(prefix, (ev) => handlers.onEvent(ev as WatchEvent<T>));
    return { close: async () => void off() };
  }

  async startLease(_ttl: number, _onLost: () => void): Promise<void> {
    this.check();
    this.lease = this.c.newLease();
  }

  /** The lease id (tests expire it through MemoryCluster.expire). */
  get leaseId(): number | undefined {
    return this.lease;
  }

  async close(): Promise<void> {
    if (this.lease !== undefined) this.c.expire(this.lease);
  }
}
