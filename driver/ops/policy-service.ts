/**
 * Network policy on this host (docs/policy.md): the policies and the labels of the endpoints'
 * containers (both stored, store/policy-repo.ts), compiled (policy/compile.ts) and enforced
 * in loomd's policy table (firewall/policy-firewall.ts).
 *
 * Invariants and hazards:
 * - Labels are learned from Docker after Join in the background (dns/learn.ts's inspect, a
 *   work queue): never inside a plugin call. Until they are known an endpoint is in no set.
 * - On Leave the endpoint's labels go at once (memory, then the store) and the sets are
 *   re-applied, so a container that is gone leaves no allow behind; its address may be reused.
 * - Policy changes are validated whole before anything is stored; the store is written before
 *   the kernel, and the kernel then follows the store (a failed apply is repaired by the
 *   reconciler, `repair`). The kernel's table is never removed at stop: it keeps enforcing.
 * - All kernel applies go through one serialized, coalesced `sync`.
 * - Cluster mode (`cluster`): etcd holds the policies (`/loom/v1/policies/<name>`), the same
 *   on every host. apply/rm write etcd first (refused while it is unreachable: nothing
 *   changes), then this host as without etcd; every host follows etcd through the session's
 *   watch (`clusterResync`, `clusterEvent`), keeping LevelDB's copy the same, so an etcd
 *   outage changes nothing and a restart during one enforces the stored copy. Other hosts'
 *   overlay endpoints (`remote`) are peers with the labels their hosts published.
 */
import { Mutex } from 'async-mutex';
import { invalid, notFound } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { stripLength } from '../../lib/prefix';
import type { JoinedInspect } from '../dns/learn';
import { DEFAULT_QUEUE, WorkQueue } from '../dns/work-queue';
import type { PolicyFirewall } from '../firewall/policy-firewall';
import type { EndpointRecord, NetworkRecord } from '../model/types';
import type { EndpointListener } from '../network/endpoint-events';
import type { NetworkLookup } from '../network/network-table';
import { compilePolicies, coveredNetworks, PolicyEndpoint, PolicyModel, PolicyNetwork } from '../policy/compile';
import { EndpointExplanation, explainEndpoint } from '../policy/explain';
import { parsePolicyText, Policy, validatePolicy } from '../policy/schema';
import type { LabelRecord, PolicyRecord, PolicyRepository } from '../store/policy-repo';

export interface PolicyServiceDeps {
  repo: PolicyRepository;
  networks: NetworkLookup;
  firewall: PolicyFirewall;
  /** Re-renders loomd's main table (networks a policy covers keep connection tracking). */
  syncMainFirewall: () => Promise<void>;
  /** Docker's view of a joined endpoint's container (learn.ts sharedInspect); absent: no labels. */
  inspect?: JoinedInspect;
  log: Logger;
  /** The fail-closed window of one endpoint: Join until its labels are in the sets. */
  onLabelWindow?: (ms: number) => void;
  /** Cluster mode: writes policies to etcd in one transaction (throws while it is unreachable). */
  cluster?: { write(put: PolicyRecord[], remove: string[]): Promise<void> };
  /** Cluster mode: other hosts' endpoints of this host's overlays (cluster/policy-peers.ts). */
  remote?: () => PolicyEndpoint[];
  /** An endpoint's labels were learned (cluster mode publishes them with the endpoint). */
  onLabels?: (networkId: string, endpointId: string) => void;
}

export interface ApplyResult {
  created: string[];
  updated: string[];
  unchanged: string[];
}

const labelKey = (networkId: string, endpointId: string): string => `${networkId}/${endpointId}`;

/**
 * While no policy exists at all, a joined endpoint's labels are asked for this long after its
 * Join: nothing waits for them, and a short-lived container (`docker run --rm ... true`) is
 * gone by then and never costs Docker an inspect during its start. The first policy (applied
 * here or arriving from the cluster) has the labels put off asked for before it is applied.
 */
