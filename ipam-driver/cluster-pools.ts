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
import { DEFERRABLE_BUDGET_MS, withinBudget } from '../driver/cluster/guarded-store';
import { ClusterHealth, ClusterUnavailableError, isClusterUnavailable } from '../driver/cluster/health';
import type { DeferredWrites } from '../driver/cluster/publisher';
import { timedEtcdWait } from '../driver/observability/etcd-wait';
import { ClusterStore, KeyValue, keys } from '../driver/cluster/store';
import type { ClaimConflicts } from './claim-conflicts';
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

/** What keeps cluster IPAM serving while etcd is unreachable (absent in unit tests of the plain logic). */
export interface ClusterDeferral {
  /** Background writes: claims published and things given back once etcd answers. */
  writes: DeferredWrites;
  /** The claims last seen in etcd (watched), for decisions while it is unreachable. */
  knownClaims(): PoolClaim[];
  conflicts: ClaimConflicts;
  /** Whether etcd answers: work that can wait for it is deferred at once while it does not. */
  health: ClusterHealth;
}

/** Keys of queued writes (one desired state per subnet, per subnet's blocks, per reservation). */
const writeKey = {
  pool: (subnet: string): string => `pool:${subnet}`,
  blocks: (subnet: string): string => `blocks:${subnet}`,
  reservation: (subnet: string, ip: string): string => `reservation:${subnet}/${ip}`,
};

/** Claimed no later than `before` (ms): a record this host wrote before it asked to give it back. */
const claimedBy = (at: string, before: number): boolean => !(Date.parse(at) > before);

export class ClusterPools {
  constructor(
    private readonly store: ClusterStore,
    readonly hostId: string,
    private readonly log: Logger,
    private readonly grantTimeoutMs = 5_000,
    private readonly deferral?: ClusterDeferral,
  ) {}

