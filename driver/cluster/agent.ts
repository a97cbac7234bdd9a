/**
 * This host's member of the loom cluster: it registers the host under a lease, keeps
 * watched copies of the hosts, overlays, subnet claims and remote endpoints in etcd, and
 * publishes this host's overlay endpoints. Publishing is asynchronous and queued
 * (publisher.ts), so a container start never waits for etcd and the host catches up when
 * etcd returns; the session (session.ts) keeps the lease and the watches, reconnecting
 * with backoff; health.ts says whether etcd answers. Consumers learn about changes
 * through the `on*` callbacks.
 */
import { unavailable } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { stripLength } from '../../lib/prefix';
import { BACKGROUND_DEADLINE_MS, GuardedStore } from '../../lib/cluster/guarded-store';
import { ClusterHealth, isClusterUnavailable } from '../../lib/cluster/health';
import { DeferredWrites } from '../../lib/cluster/deferred-writes';
import { RemoteEndpoints } from './remote-endpoints';
import { deleteOverlayKeys, registerOverlay } from './overlay-records';
import { ClusterSession } from './session';
import { KeyValue, RawClusterStore, WatchEvent, keys } from '../../lib/cluster/store';
import type { ClaimRecord, HostRecord, OverlayRecord, RemoteEndpoint } from './records';
import type { AgentCallbacks } from './events';

export type { ClaimRecord, HostRecord, OverlayRecord, OverlaySubnet, RemoteEndpoint } from './records';

export const VXLAN_OVERHEAD = 50;

export interface AgentIdentity {
  hostId: string;
  vtep: string;
  underlayMtu: number;
  version: string;
}

export type { AgentCallbacks } from './events';
export { ClusterEvents } from './events';

export interface AgentOptions {
  leaseTtlS?: number;
  /** Seconds a host whose lease ended keeps its endpoints here (remote-endpoints.ts). */
  peerGraceS?: number;
  /** Backoff of the reconnect loop (tests shorten it). */
  backoff?: { initialMs: number; maxMs: number };
  /** Who hears about the cluster's changes (ClusterEvents: listeners subscribe after construction). */
  events?: AgentCallbacks;
}

export class ClusterAgent {
  readonly hosts = new Map<string, HostRecord>();
  readonly overlays = new Map<string, OverlayRecord>();
  /** Other hosts' endpoints (with the rule for when one goes, see remote-endpoints.ts). */
  readonly endpoints: RemoteEndpoints;
  /** subnet -> claim, every host's (for decisions while etcd is unreachable) */
  readonly claims = new Map<string, ClaimRecord>();
  readonly health: ClusterHealth;
  /** Foreground store: 1 s deadline per call, fails at once while etcd is down. */
  readonly store: GuardedStore;
  /** Writes queued until etcd answers (this host's leased keys, things given back). */
  readonly writes: DeferredWrites;
  readonly session: ClusterSession;
  /** Leased keys this host owns (host, memberships, endpoints): re-written after a lease loss. */
  private readonly owned = new Map<string, unknown>();
  /** The store for work no plugin call waits for (the background deadline). */
  readonly background: GuardedStore;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly callbacks: AgentCallbacks;

  constructor(
    raw: RawClusterStore,
    readonly me: AgentIdentity,
    private readonly log: Logger,
    o: AgentOptions = {},
  ) {
    this.callbacks = o.events ?? {};
    this.health = new ClusterHealth(log);
    this.session = new ClusterSession(raw, this.health, log, {
      ttlS: o.leaseTtlS ?? 10,
      ...(o.backoff ? { backoff: o.backoff } : {}),
      onLeaseGranted: () => {
        for (const [key, value] of this.owned) this.enqueuePut(key, value);
        this.writes.wake();
      },
    });
    this.store = new GuardedStore(raw, this.health, () => this.session.leaseId);
    this.background = this.store.with(BACKGROUND_DEADLINE_MS);
    this.writes = new DeferredWrites(this.health, log);
    this.endpoints = new RemoteEndpoints(
      (host) => this.hosts.has(host),
      (ep, present) => this.callbacks.onRemoteEndpoint?.(ep, present),
      { graceMs: (o.peerGraceS ?? 900) * 1000 },
    );
    this.addWatches();
  }

  /** overlay key -> "host/endpointId" -> endpoint, other hosts only */
  get remote(): Map<string, Map<string, RemoteEndpoint>> {
    return this.endpoints.byOverlay;
  }

