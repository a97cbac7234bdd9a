/**
 * The data plane of an overlay network with a namespace of its own (docs/overlay.md, "The data
 * plane on each host"; records with `overlay.ns`):
 *
 *   namespace loom-<instance>-<id>:  bridge lm-<id>  ports: lk<id> (gateway), lu<id> (tunnel),
 *                                     lv<endpoint> (one per container), br_netfilter off
 *   host namespace:                  lg<id> (gateway addresses, routing, NAT, firewall),
 *                                     lt<id> <-tc mirred both ways-> lx<id> (VXLAN, FDB, neighbours)
 *
 * Inner frames between containers (on one host or across hosts) cross only the namespace's
 * bridge, never the host's netfilter hooks; traffic to the gateway, NAT and published ports is
 * routed in the host's namespace through lg<id>, where loom's firewall names that interface.
 * Every ensure is idempotent (what is right is adopted) and registers the inverse of what it made.
 */
import * as fs from 'node:fs';
import { conflict, LoomError } from '../../lib/errors';
import type { NetlinkKernel } from '../kernel/netlink-kernel';
import type { OverlayNetns } from '../kernel/overlay-netns';
import type { TrafficControl } from '../kernel/tc';
import { gatewayMacFor } from '../model/mac';
import { bridgeAddresses, gatewayIfOf, routesOutside } from '../model/records';
import type { EndpointRecord, NetworkRecord, OverlayNsLayout } from '../model/types';
import type { EnsureOptions } from './data-plane';
import { DataPlaneDeps, ownerOfLink } from './kernel-verbs';
import { refuseForeign } from './network-steps';
import type { StepRunner } from './steps';

/** What the namespace layout needs beyond the bridge data plane's verbs. */
export interface OverlayNsDeps {
  kernel: Pick<NetlinkKernel, 'nsidOf' | 'findLinkIn' | 'listLinksIn' | 'moveInto' | 'deleteOwnedLinkIn' | 'createVethInto'>;
  netns: Pick<OverlayNetns, 'exists' | 'ensure' | 'remove' | 'open' | 'setup' | 'isolatePort'>;
  tc: Pick<TrafficControl, 'redirectBothWays' | 'redirects'>;
  /** --proc-sys, as the helper inside the namespace sees it. */
  procSys: string;
}

const layoutOf = (net: NetworkRecord): OverlayNsLayout => net.overlay?.ns as OverlayNsLayout;

/** Runs `fn` with the namespace open and its id; the descriptor is closed after. */
async function withNs<T>(ns: OverlayNsDeps, name: string, fn: (fd: number, nsid: number) => Promise<T>): Promise<T> {
  const fd = ns.netns.open(name);
  try {
    return await fn(fd, await ns.kernel.nsidOf(fd));
  } finally {
    fs.closeSync(fd);
  }
}