export const UNCOVERED_LABELS_DELAY_MS = 1_000;
const canonical = (p: Policy): string => JSON.stringify(p);
const sameRecord = (a: PolicyRecord | undefined, b: PolicyRecord): boolean => a !== undefined && a.appliedAt === b.appliedAt && canonical(a.policy) === canonical(b.policy);

export class PolicyService implements EndpointListener {
  private policies = new Map<string, PolicyRecord>();
  private labels = new Map<string, LabelRecord>();
  private readonly queue: WorkQueue;
  private covered = new Set<string>();
  /** When each endpoint joined, until its labels are learned: the fail-closed window, logged. */
  private readonly joinedAt = new Map<string, number>();
  /** Label learning put off (uncovered networks), by endpoint id. */
  private readonly later = new Map<string, { networkId: string; timer: NodeJS.Timeout; learn: () => void }>();
  private readonly mutex = new Mutex();
  private requested = 0;
  private done = 0;
  /** Policy syncs that failed in a row (the reconciler retries). */
  failures = 0;
  /** Policy changes from etcd's watch, applied one after the other. */
  private clusterChain: Promise<void> = Promise.resolve();

  constructor(private readonly d: PolicyServiceDeps) {
    this.queue = new WorkQueue(d.log, DEFAULT_QUEUE);
  }

  async load(): Promise<void> {
    this.policies = new Map((await this.d.repo.listPolicies()).map((r) => [r.policy.name, r]));
    this.labels = new Map((await this.d.repo.listLabels()).map((r) => [labelKey(r.networkId, r.endpointId), r]));
  }

  /** Whether some policy covers the network (the main table keeps it connection-tracked). */
  covers(networkId: string): boolean {
    const nets = this.networkList();
    return [...this.policies.values()].some((r) => coveredNetworks(r.policy, nets).some((n) => n.id === networkId));
  }

  // ---- endpoint events (inside plugin calls: note and return) ----------------------------

  joined(net: NetworkRecord, ep: EndpointRecord): void {
    if (!this.d.inspect) return;
    if (this.joinedAt.size < 10_000) this.joinedAt.set(ep.id, Date.now());
    // Fail closed at once: on a covered network it is pending until its labels are known (in
    // the background: the Join answers without waiting for nft).
    this.cancelLater(ep.id);
    const learn = (): void => this.queue.push(`labels:${ep.id}`, `learn the labels of endpoint ${ep.id.slice(0, 12)}`, () => this.learn(net.id, ep.id));
    if (this.policies.size > 0) {
      if (this.covers(net.id)) setImmediate(() => this.requestSync());
      learn();
      return;
    }
    const timer = setTimeout(() => {
      this.later.delete(ep.id);
      learn();
    }, UNCOVERED_LABELS_DELAY_MS);
    timer.unref();
    this.later.set(ep.id, { networkId: net.id, timer, learn });
  }

  left(net: NetworkRecord, ep: EndpointRecord): void {
    const key = labelKey(net.id, ep.id);
    this.cancelLater(ep.id);
    this.joinedAt.delete(ep.id);
    if (!this.labels.delete(key)) return;
    setImmediate(() => {
      void this.d.repo.deleteLabels([{ networkId: net.id, endpointId: ep.id }]).catch((err) => this.d.log.warn({ err: String(err) }, 'could not delete stored labels'));
      this.requestSync();
    });
  }

  // ---- operations (admin API) ------------------------------------------------------------

  /** Creates or updates every policy of a file; all or nothing (an invalid file changes nothing). */
  async apply(text: string, file?: string): Promise<ApplyResult> {
    const parsed = parsePolicyText(text, file);
    const result: ApplyResult = { created: [], updated: [], unchanged: [] };
    const records: PolicyRecord[] = [];
    const at = new Date().toISOString();
    for (const p of parsed) {
      const old = this.policies.get(p.name);
      if (old && canonical(old.policy) === canonical(p)) {
        result.unchanged.push(p.name);
        continue;
      }
      (old ? result.updated : result.created).push(p.name);
      records.push({ policy: p, appliedAt: at });
    }
    if (records.length) {
      await this.d.cluster?.write(records, []);
      await this.d.repo.putPolicies(records);
      await this.learnPutOff();
      for (const r of records) this.policies.set(r.policy.name, r);
      await this.sync();
    }
    return result;
  }

