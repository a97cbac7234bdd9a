/**
 * The allocator of loomd in a cluster. Every local-space subnet is claimed cluster-wide
 * (cluster-pools.ts), so subnets never overlap anywhere; a pool whose subnet is an
 * overlay's is shared by the overlay's hosts and its addresses go through shared-pools.ts
 * (asking), block-owner.ts (answering) and shared-resync.ts (repair). Everything else (pools
 * that are this host's alone, and an overlay's own gateway and aux addresses, which every
 * host holds) takes the one-host paths of local-allocator.ts.
 */
import type { Logger } from '../lib/logger';
import type { Prefix } from '../lib/prefix';
import { canonicalIp, parseIpMaybeCidr } from '../lib/prefix';
import { isGatewayRequest } from './address-spaces';
import type { AddressRequest, Allocator, SubnetClaim } from './allocator';
import { AddressBook, LivePool, poolLock } from './address-book';
import { BlockOwner } from './block-owner';
import type { AllocationKind, AllocationRecord } from './ipam-store';
import { LocalAllocator } from './local-allocator';
import { quarantine } from './shared-holds';
import { SharedConfig, SharedPools } from './shared-pools';
import { SharedResync } from './shared-resync';

/** Kinds of allocation this host reserved cluster-wide: given back to the cluster when released here. */
const reservedKind = (rec: AllocationRecord): boolean => rec.kind === 'explicit' || rec.kind === 'borrowed';

export class ClusterAllocator implements Allocator {
  private readonly local: LocalAllocator;
  private readonly shared: SharedPools;
  private readonly owner: BlockOwner;
  private readonly resyncer: SharedResync;

  constructor(
    private readonly book: AddressBook,
    private readonly cfg: SharedConfig,
    private readonly log: Logger,
  ) {
    this.local = new LocalAllocator(book, log);
    this.shared = new SharedPools(book, cfg, log);
    this.owner = new BlockOwner(book, cfg.pools, this.shared, log);
    this.resyncer = new SharedResync(book, cfg, this.shared, this.owner, log);
  }

  // ---- subnets, claimed cluster-wide

  claimed(): Promise<Prefix[]> {
    return this.cfg.pools.claimed();
  }

  claim(subnet: string): Promise<SubnetClaim> {
    return this.cfg.pools.claim(subnet);
  }

  async unclaim(subnet: string): Promise<void> {
    await this.cfg.pools.release(subnet).catch(() => undefined);
  }

  /**
   * Called only once this host holds nothing of the pool any more (else another host could
   * take its blocks or addresses while they are still used here). Best effort: blocks and
   * reservations left behind by an unreachable etcd are removed by the IPAM resync.
   */
  async poolReleased(live: LivePool, leftovers: AllocationRecord[]): Promise<void> {
    const { pools } = this.cfg;
    const shared = live.record.shared;
    const done = shared ? pools.releaseBlocks(live.alloc.pool) : pools.release(live.record.pool);
    await done.catch((err) => this.log.warn({ poolId: live.record.id, err: String(err) }, 'could not release the pool in the cluster store'));
    if (!shared) return;
    for (const a of leftovers) if (reservedKind(a)) await pools.unreserve(live.alloc.pool, a.address).catch(() => undefined);
  }

  // ---- addresses

  async request(req: AddressRequest): Promise<{ address: string }> {
    // Only the overlay's own gateway and aux addresses of a shared pool are taken locally.
    if (!isGatewayRequest(req.options) && this.book.live(req.poolId)?.record.shared) {
      const done = await this.shared.request(req.poolId, req.address);
      if (done) return done;
    }
    return this.local.request(req);
  }

  async release(poolId: string, address: string): Promise<void> {
    const key = canonicalIp(address);
    await this.book.locks.run(poolLock(poolId), async () => {
      const held = this.local.held(poolId, key);
      if (!held) return;
      const { live, rec } = held;
      const overlay = live.record.shared;
      // Other hosts may still hold FDB/neighbour entries for a container's address of a shared
      // pool for a moment: it stays out of use for a while instead of being freed now.
      if (overlay && rec.kind === 'dynamic') return quarantine(this.book, live, rec);
      await this.book.free(live, key);
      // A static or borrowed address goes back to the cluster only now that this host no longer
      // holds it (a loan's owner quarantines it). A failure leaves an unused reservation of this
      // host, which the IPAM resync removes.
      if (overlay && reservedKind(rec) && !this.cfg.overlayReserved(overlay).has(key)) {
        await this.cfg.pools.unreserve(live.alloc.pool, key).catch((err) => this.log.warn({ poolId, address: key, err: String(err) }, 'could not release a cluster reservation'));
      }
    });
  }

  async restore(poolId: string, address: string, kind: AllocationKind): Promise<boolean> {
    const live = this.book.live(poolId);
    const overlay = live?.record.shared;
    const value = parseIpMaybeCidr(address).value;
    // Outside this host's blocks the owner decides: reserved cluster-wide like a static address.
    if (live && overlay && kind !== 'gateway' && !live.alloc.inBlocks(value) && !this.cfg.overlayReserved(overlay).has(address)) {
      return this.shared.restore(live, address);
    }
    return this.local.restore(poolId, address, kind);
  }

  // ---- what other hosts ask of this one

  answerReservation(subnet: string, ip: string, requester: string): Promise<void> {
    return this.owner.answerReservation(subnet, ip, requester);
  }

  dropForeign(subnet: string, ip: string): Promise<void> {
    return this.owner.dropForeign(subnet, ip);
  }

  lend(requestKey: string): Promise<void> {
    return this.owner.lend(requestKey);
  }

  resync(): Promise<Record<string, number>> {
    return this.resyncer.run();
  }
}
