/**
 * Addresses of shared (overlay) pools in a cluster: dynamic addresses from this host's
 * blocks (claiming a block when they are full, borrowing single addresses from other
 * hosts' blocks when no block is left), static addresses reserved cluster-wide, the
 * owner's side of both (granting reservations, lending), and the resync that settles
 * what crashes and lost etcd answers leave behind. docs/overlay.md explains the protocol.
 *
 * Locks: every change to a pool's allocations runs under its lock (`pool:<id>`), but no
 * lock is held while this host waits for another host (a static address inside another
 * host's block, a borrow): two hosts waiting for each other's answers would otherwise
 * stall until their deadlines. What is being reserved without the lock is marked in
 * `inflight`, so that the resync never mistakes it for an orphan.
 *
 * The invariant kept everywhere: an address is released to the free set only when no
 * other host can hold it (no reservation of another host in etcd); on any doubt it stays
 * held (a leak the resync recovers), never handed out twice.
 */
import { randomBytes } from 'node:crypto';
import type { KeyedMutex } from '../lib/keyed-mutex';
import { conflict, invalid, notFound } from '../lib/errors';
import type { KeyValue } from '../lib/cluster/store';
import type { Logger } from '../lib/logger';
import type { ClusterPools } from './cluster-pools';
import { blockLenOf } from './core/block-size';
import { Ip, contains, formatCidr, formatIp, formatPrefix, parseIpMaybeCidr } from '../lib/prefix';
import { parseLoanKey } from './address-loans';
import type { AllocationKind, AllocationRecord, PoolRecord } from './ipam-store';
import type { LivePool } from './ipam-service';

/** How long a released address of a shared (overlay) pool stays out of use. */
export const QUARANTINE_MS = 30_000;

/** What the IPAM service lends this module: its pools, their allocations, locks and persistence. */
export interface PoolTable {
  readonly locks: KeyedMutex;
  live(poolId: string): LivePool | undefined;
  held(poolId: string): Map<string, AllocationRecord>;
  shared(): LivePool[];
  /** Persists an allocation (and the pool record when given) and notes it in memory. */
  put(live: LivePool, rec: AllocationRecord, pool?: PoolRecord): Promise<void>;
  /** Deletes an allocation record and frees its address in the allocator. */
  free(live: LivePool, address: string): Promise<void>;
  /** Persists a new pool record and makes it the live one. */
  savePool(live: LivePool, record: PoolRecord): Promise<void>;
}

export interface SharedConfig {
  pools: ClusterPools;
  /** Gateway and aux addresses of an overlay: every host holds them locally. */
  overlayReserved(overlayKey: string): Set<string>;
  /** An orphan is released only when seen on two resyncs at least this far apart (default 20 s). */
  orphanGraceMs?: number;
}

const lockOf = (live: LivePool): string => `pool:${live.record.id}`;
const textOf = (ip: Ip): string => formatIp(ip.family, ip.value);

export class SharedPools {
  /** `<subnet>|<ip>` (static address) and `#<request id>` (borrow) being reserved right now. */
  private readonly inflight = new Set<string>();

  constructor(
    private readonly t: PoolTable,
    private readonly cfg: SharedConfig,
    private readonly log: Logger,
  ) {}

  /** Whether a static address (`<subnet>|<ip>`) or a borrow (`#<id>`) is being reserved right now. */
  isInflight(mark: string): boolean {
    return this.inflight.has(mark);
  }

  private get pools(): ClusterPools {
    return this.cfg.pools;
  }

  private blockLen(live: LivePool): number {
    return blockLenOf(live.alloc.pool, live.record.blockLen);
  }

  private bySubnet(subnet: string): LivePool | undefined {
    return this.t.shared().find((p) => p.record.pool === subnet);
  }

  /**
   * RequestAddress (not the gateway) in a shared pool, called without the pool's lock;
   * undefined for an overlay's own gateway/aux address (held locally by every host).
   */
  async request(poolId: string, address: string): Promise<{ address: string } | undefined> {
    const live = this.t.live(poolId);
    if (!live) throw notFound(`pool ${JSON.stringify(poolId)} not found`);
    if (!address) return this.requestDynamic(live);
    const ip = parseIpMaybeCidr(address, 'address');
    if (!contains(live.alloc.pool, ip)) throw invalid(`address ${textOf(ip)} is outside pool ${formatPrefix(live.alloc.pool)}`);
    if (this.cfg.overlayReserved(live.record.shared as string).has(textOf(ip))) return undefined;
    return { address: await this.requestStatic(live, ip, 'explicit') };
  }

  /** A static address: reserved cluster-wide first (the block's owner may have to grant it). */
  private async requestStatic(live: LivePool, ip: Ip, kind: AllocationKind): Promise<string> {
    const text = textOf(ip);
    const mark = `${live.record.pool}|${text}`;
    await this.t.locks.run(lockOf(live), async () => {
      live.alloc.check(ip.value);
      if (live.alloc.isUsed(ip.value) || this.inflight.has(mark)) throw conflict(`address ${text} is already in use in pool ${live.record.pool}`);
      this.inflight.add(mark);
    });
    try {
      await this.pools.reserve(live.alloc.pool, this.blockLen(live), text);
      return await this.record(live, ip.value, { kind }, () => this.pools.unreserve(live.alloc.pool, text));
    } finally {
      this.inflight.delete(mark);
    }
  }

