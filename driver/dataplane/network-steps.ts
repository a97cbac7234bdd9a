/**
 * Creating (or converging) a network's kernel objects, as a table of named steps: the
 * bridge with its MTU, IPv6 setting, gateway addresses and up state; the overlay's VXLAN
 * device on it; the forwarding switches. Every step is idempotent through its condition
 * (what is already right is adopted, not redone) and registers the inverse of what it made.
 *
 * `observeNetwork` reads what is there and refuses what loom must not touch (another
 * loomd's links, a non-bridge under the bridge's name, an unmarked link met by a create)
 * before any step changes anything.
 */
import { conflict } from '../../lib/errors';
import type { LinkOwner } from '../kernel/link-owner';
import type { LinkInfo } from '../kernel/netlink-codec';
import { bridgeAddresses, routesOutside } from '../model/records';
import type { NetworkRecord } from '../model/types';
import type { EnsureOptions } from './data-plane';
import { DataPlaneDeps, ownerOfLink } from './kernel-verbs';
import { SetupStep, defineStep } from './steps';

export interface NetworkContext extends DataPlaneDeps {
  net: NetworkRecord;
  opts: EnsureOptions;
  /** The bridge as found before the table ran (undefined: absent), and whose it is. */
  found: LinkInfo | undefined;
  owner: LinkOwner | undefined;
  /** The overlay's VXLAN device as found, whose it is, and whether its VNI and local address are right. */
  vxlan: LinkInfo | undefined;
  vxlanOwner: LinkOwner | undefined;
  vxlanRight: boolean;
}

/** A link this loomd must not change: another loomd's. */
export function refuseForeign(deps: Pick<DataPlaneDeps, 'kernel'>, link: LinkInfo | undefined): void {
  if (link && ownerOfLink(deps.kernel, link) === 'foreign') throw conflict(`interface ${link.name} belongs to another loomd (${link.alias})`);
}

/** Reads the bridge and the VXLAN device and refuses what must not be touched; changes nothing. */
export async function observeNetwork(deps: DataPlaneDeps, net: NetworkRecord, opts: EnsureOptions): Promise<NetworkContext> {
  const found = await deps.kernel.findLink(net.bridge);
  if (found && found.kind !== 'bridge') throw conflict(`interface ${net.bridge} exists and is not a bridge`);
  refuseForeign(deps, found);
  const owner = found ? ownerOfLink(deps.kernel, found) : undefined;
  if (owner === 'none' && !net.adoptedBridge && opts.creating) throw conflict(`bridge ${net.bridge} exists and is not this loomd's (no owner mark)`);
  const ov = net.overlay;
  const vxlan = ov ? await deps.kernel.findLink(ov.vxlan) : undefined;
  refuseForeign(deps, vxlan);
  const vxlanOwner = vxlan ? ownerOfLink(deps.kernel, vxlan) : undefined;
  if (ov && vxlanOwner === 'none' && opts.creating) throw conflict(`interface ${ov.vxlan} exists and is not this loomd's (no owner mark)`);
  const info = ov && vxlan ? await deps.kernel.vxlanInfo(ov.vxlan) : undefined;
  const vxlanRight = Boolean(ov && info && info.vni === ov.vni && info.local === ov.local);
  return { ...deps, net, opts, found, owner, vxlan, vxlanOwner, vxlanRight };
}

/** Whether the bridge is loom's to delete with the network (false: borrowed). */
export function createdBridge(c: NetworkContext): boolean {
  return !c.found || c.owner === 'self' || (c.owner === 'none' && !c.net.adoptedBridge);
}

type Step = SetupStep<NetworkContext>;

export const createBridge: Step = defineStep({
  id: 'create-bridge',
  when: (c) => !c.found,
  name: (c) => `create bridge ${c.net.bridge}`,
  run: (c) => c.kernel.createBridge(c.net.bridge, c.net.mtu),
  undo: (c) => c.kernel.deleteOwnedLink(c.net.bridge),
});

