/**
 * Block size of a shared (overlay) pool: pure prefix maths, no I/O.
 *
 * Each host of an overlay claims whole blocks of the pool and allocates inside them
 * locally (docs/overlay.md "Cluster-wide IPAM"). The block length is chosen once, when
 * the subnet is first claimed in the cluster, and recorded with that claim in etcd, so
 * every host (and every later loom version) uses the same one. Claims written before
 * the length was recorded use the legacy fixed length (/26, /116).
 *
 * The rule: about 16 blocks per pool (so 16 hosts each get a block before anyone has
 * to borrow), never larger than /26 (/116) and never smaller than 4 addresses (/30,
 * /126), and never larger than the pool itself.
 */
import { Family, Prefix, bitsOf, contains } from '../../lib/prefix';

/** The fixed block length of loom versions before the length was recorded. */
export const LEGACY_BLOCK_LEN: Record<Family, number> = { 4: 26, 6: 116 };

/** Blocks per pool the rule aims for: 2^4. */
const SPLIT_BITS = 4;
/** The smallest block: 4 addresses. */
const MIN_BLOCK_HOST_BITS = 2;

/** The block length loom records for a newly claimed pool. */
export function chooseBlockLen(pool: Prefix): number {
  const bits = bitsOf(pool.family);
  const aimed = Math.max(pool.len + SPLIT_BITS, LEGACY_BLOCK_LEN[pool.family]);
  return Math.max(pool.len, Math.min(bits - MIN_BLOCK_HOST_BITS, aimed));
}

/**
 * The block length of a pool given what its cluster claim records: the recorded one
 * when it is valid for this pool, else the legacy length (claims of older versions).
 */
export function blockLenOf(pool: Prefix, recorded: number | undefined): number {
  if (recorded !== undefined && Number.isInteger(recorded) && recorded >= pool.len && recorded <= bitsOf(pool.family)) return recorded;
  return Math.max(pool.len, LEGACY_BLOCK_LEN[pool.family]);
}

/** The block of length `len` of `pool` that holds `ip`. */
export function blockOf(pool: Prefix, len: number, ip: bigint): Prefix {
  if (!contains(pool, { family: pool.family, value: ip })) throw new RangeError('address outside the pool');
  const size = 1n << BigInt(bitsOf(pool.family) - len);
  return { family: pool.family, base: pool.base + ((ip - pool.base) / size) * size, len };
}
