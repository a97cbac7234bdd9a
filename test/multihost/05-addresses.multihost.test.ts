/**
 * Addresses that come back, across hosts: a container on B restarted (or reconnected) with
 * its --ip is reachable from A at once (its MAC is derived from the address, so every host's
 * FDB and neighbour entries stay right); a container that moves to C with the same --ip is
 * reachable there as soon as C has published it (the old record's deletion, arriving after
 * the new one, never removes the entries the new one needs).
 */
import { TestCluster } from '../helpers/cluster';
import { run, waitFor } from '../helpers/run';
import type { TestHost } from '../helpers/test-host';

jest.setTimeout(600_000);

let c: TestCluster;
let A: TestHost;
let B: TestHost;
let C: TestHost;
beforeAll(async () => {
  c = await TestCluster.create(3);
  [A, B, C] = c.hosts as [TestHost, TestHost, TestHost];
  await A.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '-o', 'loom.mode=overlay', '--subnet', '198.18.220.0/24', 'back']);
  for (const h of [B, C]) await waitFor(`back on ${h.name}`, async () => (await h.cli(['network', 'inspect', 'back'])).code === 0, 30_000, 250);
  await A.cliOk(['run', '-d', '--init', '--name', 'watcher', '--network', 'back', 'local/busybox', 'sleep', '86400']);
});
afterAll(async () => {
  await c?.destroy();
});

/** ms until A's `watcher` gets a reply from `ip` (from its namespace directly, one ping a try). */
async function msUntilReachable(ip: string, limitMs = 40_000): Promise<number> {
  const pid = await A.cliOk(['inspect', '-f', '{{.State.Pid}}', 'watcher']);
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs) {
    const r = await run('nsenter', [`--net=/proc/${pid}/ns/net`, '/bin/busybox', 'ping', '-c', '1', '-W', '1', ip], { timeoutMs: 5_000 });
    if (r.code === 0) return Date.now() - t0;
  }
  return Infinity;
}

test('a container on B restarted with its --ip is reachable from A at once', async () => {
  const ip = '198.18.220.50';
  await B.cliOk(['run', '-d', '--init', '--name', 'again', '--network', 'back', '--ip', ip, 'local/busybox', 'sleep', '86400']);
  expect(await msUntilReachable(ip)).toBeLessThan(15_000);
  await B.cliOk(['restart', '-t', '0', 'again']);
  const ms = await msUntilReachable(ip);
  console.log(`overlay, docker restart on B: reachable from A after ${ms} ms`);
  expect(ms).toBeLessThan(1_000);
});

test('reconnected on B with the same --ip: reachable from A at once', async () => {
  const ip = '198.18.220.51';
  await B.cliOk(['run', '-d', '--init', '--name', 'moved', '--network', 'back', '--ip', ip, 'local/busybox', 'sleep', '86400']);
  expect(await msUntilReachable(ip)).toBeLessThan(15_000);
  await B.cliOk(['network', 'disconnect', 'back', 'moved']);
  await B.cliOk(['network', 'connect', '--ip', ip, 'back', 'moved']);
  const ms = await msUntilReachable(ip);
  console.log(`overlay, disconnect/connect on B: reachable from A after ${ms} ms`);
  expect(ms).toBeLessThan(1_000);
});

test('the same --ip moved from B to C: reachable from A, and stays so', async () => {
  const ip = '198.18.220.52';
  await B.cliOk(['run', '-d', '--init', '--name', 'nomad', '--network', 'back', '--ip', ip, 'local/busybox', 'sleep', '86400']);
  expect(await msUntilReachable(ip)).toBeLessThan(15_000);
  await B.cliOk(['rm', '-f', 'nomad']);
  // The static address is released cluster-wide by B; C reserves it as soon as it can.
  await waitFor('nomad on C', async () => (await C.cli(['run', '-d', '--init', '--name', 'nomad', '--network', 'back', '--ip', ip, 'local/busybox', 'sleep', '86400'])).code === 0 || (await C.cli(['rm', '-f', 'nomad']), false), 60_000, 500);
  expect(await msUntilReachable(ip)).toBeLessThan(15_000);
  // Reachable for good: nothing takes its entries away afterwards.
  for (let i = 0; i < 5; i++) expect(await msUntilReachable(ip, 3_000)).toBeLessThan(3_000);
});
