/**
 * Property: on a simulated 3-host cluster sharing a small overlay subnet, no address is
 * ever held by two hosts (nor left free by the owner of its block while another host
 * uses it, nor a block listed by two hosts), under any interleaving of dynamic allocations (block claims,
 * borrows), static addresses (reservations the block owner grants), releases, SIGKILL
 * restarts of loomd, missed watch events, IPAM resyncs and the end of quarantines. fast-check's scheduler decides the order in which
 * every cluster-store call, store write and watch delivery of every host happens.
 *
 * After the run (every host alive again, everything released, two resyncs): nothing is
 * left reserved or requested in etcd, and the hosts can together hand out every usable
 * address of the subnet once each (nothing leaked for good).
 *
 * LOOM_PROPERTY_RUNS=N runs more cases (default 150, ~8 s); a failure prints its seed
 * and path: replay it with LOOM_PROPERTY_SEED and LOOM_PROPERTY_PATH.
 */
import fc from 'fast-check';
import { keys } from '../../lib/cluster/store';
import { LoomError } from '../../lib/errors';
import { QUARANTINE_MS } from '../../ipam-driver/shared-holds';
import { ClusterSim, SimHost, openGate } from './cluster-sim';

const SUBNET = '198.18.90.0/27'; // 8 blocks of 4; 29 usable addresses besides the gateway
const USABLE = 29;
const HOSTS = 3;

type Op =
  | { op: 'alloc'; host: number }
  | { op: 'static'; host: number; offset: number }
  | { op: 'release'; host: number; pick: number }
  | { op: 'restart'; host: number }
  | { op: 'resync'; host: number }
  | { op: 'miss-deletion'; host: number }
  | { op: 'tick' };

const host = fc.nat(HOSTS - 1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('alloc' as const), host }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('static' as const), host, offset: fc.integer({ min: 2, max: 30 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('release' as const), host, pick: fc.nat(40) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('restart' as const), host }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('resync' as const), host }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('miss-deletion' as const), host }) },
  { weight: 2, arbitrary: fc.constant({ op: 'tick' as const }) },
);

/** Addresses each host takes before the interleaved part (29 usable in all). */
const prefillArb = fc.tuple(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 9 }));

/** Errors a call may legitimately end with here (a killed host's calls fail too). */
const expected = (err: unknown): boolean =>
  (err instanceof LoomError && err.kind !== 'internal') || (err instanceof Error && err.message === 'process killed');

const restarts = new WeakMap<SimHost, Promise<void>>();

/** Wall-clock offset of the run (Date.now is mocked): 'tick' ends every quarantine at once. */
let offset = 0;

async function run(sim: ClusterSim, op: Op): Promise<void> {
  if (op.op === 'tick') {
    offset += QUARANTINE_MS + 1;
    return;
  }
  const h = sim.hosts[op.host] as SimHost;
  switch (op.op) {
    case 'alloc':
      await h.alloc();
      return;
    case 'static':
      await h.alloc(`198.18.90.${op.offset}`);
      return;
    case 'release': {
      const held = h.inUse();
      if (held.length) await h.release(held[op.pick % held.length] as string);
      return;
    }
    case 'restart': {
      // One restart of a host at a time, as a supervisor would do.
      const next = (restarts.get(h) ?? Promise.resolve()).then(async () => {
        h.kill();
        await h.boot();
      });
      restarts.set(h, next.catch(() => undefined));
      await next;
      return;
    }
    case 'resync':
      // Two passes: a borrow or a static reservation may well outlast a reconcile interval.
      await h.ipam.resyncShared();
      await h.ipam.resyncShared();
      return;
    case 'miss-deletion':
      h.lose += 2;
  }
}

/** Allocation kinds seen at the end of the interleaved parts, over all runs (the test must exercise loans). */
const seen: Record<string, number> = {};
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

