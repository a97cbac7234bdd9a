/**
 * RawClusterStore on etcd through the `etcd3` client: transactions for create and
 * compare-and-swap, leases granted and kept alive one request at a time (session.ts owns
 * the loop), prefix watches from a given revision.
 *
 * Hazards handled here:
 * - every unary call carries an absolute gRPC deadline (CallOpts.deadline, default 5 s)
 *   and a timer 250 ms later as a backstop; streams have none, so watches live on;
 * - every failure becomes a ClusterUnavailableError (health.ts);
 * - a dead connection (etcd hung, traffic dropped) is never waited on after an outage:
 *   `renew()` replaces the client, and the next call dials afresh instead of waiting
 *   behind a connection in TCP back-off;
 * - the client's own retries and breakers are loom's (etcd-policies.ts).
 */
import { Etcd3, IOptions, Watcher } from 'etcd3';
import type { Logger } from '../../lib/logger';
import { failover, hostBreaker, watchBackoff } from './etcd-policies';
import type { EtcdCredentials } from './etcd-tls';
import { ClusterUnavailableError } from '../../lib/cluster/health';
import type { CallOpts, KeyValue, RawClusterStore, Watch, WatchHandlers } from '../../lib/cluster/store';

export interface EtcdConfig {
  endpoints: string[];
  /** TLS material, already read and checked (etcd-tls.ts); undefined for http://. */
  credentials?: EtcdCredentials;
  /** Deadline of a call that names none, ms (default 5,000). */
  timeoutMs?: number;
}

type IKv = { key: Buffer; value: Buffer; mod_revision: string };

