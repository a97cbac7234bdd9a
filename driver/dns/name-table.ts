/**
 * The names loom answers on each overlay (service discovery, pure): this host's joined
 * endpoints with the names learned from Docker, and other hosts' endpoints as the cluster
 * agent's watched copy of etcd holds them (so names keep resolving while etcd is away).
 *
 * Invariants:
 * - names are compared lowercased, without a trailing dot;
 * - a name held by a local endpoint of the overlay is "local": Docker answers it (its own
 *   records win), loom relays the query and adds no remote address to it;
 * - endpoints of hosts that are not registered (lease gone) or whose key left etcd are never
 *   given out (the caller filters them: NameSources);
 * - several addresses of one name rotate by one position per lookup (round robin).
 */

export interface NamedEndpoint {
  overlay: string;
  names: string[];
  ip?: string;
  ip6?: string;
  /** The host that owns it (this host's id for local ones). */
  host: string;
  local: boolean;
}

export interface NameRecord {
  name: string;
  local: boolean;
  v4: string[];
  v6: string[];
  hosts: string[];
}

export type NameLookup = { kind: 'local' } | { kind: 'remote'; v4: string[]; v6: string[] } | undefined;

/** A DNS name as loom keeps it, or undefined when it is not one (bad data from etcd or Docker). */
export function normaliseName(raw: unknown): string | undefined {
  if (typeof raw !== 'string') return undefined;
  const n = raw.toLowerCase().replace(/\.$/, '');
  if (n.length === 0 || n.length > 253) return undefined;
  return /^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/.test(n) ? n : undefined;
}

type Index = Map<string, Map<string, NameRecord>>;

/** overlay -> name -> record, built from the endpoints (pure). */
export function buildIndex(endpoints: Iterable<NamedEndpoint>): Index {
  const out: Index = new Map();
  for (const ep of endpoints) {
    const names = out.get(ep.overlay) ?? new Map<string, NameRecord>();
    out.set(ep.overlay, names);
    for (const raw of ep.names) {
      const name = normaliseName(raw);
      if (!name) continue;
      const rec = names.get(name) ?? { name, local: false, v4: [], v6: [], hosts: [] };
      names.set(name, rec);
      if (ep.local) rec.local = true;
      if (ep.ip && !rec.v4.includes(ep.ip)) rec.v4.push(ep.ip);
      if (ep.ip6 && !rec.v6.includes(ep.ip6)) rec.v6.push(ep.ip6);
      if (!rec.hosts.includes(ep.host)) rec.hosts.push(ep.host);
    }
  }
  for (const names of out.values()) for (const rec of names.values()) rec.v4.sort(), rec.v6.sort();
  return out;
}

/**
 * The table loomd queries: the index is rebuilt from `source` when marked stale (`changed`)
 * or older than `maxAgeMs` (host registrations change without an event of their own).
 */
export class NameTable {
  private index: Index = new Map();
  private builtAt = -Infinity;
  private stale = true;
  private readonly turns = new Map<string, number>();

  constructor(
    private readonly source: () => Iterable<NamedEndpoint>,
    private readonly maxAgeMs = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  changed(): void {
    this.stale = true;
  }

  /** What loom does with `name` asked from a container on `overlays`. */
  lookup(overlays: Iterable<string>, rawName: string): NameLookup {
    const name = normaliseName(rawName);
    if (!name) return undefined;
    const idx = this.current();
    const v4: string[] = [];
    const v6: string[] = [];
    for (const ov of overlays) {
      const rec = idx.get(ov)?.get(name);
      if (!rec) continue;
      if (rec.local) return { kind: 'local' };
      v4.push(...rec.v4.filter((a) => !v4.includes(a)));
      v6.push(...rec.v6.filter((a) => !v6.includes(a)));
    }
    if (!v4.length && !v6.length) return undefined;
    const turn = this.turns.get(name) ?? 0;
    this.turns.set(name, turn + 1);
    if (this.turns.size > 10_000) this.turns.clear();
    return { kind: 'remote', v4: rotate(v4, turn), v6: rotate(v6, turn) };
  }

  /** Every name of `overlay` (or of all overlays), sorted (loomctl names). */
  list(overlay?: string): Array<NameRecord & { overlay: string }> {
    const out: Array<NameRecord & { overlay: string }> = [];
    for (const [ov, names] of this.current()) {
      if (overlay !== undefined && ov !== overlay) continue;
      for (const rec of names.values()) out.push({ ...rec, overlay: ov });
    }
    return out.sort((a, b) => a.overlay.localeCompare(b.overlay) || a.name.localeCompare(b.name));
  }

  private current(): Index {
    const t = this.now();
    if (this.stale || t - this.builtAt >= this.maxAgeMs) {
      this.index = buildIndex(this.source());
      this.builtAt = t;
      this.stale = false;
    }
    return this.index;
  }
}

function rotate<T>(xs: T[], turn: number): T[] {
  if (xs.length < 2) return xs;
  const k = turn % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}
