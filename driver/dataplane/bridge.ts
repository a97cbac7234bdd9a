/**
 * The single-host bridge data plane: one Linux bridge per network carrying the
 * gateway address(es), one veth pair per endpoint with the host end on the
 * bridge. Every "ensure" is idempotent (adopts what is already right) and
 * registers the inverse of what it changed on the StepRunner.
 *
 * Ownership (kernel/link-owner.ts): a link is this loomd's when it carries its mark. Links
 * another loomd marked are never changed or deleted (a conflict is reported); unmarked
 * links with the names of this loomd's records were made by an earlier loom and are marked
 * when met; an unmarked bridge met by a new network is borrowed (borrowed-bridge.ts).
 */
import { conflict } from '../../lib/errors';
import type { NetlinkKernel } from '../kernel/netlink-kernel';
import type { LinkInfo } from '../kernel/netlink-codec';
import { LinkOwner, ownerOf } from '../kernel/link-owner';
import { giveBackBridge, snapshotBridge } from './borrowed-bridge';
import { readIfaceSysctl, readSysctl, writeIfaceSysctl, writeSysctl } from '../kernel/sysctl';
import { TrafficControl } from '../kernel/tc';
import { runChecked, runCommand } from '../kernel/command';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openNetnsFile } from '../kernel/netns-file';
import type { Logger } from '../../lib/logger';
import type { BridgeSnapshot, EndpointRecord, NetworkRecord } from '../model/types';
import { StepRunner } from './steps';
import { bridgeAddresses } from '../model/records';

/** What is at a network's bridge name before the network is made. */
export type BridgeInspection =
  | { kind: 'absent' }
  /** This loomd's mark: made by an earlier attempt at this network (killed before its record was stored). */
  | { kind: 'own' }
  | { kind: 'foreign'; mark: string }
  | { kind: 'not-bridge' }
  /** No loom mark: someone else's bridge, borrowed as `snapshot` describes it. */
  | { kind: 'unmarked'; snapshot: BridgeSnapshot };

/**
 * `creating`: the network or endpoint has no record yet (a new one, or a retry of a create
 * that never finished). An own link found then is a leftover of that attempt, removed if
 * the create fails again; an unmarked one is not this loomd's.
 */
export interface EnsureOptions {
  creating?: boolean;
}

/** The seam between network services and a data plane (bridge today, overlay later). */
export interface DataPlane {
  inspectBridge(name: string): Promise<BridgeInspection>;
  /** Returns whether the bridge is loom's (false: borrowed, `net.adoptedBridge`). */
  ensureNetwork(net: NetworkRecord, steps: StepRunner, opts?: EnsureOptions): Promise<{ createdBridge: boolean }>;
  /** Deletes what loom made; a borrowed bridge is given back as it was found. */
  removeNetwork(net: NetworkRecord): Promise<void>;
  ensureEndpoint(net: NetworkRecord, ep: EndpointRecord, steps: StepRunner, opts?: EnsureOptions): Promise<void>;
  removeEndpoint(net: NetworkRecord, ep: EndpointRecord): Promise<void>;
  /** The MAC of an endpoint's container end if a previous, interrupted attempt already made it. */
  existingPeerMac(ep: Pick<EndpointRecord, 'hostIf' | 'peerIf'>): Promise<string | undefined>;
  /** Re-makes a running container's deleted veth pair and plumbs it into its namespace. */
  replumbEndpoint(net: NetworkRecord, ep: EndpointRecord, gateways: { gateway4?: string | undefined; gateway6?: string | undefined }): Promise<void>;
}

/** The compiled helper that runs inside a container's namespace (from source, as in tests: the build's). */
function netnsHelper(): string {
  const beside = path.join(__dirname, '..', 'kernel', 'netns-helper.js');
  const built = path.join(__dirname, '..', '..', 'dist', 'driver', 'kernel', 'netns-helper.js');
  return fs.existsSync(beside) || !fs.existsSync(built) ? beside : built;
}


export class BridgeDataPlane implements DataPlane {
  constructor(
    private readonly kernel: NetlinkKernel,
    private readonly log: Logger,
    private readonly tc: TrafficControl = new TrafficControl(),
  ) {}

  private owner(link: LinkInfo): LinkOwner {
    return ownerOf(link.alias, this.kernel.mark ?? '');
  }

  /** A link this loomd must not change: another loomd's. */
  private refuseForeign(link: LinkInfo | undefined): void {
    if (link && this.owner(link) === 'foreign') throw conflict(`interface ${link.name} belongs to another loomd (${link.alias})`);
  }