export async function ensureNsNetwork(d: DataPlaneDeps, ns: OverlayNsDeps, net: NetworkRecord, steps: StepRunner, opts: EnsureOptions): Promise<void> {
  const L = layoutOf(net);
  const ov = net.overlay as NonNullable<NetworkRecord['overlay']>;
  const mark = d.kernel.mark ?? '';
  // Refuse what must not be touched before changing anything.
  const found = new Map<string, Awaited<ReturnType<typeof d.kernel.findLink>>>();
  for (const name of [L.gatewayIf, L.tunnelIf, ov.vxlan]) {
    const link = await d.kernel.findLink(name);
    refuseForeign(d, link);
    if (link && opts.creating && ownerOfLink(d.kernel, link) === 'none') throw conflict(`interface ${name} exists and is not this loomd's (no owner mark)`);
    found.set(name, link);
  }
  await steps.step(`create namespace ${L.netns}`, async () => {
    const created = await ns.netns.ensure(L.netns);
    return created ? () => ns.netns.remove(L.netns) : undefined;
  });
  await steps.step(`set up bridge ${net.bridge} in ${L.netns}`, async () => {
    // Every port of this loomd in the namespace (a bridge made again has lost them all).
    await ns.netns.setup(L.netns, { mark, bridge: net.bridge, mtu: net.mtu, procSys: ns.procSys, bridgeNf: '0', attach: '*', isolate: !net.icc, open: [L.gatewayPeer] });
  });
  await withNs(ns, L.netns, async (fd, nsid) => {
    const br = await ns.kernel.findLinkIn(nsid, net.bridge);
    if (!br) throw new LoomError('internal', `bridge ${net.bridge} is missing in ${L.netns} right after it was set up`);
    let tunnelMade = false;
    for (const [hostIf, peer] of [[L.gatewayIf, L.gatewayPeer], [L.tunnelIf, L.tunnelPeer]] as const) {
      const host = found.get(hostIf);
      if (!host) {
        await steps.step(`create veth ${hostIf}/${peer}`, async () => {
          await ns.kernel.deleteOwnedLinkIn(nsid, peer);
          await d.kernel.deleteOwnedLink(peer);
          // The gateway's host end keeps one MAC for good (created as the pair's peer to carry it).
          if (hostIf === L.gatewayIf) await d.kernel.createVethPair(peer, hostIf, { mtu: net.mtu, peerMac: gatewayMacFor(mark, net.id) });
          else await d.kernel.createVethPair(hostIf, peer, { mtu: net.mtu });
          return () => d.kernel.deleteOwnedLink(hostIf);
        });
        if (hostIf === L.tunnelIf) tunnelMade = true;
      } else {
        if (ownerOfLink(d.kernel, host) === 'none') await steps.step(`mark ${hostIf} as this loomd's`, () => d.kernel.setOwnerMark(hostIf));
        if (host.mtu !== net.mtu) await steps.step(`set ${hostIf} mtu ${net.mtu}`, () => d.kernel.setMtu(hostIf, net.mtu));
      }
      // Its namespace end is still here when it was just made (or a create died before the move).
      if (await d.kernel.findLink(peer)) await steps.step(`move ${peer} into ${L.netns}`, () => ns.kernel.moveInto(peer, fd, br.index));
    }
    // The gateway side: addresses, IPv6 setting, up.
    const gw = L.gatewayIf;
    await steps.step(`${net.enableIpv6 ? 'enable' : 'disable'} IPv6 on ${gw}`, async () => {
      await d.sysctl.writeIface('ipv6', gw, 'disable_ipv6', net.enableIpv6 ? '0' : '1');
      if (net.enableIpv6) await d.sysctl.writeIface('ipv6', gw, 'accept_ra', '0');
    });
    for (const a of bridgeAddresses(net)) await steps.step(`add ${a.cidr} to ${gw}`, () => d.kernel.addAddress(gw, a.family, a.value, a.len));
    await steps.step(`set ${gw} up`, () => d.kernel.setUp(gw));
    await steps.step(`set ${L.tunnelIf} up`, () => d.kernel.setUp(L.tunnelIf));
    // The VXLAN device: in the host's namespace (its socket and FDB there), on no bridge.
    const vx = found.get(ov.vxlan);
    const info = vx ? await d.kernel.vxlanInfo(ov.vxlan) : undefined;
    const vxRight = Boolean(vx && info && info.vni === ov.vni && info.local === ov.local && vx.master === undefined);
    if (!vxRight) {
      await steps.step(`create vxlan ${ov.vxlan} vni ${ov.vni}`, async () => {
        if (vx) await d.kernel.deleteOwnedLink(ov.vxlan, { unmarkedToo: true });
        await d.kernel.createVxlan(ov.vxlan, { vni: ov.vni, local: ov.local, mtu: net.mtu });
        return () => d.kernel.deleteOwnedLink(ov.vxlan);
      });
    } else {
      if (vx && ownerOfLink(d.kernel, vx) === 'none') await steps.step(`mark ${ov.vxlan} as this loomd's`, () => d.kernel.setOwnerMark(ov.vxlan));
      if (vx && vx.mtu !== net.mtu) await steps.step(`set ${ov.vxlan} mtu`, () => d.kernel.setMtu(ov.vxlan, net.mtu));
      if (vx && !vx.up) await steps.step(`set ${ov.vxlan} up`, () => d.kernel.setUp(ov.vxlan));
    }
    const tied = !tunnelMade && vxRight && (await ns.tc.redirects(L.tunnelIf, ov.vxlan)) && (await ns.tc.redirects(ov.vxlan, L.tunnelIf));
    if (!tied) await steps.step(`redirect ${L.tunnelIf} <-> ${ov.vxlan}`, () => ns.tc.redirectBothWays(L.tunnelIf, ov.vxlan));
    // enable_icc=false holds across hosts too: the tunnel port is isolated like the containers' ports.
    if (!net.icc && tunnelMade) await steps.step(`isolate port ${L.tunnelPeer}`, () => ns.netns.isolatePort(L.netns, L.tunnelPeer));
  });
  if (routesOutside(net)) {
    const gw = gatewayIfOf(net);
    if (net.enableIpv6) {
      await steps.step(`IPv6 forwarding on ${gw}`, async () => {
        if ((await d.sysctl.read('net.ipv6.conf.all.forwarding')) === '1') return;
        if ((await d.sysctl.readIface('ipv6', gw, 'force_forwarding')) !== undefined) await d.sysctl.writeIface('ipv6', gw, 'force_forwarding', '1');
        else d.log.warn({ gateway: gw }, 'IPv6 forwarding is off on this host and the kernel has no per-interface force_forwarding: IPv6 traffic beyond the overlay will not be routed');
      });
    }
    await steps.step('enable IPv4 forwarding', async () => {
      if ((await d.sysctl.read('net.ipv4.ip_forward')) !== '1') await d.sysctl.write('net.ipv4.ip_forward', '1');
    });
    await steps.step(`route_localnet on ${gw}`, () => d.sysctl.writeIface('ipv4', gw, 'route_localnet', '1'));
  }
}

