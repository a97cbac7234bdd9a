/**
 * Cluster IPAM on three real hosts (real dockerd, loomd and a 3-member etcd): small
 * overlay subnets serve every host (block size from the subnet, borrowing when no block
 * is left), addresses stay distinct cluster-wide, and the reconciler never releases what
 * a host keeps for another host's container (issue 12's check).
 *
 * Containers start concurrently, a bounded number at a time (the machine has 2 cores).
 */
import { TestCluster } from '../helpers/cluster';
import { waitFor } from '../helpers/run';
import type { TestHost } from '../helpers/test-host';
import { unixRequest } from '../helpers/unix-http';

jest.setTimeout(900_000);

let c: TestCluster;
let A: TestHost;
let B: TestHost;
let C: TestHost;
beforeAll(async () => {
  // Issue 12's check: reconcile every 2 s with a 2 s grace on every host.
  c = await TestCluster.create(3, { loomEnv: { LOOM_RECONCILE_INTERVAL: '2', LOOM_RECONCILE_GRACE: '2' } });
  [A, B, C] = c.hosts as [TestHost, TestHost, TestHost];
});
afterAll(async () => {
  await c?.destroy();
});

const PARALLEL = 6;

/** Runs `docker run -d` for every job, at most PARALLEL at a time; returns the failures' stderr. */
async function startAll(net: string, jobs: Array<[TestHost, string, string[]?]>): Promise<string[]> {
  const failures: string[] = [];
  const queue = [...jobs];
  const worker = async (): Promise<void> => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const [h, name, extra] = job;
      const r = await h.cli(['run', '-d', '--init', '--name', name, '--network', net, ...(extra ?? []), 'local/busybox', 'sleep', '3600'], { timeoutMs: 240_000 });
      if (r.code !== 0) failures.push(`${h.name}/${name}: ${r.stderr.trim()}`);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return failures;
}

/** name -> IP on `net` of every container on the hosts (one inspect per host). */
async function ipsOn(net: string, hosts: TestHost[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const h of hosts) {
    const ids = (await h.cliOk(['ps', '-q'])).split('\n').filter(Boolean);
    if (!ids.length) continue;
    const lines = await h.cliOk(['inspect', '-f', `{{.Name}} {{with index .NetworkSettings.Networks "${net}"}}{{.IPAddress}}{{end}}`, ...ids]);
    for (const line of lines.split('\n')) {
      const [name, ip] = line.trim().split(' ');
      if (name && ip) out.set(`${h.name}${name}`, ip);
    }
  }
  return out;
}

/** Addresses loomd holds for containers, per host (dynamic, static and borrowed), all hosts together. */
async function loomHeld(subnet: string): Promise<{ used: string[]; foreign: Map<string, string[]>; borrowed: number }> {
  const used: string[] = [];
  const foreign = new Map<string, string[]>();
  let borrowed = 0;
  for (const h of [A, B, C]) {
    const pools = (await h.loomState()).pools.filter((p) => p.pool === subnet);
    const allocs = pools.flatMap((p) => p.allocations as Array<{ address: string; kind: string }>);
    used.push(...allocs.filter((a) => ['dynamic', 'explicit', 'borrowed'].includes(a.kind)).map((a) => a.address));
    foreign.set(h.name, allocs.filter((a) => a.kind === 'foreign').map((a) => a.address).sort());
    borrowed += allocs.filter((a) => a.kind === 'borrowed').length;
  }
  return { used, foreign, borrowed };
}

async function overlay(name: string, subnet: string): Promise<void> {
  await A.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '-o', 'loom.mode=overlay', '--subnet', subnet, name]);
  for (const h of [B, C]) await waitFor(`${name} on ${h.name}`, async () => (await h.cli(['network', 'inspect', name])).code === 0, 30_000, 250);
}

/** Removes every container (in batches, bounded) and the overlay everywhere. */
async function removeAll(net: string): Promise<void> {
  await Promise.all(
    [A, B, C].map((h) =>
      waitFor(`no container left on ${h.name}`, async () => {
        const ids = (await h.cli(['ps', '-aq'], { timeoutMs: 30_000 })).stdout.split('\n').filter(Boolean);
        for (let i = 0; i < ids.length; i += 10) await h.cli(['rm', '-f', ...ids.slice(i, i + 10)], { timeoutMs: 120_000 });
        return ids.length === 0;
      }, 600_000, 1_000),
    ),
  );
  await waitFor(`${net} removed`, async () => (await A.cli(['network', 'rm', net])).code === 0, 60_000, 1_000);
  for (const h of [B, C]) await waitFor(`${net} gone on ${h.name}`, async () => (await h.cli(['network', 'inspect', net])).code !== 0, 30_000, 250);
}

const distinct = (xs: string[]): boolean => new Set(xs).size === xs.length;