  async remove(name: string): Promise<boolean> {
    if (!this.policies.has(name)) return false;
    await this.d.cluster?.write([], [name]);
    await this.d.repo.deletePolicy(name);
    this.policies.delete(name);
    await this.sync();
    return true;
  }

  // ---- cluster mode: etcd's copy (watch callbacks: queued, applied in order) ---------------

  /** The whole of etcd's policies (at start and after every re-created watch). */
  clusterResync(raw: PolicyRecord[]): void {
    this.clusterQueue(async () => {
      const records = raw.flatMap((r) => this.valid(r));
      // Names of invalid records count as present: their last valid copy stays.
      const fresh = new Set(raw.map((r) => String(r?.policy?.name)));
      const put = records.filter((r) => !sameRecord(this.policies.get(r.policy.name), r));
      const remove = [...this.policies.keys()].filter((n) => !fresh.has(n));
      await this.replace(put, remove);
    });
  }

  /** One change in etcd; `record` undefined: deleted. */
  clusterEvent(name: string, raw: PolicyRecord | undefined): void {
    this.clusterQueue(async () => {
      const record = raw ? this.valid(raw)[0] : undefined;
      if (raw && !record) return; // refused (logged): the last valid copy stays
      if (record) {
        if (!sameRecord(this.policies.get(name), record)) await this.replace([record], []);
      } else if (this.policies.has(name)) await this.replace([], [name]);
    });
  }

  /** The labels learned for a local endpoint, if any (published with overlay endpoints). */
  labelsOf(networkId: string, endpointId: string): Record<string, string> | undefined {
    const l = this.labels.get(labelKey(networkId, endpointId));
    return l ? { ...l.labels } : undefined;
  }

  /** Waits for the queued etcd changes (tests). */
  clusterIdle(): Promise<void> {
    return this.clusterChain;
  }

  /** A record read from etcd, validated like a file (someone may have written it by hand). */
  private valid(r: PolicyRecord): PolicyRecord[] {
    try {
      return [{ policy: validatePolicy(r?.policy), appliedAt: String(r?.appliedAt ?? '') }];
    } catch (err) {
      this.d.log.warn({ err: String(err) }, 'invalid policy in the cluster store: ignored');
      return [];
    }
  }

  private clusterQueue(fn: () => Promise<void>): void {
    this.clusterChain = this.clusterChain.then(fn).catch((err) => {
      this.failures++;
      this.d.log.warn({ err: String(err) }, 'could not apply the policies from the cluster store: the next resync retries');
    });
  }

  private async replace(put: PolicyRecord[], remove: string[]): Promise<void> {
    if (!put.length && !remove.length) return;
    await this.d.repo.putPolicies(put, remove);
    if (put.length) await this.learnPutOff();
    for (const r of put) this.policies.set(r.policy.name, r);
    for (const n of remove) this.policies.delete(n);
    this.d.log.info({ put: put.map((r) => r.policy.name), removed: remove }, 'policies changed in the cluster store');
    await this.sync();
  }

  list(): PolicyRecord[] {
    return [...this.policies.values()].sort((a, b) => (a.policy.name < b.policy.name ? -1 : 1));
  }

  /** One policy, what it selects now, and its rules' counters. */
  async show(name: string): Promise<unknown> {
    const r = this.policies.get(name);
    if (!r) throw notFound(`no policy ${name}`);
    const endpoints = this.endpointList();
    const model = compilePolicies(this.list().map((x) => x.policy), this.networkList(), endpoints);
    const c = model.policies.find((p) => p.name === name);
    const counters = await this.d.firewall.counters().catch(() => ({}) as Record<string, { packets: number; bytes: number }>);
    const names = new Map(endpoints.map((e) => [e.id, e.container ?? e.id.slice(0, 12)]));
    return {
      ...r,
      selected: (c?.selectedEndpoints ?? []).map((id) => names.get(id)),
      rules: [...(c?.ingress ?? []), ...(c?.egress ?? [])].map((x) => ({ rule: x.label, peers: x.peerEndpoints.map((id) => names.get(id)), cidrs: x.cidrs.map((k) => k.cidr), anyPeer: x.anyPeer, counter: counters[`${name} ${x.label}`] ?? { packets: 0, bytes: 0 } })),
      defaultDeny: { ingress: counters['ingress default deny'], egress: counters['egress default deny'] },
    };
  }

