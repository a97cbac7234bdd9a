/**
 * How cluster IPAM keeps serving while etcd is unreachable (used by cluster-pools.ts):
 * writes tried within a short budget and queued when etcd does not answer in time; a
 * subnet taken locally and its claim published later; conflicts found on publication
 * reported; and the claim audit of every reconcile pass. See docs/operations.md, "etcd
 * faults".
 */
import { conflict, unavailable } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { timedEtcdWait } from '../lib/cluster/etcd-wait';
import { DEFERRABLE_BUDGET_MS, withinBudget } from '../lib/cluster/guarded-store';
import { ClusterHealth, ClusterUnavailableError, isClusterUnavailable } from '../lib/cluster/health';
import type { DeferredWrites } from '../lib/cluster/deferred-writes';
import { ClusterStore, keys } from '../lib/cluster/store';
import type { ClaimConflicts } from './claim-conflicts';
import type { PoolClaim } from './cluster-records';

/** What keeps cluster IPAM serving while etcd is unreachable (absent in unit tests of the plain logic). */
export interface ClusterDeferral {
  /** Background writes: claims published and things given back once etcd answers. */
  writes: DeferredWrites;
  /** The store for work no plugin call waits for (a block claimed ahead): the background deadline. */
  background?: ClusterStore;
  /** The claims last seen in etcd (watched), for decisions while it is unreachable. */
  knownClaims(): PoolClaim[];
  conflicts: ClaimConflicts;
  /** Whether etcd answers: work that can wait for it is deferred at once while it does not. */
  health: ClusterHealth;
}

/** Keys of queued writes (one desired state per subnet, per subnet's blocks, per reservation). */
export const writeKey = {
  pool: (subnet: string): string => `pool:${subnet}`,
  blocks: (subnet: string): string => `blocks:${subnet}`,
  reservation: (subnet: string, ip: string): string => `reservation:${subnet}/${ip}`,
};

/** Claimed no later than `before` (ms): a record this host wrote before it asked to give it back. */
export const claimedBy = (at: string, before: number): boolean => !(Date.parse(at) > before);

/** Every cluster IPAM failure as a typed error; etcd's own carries the context `what`. */
export async function clusterGuard<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isClusterUnavailable(err)) throw new ClusterUnavailableError(`${what}: ${err.message}`);
    if (err instanceof Error && 'kind' in err) throw err;
    throw unavailable(`${what}: the cluster store (etcd) is unreachable: ${(err as Error).message}`);
  }
}

export class ClaimSync {
  constructor(
    private readonly store: ClusterStore,
    private readonly hostId: string,
    private readonly log: Logger,
    private readonly deferral?: ClusterDeferral,
  ) {}