/** The interleaved part: every op starts and every store call proceeds when the scheduler says. */
async function interleave(s: fc.Scheduler, sim: ClusterSim, ops: Op[]): Promise<void> {
  sim.gate = () => s.schedule(Promise.resolve());
  const unexpected: string[] = [];
  const done = ops.map((op, i) =>
    s
      .schedule(Promise.resolve(), `${i}:${op.op}${'host' in op ? `@h${op.host + 1}` : ''}`)
      .then(() => run(sim, op))
      .catch((err: unknown) => {
        if (!expected(err)) unexpected.push(`${op.op}: ${String(err)}`);
      }),
  );
  for (let step = 0; step < 20_000; step++) {
    await flush();
    if (s.count() === 0) break;
    await s.waitNext(1);
    const broken = sim.violations();
    if (broken.length) throw new Error(`after step ${step}: ${broken.join('; ')}`);
  }
  expect(s.count()).toBe(0);
  for (const a of sim.hosts.flatMap((h) => h.persisted())) seen[a.kind] = (seen[a.kind] ?? 0) + 1;
  await Promise.all(done);
  expect(unexpected).toEqual([]);
}

/** Liveness: everyone up, everything given back, two resyncs, quarantines over: every address once. */
async function settleAndFill(sim: ClusterSim): Promise<void> {
  sim.gate = openGate;
  for (const h of sim.hosts) h.lose = 0;
  for (const h of sim.hosts) if (!h.alive) await h.boot();
  for (const h of sim.hosts) for (const a of h.inUse()) await h.release(a);
  await flush();
  for (let pass = 0; pass < 2; pass++) for (const h of sim.hosts) await h.ipam.resyncShared();
  await flush();
  expect(sim.violations()).toEqual([]);
  expect(sim.keysUnder(keys.reservations)).toEqual([]);
  expect(sim.keysUnder(keys.loanRequests)).toEqual([]);
  for (const h of sim.hosts) expect(h.persisted().filter((a) => a.kind !== 'gateway' && a.kind !== 'quarantine')).toEqual([]);
  offset += QUARANTINE_MS + 1;
  const got: string[] = [];
  for (let round = 0, full = 0; full < HOSTS && round < 100; round++) {
    await (sim.hosts[round % HOSTS] as SimHost).alloc().then(
      (a) => got.push(a),
      () => full++,
    );
  }
  expect(new Set(got).size).toBe(got.length);
  expect(got.length).toBe(USABLE);
}

test('no duplicate address under any interleaving of claims, borrows, static reservations, releases, restarts and resyncs', async () => {
  await fc.assert(
    fc.asyncProperty(fc.scheduler(), prefillArb, fc.array(opArb, { minLength: 1, maxLength: 24 }), async (s, prefill, ops) => {
      const t0 = Date.now();
      offset = 0;
      const clock = jest.spyOn(Date, 'now').mockImplementation(() => t0 + offset);
      try {
        const sim = new ClusterSim({ subnet: SUBNET, hosts: HOSTS });
        Object.assign(sim.timing, { grantTimeoutMs: 600, loanOwnerTimeoutMs: 300, loanBudgetMs: 700 });
        await sim.setUp();
        // Start from a partly used pool (every block claimed, usually), so that borrows happen.
        for (const [i, n] of prefill.entries()) for (let k = 0; k < n; k++) await (sim.hosts[i] as SimHost).alloc().catch(() => undefined);
        await interleave(s, sim, ops);
        await settleAndFill(sim);
      } finally {
        clock.mockRestore();
      }
    }),
    { numRuns: Number(process.env.LOOM_PROPERTY_RUNS ?? 150), ...(process.env.LOOM_PROPERTY_SEED ? { seed: Number(process.env.LOOM_PROPERTY_SEED), path: process.env.LOOM_PROPERTY_PATH } : {}) },
  );
  if (!process.env.LOOM_PROPERTY_SEED) {
    expect(seen.borrowed).toBeGreaterThan(0);
    expect(seen.foreign).toBeGreaterThan(0);
  }
}, 300_000);
