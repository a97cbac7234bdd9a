/**
 * The firewall objects of looms before per-instance names: one `table inet loom` and one
 * iptables chain `LOOM-FORWARD`, shared by every loomd on the host (each replaced the
 * other's). After an upgrade, this loomd removes them only when they are provably its own:
 * every bridge and every network id they name is one of its networks. Anything else (no
 * network named, one foreign bridge or id, a rule of another shape) belongs to another
 * loomd still running the old version and is left alone. Pure; the applier is nft-firewall.ts.
 */
import type { FirewallNetwork } from './model';

export const LEGACY_NFT_TABLE = 'loom';
export const LEGACY_IPT_CHAIN = 'LOOM-FORWARD';

interface NftItem {
  chain?: { name?: string };
  set?: { name?: string; elem?: unknown[] };
}

/** Whether `nft -j list table inet loom` output describes only these networks. */
export function legacyTableIsOurs(listing: unknown, networks: readonly FirewallNetwork[]): boolean {
  const items = ((listing as { nftables?: NftItem[] } | undefined)?.nftables ?? []);
  const bridges = new Set(networks.map((n) => n.bridge));
  const ids = new Set(networks.map((n) => n.id.slice(0, 12).toLowerCase()));
  let named = 0;
  for (const it of items) {
    if (it.set?.name === 'bridges') {
      for (const e of it.set.elem ?? []) {
        if (typeof e !== 'string' || !bridges.has(e)) return false;
        named++;
      }
    }
    const chain = it.chain?.name ? /^net-(.+)-(?:in|out)$/.exec(it.chain.name) : null;
    if (chain && !ids.has(chain[1] as string)) return false;
  }
  return named > 0;
}

const SHIM_RULE = new RegExp(`^-A ${LEGACY_IPT_CHAIN} -[io] (\\S+) -m comment --comment "?loom ([0-9A-Za-z]+)"? -j ACCEPT$`);

/** Whether `iptables -S LOOM-FORWARD` output holds only rules for these networks. */
export function legacyShimIsOurs(listing: string, networks: readonly FirewallNetwork[]): boolean {
  const bridges = new Set(networks.map((n) => n.bridge));
  const ids = new Set(networks.map((n) => n.id.slice(0, 12)));
  const rules = listing.split('\n').filter((l) => l.startsWith(`-A ${LEGACY_IPT_CHAIN} `));
  return rules.length > 0 && rules.every((r) => {
    const m = SHIM_RULE.exec(r.trim());
    return m !== null && bridges.has(m[1] as string) && ids.has(m[2] as string);
  });
}
