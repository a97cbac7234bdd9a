/**
 * The cluster store: the shared, consistent key-value space of a loom cluster
 * (etcd in production, see etcd-store.ts; an in-memory implementation for unit
 * tests only). Values are JSON. Keys live under `/loom/v1/`; the layout is in
 * docs/overlay.md and in `keys` below.
 *
 * Everything multi-host goes through this interface: loom never implements its
 * own consensus, gossip or replication.
 */

export interface KeyValue<T = unknown> {
  key: string;
  value: T;
  /** etcd mod revision, for compare-and-swap. */
  revision: string;
}

export type WatchEvent<T = unknown> = { type: 'put'; key: string; value: T } | { type: 'delete'; key: string };

export interface Watch {
  close(): Promise<void>;
}

/** The key-value operations loom's cluster logic uses (agent, cluster IPAM). */
export interface ClusterStore {
  get<T>(key: string): Promise<KeyValue<T> | undefined>;
  list<T>(prefix: string): Promise<Array<KeyValue<T>>>;
  /** Unconditional write; `leased` ties the key to this host's lease (gone when the host is). */
  put(key: string, value: unknown, opts?: { leased?: boolean }): Promise<void>;
  /** Creates the key only if it does not exist; true when created. */
  create(key: string, value: unknown, opts?: { leased?: boolean }): Promise<boolean>;
  /** Writes (or deletes, with value undefined) only if the key's revision is still `revision` ("0": absent). */
  cas(key: string, revision: string, value: unknown | undefined): Promise<boolean>;
  delete(key: string): Promise<void>;
  /**
   * One transaction: when every condition holds (a key's revision, "0" meaning absent),
   * applies every write (value undefined: delete). True when applied.
   */
  commit(conditions: Array<{ key: string; revision: string }>, writes: Array<{ key: string; value: unknown | undefined }>): Promise<boolean>;
}

/** Per-call options of the raw store: a deadline and, for leased writes, the lease. */
export interface CallOpts {
  /** The call fails (ClusterUnavailableError) when etcd has not answered by then (epoch ms). */
  deadline?: number;
  /** Lease id for `leased` writes. */
  lease?: string;
}

export interface WatchHandlers<T> {
  onEvent(ev: WatchEvent<T>): void;
  /**
   * The server ended the watch (compaction, or any error): no further events come. The
   * owner must list again and watch anew (session.ts does).
   */
  onCancelled(reason: string): void;
  /** The client lost the watch stream (it resumes by itself from the last revision seen). */
  onDisconnected?(): void;
}

/**
 * What the etcd client (etcd-store.ts) and the in-memory store (memory-store.ts) provide.
 * Every failure to reach etcd is a ClusterUnavailableError (health.ts); every call ends
 * by its deadline. Only the cluster session and the guarded store use this directly.
 */
export interface RawClusterStore {
  get<T>(key: string, opts?: CallOpts): Promise<KeyValue<T> | undefined>;
  list<T>(prefix: string, opts?: CallOpts): Promise<Array<KeyValue<T>>>;
  /** A consistent read of a prefix with the store revision it was read at. */
  snapshot<T>(prefix: string, opts?: CallOpts): Promise<{ revision: string; kvs: Array<KeyValue<T>> }>;
  put(key: string, value: unknown, opts?: CallOpts): Promise<void>;
  create(key: string, value: unknown, opts?: CallOpts): Promise<boolean>;
  cas(key: string, revision: string, value: unknown | undefined, opts?: CallOpts): Promise<boolean>;
  delete(key: string, opts?: CallOpts): Promise<void>;
  commit(conditions: Array<{ key: string; revision: string }>, writes: Array<{ key: string; value: unknown | undefined }>, opts?: CallOpts): Promise<boolean>;
  /**
   * Watches a prefix from `fromRevision` (inclusive): events in order. Resolves once the
   * server confirmed the watch; rejects by the deadline otherwise.
   */
  watch<T>(prefix: string, fromRevision: string, handlers: WatchHandlers<T>, opts?: CallOpts): Promise<Watch>;
  /** Grants a lease; returns its id. */
  grantLease(ttlSeconds: number, opts?: CallOpts): Promise<string>;
  /** Renews a lease once; returns its remaining TTL in seconds (0: the lease is gone). */
  keepAlive(lease: string, opts?: CallOpts): Promise<number>;
  revokeLease(lease: string, opts?: CallOpts): Promise<void>;
  /**
   * Drops every connection and watch and starts afresh on the next call (after an outage a
   * connection may sit in TCP back-off long after etcd is back). Watches end without
   * `onCancelled`: their owner re-creates them.
   */
  renew(): void;
  close(): Promise<void>;
}

/** A subnet as a single key segment: 198.18.90.0/24 -> 198.18.90.0_24. */
export const seg = (subnet: string): string => subnet.replace('/', '_');

/** Key layout of schema v1. */
export const keys = {
  root: '/loom/v1/',
  host: (hostId: string): string => `/loom/v1/hosts/${hostId}`,
  hosts: '/loom/v1/hosts/',
  pool: (subnet: string): string => `/loom/v1/pools/${seg(subnet)}`,
  pools: '/loom/v1/pools/',
  overlay: (key: string): string => `/loom/v1/overlays/${key}`,
  overlays: '/loom/v1/overlays/',
  vni: (vni: number): string => `/loom/v1/vnis/${vni}`,
  member: (key: string, hostId: string): string => `/loom/v1/members/${key}/${hostId}`,
  members: (key: string): string => `/loom/v1/members/${key}/`,
  detached: (key: string, hostId: string): string => `/loom/v1/detached/${key}/${hostId}`,
  endpoint: (key: string, hostId: string, endpointId: string): string => `/loom/v1/endpoints/${key}/${hostId}/${endpointId}`,
  endpointsOf: (key: string): string => `/loom/v1/endpoints/${key}/`,
  endpoints: '/loom/v1/endpoints/',
  block: (subnet: string, base: string): string => `/loom/v1/blocks/${seg(subnet)}/${base}`,
  blocksOf: (subnet: string): string => `/loom/v1/blocks/${seg(subnet)}/`,
  blocks: '/loom/v1/blocks/',
  reservation: (subnet: string, ip: string): string => `/loom/v1/reservations/${seg(subnet)}/${ip}`,
  reservationsOf: (subnet: string): string => `/loom/v1/reservations/${seg(subnet)}/`,
  reservations: '/loom/v1/reservations/',
  /** A borrow request of `subnet` addressed to the owner `owner` (leased to the borrower). */
  loanRequest: (subnet: string, owner: string, id: string): string => `/loom/v1/loans/${seg(subnet)}/${owner}/${id}`,
  loanRequestsOf: (subnet: string): string => `/loom/v1/loans/${seg(subnet)}/`,
  loanRequests: '/loom/v1/loans/',
  /** A network policy (PolicyRecord, docs/policy.md): not leased, the same on every host. */
  policy: (name: string): string => `/loom/v1/policies/${name}`,
  policies: '/loom/v1/policies/',
};
