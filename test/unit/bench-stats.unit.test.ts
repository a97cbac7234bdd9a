import { fmtPaired, pairedRatio } from '../bench/stats';

test('per-pair ratios: median, a bootstrap interval around it, failed sides dropped', () => {
  const pairs: Array<[number | undefined, number | undefined]> = [];
  for (let i = 0; i < 40; i++) pairs.push([100 + (i % 5), 100]);
  pairs.push([undefined, 100], [100, undefined], [0, 100]);
  const p = pairedRatio(pairs);
  expect(p.n).toBe(40);
  expect(p.median).toBeCloseTo(1.02, 5);
  expect(p.lo).toBeLessThanOrEqual(p.median);
  expect(p.hi).toBeGreaterThanOrEqual(p.median);
  expect(p.lo).toBeGreaterThanOrEqual(1.0);
  expect(p.hi).toBeLessThanOrEqual(1.04);
  expect(pairedRatio(pairs)).toEqual(p); // deterministic
  expect(fmtPaired(p)).toMatch(/^1\.02x \[1\.0\d-1\.0\d\], 40 pairs$/);
});

test('noisy pairs give a wide interval; no pairs give n/a', () => {
  const noisy: Array<[number, number]> = Array.from({ length: 10 }, (_, i) => [i % 2 ? 150 : 70, 100]);
  const p = pairedRatio(noisy);
  expect(p.hi - p.lo).toBeGreaterThan(0.5);
  expect(fmtPaired(pairedRatio([]))).toBe('n/a (no pairs)');
});
