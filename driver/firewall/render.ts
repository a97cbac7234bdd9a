/**
 * Pure rendering of loom's firewall (checked with golden files in test/unit).
 *
 * Each loomd has its own objects, named after its instance id (firewallNames), so two
 * loomd on one host never write each other's rules:
 * 1. `table inet loom-<instance>` (nftables) is the authority for this loomd's bridges:
 *    isolation between its networks, ICC, internal networks, inbound policy and outbound
 *    NAT. It is always replaced whole, in one nft transaction. Chains are named after the
 *    whole network id (`net-<id>-out`), so no two networks share one.
 * 2. A shim in iptables' filter FORWARD chain (chain LOOM-FWD-<instance>, one jump):
 *    a packet must be accepted by every base chain on the forward hook, and hosts
 *    (and dockerd) often set the iptables FORWARD policy to DROP. The shim only
 *    accepts traffic of this loomd's bridges, so the decision stays in its table.
 */
import type { FirewallNetwork } from './model';
import type { PublishedPort } from '../model/port-map';
import { ownerMark } from '../kernel/link-owner';

/** The names of one loomd's firewall objects. */
export interface FirewallNames {
  /** nftables table (family inet). */
  table: string;
  /** iptables/ip6tables chain of the FORWARD shim. */
  chain: string;
  /** The loomd's owner mark, written into comments. */
  mark: string;
}

export function firewallNames(instance: string): FirewallNames {
  return { table: `loom-${instance}`, chain: `LOOM-FWD-${instance}`, mark: ownerMark(instance) };
}

/** Bridges Docker itself creates by default; loom networks must not reach into them. */
const DOCKER_BRIDGES = ['docker0', 'docker_gwbridge', 'br-*'];

/** The whole id: ids that share a prefix or differ only in case get chains of their own. */
const chainId = (n: FirewallNetwork): string => n.id;
const q = (ifname: string): string => `"${ifname}"`;
const byBridge = (a: FirewallNetwork, b: FirewallNetwork): number => (a.bridge < b.bridge ? -1 : a.bridge > b.bridge ? 1 : 0);

function renderNetworkChains(n: FirewallNetwork): string[] {
  const id = chainId(n);
  const out: string[] = [];
  out.push(`\tchain net-${id}-out {`);
  out.push(`\t\tcomment "from network ${n.id.slice(0, 12)} (${n.bridge})"`);
  out.push(`\t\toifname ${q(n.bridge)} ${n.icc ? 'accept' : 'drop'}`);
  out.push(`\t\toifname @bridges drop`);
  if (n.internal) {
    out.push(`\t\tdrop`);
  } else {
    for (const b of DOCKER_BRIDGES) out.push(`\t\toifname ${q(b)} drop`);
    out.push(`\t\taccept`);
  }
  out.push(`\t}`);
  out.push(`\tchain net-${id}-in {`);
  out.push(`\t\tcomment "into network ${n.id.slice(0, 12)} (${n.bridge})"`);
  if (!n.internal) {
    out.push(`\t\tct state established,related accept`);
    out.push(`\t\tct status dnat accept`);
  }
  out.push(`\t\tdrop`);
  out.push(`\t}`);
  return out;
}

/** One DNAT rule of the `published` chain. */
function dnatRule(p: PublishedPort, forOutput: boolean): string {
  const match: string[] = [];
  if (p.family === 4) {
    match.push(p.hostIp === '0.0.0.0' ? 'meta nfproto ipv4' : `ip daddr ${p.hostIp}`);
  } else {
    match.push(p.hostIp === '::' ? 'meta nfproto ipv6' : `ip6 daddr ${p.hostIp}`);
    // ::1 cannot be routed to a container: local IPv6 traffic to it is left alone.
    if (forOutput && p.hostIp === '::') match.push('ip6 daddr != ::1');
  }
  const to = p.family === 4 ? `ip to ${p.containerIp}:${p.containerPort}` : `ip6 to [${p.containerIp}]:${p.containerPort}`;
  return `${match.join(' ')} ${p.proto} dport ${p.hostPort} dnat ${to}`;
}

const byPort = (a: PublishedPort, b: PublishedPort): number =>
  a.hostPort - b.hostPort || a.proto.localeCompare(b.proto) || a.family - b.family || (a.hostIp < b.hostIp ? -1 : a.hostIp > b.hostIp ? 1 : 0);

