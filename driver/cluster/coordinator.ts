/**
 * Ties the cluster (ClusterAgent) to this host's network service, IPAM and kernel:
 * overlay registration, endpoint publication, programming of static FDB and
 * neighbour entries for remote endpoints from etcd watches, answers to other
 * hosts' address reservations, propagation of overlay networks through the Docker
 * API, and drift repair of the VXLAN entries (counted for the reconciler).
 */
import { conflict } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { stripLength } from '../../lib/prefix';
import type { NetlinkKernel } from '../kernel/netlink-kernel';
import type { NetworkSettings } from '../model/options';
import { overlayNsLayoutFor, vxlanFor } from '../model/naming';
import type { EndpointRecord, IpamData, NetworkRecord, OverlayAttachment } from '../model/types';
import type { NetworkLookup } from '../network/network-table';
import type { OverlayControl } from '../network/overlay-control';
import type { ClusterPools, IpamService } from '../../ipam-driver/index';
import { LOCAL_SPACE } from '../../ipam-driver/index';
import type { ClusterAgent, ClusterEvents, OverlayRecord } from './agent';
import { OverlayDrift, OverlayEntries } from './overlay-entries';
import type { DockerPropagator } from './propagator';

export interface CoordinatorDeps {
  agent: ClusterAgent;
  /** The agent's events (the coordinator subscribes to them). */
  events: ClusterEvents;
  ipam: IpamService;
  pools: ClusterPools;
  kernel: NetlinkKernel;
  /** This host's networks (looked up, and locked while their VXLAN entries change). */
  networks: NetworkLookup;
  propagator: DockerPropagator | undefined;
  log: Logger;
  /** The learned labels of a local endpoint (network policy), published with it. */
  labelsOf?: (networkId: string, endpointId: string) => Record<string, string> | undefined;
}

export class ClusterCoordinator implements OverlayControl {
  private readonly agent: ClusterAgent;
  private readonly ipam: IpamService;
  private readonly pools: ClusterPools;
  private readonly networks: NetworkLookup;
  private readonly propagator: DockerPropagator | undefined;
  private readonly log: Logger;
  private readonly labelsOf: CoordinatorDeps['labelsOf'];
  readonly entries: OverlayEntries;

  constructor(d: CoordinatorDeps) {
    ({ agent: this.agent, ipam: this.ipam, pools: this.pools, networks: this.networks, propagator: this.propagator, log: this.log, labelsOf: this.labelsOf } = d);
    this.entries = new OverlayEntries(d.agent, d.networks, d.kernel, d.log);
    d.events.listen({
      onRemoteEndpoint: (ep, present) => void this.entries.changed(ep, present),
      onOverlay: (rec, key) => void this.onOverlay(rec, key),
      onReservation: (subnet, ip, value) => void this.onReservation(subnet, ip, value),
      onLoanRequest: (key) => void this.ipam.lendAddress(key),
    });
  }

  /** After a start: announce this host's overlay memberships and endpoints again (they were leased). */
  restore(): void {
    for (const { record, endpoints } of this.networks.list()) {
      if (!record.overlay) continue;
      this.agent.join(record.overlay.key, record.id);
      for (const ep of endpoints) this.endpointUp(record, ep);
    }
  }

  // ---- OverlayControl ------------------------------------------------------------------

  async attach(record: NetworkRecord, settings: NetworkSettings): Promise<{ attachment: OverlayAttachment; mtu: number; created: boolean }> {
    const key = settings.overlayKey ?? record.id;
    this.agent.health.check(`creating overlay network ${key}`);
    const before = this.agent.overlays.has(key) || (await this.agent.store.get(`/loom/v1/overlays/${key}`)) !== undefined;
    const rec = await this.register(key, settings, record.ipv4, record.ipv6, {
      enableIpv6: record.enableIpv6,
      internal: record.internal,
      options: { ...record.options },
    });
    const attachment: OverlayAttachment = {
      key,
      vni: rec.vni,
      vxlan: vxlanFor(record.id),
      local: this.agent.me.vtep,
      origin: rec.origin,
      ns: overlayNsLayoutFor(this.agent.me.hostId, record.id),
    };
    return { attachment, mtu: rec.mtu, created: !before };
  }

  async allocateSwarm(networkId: string, settings: NetworkSettings, ipv4: IpamData[], ipv6: IpamData[], options: Record<string, string>): Promise<string> {
    const key = settings.overlayKey ?? networkId;
    this.agent.health.check(`allocating swarm overlay network ${key}`);
    for (const d of [...ipv4, ...ipv6]) await this.pools.claimForOverlay(d.pool, key);
    await this.register(key, settings, ipv4, ipv6, { enableIpv6: ipv6.length > 0, internal: false, options, swarmId: networkId });
    this.log.info({ overlay: key, networkId }, 'swarm overlay allocated');
    return key;
  }

  /** Registers (or joins) overlay `key` with the cluster-wide MTU (the smallest underlay's). */
  private async register(
    key: string,
    settings: NetworkSettings,
    ipv4: IpamData[],
    ipv6: IpamData[],
    rest: Pick<OverlayRecord, 'enableIpv6' | 'internal' | 'options' | 'swarmId'>,
  ): Promise<OverlayRecord> {
    const { mtu, underlay } = await this.agent.overlayMtu();
    if (underlay < 1500) this.log.warn({ underlay, overlayMtu: mtu }, 'an underlay MTU below 1500: overlay networks get a smaller MTU');
    const subnet = (d: IpamData): OverlayRecord['ipv4'][number] => ({ pool: d.pool, ...(d.gateway ? { gateway: d.gateway } : {}), aux: d.aux });
    return this.agent.registerOverlay({ key, origin: this.agent.hostId, mtu: settings.explicitMtu ? settings.mtu : mtu, ipv4: ipv4.map(subnet), ipv6: ipv6.map(subnet), ...rest });
  }

