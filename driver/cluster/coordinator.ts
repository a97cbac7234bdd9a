/**
 * Ties the cluster (ClusterAgent) to this host's network service, IPAM and kernel:
 * overlay registration, endpoint publication, programming of static FDB and
 * neighbour entries for remote endpoints from etcd watches, answers to other
 * hosts' address reservations, propagation of overlay networks through the Docker
 * API, and drift repair of the VXLAN entries (counted for the reconciler).
 */
import { KeyedMutex } from '../../lib/keyed-mutex';
import { conflict } from '../../lib/errors';
import type { NetlinkKernel } from '../kernel/netlink-kernel';
import type { NetworkService } from '../network/network-service';
import type { NetworkSettings } from '../model/options';
import type { OverlayControl } from '../network/overlay-control';
import { vxlanFor } from '../model/naming';
import type { EndpointRecord, IpamData, NetworkRecord, OverlayAttachment } from '../model/types';
import type { Logger } from '../../lib/logger';
import type { IpamService } from '../../ipam-driver/index';
import { LOCAL_SPACE } from '../../ipam-driver/index';
import type { ClusterPools } from '../../ipam-driver/index';
import type { ClusterAgent, OverlayRecord, RemoteEndpoint } from './agent';
import type { DockerPropagator } from './propagator';
import { planOverlayEntries } from './overlay-plan';

const plain = (cidr: string | undefined): string | undefined => cidr?.split('/')[0];

export class ClusterCoordinator implements OverlayControl {
  private readonly locks = new KeyedMutex();
  networks!: NetworkService;

  constructor(
    private readonly agent: ClusterAgent,
    private readonly ipam: IpamService,
    private readonly pools: ClusterPools,
    private readonly kernel: NetlinkKernel,
    private readonly propagator: DockerPropagator | undefined,
    private readonly log: Logger,
  ) {
    agent.callbacks = {
      onRemoteEndpoint: (ep, present) => void this.onRemote(ep, present),
      onOverlay: (rec, key) => void this.onOverlay(rec, key),
      onReservation: (subnet, ip, value) => void this.onReservation(subnet, ip, value),
      onLoanRequest: (key) => void this.ipam.lendAddress(key),
    };
  }

  /** Gateway and aux addresses of an overlay (every host reserves them locally). */
  overlayReserved(key: string): Set<string> {
    const rec = this.agent.overlays.get(key);
    const out = new Set<string>();
    for (const s of [...(rec?.ipv4 ?? []), ...(rec?.ipv6 ?? [])]) {
      if (s.gateway) out.add(plain(s.gateway) as string);
      for (const a of Object.values(s.aux)) out.add(plain(a) as string);
    }
    return out;
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
    const { mtu, underlay } = await this.agent.overlayMtu();
    if (underlay < 1500) this.log.warn({ underlay, overlayMtu: mtu }, 'an underlay MTU below 1500: overlay networks get a smaller MTU');
    const subnet = (d: NetworkRecord['ipv4'][number]): OverlayRecord['ipv4'][number] => ({ pool: d.pool, ...(d.gateway ? { gateway: d.gateway } : {}), aux: d.aux });
    const rec = await this.agent.registerOverlay({
      key,
      origin: this.agent.hostId,
      mtu: settings.explicitMtu ? settings.mtu : mtu,
      ipv4: record.ipv4.map(subnet),
      ipv6: record.ipv6.map(subnet),
      enableIpv6: record.enableIpv6,
      internal: record.internal,
      options: { ...record.options },
    });
    const attachment: OverlayAttachment = { key, vni: rec.vni, vxlan: vxlanFor(record.id), local: this.agent.me.vtep, origin: rec.origin };
    return { attachment, mtu: rec.mtu, created: !before };
  }

  async allocateSwarm(networkId: string, settings: NetworkSettings, ipv4: IpamData[], ipv6: IpamData[], options: Record<string, string>): Promise<string> {
    const key = settings.overlayKey ?? networkId;
    this.agent.health.check(`allocating swarm overlay network ${key}`);
    const { mtu, underlay } = await this.agent.overlayMtu();
    if (underlay < 1500) this.log.warn({ underlay, overlayMtu: mtu }, 'an underlay MTU below 1500: overlay networks get a smaller MTU');
    const subnet = (d: IpamData): OverlayRecord['ipv4'][number] => ({ pool: d.pool, ...(d.gateway ? { gateway: d.gateway } : {}), aux: d.aux });
    for (const d of [...ipv4, ...ipv6]) await this.pools.claimForOverlay(d.pool, key);
    await this.agent.registerOverlay({
      key,
      origin: this.agent.hostId,
      mtu: settings.explicitMtu ? settings.mtu : mtu,
      ipv4: ipv4.map(subnet),
      ipv6: ipv6.map(subnet),
      enableIpv6: ipv6.length > 0,
      internal: false,
      options,
      swarmId: networkId,
    });
    this.log.info({ overlay: key, networkId }, 'swarm overlay allocated');
    return key;
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
    for (const ep of this.agent.remote.get(ov.key)?.values() ?? []) await this.onRemote(ep, true);
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
    this.agent.publishEndpoint({ overlay: ov.key, endpointId: ep.id, mac: ep.mac, ...(ep.address ? { ip: plain(ep.address) } : {}), ...(ep.addressV6 ? { ip6: plain(ep.addressV6) } : {}) });
  }