test('a /26 overlay over 3 hosts: 10 containers on each start; the pool fills to its 61 addresses', async () => {
  await overlay('small', '198.18.72.0/26');
  const first: Array<[TestHost, string]> = [];
  for (let i = 0; i < 10; i++) for (const h of [A, B, C]) first.push([h, `s-${h.name.slice(0, 2)}-${i}`]);
  expect(await startAll('small', first)).toEqual([]);
  let ips = await ipsOn('small', [A, B, C]);
  expect(ips.size).toBe(30);
  expect(distinct([...ips.values()])).toBe(true);
  // Fill it up, spread over the hosts (and unevenly, so that hosts borrow from each other).
  const rest: Array<[TestHost, string]> = [];
  for (let i = 0; i < 31; i++) rest.push([[A, A, B, C][i % 4] as TestHost, `f${i}`]);
  expect(await startAll('small', rest)).toEqual([]);
  ips = await ipsOn('small', [A, B, C]);
  expect(ips.size).toBe(61);
  expect(distinct([...ips.values()])).toBe(true);
  expect([...ips.values()]).not.toContain('198.18.72.1');
  const held = await loomHeld('198.18.72.0/26');
  expect(held.used.length).toBe(61);
  expect(distinct(held.used)).toBe(true);
  // A holds 26 addresses, B 18 and C 17: blocks of 4 (2 and 3 at the pool's ends) cannot fit
  // B's 18 exactly, so some host lent addresses of its blocks to another.
  expect(held.borrowed).toBeGreaterThan(0);
  // Full: a clear error naming the reason.
  const r = await C.cli(['run', '-d', '--init', '--name', 'one-too-many', '--network', 'small', 'local/busybox', 'sleep', '3600']);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/no free address left in 198\.18\.72\.0\/26/);
  // Containers on different hosts reach each other.
  const [a0, c0] = [ips.get(`${A.name}/s-${A.name.slice(0, 2)}-0`), ips.get(`${C.name}/s-${C.name.slice(0, 2)}-0`)];
  expect(await A.ping(`s-${A.name.slice(0, 2)}-0`, c0 as string, 10)).toBe(true);
  expect(await C.ping(`s-${C.name.slice(0, 2)}-0`, a0 as string, 10)).toBe(true);
  await removeAll('small');
});

test('a /24 overlay over 3 hosts: 80 containers spread unevenly (60 on one host) all start, all distinct', async () => {
  await overlay('wide', '198.18.73.0/24');
  const jobs: Array<[TestHost, string]> = [];
  for (let i = 0; i < 80; i++) jobs.push([i < 60 ? A : i < 70 ? B : C, `w${i}`]);
  expect(await startAll('wide', jobs)).toEqual([]);
  const ips = await ipsOn('wide', [A, B, C]);
  expect(ips.size).toBe(80);
  expect(distinct([...ips.values()])).toBe(true);
  const held = await loomHeld('198.18.73.0/24');
  expect(distinct(held.used)).toBe(true);
  // The /24 is carved into 16 blocks of /28 (recorded with the pool's claim in etcd).
  expect(await c.etcdctl(['get', '/loom/v1/pools/198.18.73.0_24', '--print-value-only'])).toMatch(/"blockLen":28/);
  await removeAll('wide');
});

test('issue 12: 30 s of reconciling every 2 s never releases what a host keeps for another host\'s container', async () => {
  await overlay('keep', '198.18.74.0/27'); // 8 blocks of 4
  // A and C each claim a block; B then takes addresses inside them (granted by A and C,
  // which hold them as foreign) and in blocks of its own: 8 containers on B.
  expect(await startAll('keep', [[A, 'ka']])).toEqual([]);
  expect(await startAll('keep', [[C, 'kc']])).toEqual([]);
  const first = await ipsOn('keep', [A, C]);
  const blockOf = (ip: string): number => Number(ip.split('.')[3]) & ~3;
  const freeIn = (ip: string): string[] =>
    [0, 1, 2, 3].map((k) => blockOf(ip) + k).filter((n) => n > 1 && `198.18.74.${n}` !== ip && n !== 31).map((n) => `198.18.74.${n}`);
  const aIp = first.get(`${A.name}/ka`) as string;
  const cIp = first.get(`${C.name}/kc`) as string;
  // At least one in A's block and one in C's (A took the first block: .2, .3 free).
  const statics = [...freeIn(aIp).slice(0, 1), ...freeIn(cIp), ...freeIn(aIp).slice(1)].slice(0, 3);
  expect(statics).toHaveLength(3);
  const onB: Array<[TestHost, string, string[]?]> = statics.map((ip, i) => [B, `kb-s${i}`, ['--ip', ip]]);
  for (let i = 0; i < 5; i++) onB.push([B, `kb-d${i}`]);
  expect(await startAll('keep', onB)).toEqual([]);
  const before = await loomHeld('198.18.74.0/27');
  expect([...(before.foreign.get(A.name) ?? []), ...(before.foreign.get(C.name) ?? [])].sort()).toEqual([...statics].sort());

  // 30 s of reconcile passes on every host (at least 12 each).
  const passes = async (h: TestHost): Promise<number> => (await unixRequest(h.adminSocket, 'GET', '/v1/reconcile')).json.passes as number;
  const start = await Promise.all([A, B, C].map(passes));
  const t0 = Date.now();
  await waitFor('12 reconcile passes on every host over 30 s', async () => {
    const now = await Promise.all([A, B, C].map(passes));
    return Date.now() - t0 >= 30_000 && now.every((n, i) => n - (start[i] as number) >= 12);
  }, 90_000, 1_000);
  const after = await loomHeld('198.18.74.0/27');
  expect(after.foreign).toEqual(before.foreign);

  // 16 concurrent starts on A and C (the pool is nearly full: they claim, borrow, never reuse).
  const more: Array<[TestHost, string]> = [];
  for (let i = 0; i < 16; i++) more.push([i % 2 ? C : A, `km${i}`]);
  expect(await startAll('keep', more)).toEqual([]);
  const ips = await ipsOn('keep', [A, B, C]);
  expect(ips.size).toBe(26);
  expect(distinct([...ips.values()])).toBe(true);
  const held = await loomHeld('198.18.74.0/27');
  expect(distinct(held.used)).toBe(true);

  // A --ip on A of addresses B's containers hold: in A's own block (held as foreign) and in B's.
  const bDynamic = ips.get(`${B.name}/kb-d0`) as string;
  for (const ip of [statics[0] as string, bDynamic]) {
    const r = await A.cli(['run', '-d', '--init', '--name', `steal-${ip.split('.')[3]}`, '--network', 'keep', '--ip', ip, 'local/busybox', 'sleep', '3600']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/already (in use|reserved)/);
  }
  expect(await A.ping('ka', statics[0] as string, 10)).toBe(true);
  await removeAll('keep');
});

