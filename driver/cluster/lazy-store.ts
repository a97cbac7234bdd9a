/**
 * A ClusterStore that loads the etcd client (etcd3 and gRPC: ~130 ms of module loading)
 * on first use, so loomd's plugin socket answers before any of it is loaded.
 */
import type { Logger } from '../observability/logger';
import type { EtcdConfig } from './etcd-store';
import type { ClusterStore, KeyValue, Watch, WatchEvent } from './store';

export class LazyEtcdStore implements ClusterStore {
  private store: ClusterStore | undefined;
  private loading: Promise<ClusterStore> | undefined;

  constructor(
    private readonly cfg: EtcdConfig,
    private readonly log: Logger,
  ) {}

  private load(): Promise<ClusterStore> {
    if (this.store) return Promise.resolve(this.store);
    this.loading ??= import('./etcd-store').then(({ EtcdStore }) => (this.store = new EtcdStore(this.cfg, this.log)));
    return this.loading;
  }

  healthy(): boolean {
    return this.store?.healthy() ?? true;
  }

  async get<T>(key: string): Promise<KeyValue<T> | undefined> {
    return (await this.load()).get<T>(key);
  }
  async list<T>(prefix: string): Promise<Array<KeyValue<T>>> {
    return (await this.load()).list<T>(prefix);
  }
  async put(key: string, value: unknown, opts?: { leased?: boolean }): Promise<void> {
    return (await this.load()).put(key, value, opts);
  }
  async create(key: string, value: unknown, opts?: { leased?: boolean }): Promise<boolean> {
    return (await this.load()).create(key, value, opts);
  }
  async cas(key: string, revision: string, value: unknown | undefined): Promise<boolean> {
    return (await this.load()).cas(key, revision, value);
  }
  async delete(key: string): Promise<void> {
    return (await this.load()).delete(key);
  }
  async commit(conditions: Array<{ key: string; revision: string }>, writes: Array<{ key: string; value: unknown | undefined }>): Promise<boolean> {
    return (await this.load()).commit(conditions, writes);
  }
  async watch<T>(prefix: string, handlers: { onEvent(ev: WatchEvent<T>): void; onResync(all: Array<KeyValue<T>>): void }): Promise<Watch> {
    return (await this.load()).watch<T>(prefix, handlers);
  }
  async startLease(ttlSeconds: number, onLost: () => void): Promise<void> {
    return (await this.load()).startLease(ttlSeconds, onLost);
  }
  async close(): Promise<void> {
    await this.store?.close();
  }
}
