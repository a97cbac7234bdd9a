/**
 * ClusterStore on etcd through the `etcd3` client: transactions for create and
 * compare-and-swap, one lease per host (keep-alive by the client) for keys that
 * must vanish with the host, and prefix watches that re-list after reconnecting.
 */
import * as fs from 'node:fs';
import { Etcd3, IOptions, Lease } from 'etcd3';
import type { Logger } from '../observability/logger';
import { ClusterStore, KeyValue, Watch, WatchEvent } from './store';

export interface EtcdConfig {
  endpoints: string[];
  /** PEM files for TLS client authentication (all optional). */
  ca?: string;
  cert?: string;
  key?: string;
  /** Per-call timeout, ms. */
  timeoutMs?: number;
}

const parse = <T>(buf: Buffer | string | null | undefined): T => JSON.parse(String(buf)) as T;

export class EtcdStore implements ClusterStore {
  private readonly client: Etcd3;
  private lease: Lease | undefined;
  private ok = true;

  constructor(
    cfg: EtcdConfig,
    private readonly log: Logger,
  ) {
    const options: IOptions = {
      hosts: cfg.endpoints,
      dialTimeout: 3_000,
      defaultCallOptions: () => ({ deadline: new Date(Date.now() + (cfg.timeoutMs ?? 5_000)) }),
      // Retries across members are the client's job (cockatiel policy); keep them short.
      faultHandling: {},
    };
    if (cfg.ca || cfg.cert || cfg.key) {
      options.credentials = {
        rootCertificate: cfg.ca ? fs.readFileSync(cfg.ca) : Buffer.alloc(0),
        ...(cfg.key ? { privateKey: fs.readFileSync(cfg.key) } : {}),
        ...(cfg.cert ? { certChain: fs.readFileSync(cfg.cert) } : {}),
      };
    }
    this.client = new Etcd3(options);
  }

  healthy(): boolean {
    return this.ok;
  }

  private async track<T>(p: Promise<T>): Promise<T> {
    try {
      const v = await p;
      this.ok = true;
      return v;
    } catch (err) {
      this.ok = false;
      throw err;
    }
  }

  async get<T>(key: string): Promise<KeyValue<T> | undefined> {
    const res = await this.track(this.client.get(key).exec());
    const kv = res.kvs[0];
    return kv ? { key, value: parse<T>(kv.value), revision: String(kv.mod_revision) } : undefined;
  }

  async list<T>(prefix: string): Promise<Array<KeyValue<T>>> {
    const res = await this.track(this.client.getAll().prefix(prefix).exec());
    return res.kvs.map((kv) => ({ key: String(kv.key), value: parse<T>(kv.value), revision: String(kv.mod_revision) }));
  }

  async put(key: string, value: unknown, opts?: { leased?: boolean }): Promise<void> {
    const text = JSON.stringify(value);
    if (opts?.leased) {
      if (!this.lease) throw new Error('no host lease: startLease first');
      await this.track(this.lease.put(key).value(text).exec());
      return;
    }
    await this.track(this.client.put(key).value(text).exec());
  }

  async create(key: string, value: unknown, opts?: { leased?: boolean }): Promise<boolean> {
    let put = this.client.put(key).value(JSON.stringify(value));
    if (opts?.leased) {
      if (!this.lease) throw new Error('no host lease: startLease first');
      put = put.lease(await this.lease.grant());
    }
    const res = await this.track(this.client.if(key, 'Create', '==', 0).then(put).commit());
    return res.succeeded;
  }

  async cas(key: string, revision: string, value: unknown | undefined): Promise<boolean> {
    const op = value === undefined ? this.client.delete().key(key) : this.client.put(key).value(JSON.stringify(value));
    const cmp = revision === '0' ? this.client.if(key, 'Create', '==', 0) : this.client.if(key, 'Mod', '==', revision);
    const res = await this.track(cmp.then(op).commit());
    return res.succeeded;
  }

  async delete(key: string): Promise<void> {
    await this.track(this.client.delete().key(key).exec());
  }

  async commit(conditions: Array<{ key: string; revision: string }>, writes: Array<{ key: string; value: unknown | undefined }>): Promise<boolean> {
    const [first, ...rest] = conditions;
    const cmpOf = (c: { key: string; revision: string }): ['Create' | 'Mod', '==', number | string] =>
      c.revision === '0' ? ['Create', '==', 0] : ['Mod', '==', c.revision];
    let txn = first ? this.client.if(first.key, ...cmpOf(first)) : this.client.if('/loom/v1/', 'Version', '>', -1);
    for (const c of rest) txn = txn.and(c.key, ...cmpOf(c));
    const ops = writes.map((w) => (w.value === undefined ? this.client.delete().key(w.key) : this.client.put(w.key).value(JSON.stringify(w.value))));
    const res = await this.track(txn.then(...ops).commit());
    return res.succeeded;
  }

  async watch<T>(prefix: string, handlers: { onEvent(ev: WatchEvent<T>): void; onResync(all: Array<KeyValue<T>>): void }): Promise<Watch> {
    let closed = false;
    let needResync = true;
    const resync = async (): Promise<void> => {
      for (let attempt = 0; !closed && needResync; attempt++) {
        try {
          const all = await this.list<T>(prefix);
          needResync = false;
          handlers.onResync(all);
        } catch (err) {
          this.log.debug({ prefix, err: String(err) }, 'cluster store resync failed; retrying');
          await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * 2 ** Math.min(attempt, 5))).unref?.());
        }
      }
    };
    const watcher = await this.client.watch().prefix(prefix).create();
    watcher.on('put', (kv) => {
      try {
        handlers.onEvent({ type: 'put', key: String(kv.key), value: parse<T>(kv.value) });
      } catch (err) {
        this.log.warn({ key: String(kv.key), err: String(err) }, 'ignoring an unreadable value in the cluster store');
      }
    });
    watcher.on('delete', (kv) => handlers.onEvent({ type: 'delete', key: String(kv.key) }));
    watcher.on('disconnected', () => {
      this.ok = false;
      needResync = true;
    });
    watcher.on('connected', () => {
      this.ok = true;
      if (needResync) void resync();
    });
    watcher.on('error', (err) => this.log.error({ prefix, err: String(err) }, 'cluster store watch failed'));
    await resync();
    return {
      close: async () => {
        closed = true;
        await watcher.cancel();
      },
    };
  }

  async startLease(ttlSeconds: number, onLost: () => void): Promise<void> {
    const lease = this.client.lease(ttlSeconds, { autoKeepAlive: true });
    lease.on('lost', (err) => {
      this.log.warn({ err: String(err) }, 'cluster lease lost');
      this.lease = undefined;
      onLost();
    });
    await this.track(lease.grant());
    this.lease = lease;
  }

  async close(): Promise<void> {
    try {
      await this.lease?.revoke();
    } catch {
      // the lease expires by itself
    }
    this.client.close();
  }
}
