/**
 * The IPAM resync of shared pools (run by the reconciler on every pass, the first one
 * right after start-up): settles what crashes, SIGKILLs and lost etcd answers leave
 * between this host's books and the cluster's reservations.
 *
 *  - a block etcd says this host claimed but its pool record does not list (killed
 *    between the claim and the local write) is adopted;
 *  - a foreign hold (an address of this host's block kept for another host) whose
 *    reservation is gone is given back (a loan into quarantine);
 *  - a reservation of another host inside this host's block that this host does not
 *    hold yet (a missed watch event) is held;
 *  - a reservation of this host that it does not use (a borrow granted after its
 *    requester died, a release whose etcd delete failed) is deleted, and so are its
 *    stale borrow requests;
 *  - borrow requests addressed to this host that were missed are answered.
 *
 * Giving back is the only direction that could ever double an address, so it needs the
 * same finding on two resyncs at least `orphanGraceMs` apart (at the same etcd revision),
 * runs under the pool's lock with the reservations read inside that lock (no grant of this
 * host is then in flight), and skips what this host is reserving right now (`inflight`).
 */
import type { KeyValue } from '../lib/cluster/store';
import type { Logger } from '../lib/logger';
import { contains, formatPrefix, parseIpMaybeCidr } from '../lib/prefix';
import { parseLoanKey } from './address-loans';
import { AddressBook, LivePool, POOLS_LOCK, poolLock } from './address-book';
import type { BlockOwner } from './block-owner';
import type { Reservation } from './cluster-records';
import { blockLenOf } from './core/block-size';
import { holdForeign, quarantine } from './shared-holds';
import type { SharedConfig, SharedPools } from './shared-pools';

export const ORPHAN_GRACE_MS = 20_000;

type Orphan = (key: string, tag: string) => boolean;

export class SharedResync {
  /** Orphans seen on the previous pass: key -> [revision or tag, first seen (ms)]. */
  private suspects = new Map<string, [string, number]>();