  private async guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isClusterUnavailable(err)) throw new ClusterUnavailableError(`${what}: ${err.message}`);
      if (err instanceof Error && 'kind' in err) throw err;
      throw unavailable(`${what}: the cluster store (etcd) is unreachable: ${(err as Error).message}`);
    }
  }

  /**
   * Writes `write` now if etcd answers within the deferrable budget, else queues it (it is
   * idempotent: the attempt in flight and the queued one may both run). A queued write
   * for the same key is replaced first: the newest desired state wins.
   */
  private async soon(key: string, label: string, write: () => Promise<void>): Promise<void> {
    if (!this.deferral) return write();
    const { writes } = this.deferral;
    writes.cancel(key);
    try {
      await this.withinBudget(write(), label);
    } catch (err) {
      if (!isClusterUnavailable(err)) throw err;
      writes.set(key, label, write);
      this.log.info({ write: label, err: err.message }, 'cluster store (etcd) unreachable: write queued until it returns');
    }
  }

  /** `p` within the deferrable budget (none while etcd is down or just was slow); a budget running out marks etcd slow. */
  private async withinBudget<T>(p: Promise<T>, label: string): Promise<T> {
    const health = (this.deferral as ClusterDeferral).health;
    const budget = health.budget(DEFERRABLE_BUDGET_MS);
    try {
      return await timedEtcdWait(() => withinBudget(p, budget, label), true);
    } catch (err) {
      if (budget > 0 && err instanceof ClusterUnavailableError && / did not answer within /.test(err.message)) health.slow();
      throw err;
    }
  }

  /** Subnets claimed anywhere in the cluster (for choosing automatic subnets); the last known ones while etcd is unreachable. */
  async claimed(): Promise<Prefix[]> {
    const now = this.guard('list cluster pools', async () => (await this.store.list<PoolClaim>(keys.pools)).map((kv) => parsePrefix(kv.value.subnet)));
    if (!this.deferral) return now;
    try {
      return await this.withinBudget(now, 'list cluster pools');
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
      return await this.withinBudget(this.claimNow(subnet), `claim subnet ${subnet}`);
    } catch (err) {
      if (!isClusterUnavailable(err)) throw err;
      return this.claimLater(subnet, err);
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

  private claimLater(subnet: string, err: ClusterUnavailableError): { shared?: string } {
    const deferral = this.deferral as ClusterDeferral;
    const known = deferral.knownClaims().find((c) => c.subnet === subnet);
    if (known?.kind === 'overlay') {
      throw new ClusterUnavailableError(`subnet ${subnet} belongs to overlay ${known.overlay}: joining it needs the cluster store (etcd), which is unreachable (${err.message})`);
    }
    if (known && known.host !== this.hostId) throw conflict(`subnet ${subnet} is already in use on host ${known.host} (as last seen in etcd, which is unreachable now)`);
    deferral.writes.set(writeKey.pool(subnet), `claim subnet ${subnet}`, () => this.publishClaim(subnet, 'pending'));
    this.log.warn({ subnet, err: err.message }, 'cluster store (etcd) unreachable: subnet taken on this host; its cluster-wide claim is published when etcd returns');
    return {};
  }

  /**
   * Makes etcd say `subnet` is this host's (`kind`), creating or updating the claim. A
   * claim that is another host's or an overlay's (taken while etcd was unreachable) is a
   * conflict: reported, not overwritten.
   */
  private async publishClaim(subnet: string, kind: PoolClaim['kind'], overlay?: string): Promise<void> {
    await this.guard(`record subnet ${subnet}`, async () => {
      for (let i = 0; i < 3; i++) {
        const mine: PoolClaim = { subnet, kind, host: this.hostId, ...(overlay ? { overlay } : {}), at: new Date().toISOString() };
        const cur = await this.store.get<PoolClaim>(keys.pool(subnet));
        if (!cur) {
          if (await this.store.create(keys.pool(subnet), mine)) return this.deferral?.conflicts.clear(subnet);
          continue;
        }
        const c = cur.value;
        if (c.kind === 'overlay') {
          if (kind === 'overlay' || c.host === this.hostId) return this.deferral?.conflicts.clear(subnet);
          return this.deferral?.conflicts.report(subnet, `overlay ${c.overlay}`);
        }
        if (c.host !== this.hostId) return this.deferral?.conflicts.report(subnet, `host ${c.host}`);
        if (c.kind === kind && c.overlay === overlay) return this.deferral?.conflicts.clear(subnet);
        if (await this.store.cas(keys.pool(subnet), cur.revision, { ...c, ...mine })) return this.deferral?.conflicts.clear(subnet);
      }
      throw unavailable(`record subnet ${subnet}: its cluster-wide claim kept changing`);
    });
  }

  /** After CreateNetwork: the pool is this host's (bridge network) or an overlay's (shared). */
  async settle(subnet: string, kind: 'local' | 'overlay', overlay?: string): Promise<void> {
    await this.soon(writeKey.pool(subnet), `record subnet ${subnet}`, () => this.publishClaim(subnet, kind, overlay));
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

  /**
   * Reconcile pass: every local subnet of this host must be claimed as its own in etcd (a
   * claim lost or never published is written again); a claim held by another host or an
   * overlay is reported; this host's claims that no local pool holds any more (older than
   * a minute, so a RequestPool in flight is never caught) are given back.
   */
  async auditClaims(local: Array<{ subnet: string; shared?: string }>): Promise<void> {
    const deferral = this.deferral;
    if (!deferral) return;
    const claims = await this.guard('audit subnet claims', () => this.store.list<PoolClaim>(keys.pools));
    const bySubnet = new Map(claims.map((kv) => [kv.value.subnet, kv]));
    const used = new Set(local.map((l) => l.subnet));
    deferral.conflicts.retain(used);
    for (const l of local) {
      if (l.shared || deferral.writes.has(writeKey.pool(l.subnet))) continue;
      const c = bySubnet.get(l.subnet)?.value;
      if (!c) {
        this.log.warn({ subnet: l.subnet }, 'a local subnet has no cluster-wide claim in etcd; publishing it');
        deferral.writes.set(writeKey.pool(l.subnet), `claim subnet ${l.subnet}`, () => this.publishClaim(l.subnet, 'local'));
      } else if (c.kind === 'overlay') deferral.conflicts.report(l.subnet, `overlay ${c.overlay}`);
      else if (c.host !== this.hostId) deferral.conflicts.report(l.subnet, `host ${c.host}`);
      else deferral.conflicts.clear(l.subnet);
    }
    const cutoff = Date.now() - 60_000;
    for (const kv of claims) {
      const c = kv.value;
      if (c.host !== this.hostId || c.kind === 'overlay' || used.has(c.subnet) || Date.parse(c.at) > cutoff || deferral.writes.has(writeKey.pool(c.subnet))) continue;
      if (await this.guard('release a stale claim', () => this.store.cas(kv.key, kv.revision, undefined))) this.log.info({ subnet: c.subnet }, 'gave back a subnet claim no local network holds');
    }
  }

  /** Answers another host's request for an address inside one of this host's blocks. */
  async answer(pool: Prefix, ip: string, grant: boolean): Promise<void> {
    const rkey = keys.reservation(formatPrefix(pool), ip);
    const cur = await this.store.get<Reservation>(rkey);
    if (!cur || cur.value.state !== 'requested') return;
    await this.store.cas(rkey, cur.revision, { ...cur.value, state: grant ? 'granted' : 'denied' });
  }
}