/** Made by an attempt at this network that died before storing it: loom's own, not borrowed. */
export const takeOverBridge: Step = defineStep({
  id: 'take-over-bridge',
  when: (c) => c.owner === 'self' && Boolean(c.opts.creating),
  name: (c) => `take over bridge ${c.net.bridge}`,
  run: async (c) => c.log.info({ bridge: c.net.bridge }, 'found this loomd\'s own bridge from an interrupted create: taking it as its own'),
  undo: (c) => c.kernel.deleteOwnedLink(c.net.bridge),
});

/** Recorded by this loomd, made by an earlier loom that did not mark its links. */
export const markBridge: Step = defineStep({
  id: 'mark-bridge',
  when: (c) => c.owner === 'none' && !c.net.adoptedBridge,
  name: (c) => `mark bridge ${c.net.bridge} as this loomd's`,
  run: (c) => c.kernel.setOwnerMark(c.net.bridge),
});

export const bridgeMtu: Step = defineStep({
  id: 'bridge-mtu',
  when: (c) => c.found !== undefined && c.found.mtu !== c.net.mtu,
  name: (c) => `set ${c.net.bridge} mtu ${c.net.mtu}`,
  run: (c) => c.kernel.setMtu(c.net.bridge, c.net.mtu),
});

/** Like Docker's bridge driver: no IPv6 at all (not even link-local) on an IPv4-only network. */
export const bridgeIpv6: Step = defineStep({
  id: 'bridge-ipv6',
  when: () => true,
  name: (c) => `${c.net.enableIpv6 ? 'enable' : 'disable'} IPv6 on ${c.net.bridge}`,
  run: async (c) => {
    await c.sysctl.writeIface('ipv6', c.net.bridge, 'disable_ipv6', c.net.enableIpv6 ? '0' : '1');
    if (c.net.enableIpv6) await c.sysctl.writeIface('ipv6', c.net.bridge, 'accept_ra', '0');
  },
});

/** The gateway addresses (an address already there is fine); they go with the bridge or are given back with it. */
export const gatewayAddress: Step = defineStep({
  id: 'gateway-address',
  each: (c: NetworkContext) => bridgeAddresses(c.net),
  when: () => true,
  name: (c, a) => `add ${a.cidr} to ${c.net.bridge}`,
  run: (c, a) => c.kernel.addAddress(c.net.bridge, a.family, a.value, a.len),
});

export const bridgeUp: Step = defineStep({
  id: 'bridge-up',
  when: () => true,
  name: (c) => `set ${c.net.bridge} up`,
  run: (c) => c.kernel.setUp(c.net.bridge),
});

/** The overlay of a context that has one (steps below only run when it does). */
const overlayOf = (c: NetworkContext): NonNullable<NetworkRecord['overlay']> => c.net.overlay as NonNullable<NetworkRecord['overlay']>;

export const markVxlan: Step = defineStep({
  id: 'mark-vxlan',
  when: (c) => c.net.overlay !== undefined && c.vxlanOwner === 'none',
  name: (c) => `mark ${overlayOf(c).vxlan} as this loomd's`,
  run: (c) => c.kernel.setOwnerMark(overlayOf(c).vxlan),
});

/** A right VXLAN device on the wrong bridge (the bridge was re-created) is attached again. */
export const attachVxlan: Step = defineStep({
  id: 'attach-vxlan',
  when: async (c) => {
    if (!c.net.overlay || !c.vxlanRight) return false;
    const link = await c.kernel.findLink(c.net.overlay.vxlan);
    const br = await c.kernel.findLink(c.net.bridge);
    return Boolean(link && br && link.master !== br.index);
  },
  name: (c) => `attach ${overlayOf(c).vxlan}`,
  run: (c) => c.kernel.setMaster(overlayOf(c).vxlan, c.net.bridge),
});

export const vxlanMtu: Step = defineStep({
  id: 'vxlan-mtu',
  when: async (c) => {
    if (!c.net.overlay || !c.vxlanRight) return false;
    const link = await c.kernel.findLink(c.net.overlay.vxlan);
    return Boolean(link && link.mtu !== c.net.mtu);
  },
  name: (c) => `set ${overlayOf(c).vxlan} mtu`,
  run: (c) => c.kernel.setMtu(overlayOf(c).vxlan, c.net.mtu),
});