/** Deletes the host-side links and the namespace (with the bridge and every port left in it). */
export async function removeNsNetwork(d: DataPlaneDeps, ns: OverlayNsDeps, net: NetworkRecord): Promise<void> {
  const L = layoutOf(net);
  const ov = net.overlay as NonNullable<NetworkRecord['overlay']>;
  for (const name of [L.gatewayIf, L.tunnelIf, ov.vxlan]) {
    if ((await d.kernel.deleteOwnedLink(name, { unmarkedToo: true })) === 'not-ours') d.log.warn({ link: name }, 'a link with the name of one of this loomd\'s records is not this loomd\'s: left alone');
  }
  if (!(await ns.netns.remove(L.netns))) d.log.info({ netns: L.netns }, 'overlay namespace was already gone');
}

/**
 * An endpoint: the veth pair is made in the host's namespace (Docker moves the container end
 * by name), its host end moved into the overlay's namespace onto the bridge and up in the
 * same request. ICC off: the port is isolated (`ip -n`, the only per-endpoint process).
 */
export async function ensureNsEndpoint(d: DataPlaneDeps, ns: OverlayNsDeps, net: NetworkRecord, ep: EndpointRecord, steps: StepRunner, opts: EnsureOptions): Promise<void> {
  const L = layoutOf(net);
  if (!ns.netns.exists(L.netns)) throw new LoomError('unavailable', `the namespace ${L.netns} of network ${net.id.slice(0, 12)} is missing (the reconciler makes it again)`);
  await withNs(ns, L.netns, async (fd, nsid) => {
    const inNs = await ns.kernel.findLinkIn(nsid, ep.hostIf);
    const inHost = inNs ? undefined : await d.kernel.findLink(ep.hostIf);
    // What is in the namespace is this loomd's (the host end made there carries no mark); what is here is judged by its mark.
    for (const link of [inNs, inHost]) {
      if (link && link.kind !== 'veth') throw conflict(`interface ${ep.hostIf} exists and is not a veth`);
      refuseForeign(d, link);
    }
    if (inHost && opts.creating && ownerOfLink(d.kernel, inHost) === 'none') throw conflict(`interface ${ep.hostIf} exists and is not this loomd's (no owner mark)`);
    const br = await ns.kernel.findLinkIn(nsid, net.bridge);
    if (!br) throw new LoomError('unavailable', `bridge ${net.bridge} is missing in ${L.netns} (the reconciler makes it again)`);
    if (!inNs && !inHost) {
      await steps.step(`create veth ${ep.hostIf} (in ${L.netns}) / ${ep.peerIf}`, async () => {
        await d.kernel.deleteOwnedLink(ep.peerIf);
        await ns.kernel.createVethInto(ep.hostIf, ep.peerIf, { nsFd: fd, masterIndex: br.index, mtu: net.mtu, peerMac: ep.mac });
        return async () => {
          await ns.kernel.deleteOwnedLinkIn(nsid, ep.hostIf, { unmarkedToo: true });
        };
      });
    } else if (!inNs) {
      // Left in this namespace by an older attempt: moved in.
      await steps.step(`move ${ep.hostIf} into ${L.netns}`, () => ns.kernel.moveInto(ep.hostIf, fd, br.index));
    } else if (inNs.master !== br.index || !inNs.up) {
      await steps.step(`attach ${ep.hostIf} to ${net.bridge}`, async () => {
        await ns.netns.setup(L.netns, { mark: d.kernel.mark ?? '', bridge: net.bridge, mtu: net.mtu, procSys: ns.procSys, bridgeNf: '0', attach: [ep.hostIf], isolate: !net.icc });
      });
    }
    if (!net.icc && !inNs) await steps.step(`isolate port ${ep.hostIf}`, () => ns.netns.isolatePort(L.netns, ep.hostIf));
    if (ep.rates && !inNs) d.log.warn({ endpointId: ep.id }, 'bandwidth limits are not applied on overlay networks with a namespace of their own (not implemented)');
  });
}

