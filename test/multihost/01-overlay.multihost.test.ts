/**
 * Three Docker hosts with loomd and a 3-member etcd: an overlay network created on
 * host A appears on B and C by itself; containers on A, B and C reach each other;
 * no two containers anywhere get the same address.
 */
import { TestCluster } from '../helpers/cluster';
import { waitFor } from '../helpers/run';
import type { TestHost } from '../helpers/test-host';

jest.setTimeout(600_000);

let c: TestCluster;
let A: TestHost;
let B: TestHost;
let C: TestHost;
beforeAll(async () => {
  c = await TestCluster.create(3);
  [A, B, C] = c.hosts as [TestHost, TestHost, TestHost];
});
afterAll(async () => {
  await c?.destroy();
});

const ipOf = (h: TestHost, ctr: string, net: string): Promise<string> =>
  h.cliOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, ctr]);

test('an overlay created on A appears on B and C, and containers on all three reach each other', async () => {
  await A.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '-o', 'loom.mode=overlay', '--subnet', '198.18.200.0/24', 'blue']);
  for (const h of [B, C]) {
    await waitFor(`blue on ${h.name}`, async () => (await h.cli(['network', 'inspect', 'blue'])).code === 0, 30_000, 250);
  }
  const names: Array<[TestHost, string]> = [[A, 'a1'], [B, 'b1'], [C, 'c1']];
  for (const [h, n] of names) await h.cliOk(['run', '-d', '--init', '--name', n, '--network', 'blue', 'local/busybox', 'sleep', '3600']);
  const ips = await Promise.all(names.map(([h, n]) => ipOf(h, n, 'blue')));
  expect(new Set(ips).size).toBe(3);
  for (const [h, n] of names) {
    for (const ip of ips) expect(await h.ping(n, ip, 10)).toBe(true);
    expect(await h.ping(n, '198.18.200.1')).toBe(true); // the local distributed gateway
  }
});
