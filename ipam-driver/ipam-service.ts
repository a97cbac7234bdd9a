/**
 * The IPAM service: pools and addresses for Docker's remote IpamDriver API, and what the
 * reconciler and the cluster coordinator ask of the IPAM. It only assembles the pieces:
 *
 *   address-book.ts      pools and allocation records, in memory and stored; rebuilt at start
 *   local-pools.ts       RequestPool / ReleasePool
 *   allocator.ts         the one allocator interface, chosen here once:
 *     local-allocator.ts   loomd on one host
 *     cluster-allocator.ts loomd in a cluster (subnets claimed cluster-wide, shared pools)
 *
 * Locks (address-book.ts): pools are created and released one at a time; address work is
 * serialized per pool, so different networks allocate in parallel.
 */
import type { Logger } from '../lib/logger';
import { AddressBook, PoolView } from './address-book';
import type { AddressRequest, Allocator } from './allocator';
import { ClusterAllocator } from './cluster-allocator';
import type { AllocationKind, IpamRepository } from './ipam-store';
import { LocalAllocator } from './local-allocator';
import { LocalPools, PoolRequest, SubnetSources } from './local-pools';
import type { SharedConfig } from './shared-pools';

export type { AddressRequest, PoolRequest, PoolView };

export interface IpamConfig extends SubnetSources {
  /** In a cluster: cluster-wide pools, blocks, reservations and loans (cluster-allocator.ts). */
  cluster?: SharedConfig;
}

export class IpamService {
  private readonly book: AddressBook;
  private readonly allocator: Allocator;
  private readonly pools: LocalPools;

  constructor(repo: IpamRepository, config: IpamConfig, log: Logger) {
    this.book = new AddressBook(repo, log);
    // The one place that asks whether loomd runs in a cluster.
    this.allocator = config.cluster ? new ClusterAllocator(this.book, config.cluster, log) : new LocalAllocator(this.book, log);
    this.pools = new LocalPools(this.book, this.allocator, config, log);
  }

  /** Rebuilds the in-memory allocators from the store (start-up, before any call is served). */
  load(): Promise<void> {
    return this.book.load();
  }

  requestPool(req: PoolRequest): Promise<{ poolId: string; pool: string }> {
    return this.pools.request(req);
  }

  releasePool(poolId: string): Promise<void> {
    return this.pools.release(poolId);
  }

  requestAddress(req: AddressRequest): Promise<{ address: string }> {
    return this.allocator.request(req);
  }

  releaseAddress(poolId: string, address: string): Promise<void> {
    return this.allocator.release(poolId, address);
  }

  /** After an overlay's CreateNetwork on the host that created it: its pools become shared. */
  markShared(subnet: string, overlayKey: string): Promise<void> {
    return this.pools.markShared(subnet, overlayKey);
  }

  /** Another host asks for a static address of a shared subnet (cluster watch): grant or deny. */
  answerReservation(subnet: string, ip: string, requester: string): Promise<void> {
    return this.allocator.answerReservation(subnet, ip, requester);
  }

  /** A reservation of another host was removed: its address may be handed out here again. */
  dropForeign(subnet: string, ip: string): Promise<void> {
    return this.allocator.dropForeign(subnet, ip);
  }

  /** A borrow request addressed to this host (cluster watch): lend an address or refuse. */
  lendAddress(requestKey: string): Promise<void> {
    return this.allocator.lend(requestKey);
  }

  /** Reconciler (every pass): settles shared pools' loans and reservations with etcd (shared-resync.ts). */
  resyncShared(): Promise<Record<string, number>> {
    return this.allocator.resync();
  }

  /** Reconciler: releases an allocation nobody holds, unless it was made after `cutoff` (ms). */
  async releaseOrphanAddress(poolId: string, address: string, cutoff: number): Promise<boolean> {
    const a = this.book.held(poolId).get(address);
    if (!a || Date.parse(a.createdAt) > cutoff) return false;
    await this.releaseAddress(poolId, address);
    return true;
  }

  /**
   * Reconciler: an address a live endpoint, gateway or aux address uses is not allocated
   * (released behind Docker's back): take it again. False when someone else holds it now.
   */
  restoreAllocation(poolId: string, address: string, kind: AllocationKind): Promise<boolean> {
    return this.allocator.restore(poolId, address, kind);
  }

  /** Reconciler: releases a pool no network uses (whatever its reference count), unless newer than `cutoff`. */
  releaseOrphanPool(poolId: string, cutoff: number): Promise<boolean> {
    return this.pools.releaseOrphan(poolId, cutoff);
  }

  /** A snapshot of every pool with its allocations (admin, metrics, reconciler). */
  listPools(): PoolView[] {
    return this.book.views();
  }
}
