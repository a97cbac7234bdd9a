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
 *                 block, that host must grant it first (it may have handed it out).
 *
 * While etcd is unreachable (see ClusterDeferral and docs/operations.md): a new local
 * subnet is taken on this host and its claim published when etcd returns (a conflict
 * found then is reported, not repaired); what this host gives back (claims, blocks,
 * reservations) is queued; what needs another host's agreement (joining an overlay's
 * subnet, a new block, a static address in a shared pool) fails at once naming etcd.
 */
import { conflict, unavailable } from '../driver/errors';
import type { Logger } from '../driver/observability/logger';
import { isClusterUnavailable } from '../driver/cluster/health';
import { ClusterStore, KeyValue, keys } from '../driver/cluster/store';
import { ClaimSync, ClusterDeferral, claimedBy, clusterGuard, writeKey } from './claim-sync';

export type { ClusterDeferral };
import { Prefix, bitsOf, contains, formatIp, formatPrefix, parseIp, parsePrefix, subnetAt, subnetCount } from './core/prefix';

export interface PoolClaim {
  subnet: string;
  kind: 'pending' | 'local' | 'overlay';
  host: string;
  overlay?: string;
  at: string;
}

export interface BlockClaim {
  host: string;
  at: string;
}

export interface Reservation {
  host: string;
  state: 'granted' | 'requested' | 'denied';
  at: string;
}

/** Block length for a shared pool: /26 for IPv4, /116 for IPv6, never larger than the pool. */
export function blockLenFor(pool: Prefix): number {
  return Math.max(pool.len, pool.family === 4 ? 26 : 116);
}

export function blockOf(pool: Prefix, ip: bigint): Prefix {
  const len = blockLenFor(pool);
  const size = 1n << BigInt(bitsOf(pool.family) - len);
  return { family: pool.family, base: pool.base + ((ip - pool.base) / size) * size, len };
}

const blockKey = (b: Prefix): string => formatIp(b.family, b.base);

export class ClusterPools {
  constructor(
    private readonly store: ClusterStore,
    readonly hostId: string,
    private readonly log: Logger,
    private readonly grantTimeoutMs = 5_000,
    private readonly deferral?: ClusterDeferral,
  ) {
    this.sync = new ClaimSync(store, hostId, log, deferral);
  }

  /** Publication of claims, queued writes, the claim audit (claim-sync.ts). */
  private readonly sync: ClaimSync;