  get hostId(): string {
    return this.me.hostId;
  }

  /** Registers the host and starts the watches; never throws for an unreachable etcd (retries in the background). */
  async start(): Promise<void> {
    const host: HostRecord = { ...this.me, startedAt: new Date().toISOString() };
    this.owned.set(keys.host(this.hostId), host);
    this.session.start();
    this.sweeper = setInterval(() => this.endpoints.sweep(), 1_000);
    this.sweeper.unref();
  }

  private addWatches(): void {
    this.session.addWatch<HostRecord>({
      prefix: keys.hosts,
      onResync: (all) => this.resync(this.hosts, all, (kv) => kv.value.hostId),
      onEvent: (ev) => this.apply(this.hosts, ev, (k) => k.slice(keys.hosts.length)),
    });
    this.session.addWatch<OverlayRecord>({
      prefix: keys.overlays,
      onResync: (all) => {
        const seen = new Set(all.map((kv) => kv.value.key));
        for (const k of [...this.overlays.keys()]) if (!seen.has(k)) this.setOverlay(k, undefined);
        for (const kv of all) this.setOverlay(kv.value.key, kv.value);
      },
      onEvent: (ev) => this.setOverlay(ev.key.slice(keys.overlays.length), ev.type === 'put' ? ev.value : undefined),
    });
    this.session.addWatch<RemoteEndpoint>({
      prefix: keys.endpoints,
      onResync: (all) => this.endpoints.resync(all.map((kv) => kv.value).filter((ep) => ep.host !== this.hostId)),
      onEvent: (ev) => this.onEndpointEvent(ev),
    });
    this.session.addWatch<{ host: string; state: string }>({
      prefix: keys.reservations,
      onResync: (all) => all.forEach((kv) => this.onReservationKey(kv.key, kv.value)),
      onEvent: (ev) => this.onReservationKey(ev.key, ev.type === 'put' ? ev.value : undefined),
    });
    this.session.addWatch<ClaimRecord>({
      prefix: keys.pools,
      onResync: (all) => this.resync(this.claims, all, (kv) => kv.value.subnet),
      onEvent: (ev) => this.apply(this.claims, ev, (k) => k.slice(keys.pools.length).replace('_', '/')),
    });
    this.session.addWatch({
      prefix: keys.loanRequests,
      onResync: (all) => all.forEach((kv) => this.callbacks.onLoanRequest?.(kv.key)),
      onEvent: (ev) => {
        if (ev.type === 'put') this.callbacks.onLoanRequest?.(ev.key);
      },
    });
  }

  private resync<T>(map: Map<string, T>, all: Array<KeyValue<T>>, id: (kv: KeyValue<T>) => string): void {
    map.clear();
    for (const kv of all) map.set(id(kv), kv.value);
  }

  private apply<T>(map: Map<string, T>, ev: WatchEvent<T>, id: (key: string) => string): void {
    if (ev.type === 'put') map.set(id(ev.key), ev.value);
    else map.delete(id(ev.key));
  }

  private setOverlay(key: string, rec: OverlayRecord | undefined): void {
    if (rec) this.overlays.set(key, rec);
    else this.overlays.delete(key);
    this.callbacks.onOverlay?.(rec, key);
  }

  private onEndpointEvent(ev: WatchEvent<RemoteEndpoint>): void {
    // /loom/v1/endpoints/<overlay>/<host>/<endpoint>
    const [overlay, host, endpointId] = ev.key.slice(keys.endpoints.length).split('/');
    if (!overlay || !host || !endpointId || host === this.hostId) return;
    if (ev.type === 'put') this.endpoints.put(ev.value);
    else this.endpoints.deleted(overlay, host, endpointId);
  }

  private onReservationKey(key: string, value: { host: string; state: string } | undefined): void {
    // /loom/v1/reservations/<subnet_seg>/<ip>
    const rest = key.slice(keys.reservations.length);
    const slash = rest.lastIndexOf('/');
    if (slash < 0) return;
    this.callbacks.onReservation?.(rest.slice(0, slash).replace('_', '/'), rest.slice(slash + 1), value);
  }

  // ---- overlays ---------------------------------------------------------------------------

