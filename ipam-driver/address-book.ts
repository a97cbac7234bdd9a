/**
 * The address book: this host's pools, each with its allocator, and one record per
 * allocated address, in memory and in the store (ipam-store.ts). The records are the
 * facts; the allocators (core/address-pool.ts) are working copies rebuilt from them at
 * start-up (`load`).
 *
 * Invariant: memory follows the store. A change is written first (one batch) and taken
 * into the maps only once the write succeeded; a caller that moved an allocator before
 * the write (reserve, next-fit cursor) puts it back when the write fails. A dynamic
 * allocation's write is queued under the pool's lock but awaited outside it, so that the
 * requests of one pool share syncs (local-allocator.ts); `dropPool` waits for such writes.
 *
 * Locks (`locks`): POOLS_LOCK serializes creating and releasing pools; `poolLock(id)`
 * serializes the allocations of one pool, so different networks allocate in parallel.
 * Order: POOLS_LOCK before a pool's lock, never the reverse. No lock is held while this
 * host waits for another host (shared-pools.ts explains why).
 */
import { KeyedMutex } from '../lib/keyed-mutex';
import type { Logger } from '../lib/logger';
import { parseIpMaybeCidr, parsePrefix } from '../lib/prefix';
import { LOCAL_SPACE } from './address-spaces';
import { AddressPool } from './core/address-pool';
import type { AllocationRecord, IpamRepository, PoolRecord } from './ipam-store';

/** A pool in memory: its record (as last stored) and its allocator. */
export interface LivePool {
  record: PoolRecord;
  alloc: AddressPool;
}

/** One pool as admin, metrics and the reconciler see it. */
export interface PoolView {
  id: string;
  createdAt: string;
  addressSpace: string;
  pool: string;
  subPool?: string;
  v6: boolean;
  refs: number;
  used: bigint;
  capacity: bigint;
  /** Overlay key when the pool is an overlay's (shared across hosts). */
  shared?: string;
  allocations: AllocationRecord[];
}

export const POOLS_LOCK = 'pools';
export const poolLock = (poolId: string): string => `pool:${poolId}`;

export class AddressBook {
  readonly locks = new KeyedMutex();
  private readonly pools = new Map<string, LivePool>();
  /** poolId -> address (canonical, without length) -> record. */
  private readonly allocations = new Map<string, Map<string, AllocationRecord>>();
  /** poolId -> allocation writes queued but not yet stored (a pool is dropped only after them). */
  private readonly writing = new Map<string, Set<Promise<void>>>();

  constructor(
    private readonly repo: IpamRepository,
    private readonly log: Logger,
  ) {}

  /** Rebuilds the allocators from the stored records (start-up, before any call is served). */
  async load(): Promise<void> {
    const { pools, allocations } = await this.repo.loadAll();
    for (const record of pools) {
      const alloc = new AddressPool(parsePrefix(record.pool), record.subPool ? parsePrefix(record.subPool) : undefined, BigInt(record.cursor));
      if (record.shared) alloc.blocks = (record.blocks ?? []).map((b) => parsePrefix(b));
      this.track({ record, alloc });
    }
    for (const a of allocations) {
      const live = this.pools.get(a.poolId);
      const byAddr = this.allocations.get(a.poolId);
      if (!live || !byAddr) {
        this.log.warn({ poolId: a.poolId, address: a.address }, 'allocation of an unknown pool ignored');
        continue;
      }
      try {
        live.alloc.reserve(parseIpMaybeCidr(a.address).value);
        byAddr.set(a.address, a);
      } catch (err) {
        this.log.warn({ poolId: a.poolId, address: a.address, err: String(err) }, 'stored allocation could not be restored');
      }
    }
  }

  live(poolId: string): LivePool | undefined {
    return this.pools.get(poolId);
  }

  all(): LivePool[] {
    return [...this.pools.values()];
  }

  /** The shared (overlay) pools: local-space pools whose subnet other hosts share. */
  shared(): LivePool[] {
    return this.all().filter((p) => p.record.addressSpace === LOCAL_SPACE && p.record.shared);
  }

  /** The allocations of a pool by address (empty for an unknown pool). */
  held(poolId: string): Map<string, AllocationRecord> {
    return this.allocations.get(poolId) ?? new Map();
  }

  /** Stores a new pool and starts tracking it. */
  async addPool(record: PoolRecord, alloc: AddressPool): Promise<void> {
    await this.repo.putPool(record);
    this.track({ record, alloc });
  }

  /** Stores a changed pool record and makes it the live one. */
  async savePool(live: LivePool, record: PoolRecord): Promise<void> {
    await this.repo.putPool(record);
    live.record = record;
  }

  /** Deletes a pool with every allocation it still holds (one batch); returns those allocations. */
  async dropPool(live: LivePool): Promise<AllocationRecord[]> {
    const id = live.record.id;
    // An allocation whose write is in flight would be stored after the pool's deletion.
    await Promise.allSettled([...(this.writing.get(id) ?? [])]);
    const leftovers = [...this.held(id).values()];
    await this.repo.deletePool(id, leftovers.map((a) => a.address));
    this.pools.delete(id);
    this.allocations.delete(id);
    return leftovers;
  }

  /** Stores an allocation (and the pool record in the same batch when given: a moved cursor, new blocks). */
  async put(live: LivePool, rec: AllocationRecord, pool?: PoolRecord): Promise<void> {
    const id = live.record.id;
    let set = this.writing.get(id);
    if (!set) this.writing.set(id, (set = new Set()));
    const write = this.repo.putAllocation(rec, pool);
    set.add(write);
    try {
      await write;
    } finally {
      set.delete(write);
      if (set.size === 0 && this.writing.get(id) === set) this.writing.delete(id);
    }
    if (pool) live.record = pool;
    this.allocations.get(id)?.set(rec.address, rec);
  }

  /** Deletes an allocation and frees its address in the allocator. */
  async free(live: LivePool, address: string): Promise<void> {
    await this.repo.deleteAllocation(live.record.id, address);
    live.alloc.release(parseIpMaybeCidr(address).value);
    this.allocations.get(live.record.id)?.delete(address);
  }

  /** A snapshot of every pool with its allocations. */
  views(): PoolView[] {
    return this.all().map(({ record, alloc }) => {
      const { used, capacity } = alloc.stats();
      return {
        id: record.id,
        createdAt: record.createdAt,
        addressSpace: record.addressSpace,
        pool: record.pool,
        ...(record.subPool ? { subPool: record.subPool } : {}),
        v6: record.v6,
        refs: record.refs,
        used,
        capacity,
        ...(record.shared ? { shared: record.shared } : {}),
        allocations: [...this.held(record.id).values()],
      };
    });
  }

  private track(live: LivePool): void {
    this.pools.set(live.record.id, live);
    this.allocations.set(live.record.id, new Map());
  }
}
