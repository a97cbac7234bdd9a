/**
 * RequestPool and ReleasePool: this host's pools, in either address space. A subnet is
 * given (--subnet) or picked from the default pools clear of every pool in use and every
 * prefix routed on the host; pools of one space never overlap. In a cluster a local-space
 * subnet is also claimed cluster-wide first (SubnetClaims; an overlay's is joined, and the
 * pool is then shared).
 *
 * All of it runs under POOLS_LOCK (one pool at a time on this host), a release also under
 * the pool's own lock, so that no address of the pool is being handed out meanwhile.
 */
import { conflict, invalid } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { Family, Prefix, containsPrefix, formatPrefix, overlaps, parsePrefix, samePrefix, unusableSubnet } from '../lib/prefix';
import { GLOBAL_SPACE, LOCAL_SPACE, poolIdOf } from './address-spaces';
import type { SubnetClaims } from './allocator';
import { AddressBook, LivePool, POOLS_LOCK, poolLock } from './address-book';
import { AddressPool } from './core/address-pool';
import { DefaultPool, pickSubnet } from './core/pool-picker';
import type { PoolRecord } from './ipam-store';

export interface PoolRequest {
  addressSpace: string;
  /** --subnet, or "" for loom to choose. */
  pool: string;
  /** --ip-range, or "". */
  subPool: string;
  options: Record<string, string>;
  v6: boolean;
}

/** Where automatic subnets come from. */
export interface SubnetSources {
  /** Default pools for automatic subnets, IPv4 and IPv6 mixed. */
  defaultPools: DefaultPool[];
  /** Prefixes routed on the host, to keep automatic subnets clear of them. */
  hostRoutes: () => Promise<Prefix[]>;
}

export class LocalPools {
  constructor(
    private readonly book: AddressBook,
    private readonly claims: SubnetClaims,
    private readonly sources: SubnetSources,
    private readonly log: Logger,
  ) {}

  async request(req: PoolRequest): Promise<{ poolId: string; pool: string }> {
    if (req.addressSpace !== LOCAL_SPACE && req.addressSpace !== GLOBAL_SPACE) {
      throw invalid(`unknown address space ${JSON.stringify(req.addressSpace)} (loom serves ${LOCAL_SPACE} and ${GLOBAL_SPACE})`);
    }
    if (!req.pool && req.subPool) throw invalid('an ip-range (SubPool) needs an explicit subnet (Pool)');
    const family: Family = req.v6 ? 6 : 4;
    return this.book.locks.run(POOLS_LOCK, async () => {
      const pool = req.pool ? this.given(req, family) : await this.pickAutomatic(req.addressSpace, family);
      let subPool: Prefix | undefined;
      if (req.subPool) {
        subPool = parsePrefix(req.subPool, 'ip-range');
        if (!containsPrefix(pool, subPool)) throw invalid(`ip-range ${req.subPool} is not inside subnet ${formatPrefix(pool)}`);
      }
      const id = poolIdOf(req.addressSpace, pool, subPool);
      const existing = this.book.all().filter((p) => p.record.addressSpace === req.addressSpace && overlaps(p.alloc.pool, pool));
      const same = existing.find((p) => p.record.id === id);
      if (same && req.addressSpace === GLOBAL_SPACE && existing.length === 1) {
        // Swarm managers re-allocate networks after a leader change: a confirmation.
        await this.book.savePool(same, { ...same.record, refs: same.record.refs + 1 });
        return { poolId: id, pool: same.record.pool };
      }
      this.refuseOverlap(existing[0], pool);
      // Every local-space subnet is claimed beyond this host (in a cluster; an overlay's is joined).
      const local = req.addressSpace === LOCAL_SPACE;
      const { shared, blockLen } = local ? await this.claims.claim(formatPrefix(pool)) : {};
      const record: PoolRecord = {
        id,
        addressSpace: req.addressSpace,
        pool: formatPrefix(pool),
        ...(subPool ? { subPool: formatPrefix(subPool) } : {}),
        v6: req.v6,
        options: req.options,
        refs: 1,
        auto: !req.pool,
        cursor: '-1',
        ...(shared ? { shared, blocks: [] } : {}),
        ...(blockLen !== undefined ? { blockLen } : {}),
        createdAt: new Date().toISOString(),
      };
      const alloc = new AddressPool(pool, subPool);
      if (shared) alloc.blocks = [];
      try {
        await this.book.addPool(record, alloc);
      } catch (err) {
        if (local && !shared) await this.claims.unclaim(record.pool);
        throw err;
      }
      return { poolId: id, pool: record.pool };
    });
  }