  endpointDown(record: NetworkRecord, ep: EndpointRecord): void {
    this.agent.unpublishEndpoint((record.overlay as OverlayAttachment).key, ep.id);
  }

  // ---- reactions to the cluster ------------------------------------------------------------

  private async onRemote(ep: RemoteEndpoint, present: boolean): Promise<void> {
    const net = this.networks.byOverlay(ep.overlay);
    if (!net?.overlay) return;
    const dev = net.overlay.vxlan;
    await this.locks.run(ep.overlay, async () => {
      try {
        if (present) {
          await this.kernel.addFdb(dev, { mac: ep.mac, dst: ep.vtep });
          for (const ip of [ep.ip, ep.ip6]) if (ip) await this.kernel.addNeigh(dev, { ip, mac: ep.mac });
        } else {
          await this.kernel.delFdb(dev, { mac: ep.mac, dst: ep.vtep });
          for (const ip of [ep.ip, ep.ip6]) if (ip) await this.kernel.delNeigh(dev, ip);
        }
      } catch (err) {
        // The reconciler repairs what could not be programmed now (device being re-created...).
        this.log.debug({ overlay: ep.overlay, endpoint: ep.endpointId, err: String(err) }, 'could not program a remote endpoint yet');
      }
    });
  }

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
  async overlayDrift(): Promise<Array<{ overlay: string; vxlan: string; missing: number; stale: number }>> {
    const out: Array<{ overlay: string; vxlan: string; missing: number; stale: number }> = [];
    for (const { record } of this.networks.list()) {
      const ov = record.overlay;
      if (!ov) continue;
      const plan = planOverlayEntries([...(this.agent.remote.get(ov.key)?.values() ?? [])], await this.kernel.listFdb(ov.vxlan), await this.kernel.listNeigh(ov.vxlan));
      const missing = plan.addFdb.length + plan.addNeigh.length;
      const stale = plan.delFdb.length + plan.delNeigh.length;
      if (missing || stale) out.push({ overlay: ov.key, vxlan: ov.vxlan, missing, stale });
    }
    return out;
  }

  /** Makes every overlay network's VXLAN FDB and neighbour entries match etcd; returns repair counts. */
  async repairOverlays(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    const count = (k: string, n: number): void => {
      if (n) counts[k] = (counts[k] ?? 0) + n;
    };
    for (const { record } of this.networks.list()) {
      const ov = record.overlay;
      if (!ov) continue;
      await this.locks.run(ov.key, async () => {
        const remote = [...(this.agent.remote.get(ov.key)?.values() ?? [])];
        const plan = planOverlayEntries(remote, await this.kernel.listFdb(ov.vxlan), await this.kernel.listNeigh(ov.vxlan));
        for (const e of plan.addFdb) await this.kernel.addFdb(ov.vxlan, e);
        for (const e of plan.delFdb) await this.kernel.delFdb(ov.vxlan, e);
        for (const e of plan.addNeigh) await this.kernel.addNeigh(ov.vxlan, e);
        for (const e of plan.delNeigh) await this.kernel.delNeigh(ov.vxlan, e.ip);
        count('overlay-fdb-added', plan.addFdb.length);
        count('overlay-fdb-removed', plan.delFdb.length);
        count('overlay-neigh-added', plan.addNeigh.length);
        count('overlay-neigh-removed', plan.delNeigh.length);
        if (plan.addFdb.length + plan.delFdb.length + plan.addNeigh.length + plan.delNeigh.length) {
          this.log.warn({ overlay: ov.key, ...plan }, 'reconciler repaired VXLAN entries');
        }
      });
    }
    if (this.agent.health.isDown) return counts; // what follows needs etcd
    // Overlays this host should have (created elsewhere, not opted out) and does not.
    for (const rec of this.agent.overlays.values()) await this.propagator?.ensure(rec, this.networks.byOverlay(rec.key) !== undefined);
    // Subnets taken while etcd was away are claimed; conflicts are reported.
    const local = this.ipam.listPools().filter((p) => p.addressSpace === LOCAL_SPACE).map((p) => ({ subnet: p.pool, ...(p.shared ? { shared: p.shared } : {}) }));
    await this.pools.auditClaims(local).catch((err) => this.log.debug({ err: String(err) }, 'subnet claim audit skipped'));
    return counts;
  }
}
