/**
 * The reconnect backoff: exponential growth from initialMs, capped at maxMs however long
 * the outage, jitter within ±jitter of the delay, and back to the start after reset().
 */
import { Backoff } from '../../lib/cluster/backoff';

test('delays double up to the cap and stay there', () => {
  const b = new Backoff({ initialMs: 100, maxMs: 1_000, jitter: 0 });
  const seq = Array.from({ length: 8 }, () => b.next());
  expect(seq).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000]);
  expect(b.attempts).toBe(8);
});

test('the cap holds after a very long outage (no overflow, no NaN)', () => {
  const b = new Backoff({ initialMs: 250, maxMs: 5_000 });
  let last = 0;
  for (let i = 0; i < 100_000; i++) last = b.next();
  expect(Number.isFinite(last)).toBe(true);
  expect(last).toBeLessThanOrEqual(5_000);
  expect(last).toBeGreaterThanOrEqual(4_000);
});

test('jitter spreads each delay within ±jitter and never above the cap', () => {
  for (const r of [0, 0.25, 0.5, 0.999]) {
    const b = new Backoff({ initialMs: 1_000, maxMs: 4_000, jitter: 0.2 }, () => r);
    const first = b.next();
    expect(first).toBeGreaterThanOrEqual(800);
    expect(first).toBeLessThanOrEqual(1_200);
    for (let i = 0; i < 10; i++) expect(b.next()).toBeLessThanOrEqual(4_000);
  }
  // Different random draws give different delays: hosts do not retry in lockstep.
  const a = new Backoff({ initialMs: 1_000, maxMs: 4_000 }, () => 0.1).next();
  const c = new Backoff({ initialMs: 1_000, maxMs: 4_000 }, () => 0.9).next();
  expect(a).not.toBe(c);
});

test('reset starts the sequence again', () => {
  const b = new Backoff({ initialMs: 10, maxMs: 100, jitter: 0 });
  b.next();
  b.next();
  b.reset();
  expect(b.next()).toBe(10);
});

test('bad options are refused', () => {
  expect(() => new Backoff({ initialMs: 0, maxMs: 10 })).toThrow(RangeError);
  expect(() => new Backoff({ initialMs: 10, maxMs: 5 })).toThrow(RangeError);
});