  /** The requested subnet (--subnet), checked. */
  private given(req: PoolRequest, family: Family): Prefix {
    const pool = parsePrefix(req.pool, 'subnet');
    const unusable = unusableSubnet(pool);
    if (unusable) throw invalid(`subnet ${req.pool} cannot carry containers: ${unusable}`);
    if (pool.family !== family) {
      throw invalid(`subnet ${req.pool} is ${pool.family === 6 ? 'IPv6' : 'IPv4'} but an ${req.v6 ? 'IPv6' : 'IPv4'} pool was requested`);
    }
    return pool;
  }

  /** A pool of the same space overlapping `pool` is a conflict, named as precisely as possible. */
  private refuseOverlap(clash: LivePool | undefined, pool: Prefix): void {
    if (!clash) return;
    if (clash.record.shared && samePrefix(clash.alloc.pool, pool)) {
      throw conflict(`subnet ${formatPrefix(pool)} is already used on this host by overlay ${clash.record.shared} (loom creates an overlay's network on every host by itself)`);
    }
    throw conflict(
      samePrefix(clash.alloc.pool, pool)
        ? `subnet ${formatPrefix(pool)} is already in use by another network`
        : `subnet ${formatPrefix(pool)} overlaps subnet ${clash.record.pool} of another network`,
    );
  }

  private async pickAutomatic(space: string, family: Family): Promise<Prefix> {
    const inUse = this.book.all().filter((p) => p.record.addressSpace === space).map((p) => p.alloc.pool);
    if (space === LOCAL_SPACE) inUse.push(...(await this.claims.claimed()));
    let routed: Prefix[] = [];
    try {
      routed = (await this.sources.hostRoutes()).filter((r) => r.len > 0);
    } catch (err) {
      this.log.warn({ err: String(err) }, 'could not read host routes; automatic subnets only avoid loom pools');
    }
    const { defaultPools } = this.sources;
    const chosen = pickSubnet(defaultPools, family, [...inUse, ...routed]);
    if (!chosen) {
      const configured = defaultPools.filter((d) => d.base.family === family).map((d) => `${formatPrefix(d.base)}:${d.size}`);
      throw conflict(
        `no free ${family === 6 ? 'IPv6' : 'IPv4'} subnet left in the default pools (${configured.join(', ') || 'none configured'}); pass --subnet or configure more default pools`,
      );
    }
    return chosen;
  }

  /** ReleasePool: one reference less; at the last one the pool goes, with whatever it still held. */
  async release(poolId: string): Promise<void> {
    await this.book.locks.run(POOLS_LOCK, () =>
      this.book.locks.run(poolLock(poolId), async () => {
        const live = this.book.live(poolId);
        if (!live) {
          this.log.info({ poolId }, 'ReleasePool of an unknown pool: nothing to do');
          return;
        }
        if (live.record.refs > 1) {
          await this.book.savePool(live, { ...live.record, refs: live.record.refs - 1 });
          return;
        }
        const leftovers = await this.book.dropPool(live);
        if (live.record.addressSpace === LOCAL_SPACE) await this.claims.poolReleased(live, leftovers);
        if (leftovers.length > 0) {
          this.log.info({ poolId, addresses: leftovers.map((a) => a.address) }, 'released pool still held addresses; released them too');
        }
      }),
    );
  }

  /** Reconciler: releases a pool no network uses (whatever its reference count), unless newer than `cutoff` (ms). */
  async releaseOrphan(poolId: string, cutoff: number): Promise<boolean> {
    const live = this.book.live(poolId);
    if (!live || Date.parse(live.record.createdAt) > cutoff) return false;
    live.record = { ...live.record, refs: 1 };
    await this.release(poolId);
    return true;
  }

  /** After an overlay's CreateNetwork on the host that created it: its pool becomes shared. */
  async markShared(subnet: string, overlayKey: string): Promise<void> {
    const live = this.book.all().find((p) => p.record.addressSpace === LOCAL_SPACE && p.record.pool === subnet);
    if (!live || live.record.shared) return;
    await this.book.locks.run(poolLock(live.record.id), async () => {
      await this.book.savePool(live, { ...live.record, shared: overlayKey, blocks: [] });
      live.alloc.blocks = [];
    });
  }
}
