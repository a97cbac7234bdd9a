/**
 * Cluster-wide IPAM coordination through the cluster store (etcd), used when loomd
 * runs in a cluster. Why every pool is coordinated (docs/overlay.md): Docker calls
 * RequestPool before CreateNetwork and passes the IPAM none of the -o options, so
 * the IPAM cannot tell an overlay pool from a local one when it is asked.
 *
 * - pools:        every subnet is claimed cluster-wide (pending, then local to one
 *                 host or shared by an overlay), so subnets never overlap anywhere;
 * - blocks:       a shared pool is carved into blocks; each host claims blocks and
 *                 allocates inside them locally (no etcd round trip per container);
 * - reservations: a static address is reserved cluster-wide; inside another host's
 *                 block, that host must grant it first (it may have handed it out);
 * - loans:        a host whose blocks are full, when no block is left unclaimed,
 *                 borrows single addresses from other hosts' blocks (address-loans.ts).
 *
 * Invariant: the host that claimed a block is the only one that decides who uses an
 * address inside it (it allocates there locally at any moment, without etcd). Another
 * host holds an address of that block only through a reservation the owner granted
 * (or one made atomically while the block was still unclaimed).
 *
 * While etcd is unreachable (see ClusterDeferral and docs/operations.md): a new local
 * subnet is taken on this host and its claim published when etcd returns (a conflict
 * found then is reported, not repaired); what this host gives back (claims, blocks,
 * reservations) is queued; what needs another host's agreement (joining an overlay's
 * subnet, a new block, a static address in a shared pool) fails at once naming etcd.
 */
import { conflict } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { isClusterUnavailable } from '../lib/cluster/health';
import { ClusterStore, KeyValue, keys } from '../lib/cluster/store';
import { Prefix, contains, formatPrefix, parseIp, parsePrefix, subnetAt, subnetCount } from '../lib/prefix';
import { chooseBlockLen } from './core/block-size';
import { AddressLoans } from './address-loans';
import { ClaimSync, ClusterDeferral, claimedBy, clusterGuard, writeKey } from './claim-sync';
import { ClusterReservations } from './cluster-reservations';
import { BlockClaim, ClusterTiming, DEFAULT_TIMING, PoolClaim, Reservation, blockKey, lastSegment, subnetOfKey } from './cluster-records';

export type { ClusterDeferral };

export class ClusterPools {
  /** Borrowing single addresses from other hosts' blocks. */
  readonly loans: AddressLoans;

  /** Publication of claims, queued writes, the claim audit (claim-sync.ts). */
  private readonly sync: ClaimSync;
  /** Static addresses reserved cluster-wide (cluster-reservations.ts). */
  private readonly resv: ClusterReservations;

  constructor(
    private readonly store: ClusterStore,
    readonly hostId: string,
    private readonly log: Logger,
    timing: Partial<ClusterTiming> = {},
    private readonly deferral?: ClusterDeferral,
  ) {
    const waits: ClusterTiming = { ...DEFAULT_TIMING, ...timing };
    this.loans = new AddressLoans(store, hostId, log, waits);
    this.sync = new ClaimSync(store, hostId, log, deferral);
    this.resv = new ClusterReservations(store, hostId, waits, this.sync, deferral);
  }

  /** Reconcile pass: this host's local subnets claimed as its own in etcd (claim-sync.ts). */
  auditClaims(local: Array<{ subnet: string; shared?: string }>): Promise<void> {
    return this.sync.audit(local);
  }

  /** Subnets claimed anywhere in the cluster (for choosing automatic subnets); the last known ones while etcd is unreachable. */
  async claimed(): Promise<Prefix[]> {
    const now = clusterGuard('list cluster pools', async () => (await this.store.list<PoolClaim>(keys.pools)).map((kv) => parsePrefix(kv.value.subnet)));
    if (!this.deferral) return now;
    try {
      return await this.sync.withinBudget(now, 'list cluster pools');
    } catch (err) {
      if (!isClusterUnavailable(err)) throw err;
      return this.deferral.knownClaims().map((c) => parsePrefix(c.subnet));
    }
  }

  /**
   * Claims `subnet` for this host, or joins it when it belongs to an overlay (then the
   * overlay's key is returned: the pool is shared). A subnet held by another host's
   * network, or being created there, is a conflict. While etcd is unreachable, the subnet
   * is taken here unless the last known claims say otherwise, and published later.
   */
  async claim(subnet: string): Promise<{ shared?: string; blockLen?: number }> {
    if (!this.deferral) return this.claimNow(subnet);
    this.deferral.writes.cancel(writeKey.pool(subnet)); // a queued give-back of an older claim: superseded
    try {
      return await this.sync.withinBudget(this.claimNow(subnet), `claim subnet ${subnet}`);
    } catch (err) {
      if (!isClusterUnavailable(err)) throw err;
      return { ...this.sync.claimLater(subnet, err), blockLen: chooseBlockLen(parsePrefix(subnet)) };
    }
  }