  async freeSwarm(networkId: string): Promise<void> {
    const rec = [...this.agent.overlays.values()].find((o) => o.swarmId === networkId);
    if (rec) this.agent.deleteOverlay(rec);
  }

  async abandon(record: NetworkRecord, created: boolean): Promise<void> {
    const rec = record.overlay && this.agent.overlays.get(record.overlay.key);
    if (created && rec && rec.origin === this.agent.hostId) this.agent.deleteOverlay(rec);
  }

  async attached(record: NetworkRecord): Promise<void> {
    const ov = record.overlay as OverlayAttachment;
    this.agent.join(ov.key, record.id);
    for (const d of [...record.ipv4, ...record.ipv6]) {
      await this.ipam.markShared(d.pool, ov.key);
      await this.pools.settle(d.pool, 'overlay', ov.key).catch((err) => this.log.warn({ err: String(err) }, 'could not record the overlay subnet'));
    }
    this.agent.setDetached(ov.key, false);
    // The caller (CreateNetwork) holds the network's lock: entries are programmed without taking it.
    await this.entries.programAll(record);
    if (ov.origin === this.agent.hostId) this.propagator?.nameLater(record.id, ov.key);
  }

  async detached(record: NetworkRecord): Promise<void> {
    const ov = record.overlay as OverlayAttachment;
    this.agent.leave(ov.key);
    const rec = this.agent.overlays.get(ov.key);
    if (!rec || rec.swarmId) return; // Swarm decides when a swarm overlay ends (FreeNetwork)
    // Both are queued: DeleteNetwork never waits for etcd (written when it answers).
    if (rec.origin === this.agent.hostId) {
      this.agent.deleteOverlay(rec);
      this.log.info({ overlay: ov.key }, 'overlay deleted cluster-wide (its origin removed it)');
    } else {
      // Removed here by hand: do not create it again on this host by ourselves.
      this.agent.setDetached(ov.key, true);
    }
  }

  async checkLocal(record: NetworkRecord): Promise<void> {
    for (const d of [...record.ipv4, ...record.ipv6]) {
      const owner = [...this.agent.overlays.values()].find((o) => [...o.ipv4, ...o.ipv6].some((s) => s.pool === d.pool));
      if (owner) {
        throw conflict(`subnet ${d.pool} belongs to overlay ${owner.key}: create it with -o loom.mode=overlay -o loom.overlay=${owner.key}`);
      }
    }
  }

  async localCreated(record: NetworkRecord): Promise<void> {
    for (const d of [...record.ipv4, ...record.ipv6]) await this.pools.settle(d.pool, 'local');
  }

  endpointUp(record: NetworkRecord, ep: EndpointRecord): void {
    const ov = record.overlay as OverlayAttachment;
    // Labels only while joined (they are the container's, learned after Join).
    const labels = ep.sandboxKey ? this.labelsOf?.(record.id, ep.id) : undefined;
    this.agent.publishEndpoint({
      overlay: ov.key,
      endpointId: ep.id,
      mac: ep.mac,
      ...(ep.address ? { ip: stripLength(ep.address) } : {}),
      ...(ep.addressV6 ? { ip6: stripLength(ep.addressV6) } : {}),
      ...(ep.dnsNames?.length ? { names: ep.dnsNames } : {}),
      ...(labels ? { labels } : {}),
    });
  }

  endpointDown(record: NetworkRecord, ep: EndpointRecord): void {
    this.agent.unpublishEndpoint((record.overlay as OverlayAttachment).key, ep.id);
  }

  // ---- reactions to the cluster ------------------------------------------------------------

  private async onOverlay(rec: OverlayRecord | undefined, key: string): Promise<void> {
    const local = this.networks.byOverlay(key);
    if (rec) await this.propagator?.ensure(rec, local !== undefined);
    else if (local && local.overlay?.origin !== this.agent.hostId) await this.propagator?.remove(local.id, key);
  }

  private async onReservation(subnet: string, ip: string, value: { host: string; state: string } | undefined): Promise<void> {
    try {
      if (!value) await this.ipam.dropForeign(subnet, ip);
      else if (value.state === 'requested' && value.host !== this.agent.hostId) await this.ipam.answerReservation(subnet, ip, value.host);
    } catch (err) {
      this.log.warn({ subnet, ip, err: String(err) }, 'could not answer an address reservation');
    }
  }

  // ---- drift repair (from the reconciler) --------------------------------------------------

  /** What repairOverlays would change now, per overlay (loomctl doctor). */
  overlayDrift(): Promise<OverlayDrift[]> {
    return this.entries.drift();
  }

  /** The reconciler's overlay pass: VXLAN entries, missing overlays, subnet claims; counts by kind. */
  async repairOverlays(): Promise<Record<string, number>> {
    const counts = await this.entries.repair();
    if (this.agent.health.isDown) return counts; // what follows needs etcd
    // Overlays this host should have (created elsewhere, not opted out) and does not.
    for (const rec of this.agent.overlays.values()) await this.propagator?.ensure(rec, this.networks.byOverlay(rec.key) !== undefined);
    // Subnets taken while etcd was away are claimed; conflicts are reported.
    const local = this.ipam.listPools().filter((p) => p.addressSpace === LOCAL_SPACE).map((p) => ({ subnet: p.pool, ...(p.shared ? { shared: p.shared } : {}) }));
    await this.pools.auditClaims(local).catch((err) => this.log.debug({ err: String(err) }, 'subnet claim audit skipped'));
    return counts;
  }
}