  /** Gateway and aux addresses of an overlay (every host holds them locally; the IPAM reserves them). */
  overlayReserved(key: string): Set<string> {
    const rec = this.overlays.get(key);
    const out = new Set<string>();
    for (const s of [...(rec?.ipv4 ?? []), ...(rec?.ipv6 ?? [])]) {
      if (s.gateway) out.add(stripLength(s.gateway));
      for (const a of Object.values(s.aux)) out.add(stripLength(a));
    }
    return out;
  }

  /**
   * The overlay MTU: the smallest underlay MTU of the cluster's hosts (read from etcd, not
   * the watched copy, which may lag right after start-up) minus the VXLAN overhead.
   */
  async overlayMtu(): Promise<{ mtu: number; underlay: number }> {
    let hosts = [...this.hosts.values()];
    try {
      hosts = (await this.store.list<HostRecord>(keys.hosts)).map((kv) => kv.value);
    } catch (err) {
      if (!isClusterUnavailable(err)) throw err;
      // etcd unreachable: the watched copy is the best there is
    }
    const underlay = Math.min(this.me.underlayMtu, ...hosts.map((h) => h.underlayMtu));
    return { mtu: underlay - VXLAN_OVERHEAD, underlay };
  }

  /**
   * Creates the overlay `key` in etcd (with a fresh VNI) or joins the existing one. Joining
   * checks that the subnets match; a different overlay with the same key is a conflict.
   */
  async registerOverlay(proposal: Omit<OverlayRecord, 'vni' | 'createdAt'>): Promise<OverlayRecord> {
    this.health.check(`overlay ${proposal.key}`);
    // Its deletion, queued while etcd was away, must not run after this registration.
    if (!(await this.writes.flushed(overlayWrite(proposal.key), 2_000))) throw unavailable(`overlay ${proposal.key} is still being deleted in the cluster store; try again`);
    return registerOverlay(this.store, proposal);
  }

  /** Records the Docker network name of an overlay (on its origin). */
  async nameOverlay(key: string, name: string): Promise<void> {
    const cur = await this.store.get<OverlayRecord>(keys.overlay(key));
    if (!cur || cur.value.name === name) return;
    await this.store.cas(keys.overlay(key), cur.revision, { ...cur.value, name });
  }

  /**
   * Deletes an overlay everywhere (its origin removed it): record, VNI, subnet claims,
   * blocks, reservations. Queued: DeleteNetwork never waits for etcd.
   */
  deleteOverlay(rec: OverlayRecord): void {
    this.writes.set(overlayWrite(rec.key), `delete overlay ${rec.key}`, () => deleteOverlayKeys(this.background, rec, this.log));
  }

  /** True when this host removed its instance of the overlay by hand (do not re-create it). */
  async isDetached(key: string): Promise<boolean> {
    return (await this.store.get(keys.detached(key, this.hostId))) !== undefined;
  }

  /** Queued like every write of this host's own state. */
  setDetached(key: string, detached: boolean): void {
    const k = keys.detached(key, this.hostId);
    if (detached) this.writes.set(k, `mark overlay ${key} detached`, () => this.background.put(k, { at: new Date().toISOString() }));
    else this.writes.set(k, `clear detached mark of ${key}`, () => this.background.delete(k));
  }

  // ---- this host's leased keys --------------------------------------------------------------

  join(overlay: string, networkId: string): void {
    this.own(keys.member(overlay, this.hostId), { networkId, since: new Date().toISOString() });
  }

  leave(overlay: string): void {
    this.disown(keys.member(overlay, this.hostId));
  }

  publishEndpoint(ep: Omit<RemoteEndpoint, 'host' | 'vtep'>): void {
    this.own(keys.endpoint(ep.overlay, this.hostId, ep.endpointId), { ...ep, host: this.hostId, vtep: this.me.vtep });
  }

  unpublishEndpoint(overlay: string, endpointId: string): void {
    this.disown(keys.endpoint(overlay, this.hostId, endpointId));
  }

  private own(key: string, value: unknown): void {
    this.owned.set(key, value);
    this.enqueuePut(key, value);
  }

  private disown(key: string): void {
    this.owned.delete(key);
    this.writes.set(key, `delete ${key}`, () => this.background.delete(key));
  }

  private enqueuePut(key: string, value: unknown): void {
    this.writes.set(key, `write ${key}`, () => this.background.put(key, value, { leased: true }));
  }

  /** Writes not yet in etcd (metrics, status, tests). */
  get backlog(): number {
    return this.writes.size;
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    await this.writes.stop();
    await this.session.stop();
  }
}

const overlayWrite = (key: string): string => `overlay:${key}`;