test('loomd SIGKILLed on the lender, then on the borrower, mid-borrow: no duplicate, and nothing leaked once the resync ran', async () => {
  const restart = async (h: TestHost): Promise<void> => {
    const i = c.hosts.indexOf(h);
    await h.startLoomd({ LOOM_ETCD_ENDPOINTS: c.endpoints, LOOM_ADVERTISE_ADDRESS: `198.18.0.${i + 1}`, LOOM_LEASE_TTL: '4', LOOM_RECONCILE_GRACE: '2' });
  };
  const reservations = async (): Promise<string[]> =>
    (await c.etcdctl(['get', '--prefix', '--keys-only', '/loom/v1/reservations/198.18.75.0_28/'])).split('\n').filter((l) => l.startsWith('/loom/'));
  await overlay('tight', '198.18.75.0/28'); // 4 blocks of 4: 13 usable addresses
  // A fills two blocks but one address; B and C claim the two others: 6 addresses left, 5 of them only to borrow.
  expect(await startAll('tight', [0, 1, 2, 3, 4].map((i) => [A, `t-a${i}`] as [TestHost, string]))).toEqual([]);
  expect(await startAll('tight', [[B, 't-b0'], [C, 't-c0']])).toEqual([]);

  // Round 1: A borrows; the lender B is SIGKILLed as soon as a loan is granted, and restarted.
  const round1 = startAll('tight', [0, 1, 2].map((i) => [A, `t-r1-${i}`] as [TestHost, string]));
  await waitFor('a loan granted', async () => (await reservations()).length > 0, 60_000, 50);
  await B.stopLoomd('SIGKILL');
  await restart(B);
  await round1;
  // Round 2: A (the borrower) is SIGKILLed as soon as another loan is granted, and restarted.
  const granted = (await reservations()).length;
  const round2 = startAll('tight', [0, 1, 2].map((i) => [A, `t-r2-${i}`] as [TestHost, string]));
  await waitFor('another loan granted', async () => (await reservations()).length > granted, 60_000, 50).catch(() => undefined);
  await A.stopLoomd('SIGKILL');
  await restart(A);
  await round2;

  let ips = await ipsOn('tight', [A, B, C]);
  expect(distinct([...ips.values()])).toBe(true);
  // Settled: every reservation in etcd is an address a running container uses.
  await waitFor('only reservations of running containers left', async () => {
    const used = new Set((await ipsOn('tight', [A, B, C])).values());
    const keys = await reservations();
    return keys.every((k) => used.has(k.slice(k.lastIndexOf('/') + 1)));
  }, 120_000, 2_000);
  // Nothing leaked for good: the pool fills to its 13 addresses (quarantines end within 30 s).
  const deadline = Date.now() + 150_000;
  for (let n = 0; ips.size < 13 && Date.now() < deadline; n++) {
    const h = [A, B, C][n % 3] as TestHost;
    const r = await h.cli(['run', '-d', '--init', '--name', `t-fill-${n}`, '--network', 'tight', 'local/busybox', 'sleep', '3600']);
    if (r.code !== 0) {
      await h.cli(['rm', '-f', `t-fill-${n}`]);
      await new Promise((res) => setTimeout(res, 2_000));
    }
    ips = await ipsOn('tight', [A, B, C]);
  }
  expect(ips.size).toBe(13);
  expect(distinct([...ips.values()])).toBe(true);
  expect(distinct((await loomHeld('198.18.75.0/28')).used)).toBe(true);
  await removeAll('tight');
});
