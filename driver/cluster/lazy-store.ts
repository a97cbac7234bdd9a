/**
 * A RawClusterStore that loads the etcd client (etcd3 and gRPC: ~130 ms of module loading)
 * on first use, so loomd's plugin socket answers before any of it is loaded.
 */
import type { Logger } from '../../lib/logger';
import type { EtcdConfig } from './etcd-store';
import type { CallOpts, KeyValue, RawClusterStore, Watch, WatchHandlers } from '../../lib/cluster/store';

export class LazyEtcdStore implements RawClusterStore {
  private store: RawClusterStore | undefined;
  private loading: Promise<RawClusterStore> | undefined;

  constructor(
    private readonly cfg: EtcdConfig,
    private readonly log: Logger,
  ) {}

  private load(): Promise<RawClusterStore> {
    if (this.store) return Promise.resolve(this.store);
    this.loading ??= import('./etcd-store').then(({ EtcdStore }) => (this.store = new EtcdStore(this.cfg, this.log)));
    return this.loading;
  }

  async get<T>(key: string, opts?: CallOpts): Promise<KeyValue<T> | undefined> {
    return (await this.load()).get<T>(key, opts);
  }
  async list<T>(prefix: string, opts?: CallOpts): Promise<Array<KeyValue<T>>> {
    return (await this.load()).list<T>(prefix, opts);
  }
  async snapshot<T>(prefix: string, opts?: CallOpts): Promise<{ revision: string; kvs: Array<KeyValue<T>> }> {
    return (await this.load()).snapshot<T>(prefix, opts);
  }
  async put(key: string, value: unknown, opts?: CallOpts): Promise<void> {
    return (await this.load()).put(key, value, opts);
  }
  async create(key: string, value: unknown, opts?: CallOpts): Promise<boolean> {
    return (await this.load()).create(key, value, opts);
  }
  async cas(key: string, revision: string, value: unknown | undefined, opts?: CallOpts): Promise<boolean> {
    return (await this.load()).cas(key, revision, value, opts);
  }
  async delete(key: string, opts?: CallOpts): Promise<void> {
    return (await this.load()).delete(key, opts);
  }
  async commit(conditions: Array<{ key: string; revision: string }>, writes: Array<{ key: string; value: unknown | undefined }>, opts?: CallOpts): Promise<boolean> {
    return (await this.load()).commit(conditions, writes, opts);
  }
  async watch<T>(prefix: string, fromRevision: string, handlers: WatchHandlers<T>, opts?: CallOpts): Promise<Watch> {
    return (await this.load()).watch<T>(prefix, fromRevision, handlers, opts);
  }
  async grantLease(ttlSeconds: number, opts?: CallOpts): Promise<string> {
    return (await this.load()).grantLease(ttlSeconds, opts);
  }
  async keepAlive(lease: string, opts?: CallOpts): Promise<number> {
    return (await this.load()).keepAlive(lease, opts);
  }
  async revokeLease(lease: string, opts?: CallOpts): Promise<void> {
    return (await this.load()).revokeLease(lease, opts);
  }
  renew(): void {
    this.store?.renew();
  }
  async close(): Promise<void> {
    await this.store?.close();
  }
}