  constructor(
    private readonly book: AddressBook,
    private readonly cfg: SharedConfig,
    /** Asks in flight (never orphans). */
    private readonly shared: SharedPools,
    private readonly owner: BlockOwner,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** One pass; returns what it changed, by kind (reconciler counters). */
  async run(): Promise<Record<string, number>> {
    const seen = new Map<string, [string, number]>();
    const grace = this.cfg.orphanGraceMs ?? ORPHAN_GRACE_MS;
    const orphan: Orphan = (key, tag) => {
      const prev = this.suspects.get(key);
      const first = prev && prev[0] === tag ? prev[1] : this.now();
      seen.set(key, [tag, first]);
      return prev !== undefined && prev[0] === tag && this.now() - first >= grace;
    };
    const counts: Record<string, number> = {};
    const count = (k: string): void => void (counts[k] = (counts[k] ?? 0) + 1);
    try {
      for (const live of this.book.shared()) await this.book.locks.run(poolLock(live.record.id), () => this.pool(live, orphan, count));
      await this.book.locks.run(POOLS_LOCK, () => this.poolless(orphan, count));
      await this.requests(orphan, count);
    } catch (err) {
      this.log.debug({ err: String(err) }, 'IPAM resync incomplete (cluster store unreachable?); next pass');
    }
    this.suspects = seen;
    return counts;
  }

  /** One shared pool, under its lock. */
  private async pool(live: LivePool, orphan: Orphan, count: (k: string) => void): Promise<void> {
    const pools = this.cfg.pools;
    const me = pools.hostId;
    const resv = await pools.reservations(live.alloc.pool);
    await this.adoptBlocks(live, resv, count);
    const held = this.book.held(live.record.id);
    for (const rec of [...held.values()]) {
      if (rec.kind !== 'foreign') continue;
      const r = resv.get(rec.address);
      if (r && r.value.host !== me) continue;
      if (orphan(`foreign:${live.record.id}|${rec.address}`, 'no-reservation')) {
        if (rec.lent) await quarantine(this.book, live, rec);
        else await this.book.free(live, rec.address);
        this.log.warn({ pool: live.record.pool, address: rec.address, holder: rec.peer }, 'IPAM resync: gave back an address no other host reserves');
        count('ipam-foreign-released');
      }
    }
    for (const [ip, r] of resv) {
      const rec = held.get(ip);
      if (r.value.host === me) {
        if (rec?.kind === 'explicit' || rec?.kind === 'borrowed') continue;
        if (this.shared.isInflight(`${live.record.pool}|${ip}`) || (r.value.request && this.shared.isInflight(`#${r.value.request}`))) continue;
        if (orphan(`resv:${r.key}`, r.revision) && (await pools.dropReservation(r))) {
          this.log.warn({ pool: live.record.pool, address: ip }, 'IPAM resync: released a reservation of this host that nothing uses');
          count('ipam-reservation-released');
        }
        continue;
      }
      const v = parseIpMaybeCidr(ip).value;
      if (r.value.state !== 'granted' || !live.alloc.inBlocks(v) || rec?.kind === 'foreign') continue;
      if (!live.alloc.isUsed(v)) {
        await holdForeign(this.book, live, ip, r.value.host, r.value.borrowed === true);
        count('ipam-foreign-held');
      } else {
        this.log.error({ pool: live.record.pool, address: ip, holder: r.value.host, here: rec?.kind }, 'IPAM resync: another host holds an address this host uses');
      }
    }
  }

  /** Blocks claimed in etcd by this host that its pool record lost (a crash right after the claim). */
  private async adoptBlocks(live: LivePool, resv: Map<string, KeyValue<Reservation>>, count: (k: string) => void): Promise<void> {
    const { alloc } = live;
    const known = new Set((alloc.blocks ?? []).map((b) => b.base));
    const len = blockLenOf(alloc.pool, live.record.blockLen);
    const lost = (await this.cfg.pools.ownBlocks(alloc.pool)).map((base) => ({ family: alloc.pool.family, base: parseIpMaybeCidr(base).value, len })).filter((b) => !known.has(b.base));
    // A block being claimed ahead (checked after the read: the claim may have begun meanwhile) is recorded by its claimer.
    if (!lost.length || this.shared.claimingAhead(live.record.id)) return;
    // What other hosts hold in them is marked first (as claimBlock does), the blocks recorded after.
    for (const [ip, r] of resv) {
      const v = parseIpMaybeCidr(ip).value;
      if (r.value.host !== this.cfg.pools.hostId && r.value.state === 'granted' && lost.some((b) => contains(b, { family: b.family, value: v })) && !alloc.isUsed(v)) {
        await holdForeign(this.book, live, ip, r.value.host, r.value.borrowed === true);
      }
    }
    const blocks = [...(alloc.blocks ?? []), ...lost];
    await this.book.savePool(live, { ...live.record, blocks: blocks.map(formatPrefix) });
    alloc.blocks = blocks;
    this.log.warn({ pool: live.record.pool, blocks: lost.map(formatPrefix) }, 'IPAM resync: adopted blocks this host had claimed but not recorded');
    for (const _ of lost) count('ipam-block-adopted');
  }

  /**
   * This host's reservations and blocks in subnets it has no shared pool for (its network is
   * gone, and etcd did not answer when it went). Under the 'pools' lock: no pool appears meanwhile.
   */
  private async poolless(orphan: Orphan, count: (k: string) => void): Promise<void> {
    const subnets = new Set(this.book.shared().map((p) => p.record.pool));
    for (const o of await this.cfg.pools.ownReservations()) {
      if (subnets.has(o.subnet) || this.shared.isInflight(`${o.subnet}|${o.ip}`)) continue;
      if (orphan(`resv:${o.kv.key}`, o.kv.revision) && (await this.cfg.pools.dropReservation(o.kv))) count('ipam-reservation-released');
    }
    for (const b of await this.cfg.pools.ownBlocksEverywhere()) {
      if (subnets.has(b.subnet)) continue;
      if (orphan(`block:${b.kv.key}`, b.kv.revision) && (await this.cfg.pools.dropBlock(b.kv))) {
        this.log.warn({ pool: b.subnet, block: b.kv.key }, 'IPAM resync: released a block of a pool this host no longer has');
        count('ipam-block-released');
      }
    }
  }

  /** Stale borrow requests of this host are withdrawn; requests to it that were missed are answered. */
  private async requests(orphan: Orphan, count: (k: string) => void): Promise<void> {
    const loans = this.cfg.pools.loans;
    const { toMe, mine } = await loans.requests();
    for (const req of mine) {
      const id = parseLoanKey(req.key)?.id;
      if (!id || this.shared.isInflight(`#${id}`)) continue;
      if (orphan(`loan:${req.key}`, req.revision) && (await loans.withdraw(req))) count('ipam-loan-request-withdrawn');
    }
    for (const req of toMe) await this.owner.lend(req.key);
  }
}
