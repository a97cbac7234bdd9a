/**
 * Static addresses of shared pools reserved cluster-wide (`reservations/<subnet>/<ip>`,
 * docs/overlay.md). Invariant: inside a block another host claimed, only that host decides;
 * a reservation there starts as `requested` and holds only once the owner `granted` it. In
 * an unclaimed block (or this host's own) it is granted atomically with the block unchanged.
 */
import { conflict, unavailable } from '../lib/errors';
import { ClusterStore, KeyValue, keys } from '../lib/cluster/store';
import { Prefix, formatPrefix, parseIp } from '../lib/prefix';
import { blockOf } from './core/block-size';
import { ClaimSync, ClusterDeferral, claimedBy, clusterGuard, writeKey } from './claim-sync';
import { BlockClaim, ClusterTiming, Reservation, blockKey, lastSegment, subnetOfKey } from './cluster-records';

export class ClusterReservations {
  constructor(
    private readonly store: ClusterStore,
    private readonly hostId: string,
    private readonly timing: ClusterTiming,
    private readonly sync: ClaimSync,
    private readonly deferral?: ClusterDeferral,
  ) {}

  /**
   * Reserves `ip` of `pool` cluster-wide for this host. Unclaimed block: atomically with
   * the block still unclaimed. Own block: directly. Another host's block: that host grants
   * or denies (it may have handed the address out); no answer within the timeout is an error.
   */
  async reserve(pool: Prefix, blockLen: number, ip: string): Promise<void> {
    this.deferral?.writes.cancel(writeKey.reservation(formatPrefix(pool), ip)); // a queued release of it: superseded
    await clusterGuard(`reserve ${ip}`, async () => {
      const subnet = formatPrefix(pool);
      const rkey = keys.reservation(subnet, ip);
      const bkey = keys.block(subnet, blockKey(blockOf(pool, blockLen, parseIp(ip).value)));
      const at = new Date().toISOString();
      const existing = await this.store.get<Reservation>(rkey);
      if (existing) {
        if (existing.value.host === this.hostId && existing.value.state === 'granted') return;
        throw conflict(`address ${ip} is already reserved by host ${existing.value.host}`);
      }
      const block = await this.store.get<BlockClaim>(bkey);
      if (!block || block.value.host === this.hostId) {
        const ok = await this.store.commit([{ key: bkey, revision: block?.revision ?? '0' }, { key: rkey, revision: '0' }], [{ key: rkey, value: { host: this.hostId, state: 'granted', at } }]);
        if (!ok) return this.reserve(pool, blockLen, ip); // the block or the reservation changed meanwhile: decide again
        return;
      }
      if (!(await this.store.create(rkey, { host: this.hostId, state: 'requested', at }))) throw conflict(`address ${ip} is already reserved`);
      await this.awaitGrant(rkey, ip, subnet, block.value.host);
    });
  }

  /** Polls a `requested` reservation until the block's owner answers; withdraws it on denial or timeout. */
  private async awaitGrant(rkey: string, ip: string, subnet: string, owner: string): Promise<void> {
    const deadline = this.timing.now() + this.timing.grantTimeoutMs;
    while (this.timing.now() < deadline) {
      const cur: KeyValue<Reservation> | undefined = await this.store.get<Reservation>(rkey);
      if (cur?.value.state === 'granted') return;
      if (!cur || cur.value.state === 'denied') {
        if (cur) await this.store.cas(rkey, cur.revision, undefined);
        throw conflict(`address ${ip} is already in use on host ${owner}`);
      }
      await this.timing.sleep(50);
    }
    const cur = await this.store.get<Reservation>(rkey);
    if (cur?.value.state === 'granted') return;
    if (cur) await this.store.cas(rkey, cur.revision, undefined);
    throw unavailable(`host ${owner}, which allocates ${ip}'s part of ${subnet}, did not confirm the reservation; try again or pick another address`);
  }

  /** Gives back this host's reservation of `ip` (queued while etcd is unreachable; only one made before this call goes). */
  async unreserve(pool: Prefix, ip: string): Promise<void> {
    const before = Date.now();
    const subnet = formatPrefix(pool);
    await this.sync.soon(writeKey.reservation(subnet, ip), `release reservation ${ip}`, () =>
      clusterGuard(`release reservation ${ip}`, async () => {
        const rkey = keys.reservation(subnet, ip);
        const cur = await this.store.get<Reservation>(rkey);
        if (cur?.value.host === this.hostId && claimedBy(cur.value.at, before)) await this.store.cas(rkey, cur.revision, undefined);
      }),
    );
  }

  /**
   * Answers another host's request for an address inside one of this host's blocks.
   * False when the request is gone (withdrawn, timed out): nothing was granted.
   */
  async answer(pool: Prefix, ip: string, grant: boolean): Promise<boolean> {
    const rkey = keys.reservation(formatPrefix(pool), ip);
    const cur = await this.store.get<Reservation>(rkey);
    if (!cur || cur.value.state !== 'requested') return false;
    return this.store.cas(rkey, cur.revision, { ...cur.value, state: grant ? 'granted' : 'denied' });
  }

  /** Every reservation of `pool` (resync), keyed by address. */
  async ofPool(pool: Prefix): Promise<Map<string, KeyValue<Reservation>>> {
    return clusterGuard(`list reservations of ${formatPrefix(pool)}`, async () => {
      const all = await this.store.list<Reservation>(keys.reservationsOf(formatPrefix(pool)));
      return new Map(all.map((kv) => [lastSegment(kv.key), kv]));
    });
  }

  /** This host's reservations in every subnet (resync), as subnet, address and entry. */
  async own(): Promise<Array<{ subnet: string; ip: string; kv: KeyValue<Reservation> }>> {
    return clusterGuard('list reservations', async () =>
      (await this.store.list<Reservation>(keys.reservations))
        .filter((kv) => kv.value.host === this.hostId)
        .map((kv) => ({ subnet: subnetOfKey(keys.reservations, kv.key), ip: lastSegment(kv.key), kv })),
    );
  }

  /** Deletes a reservation still at its revision (resync of an orphan); false when it changed. */
  async drop(kv: KeyValue<Reservation>): Promise<boolean> {
    return clusterGuard('release a reservation', () => this.store.cas(kv.key, kv.revision, undefined));
  }
}
