/**
 * The cluster IPAM's records in the cluster store (etcd), as docs/overlay.md lists them,
 * and its deadlines. Keys come from lib/cluster/store.ts (`keys`); subnets appear in keys
 * with "/" written as "_" ("198.18.0.0_24").
 */
import { Prefix, formatIp } from '../lib/prefix';

/** `pools/<subnet>`: who holds a subnet cluster-wide (pending while its network is being created). */
export interface PoolClaim {
  subnet: string;
  kind: 'pending' | 'local' | 'overlay';
  host: string;
  overlay?: string;
  /** Block length of the pool when it is shared (absent in claims of older versions: legacy /26, /116). */
  blockLen?: number;
  at: string;
}

/** `blocks/<subnet>/<base>`: the host that allocates inside this block of a shared pool. */
export interface BlockClaim {
  host: string;
  at: string;
}

/** `reservations/<subnet>/<ip>`: `host` holds `ip` (or asks for it: state requested). */
export interface Reservation {
  host: string;
  state: 'granted' | 'requested' | 'denied';
  at: string;
  /** A loan: the owner of the block lent a free address (quarantined there when given back). */
  borrowed?: boolean;
  /** A loan: the id of the borrow request it answers (the borrower finds its address by it). */
  request?: string;
}

/** Deadlines and waits of the cluster IPAM; injectable so unit tests run on a simulated clock. */
export interface ClusterTiming {
  /** How long a static reservation inside another host's block waits for that host. */
  grantTimeoutMs: number;
  /** How long a borrow request waits for one owner before the next one is asked. */
  loanOwnerTimeoutMs: number;
  /** Overall deadline of one borrow (every owner asked). */
  loanBudgetMs: number;
  sleep(ms: number): Promise<void>;
  now(): number;
}

export const DEFAULT_TIMING: ClusterTiming = {
  grantTimeoutMs: 5_000,
  loanOwnerTimeoutMs: 2_000,
  loanBudgetMs: 8_000,
  sleep: (ms) => new Promise((r) => setTimeout(r, ms).unref()),
  now: () => Date.now(),
};

/** A block's key segment: its base address. */
export const blockKey = (b: Prefix): string => formatIp(b.family, b.base);

/** The last segment of a key (an address, a block base, a request id). */
export const lastSegment = (key: string): string => key.slice(key.lastIndexOf('/') + 1);

/** The subnet of `<prefix><subnet_seg>/<last>` (a key under `prefix`). */
export const subnetOfKey = (prefix: string, key: string): string => {
  const rest = key.slice(prefix.length);
  return rest.slice(0, rest.lastIndexOf('/')).replace('_', '/');
};
