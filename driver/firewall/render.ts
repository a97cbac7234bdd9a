/**
 * Pure rendering of loom's firewall (checked with golden files in test/unit).
 *
 * 1. `table inet loom` (nftables) is the authority for loom's bridges: isolation
 *    between loom networks, ICC, internal networks, inbound policy and outbound NAT.
 *    It is always replaced whole, in one nft transaction.
 * 2. A shim in iptables' filter FORWARD chain (chain LOOM-FORWARD, one jump):
 *    a packet must be accepted by every base chain on the forward hook, and hosts
 *    (and dockerd) often set the iptables FORWARD policy to DROP. The shim only
 *    accepts traffic of loom's bridges, so the decision stays in `inet loom`.
 */
import type { FirewallNetwork } from './model';

export const NFT_TABLE = 'loom';
export const IPT_CHAIN = 'LOOM-FORWARD';

/** Bridges Docker itself creates by default; loom networks must not reach into them. */
const DOCKER_BRIDGES = ['docker0', 'docker_gwbridge', 'br-*'];

const chainId = (n: FirewallNetwork): string => n.id.slice(0, 12).toLowerCase();
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

/** The whole `inet loom` table for these networks, as an atomic replace script for `nft -f -`. */
export function renderNftScript(networks: readonly FirewallNetwork[]): string {
  const lines = [`table inet ${NFT_TABLE}`, `delete table inet ${NFT_TABLE}`];
  if (networks.length === 0) return lines.join('\n') + '\n';
  const nets = [...networks].sort(byBridge);
  lines.push(`table inet ${NFT_TABLE} {`);
  lines.push(`\tcomment "managed by loomd: replaced whole on every change"`);
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
  lines.push(`\tchain postrouting {`);
  lines.push(`\t\ttype nat hook postrouting priority srcnat; policy accept;`);
  for (const n of nets) {
    if (n.internal || !n.masquerade) continue;
    for (const s of n.subnets4) lines.push(`\t\tip saddr ${s} oifname != ${q(n.bridge)} masquerade`);
    for (const s of n.subnets6) lines.push(`\t\tip6 saddr ${s} oifname != ${q(n.bridge)} masquerade`);
  }
  lines.push(`\t}`);
  lines.push(`}`);
  return lines.join('\n') + '\n';
}

/** The LOOM-FORWARD chain for `iptables-restore --noflush` (declaring the chain flushes it). */
export function renderIptablesShim(networks: readonly FirewallNetwork[]): string {
  const nets = [...networks].sort(byBridge);
  const lines = ['*filter', `:${IPT_CHAIN} - [0:0]`];
  for (const n of nets) {
    lines.push(`-A ${IPT_CHAIN} -i ${n.bridge} -m comment --comment "loom ${n.id.slice(0, 12)}" -j ACCEPT`);
    lines.push(`-A ${IPT_CHAIN} -o ${n.bridge} -m comment --comment "loom ${n.id.slice(0, 12)}" -j ACCEPT`);
  }
  lines.push('COMMIT');
  return lines.join('\n') + '\n';
}
