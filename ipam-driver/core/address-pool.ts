/**
 * The allocator of one pool: a pure in-memory structure (no I/O). It knows the
 * pool, the optional sub-range containers are given addresses from, the set of
 * used addresses and the next-fit cursor. Persistence stores the allocations
 * themselves and rebuilds this structure at start-up.
 */
import { conflict, exhausted, invalid } from '../../driver/errors';
import { IntervalSet } from './interval-set';
import { Prefix, bitsOf, contains, formatIp, formatPrefix, lastOf } from './prefix';

export class AddressPool {
  private readonly used = new IntervalSet();
  /** The last address handed out by next-fit (-1: none yet); the next search starts after it. */
  cursor: bigint;

  constructor(
    readonly pool: Prefix,
    readonly range: Prefix = pool,
    cursor?: bigint,
  ) {
    this.cursor = cursor ?? -1n;
  }

  /** Lowest assignable address: the network address (v4) and the subnet-router anycast (v6) are reserved. */
  get firstHost(): bigint {
    const hostBits = bitsOf(this.pool.family) - this.pool.len;
    return hostBits >= 2 ? this.pool.base + 1n : this.pool.base;
  }

  /** Highest assignable address: the IPv4 broadcast address is reserved. */
  get lastHost(): bigint {
    const hostBits = bitsOf(this.pool.family) - this.pool.len;
    return this.pool.family === 4 && hostBits >= 2 ? lastOf(this.pool) - 1n : lastOf(this.pool);
  }

  private get rangeLo(): bigint {
    return this.range.base > this.firstHost ? this.range.base : this.firstHost;
  }

  private get rangeHi(): bigint {
    const last = lastOf(this.range);
    return last < this.lastHost ? last : this.lastHost;
  }

  private check(value: bigint): void {
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

  /** Next-fit inside the range: a just-released address is not handed out again first. */
  allocateNext(): bigint {
    const lo = this.rangeLo;
    const hi = this.rangeHi;
    const from = this.cursor >= lo && this.cursor < hi ? this.cursor + 1n : lo;
    const v = this.used.firstFree(from, hi) ?? this.used.firstFree(lo, from - 1n);
    if (v === undefined) {
      throw exhausted(`no free address left in ${formatPrefix(this.range)}${this.range === this.pool ? '' : ` (pool ${formatPrefix(this.pool)})`}`);
    }
    this.used.add(v);
    this.cursor = v;
    return v;
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

  usedAddresses(): IterableIterator<bigint> {
    return this.used.values();
  }
}
