/**
 * The IPAM service: pools and addresses for Docker's remote IpamDriver API.
 *
 * In-memory allocators (core/) are the working copy; the store holds the facts
 * (pool records and one record per allocated address) and every change is one
 * atomic batch. Pool creation and release are serialized globally; address work
 * is serialized per pool, so different networks allocate in parallel.
 */
import { KeyedMutex } from '../lib/keyed-mutex';
import { conflict, invalid, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { AddressPool } from './core/address-pool';
import { DefaultPool, pickSubnet } from './core/pool-picker';
import {
  Family,
  Prefix,
  containsPrefix,
  contains,
  formatCidr,
  formatIp,
  formatPrefix,
  overlaps,
  parseIpMaybeCidr,
  parsePrefix,
  samePrefix,
  unusableSubnet,
} from '../lib/prefix';
import { AllocationKind, AllocationRecord, IpamRepository, PoolRecord } from './ipam-store';
import { PoolTable, QUARANTINE_MS, SharedConfig, SharedPools } from './shared-pools';
import { SharedResync } from './shared-resync';

import { GLOBAL_SPACE, LOCAL_SPACE, poolIdOf } from './address-spaces';

export { GLOBAL_SPACE, LOCAL_SPACE };
export const GATEWAY_TYPE = 'com.docker.network.gateway';
export { QUARANTINE_MS };
const REQUEST_ADDRESS_TYPE = 'RequestAddressType';

export interface PoolRequest {
  addressSpace: string;
  pool: string;
  subPool: string;
  options: Record<string, string>;
  v6: boolean;
}

export interface AddressRequest {
  poolId: string;
  address: string;
  options: Record<string, string>;
}

export interface IpamConfig {
  /** Default pools for automatic subnets, IPv4 and IPv6 mixed. */
  defaultPools: DefaultPool[];
  /** Prefixes routed on the host, to keep automatic subnets clear of them. */
  hostRoutes: () => Promise<Prefix[]>;
  /** In a cluster: cluster-wide pools, blocks, reservations and loans (cluster-pools.ts, shared-pools.ts). */
  cluster?: SharedConfig;
}

/** A pool in memory: its record and its allocator (shared-pools.ts works on these too). */
export interface LivePool {
  record: PoolRecord;
  alloc: AddressPool;
}

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

export class IpamService {
  private readonly pools = new Map<string, LivePool>();
  private readonly allocations = new Map<string, Map<string, AllocationRecord>>();
  private readonly locks = new KeyedMutex();
  /** Addresses of shared (overlay) pools, in a cluster. */
  private readonly shared: SharedPools | undefined;
  private readonly resync: SharedResync | undefined;

  constructor(
    private readonly repo: IpamRepository,
    private readonly config: IpamConfig,
    private readonly log: Logger,
  ) {
    if (config.cluster) {
      const table = this.table();
      this.shared = new SharedPools(table, config.cluster, log);
      this.resync = new SharedResync(table, config.cluster, this.shared, log);
    }
  }

  /** The view of pools and allocations shared-pools.ts and shared-resync.ts work on. */
  private table(): PoolTable {
    return {
      locks: this.locks,
      live: (id) => this.pools.get(id),
      held: (id) => this.allocations.get(id) ?? new Map(),
      shared: () => [...this.pools.values()].filter((p) => p.record.addressSpace === LOCAL_SPACE && p.record.shared),
      put: async (live, rec, pool) => {
        await this.repo.putAllocation(rec, pool);
        if (pool) live.record = pool;
        this.allocations.get(live.record.id)?.set(rec.address, rec);
      },
      free: async (live, address) => {
        await this.repo.deleteAllocation(live.record.id, address);
        live.alloc.release(parseIpMaybeCidr(address).value);
        this.allocations.get(live.record.id)?.delete(address);
      },
      savePool: async (live, record) => {
        await this.repo.putPool(record);
        live.record = record;
      },
    };
  }

  /** Rebuilds the in-memory allocators from the store (start-up). */
  async load(): Promise<void> {
    const { pools, allocations } = await this.repo.loadAll();
    for (const record of pools) {
      const alloc = new AddressPool(
        parsePrefix(record.pool),
        record.subPool ? parsePrefix(record.subPool) : undefined,
        BigInt(record.cursor),
      );
      if (record.shared) alloc.blocks = (record.blocks ?? []).map((b) => parsePrefix(b));
      this.pools.set(record.id, { record, alloc });
      this.allocations.set(record.id, new Map());
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

  async requestPool(req: PoolRequest): Promise<{ poolId: string; pool: string }> {
    if (req.addressSpace !== LOCAL_SPACE && req.addressSpace !== GLOBAL_SPACE) {
      throw invalid(`unknown address space ${JSON.stringify(req.addressSpace)} (loom serves ${LOCAL_SPACE} and ${GLOBAL_SPACE})`);
    }
    if (!req.pool && req.subPool) throw invalid('an ip-range (SubPool) needs an explicit subnet (Pool)');
    const family: Family = req.v6 ? 6 : 4;
    return this.locks.run('pools', async () => {
      let pool: Prefix;
      let auto = false;
      if (req.pool) {
        pool = parsePrefix(req.pool, 'subnet');
        const unusable = unusableSubnet(pool);
        if (unusable) throw invalid(`subnet ${req.pool} cannot carry containers: ${unusable}`);
        if (pool.family !== family) {
          throw invalid(`subnet ${req.pool} is ${pool.family === 6 ? 'IPv6' : 'IPv4'} but an ${req.v6 ? 'IPv6' : 'IPv4'} pool was requested`);
        }
      } else {
        pool = await this.pickAutomatic(req.addressSpace, family);
        auto = true;
      }
      let subPool: Prefix | undefined;
      if (req.subPool) {
        subPool = parsePrefix(req.subPool, 'ip-range');
        if (!containsPrefix(pool, subPool)) throw invalid(`ip-range ${req.subPool} is not inside subnet ${formatPrefix(pool)}`);
      }
      const id = poolIdOf(req.addressSpace, pool, subPool);
      const existing = [...this.pools.values()].filter(
        (p) => p.record.addressSpace === req.addressSpace && overlaps(p.alloc.pool, pool),
      );
      const same = existing.find((p) => p.record.id === id);
      if (same && req.addressSpace === GLOBAL_SPACE && existing.length === 1) {
        // Swarm managers re-allocate networks after a leader change: a confirmation.
        same.record = { ...same.record, refs: same.record.refs + 1 };
        await this.repo.putPool(same.record);
        return { poolId: id, pool: same.record.pool };
      }
      const clash = existing[0];
      if (clash?.record.shared && samePrefix(clash.alloc.pool, pool)) {
        throw conflict(`subnet ${formatPrefix(pool)} is already used on this host by overlay ${clash.record.shared} (loom creates an overlay's network on every host by itself)`);
      }
      if (clash) {
        throw conflict(
          samePrefix(clash.alloc.pool, pool)
            ? `subnet ${formatPrefix(pool)} is already in use by another network`
            : `subnet ${formatPrefix(pool)} overlaps subnet ${clash.record.pool} of another network`,
        );
      }
      // In a cluster every local-space subnet is claimed cluster-wide (an overlay's is joined).
      const cluster = req.addressSpace === LOCAL_SPACE ? this.config.cluster?.pools : undefined;
      const { shared, blockLen } = cluster ? await cluster.claim(formatPrefix(pool)) : { shared: undefined, blockLen: undefined };
      const record: PoolRecord = {
        id,
        addressSpace: req.addressSpace,
        pool: formatPrefix(pool),
        ...(subPool ? { subPool: formatPrefix(subPool) } : {}),
        v6: req.v6,
        options: req.options,
        refs: 1,
        auto,
        cursor: '-1',
        ...(shared ? { shared, blocks: [] } : {}),
        ...(blockLen !== undefined ? { blockLen } : {}),
        createdAt: new Date().toISOString(),
      };
      try {
        await this.repo.putPool(record);
      } catch (err) {
        if (cluster && !shared) await cluster.release(record.pool).catch(() => undefined);
        throw err;
      }
      const alloc = new AddressPool(pool, subPool);
      if (shared) alloc.blocks = [];
      this.pools.set(id, { record, alloc });
      this.allocations.set(id, new Map());
      return { poolId: id, pool: record.pool };
    });
  }

  private async pickAutomatic(space: string, family: Family): Promise<Prefix> {
    const inUse = [...this.pools.values()].filter((p) => p.record.addressSpace === space).map((p) => p.alloc.pool);
    if (space === LOCAL_SPACE && this.config.cluster) inUse.push(...(await this.config.cluster.pools.claimed()));
    let routed: Prefix[] = [];
    try {
      routed = (await this.config.hostRoutes()).filter((r) => r.len > 0);
    } catch (err) {
      this.log.warn({ err: String(err) }, 'could not read host routes; automatic subnets only avoid loom pools');
    }
    const chosen = pickSubnet(this.config.defaultPools, family, [...inUse, ...routed]);
    if (!chosen) {
      throw conflict(
        `no free ${family === 6 ? 'IPv6' : 'IPv4'} subnet left in the default pools (${this.config.defaultPools
          .filter((d) => d.base.family === family)
          .map((d) => `${formatPrefix(d.base)}:${d.size}`)
          .join(', ') || 'none configured'}); pass --subnet or configure more default pools`,
      );
    }
    return chosen;
  }

  async releasePool(poolId: string): Promise<void> {
    await this.locks.run('pools', () =>
      this.locks.run(`pool:${poolId}`, async () => {
        const live = this.pools.get(poolId);
        if (!live) {
          this.log.info({ poolId }, 'ReleasePool of an unknown pool: nothing to do');
          return;
        }
        if (live.record.refs > 1) {
          live.record = { ...live.record, refs: live.record.refs - 1 };
          await this.repo.putPool(live.record);
          return;
        }
        const leftovers = [...(this.allocations.get(poolId)?.values() ?? [])];
        const cluster = live.record.addressSpace === LOCAL_SPACE ? this.config.cluster?.pools : undefined;
        await this.repo.deletePool(poolId, leftovers.map((a) => a.address));
        this.pools.delete(poolId);
        this.allocations.delete(poolId);
        if (cluster) {
          // Only once this host holds nothing of the pool any more (else another host could take
          // its blocks or addresses while they are still used here). Best effort: blocks and
          // reservations left behind by an unreachable etcd are removed by the IPAM resync.
          const done = live.record.shared ? cluster.releaseBlocks(live.alloc.pool) : cluster.release(live.record.pool);
          await done.catch((err) => this.log.warn({ poolId, err: String(err) }, 'could not release the pool in the cluster store'));
          for (const a of leftovers) if ((a.kind === 'explicit' || a.kind === 'borrowed') && live.record.shared) await cluster.unreserve(live.alloc.pool, a.address).catch(() => undefined);
        }
        if (leftovers.length > 0) {
          this.log.info({ poolId, addresses: leftovers.map((a) => a.address) }, 'released pool still held addresses; released them too');
        }
      }),
    );
  }

  async requestAddress(req: AddressRequest): Promise<{ address: string }> {
    const gateway = req.options[REQUEST_ADDRESS_TYPE] === GATEWAY_TYPE;
    // Shared (overlay) pools: cluster-wide reservations, blocks and loans (shared-pools.ts);
    // only the overlay's own gateway and aux addresses are taken locally, below.
    if (this.shared && !gateway && this.pools.get(req.poolId)?.record.shared) {
      const done = await this.shared.request(req.poolId, req.address);
      if (done) return done;
    }
    return this.locks.run(`pool:${req.poolId}`, async () => {
      const live = this.pools.get(req.poolId);
      if (!live) throw notFound(`pool ${JSON.stringify(req.poolId)} not found`);
      const { alloc } = live;
      let value: bigint;
      let kind: AllocationKind;
      const cursorBefore = alloc.cursor;
      if (req.address) {
        const ip = parseIpMaybeCidr(req.address, 'address');
        if (!contains(alloc.pool, ip)) {
          throw invalid(`address ${formatIp(ip.family, ip.value)} is outside pool ${formatPrefix(alloc.pool)}`);
        }
        alloc.reserve(ip.value);
        value = ip.value;
        kind = gateway ? 'gateway' : 'explicit';
      } else if (gateway) {
        // Deterministic, so every host of an overlay puts the same gateway on its bridge.
        value = alloc.allocateLowest();
        kind = 'gateway';
      } else {
        value = alloc.allocateNext();
        kind = 'dynamic';
      }
      const record: AllocationRecord = {
        poolId: req.poolId,
        address: formatIp(alloc.pool.family, value),
        kind,
        createdAt: new Date().toISOString(),
      };
      const poolRecord = alloc.cursor === cursorBefore ? undefined : { ...live.record, cursor: alloc.cursor.toString() };
      try {
        await this.repo.putAllocation(record, poolRecord);
      } catch (err) {
        alloc.release(value);
        alloc.cursor = cursorBefore;
        throw err;
      }
      if (poolRecord) live.record = poolRecord;
      this.allocations.get(req.poolId)?.set(record.address, record);
      return { address: formatCidr(alloc.pool.family, value, alloc.pool.len) };
    });
  }

  /** Another host asks for a static address of a shared subnet (cluster watch): grant or deny. */
  async answerReservation(subnet: string, ip: string, requester: string): Promise<void> {
    await this.shared?.answerReservation(subnet, ip, requester);
  }

  /** A reservation of another host was removed: its address may be handed out here again. */
  async dropForeign(subnet: string, ip: string): Promise<void> {
    await this.shared?.dropForeign(subnet, ip);
  }

  /** A borrow request addressed to this host (cluster watch): lend an address or refuse. */
  async lendAddress(requestKey: string): Promise<void> {
    await this.shared?.lend(requestKey);
  }

  /** Reconciler (every pass): settles shared pools' loans and reservations with etcd (shared-resync.ts). */
  async resyncShared(): Promise<Record<string, number>> {
    return this.resync ? this.resync.run() : {};
  }

  /** After an overlay's CreateNetwork on the host that created it: its pools become shared. */
  async markShared(subnet: string, overlayKey: string): Promise<void> {
    const live = [...this.pools.values()].find((p) => p.record.addressSpace === LOCAL_SPACE && p.record.pool === subnet);
    if (!live || live.record.shared) return;
    await this.locks.run(`pool:${live.record.id}`, async () => {
      live.record = { ...live.record, shared: overlayKey, blocks: [] };
      live.alloc.blocks = [];
      await this.repo.putPool(live.record);
    });
  }

  async releaseAddress(poolId: string, address: string): Promise<void> {
    const ip = parseIpMaybeCidr(address, 'address');
    await this.locks.run(`pool:${poolId}`, async () => {
      const live = this.pools.get(poolId);
      if (!live) {
        this.log.info({ poolId, address }, 'ReleaseAddress in an unknown pool: nothing to do');
        return;
      }
      const key = formatIp(ip.family, ip.value);
      const byAddr = this.allocations.get(poolId);
      if (!byAddr?.has(key)) {
        this.log.info({ poolId, address: key }, 'ReleaseAddress of an address that is not allocated: nothing to do');
        return;
      }
      const rec = byAddr.get(key);
      const cluster = live.record.shared ? this.config.cluster : undefined;
      if (live.record.shared && rec?.kind === 'dynamic') {
        // Shared (overlay) pool: other hosts may still hold FDB/neighbour entries for this
        // address for a moment; keep it out of use for a while instead of freeing it now.
        const q: AllocationRecord = { ...rec, kind: 'quarantine', until: new Date(Date.now() + QUARANTINE_MS).toISOString() };
        await this.repo.putAllocation(q);
        byAddr.set(key, q);
        return;
      }
      await this.repo.deleteAllocation(poolId, key);
      live.alloc.release(ip.value);
      byAddr.delete(key);
      // A static or borrowed address goes back to the cluster only now that this host no longer
      // holds it (a loan's owner quarantines it). A failure leaves an unused reservation of this
      // host, which the IPAM resync removes.
      if (cluster && (rec?.kind === 'explicit' || rec?.kind === 'borrowed') && !cluster.overlayReserved(live.record.shared as string).has(key)) {
        await cluster.pools.unreserve(live.alloc.pool, key).catch((err) => this.log.warn({ poolId, address: key, err: String(err) }, 'could not release a cluster reservation'));
      }
    });
  }

  /** Reconciler: releases an allocation nobody holds, unless it was made after `cutoff` (ms). */
  async releaseOrphanAddress(poolId: string, address: string, cutoff: number): Promise<boolean> {
    const a = this.allocations.get(poolId)?.get(address);
    if (!a || Date.parse(a.createdAt) > cutoff) return false;
    await this.releaseAddress(poolId, address);
    return true;
  }

  /**
   * Reconciler: an address a live endpoint, gateway or aux address uses is not allocated
   * (released behind Docker's back): take it again. False when someone else holds it now.
   */
  async restoreAllocation(poolId: string, address: string, kind: AllocationKind): Promise<boolean> {
    const shared = this.pools.get(poolId);
    const ip0 = parseIpMaybeCidr(address);
    if (this.shared && shared?.record.shared && kind !== 'gateway' && !shared.alloc.inBlocks(ip0.value) && !this.config.cluster?.overlayReserved(shared.record.shared).has(address)) {
      // Outside this host's blocks the owner decides: reserved cluster-wide like a static address.
      return this.shared.restore(shared, address);
    }
    return this.locks.run(`pool:${poolId}`, async () => {
      const live = this.pools.get(poolId);
      const ip = parseIpMaybeCidr(address);
      if (!live || live.alloc.isUsed(ip.value)) return false;
      live.alloc.reserve(ip.value);
      const rec: AllocationRecord = { poolId, address, kind, createdAt: new Date().toISOString() };
      await this.repo.putAllocation(rec);
      this.allocations.get(poolId)?.set(address, rec);
      return true;
    });
  }

  /** Reconciler: releases a pool no network uses (whatever its reference count), unless newer than `cutoff`. */
  async releaseOrphanPool(poolId: string, cutoff: number): Promise<boolean> {
    const live = this.pools.get(poolId);
    if (!live || Date.parse(live.record.createdAt) > cutoff) return false;
    live.record = { ...live.record, refs: 1 };
    await this.releasePool(poolId);
    return true;
  }

  /** A snapshot of every pool with its allocations (admin, metrics, reconciler). */
  listPools(): PoolView[] {
    return [...this.pools.values()].map(({ record, alloc }) => {
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
        allocations: [...(this.allocations.get(record.id)?.values() ?? [])],
      };
    });
  }
}

export { poolIdOf };
