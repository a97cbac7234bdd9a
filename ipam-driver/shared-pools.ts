/**
 * Asking for addresses of shared (overlay) pools in a cluster: dynamic addresses from this
 * host's blocks (claiming another block when they are full, borrowing single addresses
 * from other hosts' blocks when no block is left), static addresses reserved cluster-wide.
 * The owner's side is block-owner.ts, the repair of what crashes leave shared-resync.ts;
 * docs/overlay.md explains the protocol.
 *
 * Locks: every change to a pool's allocations runs under its lock (`poolLock`), but no
 * lock is held while this host waits for another host (a static address inside another
 * host's block, a borrow): two hosts waiting for each other's answers would otherwise
 * stall until their deadlines. What is being reserved without the lock is marked in
 * `inflight`, so that the resync never mistakes it for an orphan; a block claimed ahead of
 * need (in etcd without the lock, recorded under it) is marked in `ahead`.
 *
 * The invariant kept everywhere: an address is released to the free set only when no
 * other host can hold it (no reservation of another host in etcd); on any doubt it stays
 * held (a leak the resync recovers), never handed out twice.
 */
import { randomBytes } from 'node:crypto';
import { conflict, invalid, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { Ip, Prefix, contains, formatCidr, formatIp, formatPrefix, parseIpMaybeCidr } from '../lib/prefix';
import type { ClusterPools } from './cluster-pools';
import { blockLenOf } from './core/block-size';
import { AddressBook, LivePool, poolLock } from './address-book';
import type { AllocationKind, AllocationRecord } from './ipam-store';
import { endQuarantines, holdForeign } from './shared-holds';

/** The cluster side of the IPAM's configuration (IpamConfig.cluster). */
export interface SharedConfig {
  pools: ClusterPools;
  /** Gateway and aux addresses of an overlay: every host holds them locally. */
  overlayReserved(overlayKey: string): Set<string>;
  /** An orphan is released only when seen on two resyncs at least this far apart (default 20 s). */
  orphanGraceMs?: number;
}

const lockOf = (live: LivePool): string => poolLock(live.record.id);

/**
 * A block is claimed ahead of need only while, after it, at least this many blocks of the
 * pool stay unclaimed: the last blocks of a pool (all of a small one's) go to hosts that
 * have none, when they need one.
 */
export const AHEAD_LEAVES_UNCLAIMED = 4;

export class SharedPools {
  /** `<subnet>|<ip>` (static address) and `#<request id>` (borrow) being reserved right now. */
  private readonly inflight = new Set<string>();

  constructor(
    private readonly book: AddressBook,
    private readonly cfg: SharedConfig,
    private readonly log: Logger,
  ) {}

  /** Blocks being claimed ahead of need, by pool id (claimAhead): settled once recorded (or failed). */
  private readonly ahead = new Map<string, Promise<void>>();

  /**
   * A block of pool `poolId` being claimed ahead of need, if any: the resync leaves it to its
   * claimer, and an answer to another host about an address waits until it is recorded.
   */
  claimingAhead(poolId: string): Promise<void> | undefined {
    return this.ahead.get(poolId);
  }

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

  /**
   * RequestAddress (not the gateway) in a shared pool, called without the pool's lock;
   * undefined for an overlay's own gateway/aux address (held locally by every host).
   */
  async request(poolId: string, address: string): Promise<{ address: string } | undefined> {
    const live = this.book.live(poolId);
    if (!live) throw notFound(`pool ${JSON.stringify(poolId)} not found`);
    if (!address) return this.requestDynamic(live);
    const ip = parseIpMaybeCidr(address, 'address');
    const text = formatIp(ip.family, ip.value);
    if (!contains(live.alloc.pool, ip)) throw invalid(`address ${text} is outside pool ${formatPrefix(live.alloc.pool)}`);
    if (this.cfg.overlayReserved(live.record.shared as string).has(text)) return undefined;
    return { address: await this.requestStatic(live, ip, 'explicit') };
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

  /** A static address: reserved cluster-wide first (the block's owner may have to grant it). */
  private async requestStatic(live: LivePool, ip: Ip, kind: AllocationKind): Promise<string> {
    const text = formatIp(ip.family, ip.value);
    const mark = `${live.record.pool}|${text}`;
    await this.book.locks.run(lockOf(live), async () => {
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

  /** Under the pool's lock: takes `value`, stores it; on failure gives the cluster side back (`undo`). */
  private async record(live: LivePool, value: bigint, extra: Pick<AllocationRecord, 'kind' | 'peer'>, undo: () => Promise<void>): Promise<string> {
    return this.book.locks.run(lockOf(live), async () => {
      try {
        if (this.book.live(live.record.id) !== live) throw notFound(`pool ${live.record.id} was released meanwhile`);
        live.alloc.reserve(value);
      } catch (err) {
        await undo().catch(() => undefined);
        throw err;
      }
      const rec: AllocationRecord = { poolId: live.record.id, address: formatIp(live.alloc.pool.family, value), createdAt: new Date().toISOString(), ...extra };
      try {
        await this.book.put(live, rec);
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
    const local = await this.book.locks.run(lockOf(live), async () => {
      await endQuarantines(this.book, live);
      const cursor = live.alloc.cursor;
      const value = await this.allocateInBlocks(live);
      if (value === undefined) return undefined;
      const rec: AllocationRecord = { poolId: live.record.id, address: formatIp(live.alloc.pool.family, value), kind: 'dynamic', createdAt: new Date().toISOString() };
      try {
        await this.book.put(live, rec, live.alloc.cursor === cursor ? undefined : { ...live.record, cursor: live.alloc.cursor.toString() });
      } catch (err) {
        live.alloc.release(value);
        live.alloc.cursor = cursor;
        throw err;
      }
      return formatCidr(live.alloc.pool.family, value, live.alloc.pool.len);
    });
    if (local) {
      this.claimAhead(live);
      return { address: local };
    }
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
      const claimed = await this.pools.claimBlock(alloc.pool, this.blockLen(live), (b) => alloc.freeIn(b) > 0n);
      if (!claimed) return undefined;
      await this.addBlock(live, claimed);
    }
    return undefined;
  }

  /** Records a block claimed in etcd as this host's. Caller holds the pool's lock. */
  private async addBlock(live: LivePool, claimed: { block: Prefix; foreign: Array<{ ip: string; host: string }> }): Promise<void> {
    const { alloc } = live;
    // What other hosts hold in the block is marked first, the block recorded after.
    for (const f of claimed.foreign) if (!alloc.isUsed(parseIpMaybeCidr(f.ip).value)) await holdForeign(this.book, live, f.ip, f.host, false);
    const blocks = [...(alloc.blocks ?? []), claimed.block];
    await this.book.savePool(live, { ...live.record, blocks: blocks.map(formatPrefix) });
    alloc.blocks = blocks;
  }

  /**
   * An allocation took this host's last free address of a shared pool: its next block is
   * claimed now, in the background, so that the next container here neither waits for etcd
   * nor fails while etcd is unreachable. Not while etcd is down or slow, one claim per pool
   * at a time, and only while AHEAD_LEAVES_UNCLAIMED blocks stay unclaimed after it.
   * Nothing waits for it (a plugin call answers within its own deadline): an allocation that
   * needs a block meanwhile claims one as before; a failure is logged.
   */
  private claimAhead(live: LivePool): void {
    const id = live.record.id;
    if (live.alloc.freeInSegments() > 0n || this.ahead.has(id) || !this.pools.etcdAnswering()) return;
    const done = this.claimSpare(live)
      .catch((err) => this.log.info({ pool: live.record.pool, err: String(err) }, 'could not claim an address block ahead of need; the next allocation will'))
      .finally(() => this.ahead.delete(id));
    this.ahead.set(id, done);
  }

  private async claimSpare(live: LivePool): Promise<void> {
    const { alloc } = live;
    // The etcd claim is made without the pool's lock (releases and allocations that need no
    // block go on, even if etcd stalls now); meanwhile the IPAM resync does not adopt the block
    // and an answer to another host about an address waits for it (claimingAhead).
    const claimed = await this.pools.claimBlock(alloc.pool, this.blockLen(live), (b) => alloc.freeIn(b) > 0n, { leave: AHEAD_LEAVES_UNCLAIMED });
    if (!claimed) return;
    await this.book.locks.run(lockOf(live), async () => {
      // A pool released meanwhile: the block is this host's in etcd but no pool's here, which
      // the IPAM resync gives back (as after a crash between a claim and its record).
      if (this.book.live(live.record.id) === live) await this.addBlock(live, claimed);
    });
  }
}