export async function removeNsEndpoint(d: DataPlaneDeps, ns: OverlayNsDeps, net: NetworkRecord, ep: EndpointRecord): Promise<Array<['deleted' | 'absent' | 'not-ours', string]>> {
  const L = layoutOf(net);
  const out: Array<['deleted' | 'absent' | 'not-ours', string]> = [];
  if (ns.netns.exists(L.netns)) out.push([await withNs(ns, L.netns, (_fd, nsid) => ns.kernel.deleteOwnedLinkIn(nsid, ep.hostIf, { unmarkedToo: true })), ep.hostIf]);
  out.push([await d.kernel.deleteOwnedLink(ep.hostIf, { unmarkedToo: true }), ep.hostIf]);
  out.push([await d.kernel.deleteOwnedLink(ep.peerIf, { unmarkedToo: true }), ep.peerIf]);
  if (ep.ifb) out.push([await d.kernel.deleteOwnedLink(ep.ifb, { unmarkedToo: true }), ep.ifb]);
  return out;
}

/** The MAC of the container end of an interrupted attempt (its host end in the namespace or still here). */
export async function nsPeerMac(d: DataPlaneDeps, ns: OverlayNsDeps, net: NetworkRecord, ep: Pick<EndpointRecord, 'hostIf' | 'peerIf'>): Promise<string | undefined> {
  const L = layoutOf(net);
  const peer = await d.kernel.findLink(ep.peerIf);
  if (!peer || ownerOfLink(d.kernel, peer) !== 'self') return undefined;
  const host = (await d.kernel.findLink(ep.hostIf)) ?? (ns.netns.exists(L.netns) ? await withNs(ns, L.netns, (_fd, nsid) => ns.kernel.findLinkIn(nsid, ep.hostIf)) : undefined);
  return host && ownerOfLink(d.kernel, host) !== 'foreign' ? peer.mac || undefined : undefined;
}