function unavailable(err: unknown): ClusterUnavailableError {
  if (err instanceof ClusterUnavailableError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new ClusterUnavailableError(`etcd: ${msg.replace(/^Error: /, '')}`);
}

/** A backstop for calls whose deadline gRPC does not enforce (connection set-up, a stream's first answer). */
function within<T>(p: Promise<T>, deadline: number, onLate?: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => {
      onLate?.();
      reject(new ClusterUnavailableError('etcd: no answer before the deadline'));
    }, Math.max(0, deadline - Date.now()) + 250);
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

/**
 * Cancels a watcher and silences it. An 'error' event without a listener would throw out of
 * the client's stream handler and end the process, so an empty one stays.
 */
function quiet(w: Watcher): void {
  w.removeAllListeners();
  w.on('error', () => undefined);
  void w.cancel().catch(() => undefined);
}

export class EtcdStore implements RawClusterStore {
  private client: Etcd3;
  /** Watchers of the current client, cancelled by renew() and close(). */
  private readonly watchers = new Set<Watcher>();

  constructor(
    private readonly cfg: EtcdConfig,
    private readonly log: Logger,
  ) {
    this.client = this.newClient();
  }

  private newClient(): Etcd3 {
    const timeout = this.cfg.timeoutMs ?? 5_000;
    const options: IOptions = {
      hosts: this.cfg.endpoints,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: new Date(Date.now() + timeout) }),
      grpcOptions: {
        // No gRPC keep-alive pings: etcd counts pings on a connection without a stream as
        // abuse and drops it (lease keep-alives come and go). A hung or unreachable etcd is
        // found by the session's keep-alive requests, which have deadlines, and the session
        // then replaces the client (renew), so no call waits on a dead connection.
        'grpc.initial_reconnect_backoff_ms': 500,
        'grpc.max_reconnect_backoff_ms': 3_000,
        // Each client its own connections: a replaced client never inherits a stuck one.
        'grpc.use_local_subchannel_pool': 1,
      },
      faultHandling: { global: failover(this.cfg.endpoints.length), host: (h) => hostBreaker(h), watchBackoff: watchBackoff() },
    };
    if (this.cfg.credentials) options.credentials = this.cfg.credentials as IOptions['credentials'];
    return new Etcd3(options);
  }

  private async call<T>(opts: CallOpts | undefined, fn: (deadline: Date) => Promise<T>): Promise<T> {
    const deadline = opts?.deadline ?? Date.now() + (this.cfg.timeoutMs ?? 5_000);
    try {
      return await within(fn(new Date(deadline)), deadline);
    } catch (err) {
      throw unavailable(err);
    }
  }

  private kv<T>(kv: IKv): KeyValue<T> | undefined {
    try {
      return { key: String(kv.key), value: JSON.parse(String(kv.value)) as T, revision: String(kv.mod_revision) };
    } catch {
      this.log.warn({ key: String(kv.key) }, 'ignoring an unreadable value in the cluster store');
      return undefined;
    }
  }

  async get<T>(key: string, opts?: CallOpts): Promise<KeyValue<T> | undefined> {
    const res = await this.call(opts, (deadline) => this.client.get(key).options({ deadline }).exec());
    const kv = res.kvs[0];
    return kv ? this.kv<T>(kv) : undefined;
  }

  async snapshot<T>(prefix: string, opts?: CallOpts): Promise<{ revision: string; kvs: Array<KeyValue<T>> }> {
    const res = await this.call(opts, (deadline) => this.client.getAll().prefix(prefix).options({ deadline }).exec());
    return { revision: String(res.header.revision), kvs: res.kvs.map((kv) => this.kv<T>(kv)).filter((kv): kv is KeyValue<T> => kv !== undefined) };
  }

  async list<T>(prefix: string, opts?: CallOpts): Promise<Array<KeyValue<T>>> {
    return (await this.snapshot<T>(prefix, opts)).kvs;
  }

  private putOp(key: string, value: unknown, lease: string | undefined) {
    const put = this.client.put(key).value(JSON.stringify(value));
    return lease ? put.lease(lease) : put;
  }

  async put(key: string, value: unknown, opts?: CallOpts): Promise<void> {
    await this.call(opts, (deadline) => this.putOp(key, value, opts?.lease).options({ deadline }).exec());
  }

  async create(key: string, value: unknown, opts?: CallOpts): Promise<boolean> {
    const res = await this.call(opts, (deadline) => this.client.if(key, 'Create', '==', 0).then(this.putOp(key, value, opts?.lease)).options({ deadline }).commit());
    return res.succeeded;
  }

  async cas(key: string, revision: string, value: unknown | undefined, opts?: CallOpts): Promise<boolean> {
    const op = value === undefined ? this.client.delete().key(key) : this.putOp(key, value, undefined);
    const cmp = revision === '0' ? this.client.if(key, 'Create', '==', 0) : this.client.if(key, 'Mod', '==', revision);
    const res = await this.call(opts, (deadline) => cmp.then(op).options({ deadline }).commit());
    return res.succeeded;
  }

  async delete(key: string, opts?: CallOpts): Promise<void> {
    await this.call(opts, (deadline) => this.client.delete().key(key).options({ deadline }).exec());
  }

  async commit(conditions: Array<{ key: string; revision: string }>, writes: Array<{ key: string; value: unknown | undefined }>, opts?: CallOpts): Promise<boolean> {
    const [first, ...rest] = conditions;
    const cmpOf = (c: { key: string; revision: string }): ['Create' | 'Mod', '==', number | string] =>
      c.revision === '0' ? ['Create', '==', 0] : ['Mod', '==', c.revision];
    let txn = first ? this.client.if(first.key, ...cmpOf(first)) : this.client.if('/loom/v1/', 'Version', '>', -1);
    for (const c of rest) txn = txn.and(c.key, ...cmpOf(c));
    const ops = writes.map((w) => (w.value === undefined ? this.client.delete().key(w.key) : this.client.put(w.key).value(JSON.stringify(w.value))));
    const res = await this.call(opts, (deadline) => txn.then(...ops).options({ deadline }).commit());
    return res.succeeded;
  }

  async watch<T>(prefix: string, fromRevision: string, handlers: WatchHandlers<T>, opts?: CallOpts): Promise<Watch> {
    const watcher = this.client.watch().prefix(prefix).startRevision(fromRevision).watcher();
    this.watchers.add(watcher);
    let ended = false;
    /** Ends the watch from our side (close, creation timed out): a cancel request goes to etcd. */
    const end = (): void => {
      ended = true;
      this.watchers.delete(watcher);
      quiet(watcher);
    };
    watcher.on('put', (kv: IKv) => {
      const parsed = this.kv<T>(kv);
      if (parsed) handlers.onEvent({ type: 'put', key: parsed.key, value: parsed.value });
    });
    watcher.on('delete', (kv: IKv) => handlers.onEvent({ type: 'delete', key: String(kv.key) }));
    watcher.on('disconnected', (err: Error) => {
      this.log.debug({ prefix, err: String(err) }, 'watch stream lost; the client resumes it');
      handlers.onDisconnected?.();
    });
    const confirmed = new Promise<void>((resolve, reject) => {
      watcher.once('connected', () => resolve());
      watcher.on('error', (err: Error) => {
        // etcd cancelled the watch (compaction, permissions...): it sends nothing more, and the
        // client already forgot it. No cancel request may follow: etcd would answer it for an
        // id the client no longer knows, and the client throws out of its stream handler
        // (ClientRuntimeError 'Failed to find watcher'), which ends the process.
        reject(err);
        if (ended) return;
        ended = true;
        this.watchers.delete(watcher);
        watcher.removeAllListeners();
        watcher.on('error', () => undefined);
        handlers.onCancelled(err.message);
      });
    });
    try {
      await this.call(opts, () => confirmed);
    } catch (err) {
      if (!ended) end();
      throw err;
    }
    return { close: async () => (ended ? undefined : end()) };
  }

  async grantLease(ttlSeconds: number, opts?: CallOpts): Promise<string> {
    const res = await this.call(opts, (deadline) => this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }, { deadline }));
    return String(res.ID);
  }

  async keepAlive(lease: string, opts?: CallOpts): Promise<number> {
    return this.call(opts, async (deadline) => {
      const stream = await this.client.leaseClient.leaseKeepAlive({ deadline });
      try {
        return await new Promise<number>((resolve, reject) => {
          stream.on('data', (res: { TTL: string }) => resolve(Number(res.TTL)));
          stream.on('error', (err: Error) => (/requested lease not found/.test(err.message) ? resolve(0) : reject(err)));
          stream.write({ ID: lease });
        });
      } finally {
        stream.cancel();
      }
    });
  }

  async revokeLease(lease: string, opts?: CallOpts): Promise<void> {
    try {
      await this.call(opts, (deadline) => this.client.leaseClient.leaseRevoke({ ID: lease }, { deadline }));
    } catch (err) {
      if (!/requested lease not found/.test((err as Error).message)) throw err;
    }
  }

  renew(): void {
    const old = this.client;
    // Cancel the watchers first: a watch manager left with watchers on a closed client
    // would retry its stream for ever.
    for (const w of [...this.watchers]) quiet(w);
    this.watchers.clear();
    this.client = this.newClient();
    old.close();
  }

  async close(): Promise<void> {
    for (const w of [...this.watchers]) quiet(w);
    this.watchers.clear();
    this.client.close();
  }
}