  /** What the container (name, id or id prefix) may send and receive, per endpoint. */
  explain(container: string): EndpointExplanation[] {
    const endpoints = this.endpointList();
    const mine = endpoints.filter((e) => {
      if (e.remote) return false;
      const l = [...this.labels.values()].find((x) => x.endpointId === e.id);
      return e.container === container || (l && container.length >= 4 && l.containerId.startsWith(container)) || e.id === container;
    });
    if (!mine.length) throw notFound(`no loom endpoint of a container named ${container} is known (its labels may not be learned yet)`);
    const model = this.compile();
    return mine.map((e) => explainEndpoint(model, e, endpoints));
  }

  // ---- enforcement -----------------------------------------------------------------------

  /** Compiles from the current table, policies and labels. */
  compile(): PolicyModel {
    return compilePolicies(this.list().map((r) => r.policy), this.networkList(), this.endpointList());
  }

  /**
   * Applies the current state to the kernel; serialized, and coalesced: a run that started
   * after this call was made covers it, so a burst of container starts costs few applies.
   */
  async sync(full = false): Promise<void> {
    const mine = ++this.requested;
    await this.mutex.runExclusive(async () => {
      if (!full && this.done >= mine) return;
      const upto = this.requested;
      await this.syncOnce(full);
      this.done = upto;
    });
  }

  /** A sync in the background (endpoint events); failures are left to the reconciler. */
  requestSync(): void {
    this.sync().catch((err) => {
      this.failures++;
      this.d.log.warn({ err: String(err) }, 'policy sync failed: the reconciler retries');
    });
  }

  private async syncOnce(full: boolean): Promise<void> {
    const model = this.compile();
    const covered = new Set(model.networks);
    const widened = [...covered].some((n) => !this.covered.has(n));
    const changed = widened || [...this.covered].some((n) => !covered.has(n));
    // Tracking first when a network becomes covered, so replies are recognised when the rules start.
    if (widened) await this.d.syncMainFirewall();
    const t0 = Date.now();
    const how = await this.d.firewall.apply(model, full);
    if (changed && !widened) await this.d.syncMainFirewall();
    this.covered = covered;
    this.failures = 0;
    if (how !== 'none') this.d.log.info({ how, policies: model.policies.length, ms: Date.now() - t0 }, 'policy applied');
  }

  /**
   * The reconciler's pass: labels of joined endpoints not learned yet are asked for, labels of
   * endpoints gone are dropped, and drifted kernel state is re-applied. Returns the repairs.
   */
  async repair(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    const present = new Set<string>();
    for (const { record, endpoints } of this.d.networks.list()) {
      for (const e of endpoints) {
        const key = labelKey(record.id, e.id);
        present.add(key);
        if (e.sandboxKey && !this.labels.has(key) && this.d.inspect && !this.queue.has(`labels:${e.id}`)) this.joined(record, e);
      }
    }
    const stale = [...this.labels.values()].filter((r) => !present.has(labelKey(r.networkId, r.endpointId)));
    if (stale.length) {
      for (const r of stale) this.labels.delete(labelKey(r.networkId, r.endpointId));
      await this.d.repo.deleteLabels(stale);
      out['policy-labels'] = stale.length;
    }
    const model = this.compile();
    const drift = await this.d.firewall.check(model);
    if (drift.length || stale.length || this.failures) {
      if (drift.length) this.d.log.warn({ drift }, 'policy table drifted: re-applying');
      await this.sync(drift.length > 0);
      if (drift.length) out['policy-table'] = 1;
    }
    return out;
  }

  /** The policy table's rule counters (metrics). */
  counters(): Promise<Record<string, { packets: number; bytes: number }>> {
    return this.d.firewall.counters();
  }