  private async claimNow(subnet: string): Promise<{ shared?: string; blockLen?: number }> {
    return clusterGuard(`claim subnet ${subnet}`, async () => {
      const blockLen = chooseBlockLen(parsePrefix(subnet));
      for (let i = 0; i < 3; i++) {
        const mine: PoolClaim = { subnet, kind: 'pending', host: this.hostId, blockLen, at: new Date().toISOString() };
        if (await this.store.create(keys.pool(subnet), mine)) {
          this.deferral?.conflicts.clear(subnet);
          return { blockLen };
        }
        const cur = await this.store.get<PoolClaim>(keys.pool(subnet));
        if (!cur) continue;
        const c = cur.value;
        if (c.kind === 'overlay' && c.overlay) return { shared: c.overlay, ...(c.blockLen !== undefined ? { blockLen: c.blockLen } : {}) };
        // This host's own claim, which no local pool holds (the IPAM checked that under its
        // lock): a give-back that has not reached etcd yet. Taken over.
        if (c.host === this.hostId) {
          if (await this.store.cas(keys.pool(subnet), cur.revision, mine)) return { blockLen };
          continue;
        }
        throw conflict(`subnet ${subnet} is already in use by a ${c.kind === 'pending' ? 'network being created' : 'network'} on host ${c.host}`);
      }
      throw conflict(`subnet ${subnet}: its cluster-wide claim kept changing; try again`);
    });
  }

  /** After CreateNetwork: the pool is this host's (bridge network) or an overlay's (shared). */
  async settle(subnet: string, kind: 'local' | 'overlay', overlay?: string): Promise<void> {
    await this.sync.soon(writeKey.pool(subnet), `record subnet ${subnet}`, () => this.sync.publish(subnet, kind, overlay));
  }

  /** Swarm AllocateNetwork: claims `subnet` for overlay `key` directly (idempotent). */
  async claimForOverlay(subnet: string, key: string): Promise<void> {
    await clusterGuard(`claim subnet ${subnet}`, async () => {
      const mine: PoolClaim = { subnet, kind: 'overlay', host: this.hostId, overlay: key, blockLen: chooseBlockLen(parsePrefix(subnet)), at: new Date().toISOString() };
      if (await this.store.create(keys.pool(subnet), mine)) return;
      const cur = await this.store.get<PoolClaim>(keys.pool(subnet));
      if (cur?.value.kind === 'overlay' && cur.value.overlay === key) return;
      throw conflict(`subnet ${subnet} is already in use ${cur?.value.kind === 'overlay' ? `by overlay ${cur.value.overlay}` : `on host ${cur?.value.host}`}`);
    });
  }

  /** Gives back a subnet this host claimed (never an overlay's: that goes with the overlay). */
  async release(subnet: string): Promise<void> {
    const before = Date.now();
    this.deferral?.conflicts.clear(subnet);
    await this.sync.soon(writeKey.pool(subnet), `release subnet ${subnet}`, () =>
      clusterGuard(`release subnet ${subnet}`, async () => {
        const cur = await this.store.get<PoolClaim>(keys.pool(subnet));
        const c = cur?.value;
        if (cur && c && c.host === this.hostId && c.kind !== 'overlay' && claimedBy(c.at, before)) await this.store.cas(keys.pool(subnet), cur.revision, undefined);
      }),
    );
  }

