/**
 * This host's member of the loom cluster: it registers the host under a lease,
 * keeps watched copies of the hosts, overlays and remote endpoints in etcd, and
 * publishes this host's overlay endpoints. Publishing is asynchronous and retried,
 * so a container start never waits for etcd and the host catches up when etcd
 * returns. Consumers learn about changes through the `on*` callbacks.
 */
import { randomInt } from 'node:crypto';
import { conflict, unavailable } from '../errors';
import type { Logger } from '../observability/logger';
import { ClusterStore, KeyValue, Watch, WatchEvent, keys } from './store';

export interface HostRecord {
  hostId: string;
  vtep: string;
  underlayMtu: number;
  version: string;
  startedAt: string;
}

export interface OverlaySubnet {
  pool: string;
  gateway?: string;
  aux: Record<string, string>;
}

export interface OverlayRecord {
  key: string;
  vni: number;
  /** Docker network name on the host that created it (filled in asynchronously). */
  name?: string;
  origin: string;
  mtu: number;
  ipv4: OverlaySubnet[];
  ipv6: OverlaySubnet[];
  enableIpv6: boolean;
  internal: boolean;
  /** The -o options as given on the origin (repeated when loom creates the network elsewhere). */
  options: Record<string, string>;
  /** Swarm network id when Swarm manages the overlay's life (AllocateNetwork/FreeNetwork). */
  swarmId?: string;
  createdAt: string;
}

export interface RemoteEndpoint {
  overlay: string;
  host: string;
  endpointId: string;
  mac: string;
  ip?: string;
  ip6?: string;
  vtep: string;
}

export const VXLAN_OVERHEAD = 50;
const VNI_MIN = 4096;
const VNI_MAX = 16_000_000;

export interface AgentIdentity {
  hostId: string;
  vtep: string;
  underlayMtu: number;
  version: string;
}

export interface AgentCallbacks {
  onRemoteEndpoint?(ep: RemoteEndpoint, present: boolean): void;
  onOverlay?(rec: OverlayRecord | undefined, key: string): void;
  onReservation?(subnet: string, ip: string, value: { host: string; state: string } | undefined): void;
  /** A borrow request appeared (or is still there after a resync): `key` under /loom/v1/loans/. */
  onLoanRequest?(key: string): void;
}

type PendingOp = { kind: 'put'; key: string; value: unknown } | { kind: 'delete'; key: string };

export class ClusterAgent {
  readonly hosts = new Map<string, HostRecord>();
  readonly overlays = new Map<string, OverlayRecord>();
  /** overlay key -> "host/endpointId" -> endpoint, other hosts only */
  readonly remote = new Map<string, Map<string, RemoteEndpoint>>();
  /** Leased keys this host owns (host, memberships, endpoints): re-written after a lease loss. */
  private readonly owned = new Map<string, unknown>();
  private readonly pending = new Map<string, PendingOp>();
  private flushing: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private watches: Watch[] = [];
  private stopped = false;
  callbacks: AgentCallbacks = {};

  constructor(
    readonly store: ClusterStore,
    readonly me: AgentIdentity,
    private readonly log: Logger,
    private readonly leaseTtlS = 10,
  ) {}

  get hostId(): string {
    return this.me.hostId;
  }

  /** Registers the host and starts the watches; never throws for an unreachable etcd (retries in the background). */
  async start(): Promise<void> {
    const host: HostRecord = { ...this.me, startedAt: new Date().toISOString() };
    this.owned.set(keys.host(this.hostId), host);
    void this.connect();
  }

