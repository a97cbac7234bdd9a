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
  /**
   * Watches a prefix: `onEvent` gets every change; `onResync` gets the full current
   * content first and again after every reconnection (events may have been missed).
   */
  watch<T>(prefix: string, handlers: { onEvent(ev: WatchEvent<T>): void; onResync(all: Array<KeyValue<T>>): void }): Promise<Watch>;
  /** Grants (or re-grants) this host's lease; `onLost` fires if it expires. */
  startLease(ttlSeconds: number, onLost: () => void): Promise<void>;
  /** True while the store answers. */
  healthy(): boolean;
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
};