  /** Under the pool's lock: takes `value`, persists it; on failure gives the cluster side back (`undo`). */
  private async record(live: LivePool, value: bigint, extra: Pick<AllocationRecord, 'kind' | 'peer'>, undo: () => Promise<void>): Promise<string> {
    return this.t.locks.run(lockOf(live), async () => {
      try {
        if (this.t.live(live.record.id) !== live) throw notFound(`pool ${live.record.id} was released meanwhile`);
        live.alloc.reserve(value);
      } catch (err) {
        await undo().catch(() => undefined);
        throw err;
      }
      const rec: AllocationRecord = { poolId: live.record.id, address: formatIp(live.alloc.pool.family, value), createdAt: new Date().toISOString(), ...extra };
      try {
        await this.t.put(live, rec);
      } catch (err) {
        live.alloc.release(value);
        await undo().catch(() => undefined);
        throw err;
      }
      return formatCidr(live.alloc.pool.family, value, live.alloc.pool.len);
    });
  }

  /** A dynamic address: from this host's blocks (claiming one if needed), else borrowed. */
  private async requestDynamic(live: LivePool): Promise<{ address: string }> {
    const local = await this.t.locks.run(lockOf(live), async () => {
      await this.endQuarantines(live);
      const cursor = live.alloc.cursor;
      const value = await this.allocateInBlocks(live);
      if (value === undefined) return undefined;
      const rec: AllocationRecord = { poolId: live.record.id, address: formatIp(live.alloc.pool.family, value), kind: 'dynamic', createdAt: new Date().toISOString() };
      try {
        await this.t.put(live, rec, live.alloc.cursor === cursor ? undefined : { ...live.record, cursor: live.alloc.cursor.toString() });
      } catch (err) {
        live.alloc.release(value);
        live.alloc.cursor = cursor;
        throw err;
      }
      return formatCidr(live.alloc.pool.family, value, live.alloc.pool.len);
    });
    if (local) return { address: local };
    const id = `${this.pools.hostId}-${randomBytes(6).toString('hex')}`;
    this.inflight.add(`#${id}`);
    try {
      const { ip, owner } = await this.pools.loans.borrow(live.alloc.pool, id);
      const value = parseIpMaybeCidr(ip).value;
      return { address: await this.record(live, value, { kind: 'borrowed', peer: owner }, () => this.pools.unreserve(live.alloc.pool, ip)) };
    } finally {
      this.inflight.delete(`#${id}`);
    }
  }

  /**
   * Next-fit inside this host's blocks; when they are full, one etcd transaction claims
   * another block (addresses other hosts hold in it are held as foreign). Undefined when
   * no block is left to claim. Caller holds the pool's lock.
   */
  private async allocateInBlocks(live: LivePool): Promise<bigint | undefined> {
    const { alloc } = live;
    for (let attempt = 0; attempt < 4; attempt++) {
      if (alloc.freeInSegments() > 0n) return alloc.allocateNext();
      const claimed = await this.pools.claimBlock(alloc.pool, this.blockLen(live), (b) => {
        const saved = alloc.blocks;
        alloc.blocks = [b];
        const free = alloc.freeInSegments();
        alloc.blocks = saved;
        return free > 0n;
      });
      if (!claimed) return undefined;
      // What other hosts hold in the block is marked first, the block recorded after.
      for (const f of claimed.foreign) if (!alloc.isUsed(parseIpMaybeCidr(f.ip).value)) await this.holdForeign(live, f.ip, f.host, false);
      const blocks = [...(alloc.blocks ?? []), claimed.block];
      await this.t.savePool(live, { ...live.record, blocks: blocks.map(formatPrefix) });
      alloc.blocks = blocks;
    }
    return undefined;
  }

  private foreignRecord(live: LivePool, ip: string, peer: string, lent = false): AllocationRecord {
    return { poolId: live.record.id, address: ip, kind: 'foreign', createdAt: new Date().toISOString(), ...(peer ? { peer } : {}), ...(lent ? { lent } : {}) };
  }

  /** Holds an address of this host's block for another host (resync). Caller holds the lock. */
  async hold(live: LivePool, ip: string, peer: string, lent: boolean): Promise<void> {
    await this.holdForeign(live, ip, peer, lent);
  }

  /** Marks an address of this host's block as held by another host. Caller holds the lock. */
  private async holdForeign(live: LivePool, ip: string, peer: string, lent: boolean, cursor?: bigint): Promise<void> {
    const v = parseIpMaybeCidr(ip).value;
    if (!live.alloc.isUsed(v)) live.alloc.reserve(v);
    const moved = cursor !== undefined && cursor !== live.alloc.cursor;
    await this.t.put(live, this.foreignRecord(live, ip, peer, lent), moved ? { ...live.record, cursor: live.alloc.cursor.toString() } : undefined);
  }