/** A VXLAN device with the wrong VNI or local address is deleted and made again. */
export const createVxlan: Step = defineStep({
  id: 'create-vxlan',
  when: (c) => c.net.overlay !== undefined && !c.vxlanRight,
  name: (c) => `create vxlan ${overlayOf(c).vxlan} vni ${overlayOf(c).vni}`,
  run: async (c) => {
    const ov = overlayOf(c);
    if (c.vxlan) await c.kernel.deleteOwnedLink(ov.vxlan, { unmarkedToo: true });
    await c.kernel.createVxlan(ov.vxlan, { vni: ov.vni, local: ov.local, mtu: c.net.mtu, master: c.net.bridge });
  },
  undo: (c) => c.kernel.deleteOwnedLink(overlayOf(c).vxlan),
});

/** enable_icc=false holds across hosts too: isolated ports do not talk to each other. */
export const isolateVxlan: Step = defineStep({
  id: 'isolate-vxlan',
  when: (c) => c.net.overlay !== undefined && !c.vxlanRight && !c.net.icc,
  name: (c) => `isolate port ${overlayOf(c).vxlan}`,
  run: (c) => c.kernel.setPortIsolated(overlayOf(c).vxlan, true),
});

/**
 * IPv6 forwarding for loom's bridges only: `force_forwarding` (Linux 6.17+) forwards what
 * arrives on this bridge without turning the whole host into a router (all.forwarding=1
 * would stop it from accepting router advertisements). Older kernels: a warning.
 */
export const ipv6Forwarding: Step = defineStep({
  id: 'ipv6-forwarding',
  when: (c) => c.net.enableIpv6 && routesOutside(c.net),
  name: (c) => `IPv6 forwarding on ${c.net.bridge}`,
  run: async (c) => {
    const bridge = c.net.bridge;
    if ((await c.sysctl.read('net.ipv6.conf.all.forwarding')) === '1') return;
    if ((await c.sysctl.readIface('ipv6', bridge, 'force_forwarding')) !== undefined) {
      await c.sysctl.writeIface('ipv6', bridge, 'force_forwarding', '1');
      return;
    }
    c.log.warn({ bridge }, 'IPv6 forwarding is off on this host (net.ipv6.conf.all.forwarding=0) and the kernel has no per-interface force_forwarding: IPv6 traffic beyond the bridge will not be routed');
  },
});

/** Host-wide and left on: other routed networks may need it (never undone, never given back). */
export const ipv4Forwarding: Step = defineStep({
  id: 'ipv4-forwarding',
  when: (c) => routesOutside(c.net),
  name: () => 'enable IPv4 forwarding',
  run: async (c) => {
    if ((await c.sysctl.read('net.ipv4.ip_forward')) === '1') return;
    await c.sysctl.write('net.ipv4.ip_forward', '1');
    c.log.info('enabled net.ipv4.ip_forward for routed loom networks');
  },
});

/** Published ports on 127.0.0.1 are DNATed out of this bridge; the firewall's input chain drops the reverse. */
export const routeLocalnet: Step = defineStep({
  id: 'route-localnet',
  when: (c) => routesOutside(c.net),
  name: (c) => `route_localnet on ${c.net.bridge}`,
  run: (c) => c.sysctl.writeIface('ipv4', c.net.bridge, 'route_localnet', '1'),
});

/** The table, in order: bridge, its settings and addresses, up; the VXLAN device; forwarding. */
export const NETWORK_STEPS: ReadonlyArray<Step> = [
  createBridge,
  takeOverBridge,
  markBridge,
  bridgeMtu,
  bridgeIpv6,
  gatewayAddress,
  bridgeUp,
  markVxlan,
  attachVxlan,
  vxlanMtu,
  createVxlan,
  isolateVxlan,
  ipv6Forwarding,
  ipv4Forwarding,
  routeLocalnet,
];
