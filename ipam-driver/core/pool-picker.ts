/**
 * Chooses a subnet for a network created without --subnet: the first subnet
 * of the configured default pools that overlaps neither a pool in use nor a
 * prefix routed on the host. Pure: inputs in, prefix out.
 */
import { Family, Prefix, bitsOf, lastOf, overlaps, parsePrefix, subnetAt, subnetCount } from '../../lib/prefix';
import { invalid } from '../../lib/errors';

/** One default pool: a base prefix carved into subnets of length `size`. */
export interface DefaultPool {
  readonly base: Prefix;
  readonly size: number;
}

/** Parses "172.16.0.0/12:16" (base prefix, then the length of each subnet). */
export function parseDefaultPool(text: string): DefaultPool {
  const m = /^(.+):(\d{1,3})$/.exec(text.trim());
  if (!m) throw invalid(`invalid default pool ${JSON.stringify(text)}: expected BASE/LEN:SIZE, e.g. 172.16.0.0/12:16`);
  const base = parsePrefix(m[1] as string, 'default pool');
  const size = Number(m[2]);
  if (size < base.len || size > bitsOf(base.family)) {
    throw invalid(`invalid default pool ${text}: size /${size} must be between /${base.len} and /${bitsOf(base.family)}`);
  }
  return { base, size };
}

export function pickSubnet(defaults: readonly DefaultPool[], family: Family, taken: readonly Prefix[]): Prefix | undefined {
  for (const d of defaults) {
    if (d.base.family !== family) continue;
    const count = subnetCount(d.base, d.size);
    const step = 1n << BigInt(bitsOf(family) - d.size);
    let idx = 0n;
    // Each iteration either returns or moves past at least one blocking prefix.
    while (idx < count) {
      const candidate = subnetAt(d.base, d.size, idx);
      const blocker = taken.find((t) => overlaps(t, candidate));
      if (!blocker) return candidate;
      const after = lastOf(blocker) + 1n;
      const jump = (after - d.base.base + step - 1n) / step;
      idx = jump > idx ? jump : idx + 1n;
    }
  }
  return undefined;
}
