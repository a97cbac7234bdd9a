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
  // these frames are dropped anyway.)
  const untracked = nets.filter((n) => n.icc).flatMap((n) => [
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

/** Chains and rule counts that `renderNftScript` produces, for drift detection. */
export interface NftShape {
  chains: Map<string, number>;
  bridges: string[];
}

export function expectedNftShape(networks: readonly FirewallNetwork[], names: FirewallNames): NftShape {
  const chains = new Map<string, number>();
  let current: string | undefined;
  for (const line of renderNftScript(networks, names).split('\n')) {
    const open = /^\tchain (\S+) \{$/.exec(line);
    if (open) {
      current = open[1] as string;
      chains.set(current, 0);
    } else if (line === '\t}') {
      current = undefined;
    } else if (current && line.startsWith('\t\t') && !/^\t\t(type |comment )/.test(line)) {
      chains.set(current, (chains.get(current) ?? 0) + 1);
    }
  }
  return { chains, bridges: networks.map((n) => n.bridge).sort() };
}

/** Differences between the expected shape and `nft -j list table inet <table>` output (undefined: no table). */
export function nftDrift(expected: NftShape, listing: unknown, names: FirewallNames): string[] {
  if (listing === undefined) return expected.chains.size ? [`table inet ${names.table} is missing`] : [];
  if (!expected.chains.size) return [`table inet ${names.table} exists without loom networks`];
  const items = ((listing as { nftables?: Array<Record<string, { name?: string; chain?: string; elem?: unknown[] }>> }).nftables ?? []);
  const actual = new Map<string, number>();
  let elems: string[] = [];
  for (const it of items) {
    if (it.chain?.name) actual.set(it.chain.name, actual.get(it.chain.name) ?? 0);
    if (it.rule?.chain) actual.set(it.rule.chain, (actual.get(it.rule.chain) ?? 0) + 1);
    if (it.set?.name === 'bridges') elems = (it.set.elem ?? []).map(String).sort();
  }
  const drift: string[] = [];
  for (const [chain, count] of expected.chains) {
    if (!actual.has(chain)) drift.push(`chain ${chain} is missing`);
    else if (actual.get(chain) !== count) drift.push(`chain ${chain} has ${actual.get(chain)} rules, expected ${count}`);
  }
  for (const chain of actual.keys()) if (!expected.chains.has(chain)) drift.push(`unexpected chain ${chain}`);
  if (elems.join(',') !== expected.bridges.join(',')) drift.push(`set bridges holds [${elems.join(', ')}], expected [${expected.bridges.join(', ')}]`);
  return drift;
}

/** Differences in the iptables shim given `iptables -S <chain>` output and whether the jump exists. */
export function shimDrift(tool: string, networks: readonly FirewallNetwork[], chainListing: string | undefined, jumpPresent: boolean, names: FirewallNames): string[] {
  const chain = names.chain;
  const rules = (chainListing ?? '').split('\n').filter((l) => l.startsWith(`-A ${chain} `)).length;
  if (networks.length === 0) return chainListing !== undefined || jumpPresent ? [`${tool} chain ${chain} exists without loom networks`] : [];
  const drift: string[] = [];
  if (chainListing === undefined) drift.push(`${tool} chain ${chain} is missing`);
  else if (rules !== networks.length * 2) drift.push(`${tool} chain ${chain} has ${rules} rules, expected ${networks.length * 2}`);
  if (!jumpPresent) drift.push(`${tool} FORWARD does not jump to ${chain}`);
  return drift;
}