  private guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return clusterGuard(what, fn);
  }

  private soon(key: string, label: string, write: () => Promise<void>): Promise<void> {
    return this.sync.soon(key, label, write);
  }

  /** Reconcile pass: this host's local subnets claimed as its own in etcd (claim-sync.ts). */
  auditClaims(local: Array<{ subnet: string; shared?: string }>): Promise<void> {
    return this.sync.audit(local);
  }


  /** Subnets claimed anywhere in the cluster (for choosing automatic subnets); the last known ones while etcd is unreachable. */
  async claimed(): Promise<Prefix[]> {
    const now = this.guard('list cluster pools', async () => (await this.store.list<PoolClaim>(keys.pools)).map((kv) => parsePrefix(kv.value.subnet)));
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
  async claim(subnet: string): Promise<{ shared?: string }> {
    if (!this.deferral) return this.claimNow(subnet);
    this.deferral.writes.cancel(writeKey.pool(subnet)); // a queued give-back of an older claim: superseded
    try {
      return await this.sync.withinBudget(this.claimNow(subnet), `claim subnet ${subnet}`);
    } catch (err) {
      if (!isClusterUnavailable(err)) throw err;
      return this.sync.claimLater(subnet, err);
    }
  }

  private async claimNow(subnet: string): Promise<{ shared?: string }> {
    return this.guard(`claim subnet ${subnet}`, async () => {
      for (let i = 0; i < 3; i++) {
        const mine: PoolClaim = { subnet, kind: 'pending', host: this.hostId, at: new Date().toISOString() };
        if (await this.store.create(keys.pool(subnet), mine)) {
          this.deferral?.conflicts.clear(subnet);
          return {};
        }
        const cur = await this.store.get<PoolClaim>(keys.pool(subnet));
        if (!cur) continue;
        const c = cur.value;
        if (c.kind === 'overlay' && c.overlay) return { shared: c.overlay };
        // This host's own claim, which no local pool holds (the IPAM checked that under its
        // lock): a give-back that has not reached etcd yet. Taken over.
        if (c.host === this.hostId) {
          if (await this.store.cas(keys.pool(subnet), cur.revision, mine)) return {};
          continue;
        }
        throw conflict(`subnet ${subnet} is already in use by a ${c.kind === 'pending' ? 'network being created' : 'network'} on host ${c.host}`);
      }
      throw conflict(`subnet ${subnet}: its cluster-wide claim kept changing; try again`);
    });
  }

  /** After CreateNetwork: the pool is this host's (bridge network) or an overlay's (shared). */
  async settle(subnet: string, kind: 'local' | 'overlay', overlay?: string): Promise<void> {
    await this.soon(writeKey.pool(subnet), `record subnet ${subnet}`, () => this.sync.publish(subnet, kind, overlay));
  }

  /** Swarm AllocateNetwork: claims `subnet` for overlay `key` directly (idempotent). */
  async claimForOverlay(subnet: string, key: string): Promise<void> {
    await this.guard(`claim subnet ${subnet}`, async () => {
      const mine: PoolClaim = { subnet, kind: 'overlay', host: this.hostId, overlay: key, at: new Date().toISOString() };
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
    await this.soon(writeKey.pool(subnet), `release subnet ${subnet}`, () =>
      this.guard(`release subnet ${subnet}`, async () => {
        const cur = await this.store.get<PoolClaim>(keys.pool(subnet));
        const c = cur?.value;
        if (cur && c && c.host === this.hostId && c.kind !== 'overlay' && claimedBy(c.at, before)) await this.store.cas(keys.pool(subnet), cur.revision, undefined);
      }),
    );
  }

  /** The blocks of `pool` this host holds. */
  async myBlocks(pool: Prefix): Promise<Prefix[]> {
    return this.guard('list blocks', async () => {
      const all = await this.store.list<BlockClaim>(keys.blocksOf(formatPrefix(pool)));
      return all.filter((kv) => kv.value.host === this.hostId).map((kv) => ({ family: pool.family, base: parseIp(kv.key.slice(kv.key.lastIndexOf('/') + 1)).value, len: blockLenFor(pool) }));
    });
  }

  /**
   * Claims the first unclaimed block of `pool` whose span `usable` accepts; returns it
   * with the addresses other hosts reserved inside it (to be marked used), or undefined.
   */
  async claimBlock(pool: Prefix, usable: (b: Prefix) => boolean): Promise<{ block: Prefix; foreign: string[] } | undefined> {
    return this.guard(`claim a block of ${formatPrefix(pool)}`, async () => {
      const len = blockLenFor(pool);
      const taken = new Set((await this.store.list<BlockClaim>(keys.blocksOf(formatPrefix(pool)))).map((kv) => kv.key.slice(kv.key.lastIndexOf('/') + 1)));
      const count = subnetCount(pool, len);
      for (let i = 0n; i < count && i < 65_536n; i++) {
        const block = subnetAt(pool, len, i);
        if (taken.has(blockKey(block)) || !usable(block)) continue;
        if (await this.store.create(keys.block(formatPrefix(pool), blockKey(block)), { host: this.hostId, at: new Date().toISOString() })) {
          const foreign = (await this.store.list<Reservation>(keys.reservationsOf(formatPrefix(pool))))
            .map((kv) => kv.key.slice(kv.key.lastIndexOf('/') + 1))
            .filter((ip) => contains(block, parseIp(ip)));
          this.log.info({ pool: formatPrefix(pool), block: formatPrefix(block) }, 'claimed an address block');
          return { block, foreign };
        }
      }
      return undefined;
    });
  }

  /**
   * Gives back every block of `pool` this host holds (its last local network on the pool
   * is gone). Queued while etcd is unreachable; then only blocks claimed before this call
   * go (a pool created again since claims new ones).
   */
  async releaseBlocks(pool: Prefix): Promise<void> {
    const before = Date.now();
    const subnet = formatPrefix(pool);
    await this.soon(writeKey.blocks(subnet), `release blocks of ${subnet}`, () =>
      this.guard('release blocks', async () => {
        for (const kv of await this.store.list<BlockClaim>(keys.blocksOf(subnet))) {
          if (kv.value.host === this.hostId && claimedBy(kv.value.at, before)) await this.store.cas(kv.key, kv.revision, undefined);
        }
      }),
    );
  }

  /**
   * Reserves `ip` of `pool` cluster-wide for this host. Unclaimed block: atomically with
   * the block still unclaimed. Own block: directly. Another host's block: that host grants
   * or denies (it may have handed the address out); no answer within the timeout is an error.
   */
  async reserve(pool: Prefix, ip: string): Promise<void> {
    this.deferral?.writes.cancel(writeKey.reservation(formatPrefix(pool), ip)); // a queued release of it: superseded
    await this.guard(`reserve ${ip}`, async () => {
      const subnet = formatPrefix(pool);
      const rkey = keys.reservation(subnet, ip);
      const bkey = keys.block(subnet, blockKey(blockOf(pool, parseIp(ip).value)));
      const at = new Date().toISOString();
      const existing = await this.store.get<Reservation>(rkey);
      if (existing) {
        if (existing.value.host === this.hostId && existing.value.state === 'granted') return;
        throw conflict(`address ${ip} is already reserved by host ${existing.value.host}`);
      }
      const block = await this.store.get<BlockClaim>(bkey);
      if (!block || block.value.host === this.hostId) {
        const ok = await this.store.commit([{ key: bkey, revision: block?.revision ?? '0' }, { key: rkey, revision: '0' }], [{ key: rkey, value: { host: this.hostId, state: 'granted', at } }]);
        if (!ok) return this.reserve(pool, ip);
        return;
      }
      if (!(await this.store.create(rkey, { host: this.hostId, state: 'requested', at }))) throw conflict(`address ${ip} is already reserved`);
      const deadline = Date.now() + this.grantTimeoutMs;
      while (Date.now() < deadline) {
        const cur: KeyValue<Reservation> | undefined = await this.store.get<Reservation>(rkey);
        if (cur?.value.state === 'granted') return;
        if (!cur || cur.value.state === 'denied') {
          if (cur) await this.store.cas(rkey, cur.revision, undefined);
          throw conflict(`address ${ip} is already in use on host ${block.value.host}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      const cur = await this.store.get<Reservation>(rkey);
      if (cur?.value.state === 'granted') return;
      if (cur) await this.store.cas(rkey, cur.revision, undefined);
      throw unavailable(`host ${block.value.host}, which allocates ${ip}'s part of ${subnet}, did not confirm the reservation; try again or pick another address`);
    });
  }

  async unreserve(pool: Prefix, ip: string): Promise<void> {
    const before = Date.now();
    const subnet = formatPrefix(pool);
    await this.soon(writeKey.reservation(subnet, ip), `release reservation ${ip}`, () =>
      this.guard(`release reservation ${ip}`, async () => {
        const rkey = keys.reservation(subnet, ip);
        const cur = await this.store.get<Reservation>(rkey);
        if (cur?.value.host === this.hostId && claimedBy(cur.value.at, before)) await this.store.cas(rkey, cur.revision, undefined);
      }),
    );
  }

  /** Answers another host's request for an address inside one of this host's blocks. */
  async answer(pool: Prefix, ip: string, grant: boolean): Promise<void> {
    const rkey = keys.reservation(formatPrefix(pool), ip);
    const cur = await this.store.get<Reservation>(rkey);
    if (!cur || cur.value.state !== 'requested') return;
    await this.store.cas(rkey, cur.revision, { ...cur.value, state: grant ? 'granted' : 'denied' });
  }
}
