/**
 * The overlay when parts of the cluster fail: one etcd member down, all of etcd down
 * (running containers keep connectivity; new ones start on hosts with free addresses
 * in their blocks, including a block claimed ahead when the others filled up; everything
 * catches up when etcd returns), and a host that dies
 * (after its lease expires the others hold no entries for its endpoints; when it
 * returns, its containers are reachable again). Also: a smaller underlay MTU.
 */
import { TestCluster } from '../helpers/cluster';
import { sleep, waitFor } from '../helpers/run';
import type { TestHost } from '../helpers/test-host';

jest.setTimeout(900_000);

let c: TestCluster;
let A: TestHost;
let B: TestHost;
let C: TestHost;
beforeAll(async () => {
  // A smaller underlay MTU (on one L2 segment every host has the same; mixing them would make a
  // PMTU black hole): every overlay gets 1450 - 50. The smallest-host rule is unit-tested.
  c = await TestCluster.create(3, { underlayMtu: [1450, 1450, 1450] });
  [A, B, C] = c.hosts as [TestHost, TestHost, TestHost];
  await A.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '-o', 'loom.mode=overlay', '--subnet', '198.18.210.0/24', 'red']);
  for (const h of [B, C]) await waitFor(`red on ${h.name}`, async () => (await h.cli(['network', 'inspect', 'red'])).code === 0, 30_000, 250);
  await A.cliOk(['run', '-d', '--init', '--name', 'ra', '--network', 'red', 'local/busybox', 'sleep', '86400']);
  await B.cliOk(['run', '-d', '--init', '--name', 'rb', '--network', 'red', 'local/busybox', 'sleep', '86400']);
  await C.cliOk(['run', '-d', '--init', '--restart', 'always', '--name', 'rc', '--network', 'red', 'local/busybox', 'sleep', '86400']);
});
afterAll(async () => {
  await c?.destroy();
});

const ipOf = (h: TestHost, ctr: string): Promise<string> => h.containerIp(ctr, 'red');

test('the overlay MTU follows the smallest underlay (1450 - 50), with a warning', async () => {
  expect(Number(await A.cliOk(['exec', 'ra', 'cat', '/sys/class/net/eth0/mtu']))).toBe(1400);
  expect(A.loomdLog()).toMatch(/underlay MTU below 1500/);
  // Real 1400-byte packets cross: 1372 bytes of ICMP payload + 28 bytes of headers, DF set.
  const r = await A.inContainer('ra', ['ping', '-c', '1', '-W', '2', '-s', '1372', await ipOf(C, 'rc')]);
  expect(r.code).toBe(0);
});

test('one etcd member down: new containers still start and connect', async () => {
  await c.stopEtcd(c.etcd[0] as (typeof c.etcd)[number]);
  await B.cliOk(['run', '-d', '--init', '--name', 'rb2', '--network', 'red', 'local/busybox', 'sleep', '86400']);
  const ip = await ipOf(B, 'rb2');
  await waitFor('rb2 reachable from A', async () => A.ping('ra', ip, 1), 20_000, 200);
  c.startEtcd(c.etcd[0] as (typeof c.etcd)[number]);
  await c.waitEtcdHealthy();
});

test('all of etcd down: connectivity stays, new containers start, and the cluster catches up when etcd returns', async () => {
  for (const m of c.etcd) await c.stopEtcd(m);
  const [ra, rb, rc] = [await ipOf(A, 'ra'), await ipOf(B, 'rb'), await ipOf(C, 'rc')];
  expect(await A.ping('ra', rb)).toBe(true);
  expect(await B.ping('rb', rc)).toBe(true);
  expect(await C.ping('rc', ra)).toBe(true);
  // B allocates inside its block: no etcd needed for the address.
  await B.cliOk(['run', '-d', '--init', '--name', 'rb3', '--network', 'red', 'local/busybox', 'sleep', '86400']);
  const rb3 = await ipOf(B, 'rb3');
  expect(await B.ping('rb3', rb)).toBe(true);
  for (const m of c.etcd) c.startEtcd(m);
  await c.waitEtcdHealthy();
  await waitFor('rb3 reachable from A after etcd returned', async () => A.ping('ra', rb3, 1), 30_000, 250);
});

test('all of etcd down right after a host filled its blocks: its next container starts from the block it claimed ahead', async () => {
  // A /26 in 16 blocks of /30. B's first block holds the network address and the gateway: two containers fill it.
  await A.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '-o', 'loom.mode=overlay', '--subnet', '198.18.211.0/26', 'amber']);
  await waitFor('amber on B', async () => (await B.cli(['network', 'inspect', 'amber'])).code === 0, 30_000, 250);
  for (const n of ['am1', 'am2']) await B.cliOk(['run', '-d', '--init', '--name', n, '--network', 'amber', 'local/busybox', 'sleep', '86400']);
  // Only B allocates on amber: every block of the subnet is B's.
  const blocks = async (): Promise<number> =>
    (await c.etcdctl(['get', '--prefix', '--keys-only', '/loom/v1/blocks/198.18.211.0_26/'])).split('\n').filter((l) => l.startsWith('/loom/')).length;
  await waitFor('a second block claimed by B ahead of need', async () => (await blocks()) === 2, 10_000, 100);
  for (const m of c.etcd) await c.stopEtcd(m);
  try {
    await B.cliOk(['run', '-d', '--init', '--name', 'am3', '--network', 'amber', 'local/busybox', 'sleep', '86400']);
    const ip = await B.containerIp('am3', 'amber');
    expect(ip).toBe('198.18.211.4');
    expect(await B.ping('am3', await B.containerIp('am1', 'amber'))).toBe(true);
  } finally {
    for (const m of c.etcd) c.startEtcd(m);
    await c.waitEtcdHealthy();
  }
  for (const n of ['am1', 'am2', 'am3']) await B.cliOk(['rm', '-f', n]);
  await A.cliOk(['network', 'rm', 'amber']);
});

test('a dead host disappears from the others after its lease expires; restarted, its containers are reachable again', async () => {
  const rcIp = await ipOf(C, 'rc');
  await C.stopLoomd('SIGKILL');
  await C.stopDockerd('SIGKILL');
  const vx = async (h: TestHost): Promise<string> => (await h.ipJson<Array<{ ifname: string }>>(['link', 'show'])).map((l) => l.ifname).find((n) => n.startsWith('lx')) as string;
  for (const h of [A, B]) {
    const dev = await vx(h);
    await waitFor(`no entries for C on ${h.name}`, async () => {
      const fdb = await h.execOk(['bridge', 'fdb', 'show', 'dev', dev]);
      const neigh = await h.execOk(['ip', 'neigh', 'show', 'dev', dev]);
      return !fdb.includes('dst 198.18.0.3') && !neigh.includes(`${rcIp} `);
    }, 30_000, 500);
  }
  // C comes back: loomd first (as systemd would order it), then dockerd, which restarts rc.
  await C.startLoomd({ LOOM_ETCD_ENDPOINTS: c.endpoints, LOOM_ADVERTISE_ADDRESS: '198.18.0.3', LOOM_LEASE_TTL: '4' });
  await C.startDockerd([]);
  await waitFor('rc running again', async () => (await C.cli(['ps', '--format', '{{.Names}}'])).stdout.includes('rc'), 60_000, 250);
  const again = await ipOf(C, 'rc');
  await waitFor('rc reachable from A', async () => A.ping('ra', again, 1), 30_000, 250);
  expect(await C.ping('rc', await ipOf(A, 'ra'), 5)).toBe(true);
  await sleep(100);
});
