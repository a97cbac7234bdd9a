/**
 * A set of bigint values stored as sorted, merged, inclusive intervals. Memory
 * and time depend on the number of runs of consecutive values, not on the size
 * of the address space: a fully used /16 is one interval, an empty /64 is none.
 */
export class IntervalSet {
  private starts: bigint[] = [];
  private ends: bigint[] = [];
  private count = 0n;

  get size(): bigint {
    return this.count;
  }

  /** Number of stored runs (for memory accounting in tests and benchmarks). */
  get runs(): number {
    return this.starts.length;
  }

  /** Index of the last interval whose start is <= v, or -1. */
  private floor(v: bigint): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.starts[mid] as bigint) <= v) {
        ans = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return ans;
  }

  has(v: bigint): boolean {
    const i = this.floor(v);
    return i >= 0 && v <= (this.ends[i] as bigint);
  }

  /** Adds v; returns false when it was already present. */
  add(v: bigint): boolean {
    const i = this.floor(v);
    if (i >= 0 && v <= (this.ends[i] as bigint)) return false;
    const joinsLeft = i >= 0 && (this.ends[i] as bigint) + 1n === v;
    const joinsRight = i + 1 < this.starts.length && (this.starts[i + 1] as bigint) - 1n === v;
    if (joinsLeft && joinsRight) {
      this.ends[i] = this.ends[i + 1] as bigint;
      this.starts.splice(i + 1, 1);
      this.ends.splice(i + 1, 1);
    } else if (joinsLeft) {
      this.ends[i] = v;
    } else if (joinsRight) {
      this.starts[i + 1] = v;
    } else {
      this.starts.splice(i + 1, 0, v);
      this.ends.splice(i + 1, 0, v);
    }
    this.count++;
    return true;
  }

  /** Removes v; returns false when it was not present. */
  delete(v: bigint): boolean {
    const i = this.floor(v);
    if (i < 0 || v > (this.ends[i] as bigint)) return false;
    const s = this.starts[i] as bigint;
    const e = this.ends[i] as bigint;
    if (s === e) {
      this.starts.splice(i, 1);
      this.ends.splice(i, 1);
    } else if (v === s) {
      this.starts[i] = v + 1n;
    } else if (v === e) {
      this.ends[i] = v - 1n;
    } else {
      this.ends[i] = v - 1n;
      this.starts.splice(i + 1, 0, v + 1n);
      this.ends.splice(i + 1, 0, e);
    }
    this.count--;
    return true;
  }

  /** The smallest value in [from, to] that is not in the set, or undefined. O(log n). */
  firstFree(from: bigint, to: bigint): bigint | undefined {
    if (from > to) return undefined;
    const i = this.floor(from);
    let v = from;
    if (i >= 0 && v <= (this.ends[i] as bigint)) v = (this.ends[i] as bigint) + 1n;
    return v <= to ? v : undefined;
  }

  /** Number of set members inside [from, to]. */
  countIn(from: bigint, to: bigint): bigint {
    let n = 0n;
    for (let i = Math.max(0, this.floor(from)); i < this.starts.length; i++) {
      const s = this.starts[i] as bigint;
      const e = this.ends[i] as bigint;
      if (s > to) break;
      const lo = s > from ? s : from;
      const hi = e < to ? e : to;
      if (hi >= lo) n += hi - lo + 1n;
    }
    return n;
  }

  *values(): IterableIterator<bigint> {
    for (let i = 0; i < this.starts.length; i++) {
      for (let v = this.starts[i] as bigint; v <= (this.ends[i] as bigint); v++) yield v;
    }
  }
}
