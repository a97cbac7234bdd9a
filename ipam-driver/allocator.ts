/**
 * The one allocator interface of the IPAM: what differs between loomd on one host
 * (local-allocator.ts) and loomd in a cluster (cluster-allocator.ts). The service picks
 * one implementation when it is built (ipam-service.ts); nothing on a request path asks
 * again which one it is.
 */
import type { Prefix } from '../lib/prefix';
import type { LivePool } from './address-book';
import type { AllocationKind, AllocationRecord } from './ipam-store';

/** RequestAddress in the service's terms. */
export interface AddressRequest {
  poolId: string;
  /** A static address (with or without length), or "" for any. */
  address: string;
  /** Docker's options: RequestAddressType=com.docker.network.gateway for a gateway. */
  options: Record<string, string>;
}

/** What a pool's subnet is beyond this host: shared with an overlay's hosts, and its block length. */
export interface SubnetClaim {
  /** The overlay's key when the subnet is an overlay's (the pool is then shared). */
  shared?: string;
  blockLen?: number;
}

/** How local-space subnets are claimed beyond this host (RequestPool, ReleasePool). */
export interface SubnetClaims {
  /** Subnets held elsewhere, which automatic subnets keep clear of. */
  claimed(): Promise<Prefix[]>;
  /** Claims `subnet` before its pool is recorded here (joins it when it is an overlay's). */
  claim(subnet: string): Promise<SubnetClaim>;
  /** The pool record of a claimed (not joined) subnet could not be written: best-effort give-back. */
  unclaim(subnet: string): Promise<void>;
  /** A pool is gone from this host with the allocations it still held: give back what was claimed for it. */
  poolReleased(live: LivePool, leftovers: AllocationRecord[]): Promise<void>;
}

/** How addresses are handed out and given back. */
export interface Addresses {
  request(req: AddressRequest): Promise<{ address: string }>;
  /** Idempotent: an unknown pool or address is logged, not an error. */
  release(poolId: string, address: string): Promise<void>;
  /** Reconciler: takes back an address a live endpoint uses; false when someone else holds it now. */
  restore(poolId: string, address: string, kind: AllocationKind): Promise<boolean>;
}

/** What other hosts ask of this one through the cluster store (none on one host). */
export interface ClusterEvents {
  /** Another host asks for a static address of a shared subnet: grant or deny. */
  answerReservation(subnet: string, ip: string, requester: string): Promise<void>;
  /** A reservation of another host was removed: its address may be handed out here again. */
  dropForeign(subnet: string, ip: string): Promise<void>;
  /** A borrow request addressed to this host: lend an address or refuse. */
  lend(requestKey: string): Promise<void>;
  /** Reconciler pass: settles shared pools with the cluster store; counts by kind. */
  resync(): Promise<Record<string, number>>;
}

export interface Allocator extends SubnetClaims, Addresses, ClusterEvents {}
