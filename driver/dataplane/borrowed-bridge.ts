/**
 * Borrowed bridges. A bridge named by com.docker.network.bridge.name that existed before
 * its network and carries no loom mark belongs to someone else: loom records what it was
 * like before its first change (a BridgeSnapshot, kept with the network and, while the
 * network is being created, under its own store key so a retry after a crash still knows
 * it) and gives it back exactly when the network is removed or its creation fails.
 *
 * What loom changes on a bridge, and so what is recorded: MTU, up/down, the per-interface
 * sysctls in BORROWED_SYSCTLS, and addresses (its gateways; and disable_ipv6=1, like a bridge
 * going down, makes the kernel drop the bridge's IPv6 addresses, which are added back). The host-wide
 * net.ipv4.ip_forward is not the bridge's and is left on.
 * Hazard: what the kernel drops with IPv6 and cannot be read back from the bridge (routes
 * through it, address flags and lifetimes) is not restored; docs/operations.md says so.
 */
import type { LinkInfo } from '../kernel/netlink-codec';
import type { Logger } from '../../lib/logger';
import type { BridgeSnapshot } from '../model/types';
import { parseIpMaybeCidr } from '../../lib/prefix';
import type { DataPlaneKernel, DataPlaneSysctl } from './kernel-verbs';

type Kernel = Pick<DataPlaneKernel, 'findLink' | 'listAddresses' | 'addAddress' | 'delAddress' | 'setMtu' | 'setUp' | 'setDown'>;

/** Per-interface sysctls loom writes on a network's bridge (the steps bridge-ipv6, ipv6-forwarding and route-localnet of network-steps.ts). */
export const BORROWED_SYSCTLS: ReadonlyArray<readonly ['ipv4' | 'ipv6', string]> = [
  ['ipv6', 'disable_ipv6'],
  ['ipv6', 'accept_ra'],
  ['ipv6', 'force_forwarding'],
  ['ipv4', 'route_localnet'],
];

const linkLocal6 = (cidr: string): boolean => /^fe[89ab][0-9a-f]:/i.test(cidr);

async function addressesOf(kernel: Kernel, index: number): Promise<string[]> {
  return (await kernel.listAddresses()).filter((a) => a.index === index && !linkLocal6(a.cidr)).map((a) => a.cidr).sort();
}

/** The bridge as it is now (before loom touches it). */
export async function snapshotBridge(kernel: Kernel, sysctl: DataPlaneSysctl, link: LinkInfo): Promise<BridgeSnapshot> {
  const sysctls: Record<string, string> = {};
  for (const [family, leaf] of BORROWED_SYSCTLS) {
    const value = await sysctl.readIface(family, link.name, leaf);
    if (value !== undefined) sysctls[`${family}.${leaf}`] = value;
  }
  return { mtu: link.mtu, up: link.up, sysctls, addresses: await addressesOf(kernel, link.index), takenAt: new Date().toISOString() };
}

/**
 * Gives a borrowed bridge back as `before` describes it: loom's addresses off, sysctls, the
 * addresses it held, MTU and up/down as they were. Continues past failures and throws one
 * error naming them all. `loomAddresses`: the gateway addresses (CIDR) loom put on it.
 */
export async function giveBackBridge(kernel: Kernel, sysctl: DataPlaneSysctl, bridge: string, before: BridgeSnapshot, loomAddresses: string[], log: Logger): Promise<void> {
  const link = await kernel.findLink(bridge);
  if (!link) {
    log.info({ bridge }, 'borrowed bridge is gone: nothing to give back');
    return;
  }
  const failures: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      failures.push(`${what}: ${(err as Error).message}`);
    }
  };
  const ip = (cidr: string): [4 | 6, bigint, number] => {
    const p = parseIpMaybeCidr(cidr);
    return [p.family, p.value, p.len ?? (p.family === 4 ? 32 : 128)];
  };
  for (const cidr of loomAddresses) {
    if (!before.addresses.includes(cidr)) await attempt(`remove ${cidr}`, () => kernel.delAddress(bridge, ...ip(cidr)));
  }
  // Down before addresses: a bridge going down drops its IPv6 addresses (keep_addr_on_down=0).
  const current = await kernel.findLink(bridge);
  if (current && current.mtu !== before.mtu) await attempt(`mtu ${before.mtu}`, () => kernel.setMtu(bridge, before.mtu));
  if (current && current.up !== before.up) await attempt(before.up ? 'set up' : 'set down', () => (before.up ? kernel.setUp(bridge) : kernel.setDown(bridge)));
  // disable_ipv6 last: turning IPv6 back on must precede re-adding IPv6 addresses, turning it off follows the rest.
  const keys = Object.keys(before.sysctls).sort((a, b) => Number(a === 'ipv6.disable_ipv6') - Number(b === 'ipv6.disable_ipv6'));
  for (const key of keys) {
    const [family, leaf] = key.split('.') as ['ipv4' | 'ipv6', string];
    const want = before.sysctls[key] as string;
    if ((await sysctl.readIface(family, bridge, leaf)) !== want) await attempt(`${key}=${want}`, () => sysctl.writeIface(family, bridge, leaf, want));
  }
  const now = await addressesOf(kernel, link.index);
  for (const cidr of before.addresses) {
    if (!now.includes(cidr)) await attempt(`add back ${cidr}`, () => kernel.addAddress(bridge, ...ip(cidr)));
  }
  if (failures.length) throw new Error(`give back bridge ${bridge}: ${failures.join('; ')}`);
  log.info({ bridge }, 'gave a borrowed bridge back as it was found');
}
