/** IntervalSet: sorted merged runs of bigints, checked by hand and against a plain Set reference. */
import { IntervalSet } from '../../ipam-driver/core/interval-set';
import { seeded } from '../helpers/random';

/** [start, end] pairs, read through the public iterator (values are small in these tests). */
function runsOf(s: IntervalSet): Array<[bigint, bigint]> {
  const out: Array<[bigint, bigint]> = [];
  for (const v of s.values()) {
    const last = out[out.length - 1];
    if (last && last[1] + 1n === v) last[1] = v;
    else out.push([v, v]);
  }
  return out;
}

function setOf(...values: bigint[]): IntervalSet {
  const s = new IntervalSet();
  for (const v of values) s.add(v);
  return s;
}

describe('IntervalSet basics', () => {
  test('empty set', () => {
    const s = new IntervalSet();
    expect(s.size).toBe(0n);
    expect(s.runs).toBe(0);
    expect(s.has(0n)).toBe(false);
    expect(s.delete(5n)).toBe(false);
    expect(s.firstFree(10n, 20n)).toBe(10n);
    expect(s.countIn(0n, 100n)).toBe(0n);
    expect([...s.values()]).toEqual([]);
  });

  test('add returns false for a duplicate and keeps size', () => {
    const s = new IntervalSet();
    expect(s.add(7n)).toBe(true);
    expect(s.add(7n)).toBe(false);
    expect(s.size).toBe(1n);
    expect(s.has(7n)).toBe(true);
    expect(s.has(6n)).toBe(false);
    expect(s.has(8n)).toBe(false);
  });

  test('adjacent values merge: left, right, and bridging two runs', () => {
    const s = setOf(10n, 12n);
    expect(s.runs).toBe(2);
    s.add(11n); // bridges 10 and 12
    expect(s.runs).toBe(1);
    expect(runsOf(s)).toEqual([[10n, 12n]]);
    s.add(13n); // joins on the right end of the run
    s.add(9n); // joins on the left
    expect(runsOf(s)).toEqual([[9n, 13n]]);
    expect(s.runs).toBe(1);
    s.add(20n);
    s.add(0n);
    expect(runsOf(s)).toEqual([[0n, 0n], [9n, 13n], [20n, 20n]]);
    expect(s.size).toBe(7n);
  });

  test('adding in descending and in random order gives the same single run', () => {
    const a = new IntervalSet();
    for (let v = 99n; v >= 0n; v--) a.add(v);
    const b = new IntervalSet();
    for (const v of [50n, 2n, 99n, 0n, 1n, 98n, ...Array.from({ length: 100 }, (_, i) => BigInt(i))]) b.add(v);
    expect(a.runs).toBe(1);
    expect(b.runs).toBe(1);
    expect(a.size).toBe(100n);
    expect(b.size).toBe(100n);
  });

  test('delete splits a run, trims its ends and removes single-value runs', () => {
    const s = new IntervalSet();
    for (let v = 0n; v < 10n; v++) s.add(v);
    expect(s.delete(5n)).toBe(true); // split
    expect(runsOf(s)).toEqual([[0n, 4n], [6n, 9n]]);
    expect(s.delete(0n)).toBe(true); // trim left
    expect(s.delete(9n)).toBe(true); // trim right
    expect(runsOf(s)).toEqual([[1n, 4n], [6n, 8n]]);
    expect(s.delete(5n)).toBe(false);
    expect(s.delete(100n)).toBe(false);
    s.add(20n);
    expect(s.delete(20n)).toBe(true); // single-value run disappears
    expect(s.runs).toBe(2);
    expect(s.size).toBe(7n);
  });

  test('firstFree skips the run covering `from` and respects `to`', () => {
    const s = setOf(5n, 6n, 7n, 10n);
    expect(s.firstFree(0n, 100n)).toBe(0n);
    expect(s.firstFree(5n, 100n)).toBe(8n);
    expect(s.firstFree(6n, 100n)).toBe(8n);
    expect(s.firstFree(7n, 7n)).toBeUndefined();
    expect(s.firstFree(5n, 7n)).toBeUndefined();
    expect(s.firstFree(10n, 10n)).toBeUndefined();
    expect(s.firstFree(10n, 11n)).toBe(11n);
    expect(s.firstFree(9n, 9n)).toBe(9n);
    expect(s.firstFree(3n, 2n)).toBeUndefined(); // empty window
  });

  test('countIn counts members inside an inclusive window', () => {
    const s = setOf(1n, 2n, 3n, 7n, 8n, 20n);
    expect(s.countIn(0n, 100n)).toBe(6n);
    expect(s.countIn(2n, 7n)).toBe(3n);
    expect(s.countIn(4n, 6n)).toBe(0n);
    expect(s.countIn(8n, 8n)).toBe(1n);
    expect(s.countIn(21n, 30n)).toBe(0n);
    expect(s.countIn(3n, 1n)).toBe(0n);
  });

  test('huge values (IPv6 scale) cost one run each', () => {
    const base = 0xfd00n << 112n;
    const s = new IntervalSet();
    for (let i = 0n; i < 1000n; i++) s.add(base + i);
    s.add(base + (1n << 64n) - 1n);
    expect(s.runs).toBe(2);
    expect(s.size).toBe(1001n);
    expect(s.firstFree(base, base + (1n << 64n) - 1n)).toBe(base + 1000n);
    expect(s.countIn(base, base + (1n << 64n))).toBe(1001n);
  });
});

