/**
 * The allocator of one pool: a pure in-memory structure (no I/O). It knows the
 * pool, the optional sub-range containers are given addresses from, the set of
 * used addresses and the next-fit cursor. Persistence stores the allocations
 * themselves and rebuilds this structure at start-up.
 */
import { conflict, exhausted, invalid } from '../../lib/errors';
import { IntervalSet } from './interval-set';
import { Prefix, contains, formatIp, formatPrefix, hostRange, lastOf } from '../../lib/prefix';

export class AddressPool {
  private readonly used = new IntervalSet();
  /** The last address handed out by next-fit (-1: none yet); the next search starts after it. */
  cursor: bigint;
  /**
   * For a pool shared by the hosts of an overlay: the blocks this host claimed; next-fit
   * only hands out addresses inside them. Undefined: the whole range is this host's.
   */
  blocks: Prefix[] | undefined;

  /** Lowest assignable address: the network address (v4) and the subnet-router anycast (v6) are reserved. */
  readonly firstHost: bigint;
  /** Highest assignable address: the IPv4 broadcast address is reserved. */
  readonly lastHost: bigint;
  /** The part of the range next-fit may hand out (the range without reserved addresses). */
  private readonly rangeLo: bigint;
  private readonly rangeHi: bigint;

  constructor(
    readonly pool: Prefix,
    readonly range: Prefix = pool,
    cursor?: bigint,
  ) {
    this.cursor = cursor ?? -1n;
    // Computed once: pool and range never change, and next-fit reads these on every allocation.
    const { first, last } = hostRange(pool);
    this.firstHost = first;
    this.lastHost = last;
    this.rangeLo = range.base > first ? range.base : first;
    const rangeLast = lastOf(range);
    this.rangeHi = rangeLast < last ? rangeLast : last;
  }

  /** Throws `invalid` unless `value` is an assignable address of the pool (inside it, not network/broadcast). */
  check(value: bigint): void {
    if (!contains(this.pool, { family: this.pool.family, value })) {
      throw invalid(`address ${formatIp(this.pool.family, value)} is outside pool ${formatPrefix(this.pool)}`);
    }
    if (value < this.firstHost || value > this.lastHost) {
      throw invalid(`address ${formatIp(this.pool.family, value)} is reserved in pool ${formatPrefix(this.pool)} (network or broadcast address)`);
    }
  }

  isUsed(value: bigint): boolean {
    return this.used.has(value);
  }

  /** Takes a specific address (static IP, gateway, aux address, restored allocation). */
  reserve(value: bigint): void {
    this.check(value);
    if (!this.used.add(value)) {
      throw conflict(`address ${formatIp(this.pool.family, value)} is already in use in pool ${formatPrefix(this.pool)}`);
    }
  }

  /** The [lo, hi] spans next-fit may use, in address order: the range, cut down to `blocks` (default: this host's). */
  private segments(blocks = this.blocks): Array<[bigint, bigint]> {
    const lo = this.rangeLo;
    const hi = this.rangeHi;
    if (!blocks) return lo <= hi ? [[lo, hi]] : [];
    return blocks
      .map((b): [bigint, bigint] => [b.base > lo ? b.base : lo, lastOf(b) < hi ? lastOf(b) : hi])
      .filter(([a, z]) => a <= z)
      .sort((x, y) => (x[0] < y[0] ? -1 : 1));
  }

  /** Next-fit inside the range (and this host's blocks): a just-released address is not handed out again first. */
  allocateNext(): bigint {
    if (!this.blocks) {
      // The whole range is this host's (one segment): after the cursor, then from the start.
      const lo = this.rangeLo;
      const hi = this.rangeHi;
      const c = this.cursor;
      let v = c < hi ? this.used.firstFree(c < lo ? lo : c + 1n, hi) : undefined;
      if (v === undefined && c >= lo) v = this.used.firstFree(lo, c < hi ? c : hi);
      if (v !== undefined) {
        this.used.add(v);
        this.cursor = v;
        return v;
      }
      throw exhausted(`no free address left in ${formatPrefix(this.range)}${this.range === this.pool ? '' : ` (pool ${formatPrefix(this.pool)})`}`);
    }
    const segs = this.segments();
    // Search after the cursor first, then wrap around to the start.
    const after = (s: [bigint, bigint]): [bigint, bigint] | undefined => (s[1] <= this.cursor ? undefined : [s[0] > this.cursor ? s[0] : this.cursor + 1n, s[1]]);
    const before = (s: [bigint, bigint]): [bigint, bigint] | undefined => (s[0] > this.cursor ? undefined : [s[0], s[1] < this.cursor ? s[1] : this.cursor]);
    for (const span of [...segs.map(after), ...segs.map(before)]) {
      if (!span) continue;
      const v = this.used.firstFree(span[0], span[1]);
      if (v !== undefined) {
        this.used.add(v);
        this.cursor = v;
        return v;
      }
    }
    const where = this.blocks ? `this host's blocks of ${formatPrefix(this.pool)}` : `${formatPrefix(this.range)}${this.range === this.pool ? '' : ` (pool ${formatPrefix(this.pool)})`}`;
    throw exhausted(`no free address left in ${where}`);
  }

  /** Whether `value` lies in this host's blocks (always true for a pool that is not shared). */
  inBlocks(value: bigint): boolean {
    return !this.blocks || this.blocks.some((b) => contains(b, { family: b.family, value }));
  }

  /** Free addresses left where next-fit looks (this host's blocks, when the pool is shared). */
  freeInSegments(): bigint {
    return this.freeAmong(this.segments());
  }

  /** Free addresses next-fit could use in `block` if it were this host's (a block about to be claimed). */
  freeIn(block: Prefix): bigint {
    return this.freeAmong(this.segments([block]));
  }

  private freeAmong(segments: Array<[bigint, bigint]>): bigint {
    return segments.reduce((n, [a, z]) => n + (z - a + 1n) - this.used.countIn(a, z), 0n);
  }

  /** Lowest free host address of the whole pool (the conventional gateway choice). */
  allocateLowest(): bigint {
    const v = this.used.firstFree(this.firstHost, this.lastHost);
    if (v === undefined) throw exhausted(`no free address left in pool ${formatPrefix(this.pool)}`);
    this.used.add(v);
    return v;
  }

  release(value: bigint): boolean {
    return this.used.delete(value);
  }

  /** Used and assignable address counts of the whole pool. */
  stats(): { used: bigint; capacity: bigint } {
    return { used: this.used.size, capacity: this.lastHost - this.firstHost + 1n };
  }

  /** Every used address, in order (tests, diagnostics). */
  usedAddresses(): IterableIterator<bigint> {
    return this.used.values();
  }
}
