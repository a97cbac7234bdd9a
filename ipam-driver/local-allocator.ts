/**
 * The allocator of loomd on one host: every pool's addresses are this host's alone, no
 * subnet is claimed beyond it, and no other host asks anything. Containers get next-fit
 * addresses (a just-released address is not handed out again first), gateways the lowest
 * free one, static addresses exactly what was asked.
 *
 * Every change to a pool's allocations runs under the pool's lock and is stored before it
 * counts (address-book.ts); the cluster allocator uses these paths for everything that is
 * not a shared pool's.
 */
import { invalid, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { Ip, Prefix, canonicalIp, contains, formatCidr, formatIp, formatPrefix, parseIpMaybeCidr } from '../lib/prefix';
import { isGatewayRequest } from './address-spaces';
import type { AddressRequest, Allocator, SubnetClaim } from './allocator';
import { AddressBook, LivePool, poolLock } from './address-book';
import type { AllocationKind, AllocationRecord } from './ipam-store';

export class LocalAllocator implements Allocator {
  constructor(
    private readonly book: AddressBook,
    private readonly log: Logger,
  ) {}

  // ---- subnets: nothing to claim beyond this host

  async claimed(): Promise<Prefix[]> {
    return [];
  }

  async claim(): Promise<SubnetClaim> {
    return {};
  }

  async unclaim(): Promise<void> {}

  async poolReleased(): Promise<void> {}

  // ---- addresses

  async request(req: AddressRequest): Promise<{ address: string }> {
    const gateway = isGatewayRequest(req.options);
    // The address is taken and its write queued under the pool's lock (so writes reach the
    // store in allocation order); the durable write is awaited after the lock is released,
    // so concurrent requests on one pool share a sync (group commit). The answer still waits
    // for the write: nothing is handed out before it is stored.
    const taken = await this.book.locks.run(poolLock(req.poolId), async () => {
      const live = this.book.live(req.poolId);
      if (!live) throw notFound(`pool ${JSON.stringify(req.poolId)} not found`);
      const { alloc } = live;
      const cursorBefore = alloc.cursor;
      const { value, kind } = req.address ? this.takeStatic(live, parseIpMaybeCidr(req.address, 'address'), gateway) : this.takeAny(live, gateway);
      const record: AllocationRecord = { poolId: req.poolId, address: formatIp(alloc.pool.family, value), kind, createdAt: new Date().toISOString() };
      const poolRecord = alloc.cursor === cursorBefore ? undefined : { ...live.record, cursor: alloc.cursor.toString() };
      const written = this.book.put(live, record, poolRecord);
      return { live, value, written, cursorBefore, cursorAfter: alloc.cursor };
    });
    try {
      await taken.written;
    } catch (err) {
      // Not stored: the address is free again, and the next-fit cursor back where it was unless
      // a later request moved it since (then it stays: the cursor is only where the next search starts).
      await this.book.locks.run(poolLock(req.poolId), async () => {
        const { alloc } = taken.live;
        alloc.release(taken.value);
        if (alloc.cursor === taken.cursorAfter) alloc.cursor = taken.cursorBefore;
      });
      throw err;
    }
    const { pool } = taken.live.alloc;
    return { address: formatCidr(pool.family, taken.value, pool.len) };
  }

  /** A static address (--ip, --gateway, --aux-address). Caller holds the pool's lock. */
  private takeStatic(live: LivePool, ip: Ip, gateway: boolean): { value: bigint; kind: AllocationKind } {
    const { alloc } = live;
    if (!contains(alloc.pool, ip)) throw invalid(`address ${formatIp(ip.family, ip.value)} is outside pool ${formatPrefix(alloc.pool)}`);
    alloc.reserve(ip.value);
    return { value: ip.value, kind: gateway ? 'gateway' : 'explicit' };
  }

  /** Any free address. Caller holds the pool's lock. */
  private takeAny(live: LivePool, gateway: boolean): { value: bigint; kind: AllocationKind } {
    // Lowest-first for gateways: deterministic, so every host of an overlay puts the same gateway on its bridge.
    if (gateway) return { value: live.alloc.allocateLowest(), kind: 'gateway' };
    return { value: live.alloc.allocateNext(), kind: 'dynamic' };
  }

  async release(poolId: string, address: string): Promise<void> {
    const key = canonicalIp(address);
    await this.book.locks.run(poolLock(poolId), async () => {
      const held = this.held(poolId, key);
      if (held) await this.book.free(held.live, key);
    });
  }

  /** Under the pool's lock: the allocation of `key` (canonical) ReleaseAddress names, or undefined (logged: nothing to do). */
  held(poolId: string, key: string): { live: LivePool; rec: AllocationRecord } | undefined {
    const live = this.book.live(poolId);
    if (!live) {
      this.log.info({ poolId, address: key }, 'ReleaseAddress in an unknown pool: nothing to do');
      return undefined;
    }
    const rec = this.book.held(poolId).get(key);
    if (!rec) this.log.info({ poolId, address: key }, 'ReleaseAddress of an address that is not allocated: nothing to do');
    return rec && { live, rec };
  }

  async restore(poolId: string, address: string, kind: AllocationKind): Promise<boolean> {
    return this.book.locks.run(poolLock(poolId), async () => {
      const live = this.book.live(poolId);
      const ip = parseIpMaybeCidr(address);
      if (!live || live.alloc.isUsed(ip.value)) return false;
      live.alloc.reserve(ip.value);
      await this.book.put(live, { poolId, address, kind, createdAt: new Date().toISOString() });
      return true;
    });
  }

  // ---- no other host asks anything

  async answerReservation(): Promise<void> {}

  async dropForeign(): Promise<void> {}

  async lend(): Promise<void> {}

  async resync(): Promise<Record<string, number>> {
    return {};
  }
}
