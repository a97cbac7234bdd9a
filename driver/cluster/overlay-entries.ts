/**
 * The static FDB and neighbour entries of each overlay network's VXLAN device: programmed
 * when a remote endpoint appears or goes (etcd watch), and compared with etcd and repaired
 * by the reconciler. One lock discipline with the data plane: entries are changed under the
 * network's own lock, the lock its VXLAN device is (re)built under, so the two never race.
 *
 * An endpoint going away removes only what no other remote endpoint still needs: a container
 * that moved (same address, hence the same MAC, on another host) may have been published
 * again before its old record's deletion arrives.
 */
import type { Logger } from '../../lib/logger';
import type { NetlinkKernel } from '../kernel/netlink-kernel';
import type { NetworkRecord } from '../model/types';
import type { NetworkLookup } from '../network/network-table';
import type { ClusterAgent, RemoteEndpoint } from './agent';
import { planOverlayEntries, preferLive } from './overlay-plan';

/**
 * The part of the kernel the entries are written through: loomd passes its NetlinkKernel;
 * the control-plane benchmark (test/bench/control-plane.ts) passes a recorder instead.
 */
export type VxlanEntriesKernel = Pick<NetlinkKernel, 'listFdb' | 'addFdb' | 'delFdb' | 'listNeigh' | 'addNeigh' | 'delNeigh'>;

export interface OverlayDrift {
  overlay: string;
  vxlan: string;
  missing: number;
  stale: number;
}

export class OverlayEntries {
  constructor(
    private readonly agent: ClusterAgent,
    private readonly networks: NetworkLookup,
    private readonly kernel: VxlanEntriesKernel,
    private readonly log: Logger,
  ) {}

  /** The remote endpoints of an overlay whose entries are wanted (a moved address's live holder beats its retiring one). */
  private remoteOf(key: string): RemoteEndpoint[] {
    return preferLive([...(this.agent.remote.get(key)?.values() ?? [])], (ep) => this.agent.endpoints.isRetiring(ep));
  }

  /** Whether another remote endpoint of its overlay has its MAC or one of its addresses (a plain scan, no allocation). */
  private sharesWith(ep: RemoteEndpoint): boolean {
    for (const o of this.agent.remote.get(ep.overlay)?.values() ?? []) {
      if (o.host === ep.host && o.endpointId === ep.endpointId) continue;
      if (o.mac === ep.mac) return true;
      if (ep.ip && (o.ip === ep.ip || o.ip6 === ep.ip)) return true;
      if (ep.ip6 && (o.ip === ep.ip6 || o.ip6 === ep.ip6)) return true;
    }
    return false;
  }

  /** A remote endpoint appeared or went: programs it under its network's lock. */
  async changed(ep: RemoteEndpoint, present: boolean): Promise<void> {
    const net = this.networks.byOverlay(ep.overlay);
    if (!net?.overlay) return;
    await this.networks.withNetworkLock(net.id, async () => {
      const now = this.networks.get(net.id);
      if (now?.overlay) await this.program(now, ep, present);
    });
  }

  /** Programs one remote endpoint (the caller holds the network's lock). */
  async program(net: NetworkRecord, ep: RemoteEndpoint, present: boolean): Promise<void> {
    const dev = (net.overlay as NonNullable<NetworkRecord['overlay']>).vxlan;
    try {
      if (present) {
        await this.kernel.addFdb(dev, { mac: ep.mac, dst: ep.vtep });
        for (const ip of [ep.ip, ep.ip6]) if (ip) await this.kernel.addNeigh(dev, { ip, mac: ep.mac });
        return;
      }
      // Only endpoints sharing its MAC or an address can keep an entry alive; usually there is none,
      // and then the full computation (O(endpoints) with allocations, per removal) is skipped.
      const others = this.sharesWith(ep) ? this.remoteOf(ep.overlay).filter((o) => o.host !== ep.host || o.endpointId !== ep.endpointId) : [];
      if (!others.some((o) => o.mac === ep.mac && o.vtep === ep.vtep)) await this.kernel.delFdb(dev, { mac: ep.mac, dst: ep.vtep });
      for (const ip of [ep.ip, ep.ip6]) {
        if (!ip) continue;
        const holder = others.find((o) => o.ip === ip || o.ip6 === ip);
        if (holder) await this.kernel.addNeigh(dev, { ip, mac: holder.mac });
        else await this.kernel.delNeigh(dev, ip);
      }
    } catch (err) {
      // The reconciler repairs what could not be programmed now (device being re-created...).
      this.log.debug({ overlay: ep.overlay, endpoint: ep.endpointId, err: String(err) }, 'could not program a remote endpoint yet');
    }
  }

  /** Programs every known remote endpoint of a network just built (the caller holds its lock). */
  async programAll(net: NetworkRecord): Promise<void> {
    if (!net.overlay) return;
    for (const ep of this.remoteOf(net.overlay.key)) await this.program(net, ep, true);
  }

  /** What `repair` would change now, per overlay (loomctl doctor). */
  async drift(): Promise<OverlayDrift[]> {
    const out: OverlayDrift[] = [];
    for (const { record } of this.networks.list()) {
      const ov = record.overlay;
      if (!ov) continue;
      const plan = planOverlayEntries(this.remoteOf(ov.key), await this.kernel.listFdb(ov.vxlan), await this.kernel.listNeigh(ov.vxlan));
      const missing = plan.addFdb.length + plan.addNeigh.length;
      const stale = plan.delFdb.length + plan.delNeigh.length;
      if (missing || stale) out.push({ overlay: ov.key, vxlan: ov.vxlan, missing, stale });
    }
    return out;
  }

  /** Makes every overlay network's entries match etcd; returns repair counts by kind. */
  async repair(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    const count = (k: string, n: number): void => {
      if (n) counts[k] = (counts[k] ?? 0) + n;
    };
    for (const { record } of this.networks.list()) {
      if (!record.overlay) continue;
      await this.networks.withNetworkLock(record.id, async () => {
        const ov = this.networks.get(record.id)?.overlay;
        if (!ov) return;
        const plan = planOverlayEntries(this.remoteOf(ov.key), await this.kernel.listFdb(ov.vxlan), await this.kernel.listNeigh(ov.vxlan));
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
    return counts;
  }
}
