/**
 * loom's layers, lowest first (docs/architecture.md draws them). A file may import from its
 * own layer or lower ones. Two product rules on top: driver/ imports ipam-driver/ only
 * through ipam-driver/index.ts, and ipam-driver/ never imports driver/.
 */
export const LAYERS: ReadonlyArray<{ name: string; rank: number; paths: string[] }> = [
  { name: 'ground', rank: 0, paths: ['lib/'] },
  { name: 'ipam core', rank: 1, paths: ['ipam-driver/core/'] },
  { name: 'ipam', rank: 2, paths: ['ipam-driver/'] },
  { name: 'model', rank: 3, paths: ['driver/model/', 'driver/policy/'] },
  { name: 'kernel', rank: 4, paths: ['driver/kernel/'] },
  { name: 'dataplane', rank: 5, paths: ['driver/dataplane/', 'driver/firewall/'] },
  { name: 'store', rank: 5, paths: ['driver/store/'] },
  { name: 'services', rank: 6, paths: ['driver/network/', 'driver/ports/'] },
  { name: 'cluster', rank: 7, paths: ['driver/cluster/'] },
  { name: 'discovery', rank: 8, paths: ['driver/dns/'] },
  { name: 'reconcile', rank: 8, paths: ['driver/reconcile/'] },
  { name: 'edge', rank: 9, paths: ['driver/api/', 'driver/http/'] },
  { name: 'ops', rank: 10, paths: ['driver/ops/', 'driver/recovery/'] },
  { name: 'entry', rank: 11, paths: ['driver/cli/', 'driver/startup/', 'driver/main.ts', 'driver/daemon.ts', 'driver/config.ts', 'driver/node-flags.ts', 'driver/version.ts'] },
];

/** The layer of a repository path (the longest matching prefix), or undefined. */
export function layerOf(file: string): { name: string; rank: number } | undefined {
  let best: { name: string; rank: number; len: number } | undefined;
  for (const l of LAYERS) {
    for (const p of l.paths) {
      if ((file === p || file.startsWith(p)) && (!best || p.length > best.len)) best = { name: l.name, rank: l.rank, len: p.length };
    }
  }
  return best && { name: best.name, rank: best.rank };
}

/** What is wrong with `file` importing `targets` (repository paths); empty when nothing. */
export function violations(file: string, targets: string[]): string[] {
  const from = layerOf(file);
  const out: string[] = [];
  for (const t of targets) {
    const to = layerOf(t);
    if (!from || !to) continue;
    if (file.startsWith('ipam-driver/') && t.startsWith('driver/')) out.push(`${file}: ipam-driver never imports driver/ (${t})`);
    else if (file.startsWith('driver/') && t.startsWith('ipam-driver/') && t !== 'ipam-driver/index.ts') out.push(`${file}: driver/ uses ipam-driver/ only through ipam-driver/index.ts (${t})`);
    else if (to.rank > from.rank) out.push(`${file} (${from.name}) imports ${t} (${to.name}), a layer above it`);
  }
  return out;
}