/** This loomd's whole table for these networks, as an atomic replace script for `nft -f -`. */
export function renderNftScript(networks: readonly FirewallNetwork[], names: FirewallNames): string {
  const lines = [`table inet ${names.table}`, `delete table inet ${names.table}`];
  if (networks.length === 0) return lines.join('\n') + '\n';
  const nets = [...networks].sort(byBridge);
  lines.push(`table inet ${names.table} {`);
  lines.push(`\tcomment "managed by loomd ${names.mark}: replaced whole on every change"`);
  lines.push(`\tset bridges {`);
  lines.push(`\t\ttype ifname`);
  lines.push(`\t\telements = { ${nets.map((n) => q(n.bridge)).join(', ')} }`);
  lines.push(`\t}`);
  for (const n of nets) lines.push(...renderNetworkChains(n));
  lines.push(`\tchain forward {`);
  lines.push(`\t\ttype filter hook forward priority filter; policy accept;`);
  lines.push(`\t\tiifname vmap { ${nets.map((n) => `${q(n.bridge)} : jump net-${chainId(n)}-out`).join(', ')} }`);
  lines.push(`\t\toifname vmap { ${nets.map((n) => `${q(n.bridge)} : jump net-${chainId(n)}-in`).join(', ')} }`);
  lines.push(`\t}`);
  // Traffic between a network's own containers needs no state: ICC and isolation decide by
  // interface, and hairpin traffic to published ports is addressed to the host (and masqueraded
  // through the gateway), so neither it nor its replies match here. Skipping connection tracking
  // (and the NAT hooks with it) for these frames keeps br_netfilter's cost off the bridge and the
  // overlay; anything addressed to the host itself (the gateway) stays tracked. (With ICC off
  // these frames are dropped anyway.) Networks covered by a policy stay tracked (policy-render.ts).
  const untracked = nets.filter((n) => n.icc && !n.tracked).flatMap((n) => [
    ...n.subnets4.map((s) => `\t\tiifname ${q(n.bridge)} ip saddr ${s} ip daddr ${s} fib daddr type != local notrack`),
    ...n.subnets6.map((s) => `\t\tiifname ${q(n.bridge)} ip6 saddr ${s} ip6 daddr ${s} fib daddr type != local notrack`),
  ]);
  if (untracked.length) {
    lines.push(`\tchain intra-network {`);
    lines.push(`\t\ttype filter hook prerouting priority raw; policy accept;`);
    lines.push(...untracked);
    lines.push(`\t}`);
  }
  // Containers must never reach the host's loopback services (route_localnet is on for published ports).
  lines.push(`\tchain input {`);
  lines.push(`\t\ttype filter hook input priority filter; policy accept;`);
  lines.push(`\t\tiifname @bridges ip daddr 127.0.0.0/8 ct direction original drop`);
  lines.push(`\t}`);
  const published = nets.filter((n) => !n.internal).flatMap((n) => n.published).sort(byPort);
  if (published.length) {
    // Loopback bindings are for the host itself: only locally generated traffic is translated.
    lines.push(`\tchain published-in {`);
    for (const p of published.filter((x) => !x.hostIp.startsWith('127.'))) lines.push(`\t\t${dnatRule(p, false)}`);
    lines.push(`\t}`);
    lines.push(`\tchain published-local {`);
    for (const p of published) lines.push(`\t\t${dnatRule(p, true)}`);
    lines.push(`\t}`);
    lines.push(`\tchain prerouting {`);
    lines.push(`\t\ttype nat hook prerouting priority dstnat; policy accept;`);
    lines.push(`\t\tfib daddr type local jump published-in`);
    lines.push(`\t}`);
    lines.push(`\tchain output {`);
    lines.push(`\t\ttype nat hook output priority -100; policy accept;`);
    lines.push(`\t\tfib daddr type local jump published-local`);
    lines.push(`\t}`);
  }
  lines.push(`\tchain postrouting {`);
  lines.push(`\t\ttype nat hook postrouting priority srcnat; policy accept;`);
  for (const n of nets) {
    if (n.internal) continue;
    if (n.masquerade) {
      for (const s of n.subnets4) lines.push(`\t\tip saddr ${s} oifname != ${q(n.bridge)} masquerade`);
      for (const s of n.subnets6) lines.push(`\t\tip6 saddr ${s} oifname != ${q(n.bridge)} masquerade`);
    }
    if (n.published.length) {
      // Hairpin: a container reaching a published port through the host comes back from the gateway.
      for (const s of n.subnets4) lines.push(`\t\tct status dnat ip saddr ${s} oifname ${q(n.bridge)} masquerade`);
      for (const s of n.subnets6) lines.push(`\t\tct status dnat ip6 saddr ${s} oifname ${q(n.bridge)} masquerade`);
      lines.push(`\t\tct status dnat ip saddr 127.0.0.0/8 oifname ${q(n.bridge)} masquerade`);
    }
  }
  lines.push(`\t}`);
  lines.push(`}`);
  return lines.join('\n') + '\n';
}

/** This loomd's shim chain for `iptables-restore --noflush` (declaring the chain flushes it). */
export function renderIptablesShim(networks: readonly FirewallNetwork[], names: FirewallNames): string {
  const nets = [...networks].sort(byBridge);
  const lines = ['*filter', `:${names.chain} - [0:0]`];
  for (const n of nets) {
    lines.push(`-A ${names.chain} -i ${n.bridge} -m comment --comment "${names.mark} ${n.id.slice(0, 12)}" -j ACCEPT`);
    lines.push(`-A ${names.chain} -o ${n.bridge} -m comment --comment "${names.mark} ${n.id.slice(0, 12)}" -j ACCEPT`);
  }
  lines.push('COMMIT');
  return lines.join('\n') + '\n';
}