  async inspectBridge(name: string): Promise<BridgeInspection> {
    const link = await this.kernel.findLink(name);
    if (!link) return { kind: 'absent' };
    if (link.kind !== 'bridge') return { kind: 'not-bridge' };
    const owner = this.owner(link);
    if (owner === 'self') return { kind: 'own' };
    if (owner === 'foreign') return { kind: 'foreign', mark: link.alias ?? '' };
    return { kind: 'unmarked', snapshot: await snapshotBridge(this.kernel, link) };
  }

  async ensureNetwork(net: NetworkRecord, steps: StepRunner, opts: EnsureOptions = {}): Promise<{ createdBridge: boolean }> {
    const existing = await this.kernel.findLink(net.bridge);
    if (existing && existing.kind !== 'bridge') {
      throw conflict(`interface ${net.bridge} exists and is not a bridge`);
    }
    this.refuseForeign(existing);
    const owner = existing ? this.owner(existing) : undefined;
    if (!existing) {
      await steps.step(`create bridge ${net.bridge}`, async () => {
        await this.kernel.createBridge(net.bridge, net.mtu);
        return () => this.kernel.deleteOwnedLink(net.bridge);
      });
    } else if (owner === 'self' && opts.creating) {
      // Made by an attempt at this network that died before storing it: loom's own, not borrowed.
      this.log.info({ bridge: net.bridge }, 'found this loomd\'s own bridge from an interrupted create: taking it as its own');
      await steps.step(`take over bridge ${net.bridge}`, async () => () => this.kernel.deleteOwnedLink(net.bridge));
    } else if (owner === 'none' && !net.adoptedBridge) {
      if (opts.creating) throw conflict(`bridge ${net.bridge} exists and is not this loomd's (no owner mark)`);
      // Recorded by this loomd, made by an earlier loom that did not mark its links.
      await steps.step(`mark bridge ${net.bridge} as this loomd's`, () => this.kernel.setOwnerMark(net.bridge));
    }
    if (existing && existing.mtu !== net.mtu) {
      await steps.step(`set ${net.bridge} mtu ${net.mtu}`, async () => {
        await this.kernel.setMtu(net.bridge, net.mtu);
      });
    }
    // Like Docker's bridge driver: no IPv6 at all (not even link-local) on an IPv4-only network.
    await steps.step(`${net.enableIpv6 ? 'enable' : 'disable'} IPv6 on ${net.bridge}`, async () => {
      await writeIfaceSysctl('ipv6', net.bridge, 'disable_ipv6', net.enableIpv6 ? '0' : '1');
      if (net.enableIpv6) await writeIfaceSysctl('ipv6', net.bridge, 'accept_ra', '0');
    });
    for (const a of bridgeAddresses(net)) {
      await steps.step(`add ${a.cidr} to ${net.bridge}`, async () => {
        await this.kernel.addAddress(net.bridge, a.family, a.value, a.len);
      });
    }
    await steps.step(`set ${net.bridge} up`, () => this.kernel.setUp(net.bridge));
    if (net.overlay) await this.ensureVxlan(net, steps, opts);
    if (net.enableIpv6 && !net.internal) {
      await steps.step(`IPv6 forwarding on ${net.bridge}`, () => this.enableIpv6Forwarding(net.bridge));
    }
    if (!net.internal) {
      await steps.step('enable IPv4 forwarding', () => this.enableForwarding());
      // Published ports on 127.0.0.1 are DNATed out of this bridge; the input chain drops the reverse.
      await steps.step(`route_localnet on ${net.bridge}`, () => writeIfaceSysctl('ipv4', net.bridge, 'route_localnet', '1'));
    }
    return { createdBridge: !existing || owner === 'self' || (owner === 'none' && !net.adoptedBridge) };
  }

  private async enableForwarding(): Promise<void> {
    if ((await readSysctl('net.ipv4.ip_forward')) !== '1') {
      await writeSysctl('net.ipv4.ip_forward', '1');
      this.log.info('enabled net.ipv4.ip_forward for routed loom networks');
    }
  }

