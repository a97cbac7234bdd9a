/**
 * The block owner's side of shared (overlay) pools: other hosts ask this host, through
 * the cluster store's watches, for addresses inside the blocks it claimed. It grants a
 * static address it does not use, lends a free one to a host whose blocks are full, and
 * takes an address back when the other host's reservation goes.
 *
 * Invariant (docs/overlay.md): the owner of a block alone decides who uses an address in
 * it, and it marks an address used (held as foreign, stored) before it grants or lends it:
 * a crash in between leaks the address until the resync, never hands it out twice. Every
 * answer runs under the pool's lock, which no path holds while waiting for another host.
 */
import type { KeyValue } from '../lib/cluster/store';
import type { Logger } from '../lib/logger';
import { formatIp, parseIpMaybeCidr } from '../lib/prefix';
import { parseLoanKey } from './address-loans';
import { AddressBook, LivePool, poolLock } from './address-book';
import type { ClusterPools } from './cluster-pools';
import type { SharedPools } from './shared-pools';
import { endQuarantines, holdForeign, quarantine } from './shared-holds';

export class BlockOwner {
  constructor(
    private readonly book: AddressBook,
    private readonly pools: ClusterPools,
    private readonly shared: Pick<SharedPools, 'claimingAhead'>,
    private readonly log: Logger,
  ) {}

  private bySubnet(subnet: string): LivePool | undefined {
    return this.book.shared().find((p) => p.record.pool === subnet);
  }

  /**
   * Another host asks for static `ip` of a shared subnet: grant it when this host does not
   * use it (it is then held as foreign here), deny it otherwise. Called from the cluster watch.
   */
  async answerReservation(subnet: string, ip: string, requester: string): Promise<void> {
    const live = this.bySubnet(subnet);
    if (!live) return;
    const v = parseIpMaybeCidr(ip).value;
    // Outside this host's blocks, but a block this host is claiming ahead may be the one asked
    // about: it is claimed in etcd (the asker saw that) and recorded here in a moment.
    if (!live.alloc.inBlocks(v)) await this.shared.claimingAhead(live.record.id);
    await this.book.locks.run(poolLock(live.record.id), async () => {
      if (!live.alloc.inBlocks(v)) return;
      const free = !live.alloc.isUsed(v);
      if (free) await holdForeign(this.book, live, ip, requester, false);
      const answered = await this.pools.answer(live.alloc.pool, ip, free).catch((err) => {
        this.log.warn({ subnet, ip, err: String(err) }, 'could not answer an address reservation; the resync settles it');
        return true; // outcome unknown: keep the hold
      });
      if (free && !answered) await this.book.free(live, ip); // withdrawn before the answer: nothing granted
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
      await (live ? this.book.locks.run(poolLock(live.record.id), answer) : answer());
    } catch (err) {
      this.log.warn({ request: requestKey, err: String(err) }, 'could not answer a borrow request; the resync settles it');
    }
  }

  /** Under the lock: lends one free address of this host's blocks; false when none is free. */
  private async lendFrom(live: LivePool, subnet: string, req: KeyValue<{ host: string; at: string }>): Promise<boolean> {
    await endQuarantines(this.book, live);
    for (let attempt = 0; attempt < 4 && live.alloc.freeInSegments() > 0n; attempt++) {
      const cursor = live.alloc.cursor;
      const ip = formatIp(live.alloc.pool.family, live.alloc.allocateNext());
      // Held (and stored) before it is granted: a crash in between leaks it, never doubles it.
      await holdForeign(this.book, live, ip, req.value.host, true, cursor);
      const out = await this.pools.loans.grant(subnet, req, ip); // throws: outcome unknown, keep the hold
      if (out.kind === 'granted') {
        this.log.info({ pool: subnet, ip, borrower: req.value.host }, 'lent an address to another host');
        return true;
      }
      if (out.kind === 'taken') {
        await holdForeign(this.book, live, ip, out.host, false); // someone holds it already: keep it out of use here
        continue;
      }
      await this.book.free(live, ip);
      if (out.kind === 'gone') return true; // withdrawn: nothing to refuse
    }
    return false;
  }

  /** A reservation was removed: its address may be used here again (a loan after its quarantine). */
  async dropForeign(subnet: string, ip: string): Promise<void> {
    const live = this.bySubnet(subnet);
    if (!live) return;
    // A block being claimed ahead holds its foreign addresses once recorded: this waits for that.
    await this.shared.claimingAhead(live.record.id);
    await this.book.locks.run(poolLock(live.record.id), async () => {
      const rec = this.book.held(live.record.id).get(ip);
      if (rec?.kind !== 'foreign') return;
      if (rec.lent) await quarantine(this.book, live, rec);
      else await this.book.free(live, ip);
    });
  }
}