describe('IntervalSet against a Set<bigint> reference', () => {
  test.each([1, 42, 20240601])('random operations, seed %d', (seed) => {
    const rand = seeded(seed); // reproducible
    const int = (n: number): bigint => BigInt(Math.floor(rand() * n));
    const UNIVERSE = 200;
    const s = new IntervalSet();
    const ref = new Set<bigint>();
    const log: string[] = [];
    // Plain comparisons (jest's expect per step would dominate the run time); the op log names the failure.
    const same = (what: string, got: unknown, want: unknown): void => {
      if (got !== want) throw new Error(`${what}: got ${String(got)}, want ${String(want)} after ${log.slice(-10).join(' ')}`);
    };
    const refFirstFree = (from: bigint, to: bigint): bigint | undefined => {
      for (let v = from; v <= to; v++) if (!ref.has(v)) return v;
      return undefined;
    };
    const refRuns = (): number => {
      let n = 0;
      for (const v of ref) if (!ref.has(v - 1n)) n++;
      return n;
    };

    for (let i = 0; i < 2000; i++) {
      const v = int(UNIVERSE);
      const op = rand();
      if (op < 0.5) {
        log.push(`add(${v})`);
        same('add', s.add(v), !ref.has(v));
        ref.add(v);
      } else if (op < 0.85) {
        log.push(`delete(${v})`);
        same('delete', s.delete(v), ref.has(v));
        ref.delete(v);
      } else {
        const w = int(UNIVERSE);
        // Mostly ordered windows, sometimes reversed (empty) ones.
        const [from, to] = rand() < 0.9 ? (v <= w ? [v, w] : [w, v]) : [v, w];
        log.push(`query(${from},${to})`);
        same('firstFree', s.firstFree(from, to), refFirstFree(from, to));
        let count = 0n;
        for (const x of ref) if (x >= from && x <= to) count++;
        same('countIn', s.countIn(from, to), count);
      }
      same('has', s.has(v), ref.has(v));
      same('size', s.size, BigInt(ref.size));
      same('runs', s.runs, refRuns());
    }
    expect([...s.values()]).toEqual([...ref].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    for (let v = -1n; v <= BigInt(UNIVERSE); v++) same(`has(${v})`, s.has(v), ref.has(v));
  });
});