  /** The overlay's VXLAN device on the bridge: re-created when its VNI or local address is wrong. */
  private async ensureVxlan(net: NetworkRecord, steps: StepRunner, opts: EnsureOptions): Promise<void> {
    const ov = net.overlay;
    if (!ov) return;
    const existing = await this.kernel.findLink(ov.vxlan);
    this.refuseForeign(existing);
    if (existing && this.owner(existing) === 'none') {
      if (opts.creating) throw conflict(`interface ${ov.vxlan} exists and is not this loomd's (no owner mark)`);
      await steps.step(`mark ${ov.vxlan} as this loomd's`, () => this.kernel.setOwnerMark(ov.vxlan));
    }
    const info = existing ? await this.kernel.vxlanInfo(ov.vxlan) : undefined;
    if (info && info.vni === ov.vni && info.local === ov.local) {
      const link = await this.kernel.findLink(ov.vxlan);
      const br = await this.kernel.findLink(net.bridge);
      if (link && br && link.master !== br.index) await steps.step(`attach ${ov.vxlan}`, () => this.kernel.setMaster(ov.vxlan, net.bridge));
      if (link && link.mtu !== net.mtu) await steps.step(`set ${ov.vxlan} mtu`, () => this.kernel.setMtu(ov.vxlan, net.mtu));
      return;
    }
    if (existing) await this.kernel.deleteOwnedLink(ov.vxlan, { unmarkedToo: true });
    await steps.step(`create vxlan ${ov.vxlan} vni ${ov.vni}`, async () => {
      await this.kernel.createVxlan(ov.vxlan, { vni: ov.vni, local: ov.local, mtu: net.mtu, master: net.bridge });
      return () => this.kernel.deleteOwnedLink(ov.vxlan);
    });
    // enable_icc=false holds across hosts too: isolated ports do not talk to each other.
    if (!net.icc) await steps.step(`isolate port ${ov.vxlan}`, () => this.kernel.setPortIsolated(ov.vxlan, true));
  }

  /**
   * IPv6 forwarding for loom's bridges only: `force_forwarding` (Linux 6.17+) forwards what
   * arrives on this bridge without turning the whole host into a router (all.forwarding=1
   * would stop it from accepting router advertisements). Older kernels: a warning.
   */
  private async enableIpv6Forwarding(bridge: string): Promise<void> {
    if ((await readSysctl('net.ipv6.conf.all.forwarding')) === '1') return;
    if ((await readIfaceSysctl('ipv6', bridge, 'force_forwarding')) !== undefined) {
      await writeIfaceSysctl('ipv6', bridge, 'force_forwarding', '1');
      return;
    }
    this.log.warn({ bridge }, 'IPv6 forwarding is off on this host (net.ipv6.conf.all.forwarding=0) and the kernel has no per-interface force_forwarding: IPv6 traffic beyond the bridge will not be routed');
  }

  async removeNetwork(net: NetworkRecord): Promise<void> {
    if (net.overlay) this.leftAlone(await this.kernel.deleteOwnedLink(net.overlay.vxlan, { unmarkedToo: true }), net.overlay.vxlan);
    const link = await this.kernel.findLink(net.bridge);
    if (net.adoptedBridge && link && this.owner(link) === 'none') {
      // Not loom's bridge: give it back as it was found (records of older looms hold no snapshot: loom's addresses only).
      if (net.borrowed) return giveBackBridge(this.kernel, net.bridge, net.borrowed, bridgeAddresses(net).map((a) => a.cidr), this.log);
      for (const a of bridgeAddresses(net)) await this.kernel.delAddress(net.bridge, a.family, a.value, a.len);
      return;
    }
    const removed = await this.kernel.deleteOwnedLink(net.bridge, { unmarkedToo: !net.adoptedBridge });
    if (removed === 'absent') this.log.info({ bridge: net.bridge }, 'bridge was already gone');
    this.leftAlone(removed, net.bridge);
  }

  /** Logs a recorded link that is not this loomd's any more (another loomd's mark): never deleted. */
  private leftAlone(result: 'deleted' | 'absent' | 'not-ours', name: string): void {
    if (result === 'not-ours') this.log.warn({ link: name }, 'a link with the name of one of this loomd\'s records is not this loomd\'s: left alone');
  }

  async ensureEndpoint(net: NetworkRecord, ep: EndpointRecord, steps: StepRunner, opts: EnsureOptions = {}): Promise<void> {
    const host = await this.kernel.findLink(ep.hostIf);
    if (host && host.kind !== 'veth') throw conflict(`interface ${ep.hostIf} exists and is not a veth`);
    this.refuseForeign(host);
    if (!host) {
      // A stale container end of this loomd's would block the pair; anyone else's is reported by the create.
      await this.kernel.deleteOwnedLink(ep.peerIf);
      await steps.step(`create veth ${ep.hostIf}/${ep.peerIf}`, async () => {
        await this.kernel.createVethPair(ep.hostIf, ep.peerIf, { mtu: net.mtu, peerMac: ep.mac, master: net.bridge });
        return () => this.kernel.deleteOwnedLink(ep.hostIf);
      });
      if (!net.icc) await steps.step(`isolate port ${ep.hostIf}`, () => this.kernel.setPortIsolated(ep.hostIf, true));
      await this.shape(net, ep, steps, opts);
      return;
    }
    if (this.owner(host) === 'none') {
      if (opts.creating) throw conflict(`interface ${ep.hostIf} exists and is not this loomd's (no owner mark)`);
      await steps.step(`mark ${ep.hostIf} as this loomd's`, () => this.kernel.setOwnerMark(ep.hostIf));
    }
    const bridge = await this.kernel.findLink(net.bridge);
    if (bridge && host.master !== bridge.index) {
      await steps.step(`attach ${ep.hostIf} to ${net.bridge}`, () => this.kernel.setMaster(ep.hostIf, net.bridge));
      if (!net.icc) await steps.step(`isolate port ${ep.hostIf}`, () => this.kernel.setPortIsolated(ep.hostIf, true));
    }
    if (!host.up) await steps.step(`set ${ep.hostIf} up`, () => this.kernel.setUp(ep.hostIf));
  }

