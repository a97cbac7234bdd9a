/** Small statistics helpers for the benchmarks: medians, nearest-rank percentiles, formatting. */
import { seeded } from '../helpers/random';

export function sorted(xs: number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

/** Median (mean of the two middle values for an even count); NaN for no samples. */
export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = sorted(xs);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Nearest-rank percentile (p in 0..100): the smallest sample with at least p % of samples at or below it. */
export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = sorted(xs);
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[Math.min(rank, s.length) - 1] as number;
}

export interface Summary {
  n: number;
  median: number;
  p95: number;
  p99: number;
  min: number;
  max: number;
}

export function summarize(xs: number[]): Summary {
  return { n: xs.length, median: median(xs), p95: percentile(xs, 95), p99: percentile(xs, 99), min: Math.min(...xs), max: Math.max(...xs) };
}

/** A number with sensible precision for a table cell. */
export function fmt(x: number, digits?: number): string {
  if (x === undefined || Number.isNaN(x)) return 'n/a';
  if (!Number.isFinite(x)) return String(x);
  if (digits !== undefined) return x.toFixed(digits);
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  if (a >= 100) return x.toFixed(1);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

/** "1.03x" */
export function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return 'n/a';
  return `${(a / b).toFixed(2)}x`;
}

/** Whether the ranges [min, max] of two samples overlap. */
export function rangesOverlap(a: number[], b: number[]): boolean {
  return a.length > 0 && b.length > 0 && Math.min(...a) <= Math.max(...b) && Math.min(...b) <= Math.max(...a);
}

/** The range of per-run throughputs: "1.23-4.56 Gbit/s" ('n/a' for no runs). */
export function gbitRange(xs: number[]): string {
  return xs.length ? `${fmt(Math.min(...xs), 2)}-${fmt(Math.max(...xs), 2)} Gbit/s` : 'n/a';
}

/** A throughput target's measured text: the ratio of the medians of `a` to `b`, both medians, and whether the per-run ranges overlap. */
export function vsMeasured(a: number[], b: number[]): string {
  return `${(median(a) / median(b)).toFixed(2)}x (${fmt(median(a), 2)} vs ${fmt(median(b), 2)} Gbit/s; the per-run ranges ${rangesOverlap(a, b) ? 'overlap' : 'do not overlap'})`;
}

/** Rotations of `items` for A/B(/C) alternation: round i runs them starting at i mod n. */
export function rotation<T>(items: T[], round: number): T[] {
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** A median of per-pair ratios with a percentile-bootstrap interval. */
export interface PairedRatio {
  /** Pairs used (both runs of a round succeeded). */
  n: number;
  median: number;
  /** 95 % bootstrap interval of the median. */
  lo: number;
  hi: number;
}


/**
 * Per-pair ratios a[i]/b[i] (runs of one round, the order alternated between rounds), their
 * median, and a 95 % percentile-bootstrap interval of that median (`resamples` resamplings
 * of the pairs with replacement). Pairs with a missing or non-positive side are dropped.
 */
export function pairedRatio(pairs: Array<[number | undefined, number | undefined]>, resamples = 2000, seed = 1): PairedRatio {
  const r = pairs.filter((p): p is [number, number] => p[0] !== undefined && p[1] !== undefined && p[0] > 0 && p[1] > 0).map(([x, y]) => x / y);
  if (!r.length) return { n: 0, median: NaN, lo: NaN, hi: NaN };
  const rand = seeded(seed);
  const medians: number[] = [];
  const sample = new Array<number>(r.length);
  for (let k = 0; k < resamples; k++) {
    for (let i = 0; i < r.length; i++) sample[i] = r[Math.floor(rand() * r.length)] as number;
    medians.push(median(sample));
  }
  const s = sorted(medians);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.max(0, Math.floor(q * s.length)))] as number;
  return { n: r.length, median: median(r), lo: at(0.025), hi: at(0.975) };
}

/** "1.02x [0.99-1.04], 40 pairs" */
export function fmtPaired(p: PairedRatio): string {
  return p.n ? `${p.median.toFixed(2)}x [${p.lo.toFixed(2)}-${p.hi.toFixed(2)}], ${p.n} pairs` : 'n/a (no pairs)';
}