  /** Where the kernel's policy tables differ from the stored policies (doctor). */
  drift(): Promise<string[]> {
    return this.d.firewall.check(this.compile());
  }

  /** Label learning that waits (uncovered network) for one endpoint is dropped. */
  private cancelLater(endpointId: string): void {
    const l = this.later.get(endpointId);
    if (!l) return;
    clearTimeout(l.timer);
    this.later.delete(endpointId);
  }

  /**
   * Policies are coming: the labels put off are asked for now and awaited (those Docker cannot
   * give yet go to the queue), so the policies are applied knowing them.
   */
  private async learnPutOff(): Promise<void> {
    const jobs = [...this.later].map(([id, l]) => {
      this.cancelLater(id);
      return this.learn(l.networkId, id, false).catch(() => l.learn());
    });
    await Promise.all(jobs);
  }

  async stop(): Promise<void> {
    for (const id of [...this.later.keys()]) this.cancelLater(id);
    this.queue.stop();
    await this.queue.idle();
    await this.mutex.waitForUnlock();
  }

  // ---- labels ----------------------------------------------------------------------------

  /** `apply`: bring the kernel's sets up to date once learned (false: the caller applies next). */
  private async learn(networkId: string, endpointId: string, apply = true): Promise<void> {
    const ep = this.d.networks.list().find((n) => n.record.id === networkId)?.endpoints.find((e) => e.id === endpointId);
    if (!ep?.sandboxKey || !this.d.inspect) return; // left meanwhile
    const c = await this.d.inspect(networkId, endpointId);
    const networkNames: Record<string, string> = {};
    for (const [name, n] of Object.entries(c.NetworkSettings?.Networks ?? {})) if (n?.NetworkID) networkNames[n.NetworkID] = name;
    const rec: LabelRecord = {
      networkId,
      endpointId,
      containerId: c.Id,
      container: c.Name.replace(/^\//, ''),
      labels: { ...(c.Config?.Labels ?? {}) },
      networkNames,
      learnedAt: new Date().toISOString(),
    };
    // Still joined? (Leave may have come while Docker answered.)
    const still = this.d.networks.list().find((n) => n.record.id === networkId)?.endpoints.find((e) => e.id === endpointId);
    if (!still?.sandboxKey) return;
    await this.d.repo.putLabels(rec);
    this.labels.set(labelKey(networkId, endpointId), rec);
    if (apply) await this.sync();
    this.d.onLabels?.(networkId, endpointId);
    const since = this.joinedAt.get(endpointId);
    this.joinedAt.delete(endpointId);
    if (since !== undefined) this.d.onLabelWindow?.(Date.now() - since);
    // windowMs: from Join until the container's sets hold it (its fail-closed window).
    this.d.log.info({ networkId, endpointId, container: rec.container, labels: Object.keys(rec.labels).length, windowMs: since === undefined ? undefined : Date.now() - since }, 'learned the labels of an endpoint');
  }

  private networkList(): PolicyNetwork[] {
    const names = new Map<string, string>();
    for (const r of this.labels.values()) for (const [id, name] of Object.entries(r.networkNames)) names.set(id, name);
    return this.d.networks.list().map(({ record }) => ({ id: record.id, name: names.get(record.id) }));
  }

  private endpointList(): PolicyEndpoint[] {
    const out: PolicyEndpoint[] = [...(this.d.remote?.() ?? [])];
    for (const { record, endpoints } of this.d.networks.list()) {
      for (const e of endpoints) {
        const l = this.labels.get(labelKey(record.id, e.id));
        out.push({
          id: e.id,
          networkId: record.id,
          labels: l?.labels,
          container: l?.container,
          addresses4: e.address ? [stripLength(e.address)] : [],
          addresses6: e.addressV6 ? [stripLength(e.addressV6)] : [],
          joined: e.sandboxKey !== undefined,
        });
      }
    }
    return out;
  }
}

/** Refuses a policy name that cannot be one (route parameters). */
export function checkPolicyName(name: string): string {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) throw invalid(`invalid policy name ${JSON.stringify(name)}`);
  return name;
}