  /** Frees the quarantined addresses whose time is up. Caller holds the lock. */
  private async endQuarantines(live: LivePool): Promise<void> {
    const now = Date.now();
    for (const a of [...this.t.held(live.record.id).values()]) {
      if (a.kind === 'quarantine' && Date.parse(a.until ?? '') <= now) await this.t.free(live, a.address);
    }
  }

  /** Puts an address given back into quarantine (other hosts may still forward to it). Caller holds the lock. */
  async quarantine(live: LivePool, rec: AllocationRecord): Promise<void> {
    const { peer: _p, lent: _l, ...rest } = rec;
    await this.t.put(live, { ...rest, kind: 'quarantine', until: new Date(Date.now() + QUARANTINE_MS).toISOString() });
  }

  /**
   * Reconciler: takes back an address a live endpoint uses that is not allocated here.
   * Outside this host's blocks it must be reserved cluster-wide (its owner decides); false
   * when another host holds it now.
   */
  async restore(live: LivePool, address: string): Promise<boolean> {
    try {
      await this.requestStatic(live, parseIpMaybeCidr(address), 'explicit');
      return true;
    } catch (err) {
      this.log.warn({ pool: live.record.pool, address, err: String(err) }, 'could not take back an address a live endpoint uses');
      return false;
    }
  }

  // ---- the owner's side ---------------------------------------------------------------------

  /**
   * Another host asks for static `ip` of a shared subnet: grant it when this host does not
   * use it (it is then held as foreign here), deny it otherwise. Called from the cluster watch.
   */
  async answerReservation(subnet: string, ip: string, requester: string): Promise<void> {
    const live = this.bySubnet(subnet);
    if (!live) return;
    await this.t.locks.run(lockOf(live), async () => {
      const v = parseIpMaybeCidr(ip).value;
      if (!live.alloc.inBlocks(v)) return;
      const free = !live.alloc.isUsed(v);
      if (free) await this.holdForeign(live, ip, requester, false);
      const answered = await this.pools.answer(live.alloc.pool, ip, free).catch((err) => {
        this.log.warn({ subnet, ip, err: String(err) }, 'could not answer an address reservation; the resync settles it');
        return true; // outcome unknown: keep the hold
      });
      if (free && !answered) await this.t.free(live, ip); // withdrawn before the answer: nothing granted
    });
  }

  /** A borrow request addressed to this host (from the cluster watch, or the resync): lend or refuse. */
  async lend(requestKey: string): Promise<void> {
    const parsed = parseLoanKey(requestKey);
    if (!parsed || parsed.owner !== this.pools.hostId) return;
    const live = this.bySubnet(parsed.subnet);
    const answer = async (): Promise<void> => {
      const req = await this.pools.loans.pending(requestKey);
      if (!req || req.value.host === this.pools.hostId) return;
      if (!live || !(await this.lendFrom(live, parsed.subnet, req))) await this.pools.loans.refuse(req);
    };
    try {
      await (live ? this.t.locks.run(lockOf(live), answer) : answer());
    } catch (err) {
      this.log.warn({ request: requestKey, err: String(err) }, 'could not answer a borrow request; the resync settles it');
    }
  }

  /** Under the lock: lends one free address of this host's blocks; false when none is free. */
  private async lendFrom(live: LivePool, subnet: string, req: KeyValue<{ host: string }>): Promise<boolean> {
    await this.endQuarantines(live);
    for (let attempt = 0; attempt < 4 && live.alloc.freeInSegments() > 0n; attempt++) {
      const cursor = live.alloc.cursor;
      const ip = formatIp(live.alloc.pool.family, live.alloc.allocateNext());
      // Held (and persisted) before it is granted: a crash in between leaks it, never doubles it.
      await this.holdForeign(live, ip, req.value.host, true, cursor);
      const out = await this.pools.loans.grant(subnet, req as KeyValue<{ host: string; at: string }>, ip); // throws: outcome unknown, keep the hold
      if (out.kind === 'granted') {
        this.log.info({ pool: subnet, ip, borrower: req.value.host }, 'lent an address to another host');
        return true;
      }
      if (out.kind === 'taken') {
        await this.holdForeign(live, ip, out.host, false); // someone holds it already: keep it out of use here
        continue;
      }
      await this.t.free(live, ip);
      if (out.kind === 'gone') return true; // withdrawn: nothing to refuse
    }
    return false;
  }

  /** A reservation was removed: its address may be used here again (a loan after its quarantine). */
  async dropForeign(subnet: string, ip: string): Promise<void> {
    const live = this.bySubnet(subnet);
    if (!live) return;
    await this.t.locks.run(lockOf(live), async () => {
      const rec = this.t.held(live.record.id).get(ip);
      if (rec?.kind !== 'foreign') return;
      if (rec.lent) await this.quarantine(live, rec);
      else await this.t.free(live, ip);
    });
  }
}