  private async connect(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.store.startLease(this.leaseTtlS, () => this.onLeaseLost());
        for (const [key, value] of this.owned) this.enqueue({ kind: 'put', key, value });
        if (this.watches.length === 0) await this.startWatches();
        this.log.info({ hostId: this.hostId, vtep: this.me.vtep }, 'joined the loom cluster');
        return;
      } catch (err) {
        if (attempt === 0) this.log.warn({ err: String(err) }, 'cluster store unreachable; retrying in the background');
        await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * 2 ** Math.min(attempt, 5))).unref());
      }
    }
  }

  private onLeaseLost(): void {
    if (this.stopped) return;
    // Our leased keys are gone from etcd (or will be): grant a new lease and write them again.
    void this.connect();
  }

  private async startWatches(): Promise<void> {
    this.watches.push(
      await this.store.watch<HostRecord>(keys.hosts, {
        onResync: (all) => this.resync(this.hosts, all, (kv) => kv.value.hostId),
        onEvent: (ev) => this.apply(this.hosts, ev, (k) => k.slice(keys.hosts.length)),
      }),
    );
    this.watches.push(
      await this.store.watch<OverlayRecord>(keys.overlays, {
        onResync: (all) => {
          const seen = new Set(all.map((kv) => kv.value.key));
          for (const k of [...this.overlays.keys()]) if (!seen.has(k)) this.setOverlay(k, undefined);
          for (const kv of all) this.setOverlay(kv.value.key, kv.value);
        },
        onEvent: (ev) => this.setOverlay(ev.key.slice(keys.overlays.length), ev.type === 'put' ? ev.value : undefined),
      }),
    );
    this.watches.push(
      await this.store.watch<RemoteEndpoint>(keys.endpoints, {
        onResync: (all) => {
          const idOf = (ep: RemoteEndpoint): string => `${ep.overlay}|${ep.host}|${ep.endpointId}`;
          const fresh = new Map(all.filter((kv) => kv.value.host !== this.hostId).map((kv) => [idOf(kv.value), kv.value]));
          for (const eps of [...this.remote.values()]) for (const ep of [...eps.values()]) if (!fresh.has(idOf(ep))) this.setRemote(ep, false);
          for (const ep of fresh.values()) this.setRemote(ep, true);
        },
        onEvent: (ev) => this.onEndpointEvent(ev),
      }),
    );
    this.watches.push(
      await this.store.watch<{ host: string; state: string }>(keys.reservations, {
        onResync: (all) => all.forEach((kv) => this.onReservationKey(kv.key, kv.value)),
        onEvent: (ev) => this.onReservationKey(ev.key, ev.type === 'put' ? ev.value : undefined),
      }),
    );
    this.watches.push(
      await this.store.watch(keys.loanRequests, {
        onResync: (all) => all.forEach((kv) => this.callbacks.onLoanRequest?.(kv.key)),
        onEvent: (ev) => {
          if (ev.type === 'put') this.callbacks.onLoanRequest?.(ev.key);
        },
      }),
    );
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
    if (ev.type === 'put') this.setRemote(ev.value, true);
    else {
      const ep = this.remote.get(overlay)?.get(`${host}/${endpointId}`);
      if (ep) this.setRemote(ep, false);
    }
  }

  private setRemote(ep: RemoteEndpoint, present: boolean): void {
    const map = this.remote.get(ep.overlay) ?? new Map<string, RemoteEndpoint>();
    const id = `${ep.host}/${ep.endpointId}`;
    if (present) {
      map.set(id, ep);
      this.remote.set(ep.overlay, map);
    } else {
      map.delete(id);
      if (map.size === 0) this.remote.delete(ep.overlay);
    }
    this.callbacks.onRemoteEndpoint?.(ep, present);
  }

  private onReservationKey(key: string, value: { host: string; state: string } | undefined): void {
    // /loom/v1/reservations/<subnet_seg>/<ip>
    const rest = key.slice(keys.reservations.length);
    const slash = rest.lastIndexOf('/');
    if (slash < 0) return;
    this.callbacks.onReservation?.(rest.slice(0, slash).replace('_', '/'), rest.slice(slash + 1), value);
  }

  // ---- overlays ---------------------------------------------------------------------------

  /**
   * The overlay MTU: the smallest underlay MTU of the cluster's hosts (read from etcd, not
   * the watched copy, which may lag right after start-up) minus the VXLAN overhead.
   */
  async overlayMtu(): Promise<{ mtu: number; underlay: number }> {
    let hosts = [...this.hosts.values()];
    try {
      hosts = (await this.store.list<HostRecord>(keys.hosts)).map((kv) => kv.value);
    } catch {
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
    try {
      const existing = await this.store.get<OverlayRecord>(keys.overlay(proposal.key));
      if (existing) {
        const a = existing.value.ipv4.map((s) => s.pool).join(',');
        const b = proposal.ipv4.map((s) => s.pool).join(',');
        if (a !== b) throw conflict(`overlay ${proposal.key} exists with subnets ${a}; this network has ${b}`);
        return existing.value;
      }
      for (let attempt = 0; attempt < 32; attempt++) {
        const vni = randomInt(VNI_MIN, VNI_MAX);
        if (!(await this.store.create(keys.vni(vni), { overlay: proposal.key }))) continue;
        const rec: OverlayRecord = { ...proposal, vni, createdAt: new Date().toISOString() };
        if (await this.store.create(keys.overlay(proposal.key), rec)) return rec;
        await this.store.delete(keys.vni(vni));
        return this.registerOverlay(proposal);
      }
      throw unavailable('could not allocate a VNI');
    } catch (err) {
      if (err instanceof Error && 'kind' in err) throw err;
      throw unavailable(`overlay networks need the cluster store, which is unreachable: ${(err as Error).message}`);
    }
  }

  /** Records the Docker network name of an overlay (on its origin). */
  async nameOverlay(key: string, name: string): Promise<void> {
    const cur = await this.store.get<OverlayRecord>(keys.overlay(key));
    if (!cur || cur.value.name === name) return;
    await this.store.cas(keys.overlay(key), cur.revision, { ...cur.value, name });
  }

  /** Deletes an overlay everywhere (its origin removed it): record, VNI, subnet claims, blocks, reservations. */
  async deleteOverlay(rec: OverlayRecord): Promise<void> {
    for (const s of [...rec.ipv4, ...rec.ipv6]) {
      for (const kv of await this.store.list(keys.blocksOf(s.pool))) await this.store.delete(kv.key);
      for (const kv of await this.store.list(keys.reservationsOf(s.pool))) await this.store.delete(kv.key);
      for (const kv of await this.store.list(keys.loanRequestsOf(s.pool))) await this.store.delete(kv.key);
      await this.store.delete(keys.pool(s.pool));
    }
    for (const kv of await this.store.list(`/loom/v1/detached/${rec.key}/`)) await this.store.delete(kv.key);
    await this.store.delete(keys.vni(rec.vni));
    await this.store.delete(keys.overlay(rec.key));
  }

  /** True when this host removed its instance of the overlay by hand (do not re-create it). */
  async isDetached(key: string): Promise<boolean> {
    return (await this.store.get(keys.detached(key, this.hostId))) !== undefined;
  }

  async setDetached(key: string, detached: boolean): Promise<void> {
    if (detached) await this.store.put(keys.detached(key, this.hostId), { at: new Date().toISOString() });
    else await this.store.delete(keys.detached(key, this.hostId));
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
    this.enqueue({ kind: 'put', key, value });
  }

  private disown(key: string): void {
    this.owned.delete(key);
    this.enqueue({ kind: 'delete', key });
  }

  /** Operations not yet written to etcd (metrics, tests). */
  get backlog(): number {
    return this.pending.size;
  }

  private enqueue(op: PendingOp): void {
    this.pending.set(op.key, op);
    if (!this.flushing) this.flushing = this.flush().finally(() => (this.flushing = undefined));
  }

  private async flush(): Promise<void> {
    for (let attempt = 0; this.pending.size > 0 && !this.stopped; ) {
      const [key, op] = this.pending.entries().next().value as [string, PendingOp];
      try {
        if (op.kind === 'put') await this.store.put(key, op.value, { leased: true });
        else await this.store.delete(key);
        if (this.pending.get(key) === op) this.pending.delete(key);
        attempt = 0;
      } catch (err) {
        attempt++;
        if (attempt === 1) this.log.warn({ key, backlog: this.pending.size, err: String(err) }, 'cluster store write failed; will retry');
        await new Promise<void>((r) => {
          this.retryTimer = setTimeout(r, Math.min(5_000, 100 * 2 ** Math.min(attempt, 6)));
          this.retryTimer.unref();
        });
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const w of this.watches) await w.close().catch(() => undefined);
    await this.store.close();
  }
}
