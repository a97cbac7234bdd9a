/**
 * The cluster agent's logic on the in-memory cluster store: overlay MTU from the
 * smallest underlay, VNI allocation and joining, endpoint publication seen by other
 * hosts, and a dead host's endpoints disappearing when its lease expires.
 */
import { AgentCallbacks, ClusterAgent, RemoteEndpoint } from '../../driver/cluster/agent';
import { MemoryCluster } from '../../driver/cluster/memory-store';
import { silentLogger } from '../../lib/logger';

const log = silentLogger();
const until = async (what: string, fn: () => boolean, ms = 2_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

function agent(c: MemoryCluster, hostId: string, underlayMtu = 1500, peerGraceS = 1, events?: AgentCallbacks): ClusterAgent {
  return new ClusterAgent(c.view(), { hostId, vtep: `198.18.0.${hostId.slice(-1)}`, underlayMtu, version: 'test' }, log, { leaseTtlS: 4, peerGraceS, backoff: { initialMs: 20, maxMs: 200 }, ...(events ? { events } : {}) });
}

const proposal = (key: string, pool = '198.18.200.0/24') => ({
  key,
  origin: 'h1',
  mtu: 1450,
  ipv4: [{ pool, gateway: pool.replace('0/24', '1/24'), aux: {} }],
  ipv6: [],
  enableIpv6: false,
  internal: false,
  options: {},
});

test('the overlay MTU is the smallest registered underlay MTU minus 50', async () => {
  const c = new MemoryCluster();
  const [a, b, d] = [agent(c, 'h1', 1500), agent(c, 'h2', 1500), agent(c, 'h3', 1450)];
  for (const x of [a, b, d]) await x.start();
  await until('three hosts', () => c.data.size >= 3);
  expect(await a.overlayMtu()).toEqual({ mtu: 1400, underlay: 1450 });
  for (const x of [a, b, d]) await x.stop();
});

test('registering an overlay allocates a VNI once; joining checks the subnets', async () => {
  const c = new MemoryCluster();
  const [a, b] = [agent(c, 'h1'), agent(c, 'h2')];
  await a.start();
  await b.start();
  const r1 = await a.registerOverlay(proposal('blue'));
  expect(r1.vni).toBeGreaterThanOrEqual(4096);
  const r2 = await b.registerOverlay({ ...proposal('blue'), origin: 'h2' });
  expect(r2).toEqual(r1);
  await expect(b.registerOverlay(proposal('blue', '198.18.201.0/24'))).rejects.toMatchObject({ kind: 'conflict' });
  const other = await a.registerOverlay(proposal('green', '198.18.202.0/24'));
  expect(other.vni).not.toBe(r1.vni);
  await a.stop();
  await b.stop();
});

test("endpoints published by one host reach the others, and vanish after the host's lease (and the peer grace)", async () => {
  const c = new MemoryCluster();
  const seen: Array<[string, boolean]> = [];
  const [a, b] = [agent(c, 'h1'), agent(c, 'h2', 1500, 1, { onRemoteEndpoint: (ep: RemoteEndpoint, present: boolean) => seen.push([ep.endpointId, present]) })];
  await a.start();
  await b.start();
  await until('watches', () => c.data.size >= 2);
  a.publishEndpoint({ overlay: 'blue', endpointId: 'e1', mac: '02:00:00:00:00:01', ip: '198.18.200.5' });
  await until('the endpoint on h2', () => b.remote.get('blue')?.size === 1);
  expect(b.remote.get('blue')?.get('h1/e1')).toMatchObject({ vtep: '198.18.0.1', ip: '198.18.200.5' });
  // h1 dies: its lease expires, its keys go, h2 removes the endpoint once the grace (1 s) is over.
  await a.stop();
  await until('the endpoint gone from h2', () => !b.remote.has('blue'), 5_000);
  expect(seen).toEqual([
    ['e1', true],
    ['e1', false],
  ]);
  await b.stop();
});

test('while the store is down, publications wait and are written when it returns', async () => {
  const c = new MemoryCluster();
  const a = agent(c, 'h1');
  await a.start();
  await until('host key', () => c.data.size >= 1);
  c.down = true;
  a.publishEndpoint({ overlay: 'blue', endpointId: 'e9', mac: '02:00:00:00:00:09', ip: '198.18.200.9' });
  await new Promise((r) => setTimeout(r, 50));
  expect(a.backlog).toBe(1);
  c.down = false;
  await until('written', () => a.backlog === 0, 10_000);
  expect([...c.data.keys()]).toContain('/loom/v1/endpoints/blue/h1/e9');
  await a.stop();
});

test("a host whose lease etcd dropped publishes again; the others never remove its endpoints meanwhile", async () => {
  const c = new MemoryCluster();
  const removed: string[] = [];
  const [a, b] = [agent(c, 'h1'), agent(c, 'h2', 1500, 60, { onRemoteEndpoint: (ep: RemoteEndpoint, present: boolean) => void (present ? undefined : removed.push(ep.endpointId)) })];
  await a.start();
  await b.start();
  a.publishEndpoint({ overlay: 'blue', endpointId: 'e1', mac: '02:00:00:00:00:01', ip: '198.18.200.5' });
  await until('the endpoint on h2', () => b.remote.get('blue')?.size === 1);
  const lease = a.session.leaseId as string;
  c.expire(lease); // etcd revoked it (it was away longer than the TTL): h1's keys are deleted
  expect(c.data.has('/loom/v1/endpoints/blue/h1/e1')).toBe(false);
  await until('h1 published again under a new lease', () => c.data.has('/loom/v1/endpoints/blue/h1/e1') && a.session.leaseId !== lease, 5_000);
  await new Promise((r) => setTimeout(r, 1_500)); // past the settle delay
  expect(removed).toEqual([]);
  expect(b.remote.get('blue')?.get('h1/e1')).toBeDefined();
  await a.stop();
  await b.stop();
});