  /**
   * Writes `write` now if etcd answers within the deferrable budget, else queues it (it is
   * idempotent: the attempt in flight and the queued one may both run). A queued write
   * for the same key is replaced first: the newest desired state wins.
   */
  async soon(key: string, label: string, write: () => Promise<void>): Promise<void> {
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
  async withinBudget<T>(p: Promise<T>, label: string): Promise<T> {
    const health = (this.deferral as ClusterDeferral).health;
    const budget = health.budget(DEFERRABLE_BUDGET_MS);
    try {
      return await timedEtcdWait(() => withinBudget(p, budget, label), true);
    } catch (err) {
      if (budget > 0 && err instanceof ClusterUnavailableError && / did not answer within /.test(err.message)) health.slow();
      throw err;
    }
  }

  /** etcd did not answer a claim: take the subnet here unless the last known claims say otherwise; publish later. */
  claimLater(subnet: string, err: ClusterUnavailableError): { shared?: string } {
    const deferral = this.deferral as ClusterDeferral;
    const known = deferral.knownClaims().find((c) => c.subnet === subnet);
    if (known?.kind === 'overlay') {
      throw new ClusterUnavailableError(`subnet ${subnet} belongs to overlay ${known.overlay}: joining it needs the cluster store (etcd), which is unreachable (${err.message})`);
    }
    if (known && known.host !== this.hostId) throw conflict(`subnet ${subnet} is already in use on host ${known.host} (as last seen in etcd, which is unreachable now)`);
    deferral.writes.set(writeKey.pool(subnet), `claim subnet ${subnet}`, () => this.publish(subnet, 'pending'));
    this.log.warn({ subnet, err: err.message }, 'cluster store (etcd) unreachable: subnet taken on this host; its cluster-wide claim is published when etcd returns');
    return {};
  }

  /**
   * Makes etcd say `subnet` is this host's (`kind`), creating or updating the claim. A
   * claim that is another host's or an overlay's (taken while etcd was unreachable) is a
   * conflict: reported, not overwritten.
   */
  async publish(subnet: string, kind: PoolClaim['kind'], overlay?: string): Promise<void> {
    const conflicts = this.deferral?.conflicts;
    await clusterGuard(`record subnet ${subnet}`, async () => {
      for (let i = 0; i < 3; i++) {
        const mine: PoolClaim = { subnet, kind, host: this.hostId, ...(overlay ? { overlay } : {}), at: new Date().toISOString() };
        const cur = await this.store.get<PoolClaim>(keys.pool(subnet));
        if (!cur) {
          if (await this.store.create(keys.pool(subnet), mine)) return conflicts?.clear(subnet);
          continue;
        }
        const c = cur.value;
        if (c.kind === 'overlay') {
          if (kind === 'overlay' || c.host === this.hostId) return conflicts?.clear(subnet);
          return conflicts?.report(subnet, `overlay ${c.overlay}`);
        }
        if (c.host !== this.hostId) return conflicts?.report(subnet, `host ${c.host}`);
        if (c.kind === kind && c.overlay === overlay) return conflicts?.clear(subnet);
        if (await this.store.cas(keys.pool(subnet), cur.revision, { ...c, ...mine })) return conflicts?.clear(subnet);
      }
      throw unavailable(`record subnet ${subnet}: its cluster-wide claim kept changing`);
    });
  }

  /**
   * Reconcile pass: every local subnet of this host must be claimed as its own in etcd (a
   * claim lost or never published is written again); a claim held by another host or an
   * overlay is reported; this host's claims that no local pool holds any more (older than
   * a minute, so a RequestPool in flight is never caught) are given back.
   */
  async audit(local: Array<{ subnet: string; shared?: string }>): Promise<void> {
    const deferral = this.deferral;
    if (!deferral) return;
    const claims = await clusterGuard('audit subnet claims', () => this.store.list<PoolClaim>(keys.pools));
    const bySubnet = new Map(claims.map((kv) => [kv.value.subnet, kv]));
    const used = new Set(local.map((l) => l.subnet));
    deferral.conflicts.retain(used);
    for (const l of local) {
      if (l.shared || deferral.writes.has(writeKey.pool(l.subnet))) continue;
      const c = bySubnet.get(l.subnet)?.value;
      if (!c) {
        this.log.warn({ subnet: l.subnet }, 'a local subnet has no cluster-wide claim in etcd; publishing it');
        deferral.writes.set(writeKey.pool(l.subnet), `claim subnet ${l.subnet}`, () => this.publish(l.subnet, 'local'));
      } else if (c.kind === 'overlay') deferral.conflicts.report(l.subnet, `overlay ${c.overlay}`);
      else if (c.host !== this.hostId) deferral.conflicts.report(l.subnet, `host ${c.host}`);
      else deferral.conflicts.clear(l.subnet);
    }
    const cutoff = Date.now() - 60_000;
    for (const kv of claims) {
      const c = kv.value;
      if (c.host !== this.hostId || c.kind === 'overlay' || used.has(c.subnet) || Date.parse(c.at) > cutoff || deferral.writes.has(writeKey.pool(c.subnet))) continue;
      if (await clusterGuard('release a stale claim', () => this.store.cas(kv.key, kv.revision, undefined))) this.log.info({ subnet: c.subnet }, 'gave back a subnet claim no local network holds');
    }
  }
}