  async replumbEndpoint(net: NetworkRecord, ep: EndpointRecord, gateways: { gateway4?: string | undefined; gateway6?: string | undefined }): Promise<void> {
    if (!ep.sandboxKey) throw conflict(`endpoint ${ep.id} has no sandbox to plumb into`);
    const sandbox = ep.sandboxKey;
    // Opened once, non-blocking and type-checked; both steps use the descriptor, never the path again.
    const nsFd = openNetnsFile(sandbox);
    try {
      const steps = new StepRunner(`re-plumb endpoint ${ep.id.slice(0, 12)}`, this.log);
      await this.ensureEndpoint(net, ep, steps);
      await steps.step(`move ${ep.peerIf} into ${sandbox}`, () => this.kernel.moveToNetns(ep.peerIf, nsFd));
      const req = {
        ifname: ep.peerIf,
        prefix: 'eth',
        addresses: [ep.address, ep.addressV6].filter((a): a is string => Boolean(a)),
        ...(gateways.gateway4 ? { gateway4: gateways.gateway4 } : {}),
        ...(gateways.gateway6 ? { gateway6: gateways.gateway6 } : {}),
      };
      await steps.step('configure the interface inside the container', async () => {
        const nsRef = `/proc/${process.pid}/fd/${nsFd}`;
        const out = await runChecked(runCommand, 'nsenter', [`--net=${nsRef}`, '--', process.execPath, netnsHelper(), JSON.stringify(req)]);
        this.log.info({ endpointId: ep.id, ...JSON.parse(out) }, 're-plumbed an endpoint into its running container');
      });
    } finally {
      fs.closeSync(nsFd);
    }
  }

  /** Bandwidth limits on the host end: tbf for what the container receives, IFB + tbf for what it sends. */
  private async shape(net: NetworkRecord, ep: EndpointRecord, steps: StepRunner, opts: EnsureOptions): Promise<void> {
    const { ingressBps, egressBps } = ep.rates ?? {};
    if (ingressBps) await steps.step(`limit ${ep.hostIf} ingress ${ingressBps}bit/s`, () => this.tc.shapeEgress(ep.hostIf, ingressBps));
    if (egressBps && ep.ifb) {
      const ifb = ep.ifb;
      await steps.step(`create ifb ${ifb}`, async () => {
        // A recorded endpoint's IFB may have been made by an earlier loom, without a mark.
        await this.kernel.deleteOwnedLink(ifb, { unmarkedToo: !opts.creating });
        await this.kernel.createIfb(ifb, net.mtu);
        return () => this.kernel.deleteOwnedLink(ifb);
      });
      await steps.step(`limit ${ep.hostIf} egress ${egressBps}bit/s`, () => this.tc.shapeIngressVia(ep.hostIf, ifb, egressBps));
    }
  }

  async existingPeerMac(ep: Pick<EndpointRecord, 'hostIf' | 'peerIf'>): Promise<string | undefined> {
    const host = await this.kernel.findLink(ep.hostIf);
    const peer = await this.kernel.findLink(ep.peerIf);
    if (!host || !peer || this.owner(host) !== 'self' || this.owner(peer) !== 'self') return undefined;
    return peer.mac || undefined;
  }

  async removeEndpoint(_net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    // Deleting either end removes the pair; the container end may have been moved back by Docker.
    // Recorded names: unmarked links are an earlier loom's; another loomd's are left alone.
    const host = await this.kernel.deleteOwnedLink(ep.hostIf, { unmarkedToo: true });
    const peer = await this.kernel.deleteOwnedLink(ep.peerIf, { unmarkedToo: true });
    if (ep.ifb) this.leftAlone(await this.kernel.deleteOwnedLink(ep.ifb, { unmarkedToo: true }), ep.ifb);
    this.leftAlone(host, ep.hostIf);
    this.leftAlone(peer, ep.peerIf);
    if (host === 'absent' && peer === 'absent') this.log.debug({ endpointId: ep.id }, 'veth pair was already gone');
  }
}