  /**
   * Claims the first unclaimed block (length `len`) of `pool` whose span `usable` accepts;
   * returns it with the addresses other hosts reserved inside it (to be held as foreign:
   * reserved atomically while the block was unclaimed, or lent by a former owner), or undefined.
   * `ahead`: a block claimed ahead of need, outside any plugin call (the background store's
   * deadline), and only while more than `ahead.leave` such blocks are unclaimed (the last
   * ones go to hosts that have none).
   */
  async claimBlock(
    pool: Prefix,
    len: number,
    usable: (b: Prefix) => boolean,
    ahead?: { leave: number },
  ): Promise<{ block: Prefix; foreign: Array<{ ip: string; host: string }> } | undefined> {
    const store = (ahead && this.deferral?.background) || this.store;
    const leave = ahead?.leave ?? 0;
    return clusterGuard(`claim a block of ${formatPrefix(pool)}`, async () => {
      const taken = new Set((await store.list<BlockClaim>(keys.blocksOf(formatPrefix(pool)))).map((kv) => lastSegment(kv.key)));
      const count = subnetCount(pool, len);
      function* unclaimed(): Generator<Prefix> {
        for (let i = 0n; i < count && i < 65_536n; i++) {
          const block = subnetAt(pool, len, i);
          if (!taken.has(blockKey(block)) && usable(block)) yield block;
        }
      }
      if (leave > 0) {
        let n = 0;
        for (const _ of unclaimed()) if (++n > leave) break;
        if (n <= leave) return undefined;
      }
      for (const block of unclaimed()) {
        if (await store.create(keys.block(formatPrefix(pool), blockKey(block)), { host: this.hostId, at: new Date().toISOString() })) {
          // Listed after the claim: a reservation made while the block was unclaimed is in this list.
          const foreign = (await store.list<Reservation>(keys.reservationsOf(formatPrefix(pool))))
            .map((kv) => ({ ip: lastSegment(kv.key), host: kv.value.host }))
            .filter((r) => r.host !== this.hostId && contains(block, parseIp(r.ip)));
          this.log.info({ pool: formatPrefix(pool), block: formatPrefix(block) }, 'claimed an address block');
          return { block, foreign };
        }
      }
      return undefined;
    });
  }

  /** Whether etcd answers now (not down, not just slow): work ahead of need is not started otherwise. */
  etcdAnswering(): boolean {
    return !this.deferral || this.deferral.health.budget(1) > 0;
  }

  /** The bases of the blocks of `pool` claimed by this host in etcd (resync). */
  async ownBlocks(pool: Prefix): Promise<string[]> {
    return clusterGuard(`list blocks of ${formatPrefix(pool)}`, async () =>
      (await this.store.list<BlockClaim>(keys.blocksOf(formatPrefix(pool)))).filter((kv) => kv.value.host === this.hostId).map((kv) => lastSegment(kv.key)),
    );
  }

  /** This host's blocks in every subnet (resync), as subnet and entry. */
  async ownBlocksEverywhere(): Promise<Array<{ subnet: string; kv: KeyValue<BlockClaim> }>> {
    return clusterGuard('list blocks', async () =>
      (await this.store.list<BlockClaim>(keys.blocks))
        .filter((kv) => kv.value.host === this.hostId)
        .map((kv) => ({ subnet: subnetOfKey(keys.blocks, kv.key), kv })),
    );
  }

  /** Deletes a block claim still at its revision (resync of a pool this host no longer has). */
  async dropBlock(kv: KeyValue<BlockClaim>): Promise<boolean> {
    return clusterGuard('release a block', () => this.store.cas(kv.key, kv.revision, undefined));
  }

  /**
   * Gives back every block of `pool` this host holds (its last local network on the pool
   * is gone). Queued while etcd is unreachable; then only blocks claimed before this call
   * go (a pool created again since claims new ones).
   */
  async releaseBlocks(pool: Prefix): Promise<void> {
    const before = Date.now();
    const subnet = formatPrefix(pool);
    await this.sync.soon(writeKey.blocks(subnet), `release blocks of ${subnet}`, () =>
      clusterGuard('release blocks', async () => {
        for (const kv of await this.store.list<BlockClaim>(keys.blocksOf(subnet))) {
          if (kv.value.host === this.hostId && claimedBy(kv.value.at, before)) await this.store.cas(kv.key, kv.revision, undefined);
        }
      }),
    );
  }

  // ---- reservations: ClusterPools is the IPAM's one client of the cluster store; the work is in cluster-reservations.ts

  /** Reserves `ip` of `pool` cluster-wide for this host (the block's owner may have to grant it). */
  reserve(pool: Prefix, blockLen: number, ip: string): Promise<void> {
    return this.resv.reserve(pool, blockLen, ip);
  }

  /** Gives back this host's reservation of `ip` (queued while etcd is unreachable). */
  unreserve(pool: Prefix, ip: string): Promise<void> {
    return this.resv.unreserve(pool, ip);
  }

  /** Grants or denies another host's request for `ip`; false when the request is gone. */
  answer(pool: Prefix, ip: string, grant: boolean): Promise<boolean> {
    return this.resv.answer(pool, ip, grant);
  }

  /** Every reservation of `pool` (resync), keyed by address. */
  reservations(pool: Prefix): Promise<Map<string, KeyValue<Reservation>>> {
    return this.resv.ofPool(pool);
  }

  /** This host's reservations in every subnet (resync). */
  ownReservations(): Promise<Array<{ subnet: string; ip: string; kv: KeyValue<Reservation> }>> {
    return this.resv.own();
  }

  /** Deletes a reservation still at its revision (resync of an orphan); false when it changed. */
  dropReservation(kv: KeyValue<Reservation>): Promise<boolean> {
    return this.resv.drop(kv);
  }
}
