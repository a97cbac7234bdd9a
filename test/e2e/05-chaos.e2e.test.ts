/**
 * Chaos: containers are started and removed on several loom networks by parallel
 * workers while loomd is killed with SIGKILL at random moments (at least 20 times)
 * and restarted; at least MIN_STARTS containers must really start. Afterwards: every running container reaches the others on its
 * network, IPAM allocations equal live endpoints + gateways + aux addresses, and the
 * kernel holds no orphan object. Prints its figures; fails on any leak.
 */
import { TestHost } from '../helpers/test-host';
import { invariantViolations, settle } from '../helpers/invariants';
import { sleep } from '../helpers/run';

jest.setTimeout(600_000);

const NETS = ['ch0', 'ch1', 'ch2'];
const MIN_KILLS = 22;
const MAX_MS = 240_000;
const WORKERS = 3;
/**
 * The churn must really happen: at least this many containers started. CI runs start 50-65;
 * a loaded machine (other engines running beside) 35-40, which is still real churn.
 */
const MIN_STARTS = 30;

// Deterministic randomness (mulberry32) so a failing run can be replayed with the same seed.
const seed = Number(process.env.LOOM_CHAOS_SEED ?? Date.now() % 100_000);
let state = seed;
const rand = (): number => {
  state = (state + 0x6d2b79f5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)] as T;

let host: TestHost;
beforeAll(async () => {
  host = await TestHost.create();
  await host.startLoomd({ LOOM_LOG_LEVEL: 'info' });
  for (const [i, n] of NETS.entries()) {
    await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', `198.18.${60 + i}.0/24`, '--aux-address', `x=198.18.${60 + i}.250`, n]);
    await host.cliOk(['run', '-d', '--init', '--name', `anchor-${n}`, '--network', n, 'local/busybox', 'sleep', '86400']);
  }
});
afterAll(async () => {
  await host?.destroy();
});

test(`containers churn on ${NETS.length} networks while loomd is SIGKILLed at least ${MIN_KILLS} times: no leak`, async () => {
  const started = Date.now();
  let stop = false;
  let kills = 0;
  const stats = { started: 0, startFailed: 0, removed: 0, removeFailed: 0 };
  const live = new Set<string>();
  let counter = 0;
  const failures: string[] = [];

  const killer = (async () => {
    while (!stop && Date.now() - started < MAX_MS) {
      await sleep(700 + rand() * 1800);
      await host.stopLoomd('SIGKILL');
      kills++;
      await sleep(100 + rand() * 600);
      await host.startLoomd({ LOOM_LOG_LEVEL: 'info' });
      if (kills >= MIN_KILLS) stop = true;
    }
    stop = true;
  })();

  const worker = async (): Promise<void> => {
    while (!stop && Date.now() - started < MAX_MS) {
      if (live.size < 4 || (live.size < 15 && rand() < 0.55)) {
        const name = `churn${counter++}`;
        const r = await host.cli(['run', '-d', '--init', '--name', name, '--network', pick(NETS), 'local/busybox', 'sleep', '86400'], { timeoutMs: 90_000 });
        if (r.code === 0) {
          stats.started++;
          live.add(name);
        } else {
          stats.startFailed++;
          if (failures.length < 6) failures.push(`${((Date.now() - started) / 1000).toFixed(1)} s: ${r.stderr.split('\n').find((l) => /error/i.test(l)) ?? r.stderr.trim()}`);
          await host.cli(['rm', '-f', name], { timeoutMs: 90_000 });
        }
      } else {
        const name = pick([...live]);
        live.delete(name);
        const r = await host.cli(['rm', '-f', name], { timeoutMs: 90_000 });
        if (r.code === 0) stats.removed++;
        else stats.removeFailed++;
      }
    }
  };
  await Promise.all([killer, ...Array.from({ length: WORKERS }, worker)]);
  if (!host.loomdPid) await host.startLoomd({ LOOM_LOG_LEVEL: 'info' });

  // Converge: the reconciler cleans what the crashes left behind.
  const violations = await settle(host, 90_000);

  // Connectivity: on each network every running container reaches the anchor and back.
  const unreachable: string[] = [];
  for (const n of NETS) {
    const members = JSON.parse(await host.cliOk(['network', 'inspect', '-f', '{{json .Containers}}', n])) as Record<string, { Name: string; IPv4Address: string }>;
    const anchorIp = Object.values(members).find((m) => m.Name === `anchor-${n}`)?.IPv4Address.split('/')[0] as string;
    for (const m of Object.values(members)) {
      if (m.Name === `anchor-${n}`) continue;
      if (!(await host.ping(m.Name, anchorIp, 2))) unreachable.push(`${m.Name} -> anchor-${n}`);
      if (!(await host.ping(`anchor-${n}`, m.IPv4Address.split('/')[0] as string, 2))) unreachable.push(`anchor-${n} -> ${m.Name}`);
    }
  }
  const repairs = (host.loomdLog().match(/"repair":"[a-z-]+"/g) ?? []).reduce<Record<string, number>>((acc, r) => {
    const k = r.slice(10, -1);
    acc[k] = (acc[k] ?? 0) + 1;
    return acc;
  }, {});
  console.log(
    `chaos (seed ${seed}): ${kills} loomd kills survived in ${Math.round((Date.now() - started) / 1000)} s; ` +
      `containers started ${stats.started} (failed ${stats.startFailed}), removed ${stats.removed} (failed ${stats.removeFailed}); ` +
      `reconciler repairs ${JSON.stringify(repairs)}; leaks found ${violations.length}; unreachable ${unreachable.length}` +
      (failures.length ? `\nfirst failed starts:\n  ${failures.join('\n  ')}` : '') +
      (violations.length ? `\nleaks:\n  ${violations.join('\n  ')}` : ''),
  );
  expect(kills).toBeGreaterThanOrEqual(20);
  expect(stats.started).toBeGreaterThanOrEqual(MIN_STARTS);
  // Starts fail only when a SIGKILL lands inside one of their calls: dockerd retries a call cut
  // by the kill with an empty body (its request buffer drained), which loomd must refuse. How
  // many calls are in flight at a kill grows with the machine's load (CI: 0-9 failed starts for
  // 22 kills; a loaded machine up to 16), so the bound is one failed start per kill on average.
  expect(stats.startFailed).toBeLessThanOrEqual(kills);
  expect(violations).toEqual([]);
  expect(unreachable).toEqual([]);
  expect(await invariantViolations(host)).toEqual([]);
});
