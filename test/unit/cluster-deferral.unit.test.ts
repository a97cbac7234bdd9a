/**
 * Cluster IPAM while etcd is unreachable, on the in-memory store with real agents: a
 * local subnet is taken at once and its claim published when etcd returns; a conflict
 * found then is reported; what needs another host's agreement fails at once naming etcd;
 * what is given back is queued; a hung etcd costs a local call at most the deferrable
 * budget. Also the queue itself: newest state per key wins, logic errors are dropped.
 */
import { ClusterAgent } from '../../driver/cluster/agent';
import { ClusterHealth } from '../../lib/cluster/health';
import { MemoryCluster, MemoryStore } from '../../driver/cluster/memory-store';
import { DeferredWrites } from '../../lib/cluster/deferred-writes';
import { ClusterUnavailableError } from '../../lib/cluster/health';
import { silentLogger } from '../../lib/logger';
import { MemoryKv } from '../../lib/kv';
import { ClaimConflicts } from '../../ipam-driver/claim-conflicts';
import { ClusterPools } from '../../ipam-driver/cluster-pools';
import { parseDefaultPool } from '../../ipam-driver/core/pool-picker';
import { LOCAL_SPACE } from '../../ipam-driver/address-spaces';
import { IpamService } from '../../ipam-driver/ipam-service';
import { IpamRepository } from '../../ipam-driver/ipam-store';

const log = silentLogger();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const until = async (what: string, fn: () => boolean, ms = 4_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(5);
  }
};
const req = (pool: string) => ({ addressSpace: LOCAL_SPACE, pool, subPool: '', options: {}, v6: false });
const timed = async <T>(p: Promise<T>): Promise<{ ms: number; v: T }> => {
  const t0 = Date.now();
  const v = await p;
  return { ms: Date.now() - t0, v };
};

interface Member {
  id: string;
  view: MemoryStore;
  agent: ClusterAgent;
  pools: ClusterPools;
  ipam: IpamService;
  conflicts: ClaimConflicts;
}
const members: Member[] = [];

async function member(c: MemoryCluster, id: string): Promise<Member> {
  const view = c.view();
  const agent = new ClusterAgent(view, { hostId: id, vtep: `198.18.0.${id.slice(-1)}`, underlayMtu: 1500, version: 'test' }, log, { leaseTtlS: 1, backoff: { initialMs: 20, maxMs: 100 } });
  const conflicts = new ClaimConflicts(log);
  const pools = new ClusterPools(agent.store, id, log, { grantTimeoutMs: 1_000 }, { writes: agent.writes, knownClaims: () => [...agent.claims.values()], conflicts, health: agent.health });
  const ipam = new IpamService(
    new IpamRepository(new MemoryKv()),
    { defaultPools: ['198.18.128.0/17:24'].map(parseDefaultPool), hostRoutes: async () => [], cluster: { pools, overlayReserved: () => new Set(['198.18.200.1']) } },
    log,
  );
  await agent.start();
  await until(`${id} up`, () => agent.health.state === 'up' && !agent.session.reconnecting);
  const m = { id, view, agent, pools, ipam, conflicts };
  members.push(m);
  return m;
}

/** Cuts one host off and waits until its heartbeat noticed (ttl 1 s: a tick every 333 ms). */
async function partition(m: Member): Promise<void> {
  m.view.partitioned = true;
  await until(`${m.id} sees etcd down`, () => m.agent.health.isDown);
}

async function heal(m: Member): Promise<void> {
  m.view.partitioned = false;
  await until(`${m.id} back`, () => m.agent.health.state === 'up' && !m.agent.session.reconnecting && m.agent.backlog === 0, 6_000);
}

afterEach(async () => {
  for (const m of members.splice(0)) await m.agent.stop();
});

test('etcd unreachable: a local subnet is taken at once, without an etcd call, and claimed when etcd returns', async () => {
  const c = new MemoryCluster();
  const a = await member(c, 'h1');
  await partition(a);
  // The claim goes through create/get; the session's probes never do.
  const create = jest.spyOn(a.view, 'create');
  const get = jest.spyOn(a.view, 'get');
  const { ms, v } = await timed(a.ipam.requestPool(req('198.18.150.0/24')));
  expect(ms).toBeLessThan(400);
  expect(v.pool).toBe('198.18.150.0/24');
  expect(create).not.toHaveBeenCalled();
  expect(get).not.toHaveBeenCalled();
  create.mockRestore();
  get.mockRestore();
  expect(c.data.has('/loom/v1/pools/198.18.150.0_24')).toBe(false);
  expect(a.agent.backlog).toBeGreaterThan(0);
  await heal(a);
  expect(JSON.parse(c.data.get('/loom/v1/pools/198.18.150.0_24')?.value ?? '{}')).toMatchObject({ host: 'h1' });
});

test('a subnet another host claimed meanwhile is reported as a conflict when the claim is published', async () => {
  const c = new MemoryCluster();
  const [a, b] = [await member(c, 'h1'), await member(c, 'h2')];
  await partition(a);
  await a.ipam.requestPool(req('198.18.151.0/24'));
  await b.ipam.requestPool(req('198.18.151.0/24')); // h2 reaches etcd: its claim wins
  await heal(a);
  expect(a.conflicts.list()).toEqual([expect.objectContaining({ subnet: '198.18.151.0/24', holder: 'host h2' })]);
  // The audit of a reconcile pass finds it too, and forgets it once the pool is gone here.
  await a.pools.auditClaims([{ subnet: '198.18.151.0/24' }]);
  expect(a.conflicts.size).toBe(1);
  await a.ipam.releasePool('LoomLocal/198.18.151.0/24');
  expect(a.conflicts.size).toBe(0);
  expect(JSON.parse(c.data.get('/loom/v1/pools/198.18.151.0_24')?.value ?? '{}')).toMatchObject({ host: 'h2' });
});

test("while etcd is unreachable a known overlay's subnet, a new block and a static address in a shared pool fail at once, naming etcd", async () => {
  const c = new MemoryCluster();
  const [a, b] = [await member(c, 'h1'), await member(c, 'h2')];
  const pa = await a.ipam.requestPool(req('198.18.200.0/26'));
  await a.ipam.markShared('198.18.200.0/26', 'blue');
  await a.pools.settle('198.18.200.0/26', 'overlay', 'blue');
  const pb = await b.ipam.requestPool(req('198.18.200.0/26')); // joins
  const first = (await b.ipam.requestAddress({ poolId: pb.poolId, address: '', options: {} })).address; // claims a block
  await until('h2 knows the overlay claim', () => b.agent.claims.get('198.18.200.0/26')?.kind === 'overlay');
  expect(first).toMatch(/^198\.18\.200\./);
  await partition(b);
  // A dynamic address inside the block h2 holds needs no etcd.
  expect((await timed(b.ipam.requestAddress({ poolId: pb.poolId, address: '', options: {} }))).ms).toBeLessThan(400);
  // A static address must be reserved cluster-wide.
  const t0 = Date.now();
  await expect(b.ipam.requestAddress({ poolId: pb.poolId, address: '198.18.200.40', options: {} })).rejects.toThrow(/etcd/);
  expect(Date.now() - t0).toBeLessThan(400);
  await b.ipam.releasePool(pb.poolId);
  // Joining the overlay's subnet again: the last known claims say it is the overlay's.
  await expect(b.ipam.requestPool(req('198.18.200.0/26'))).rejects.toThrow(/belongs to overlay blue.*etcd/);
  expect(pa.pool).toBe('198.18.200.0/26');
});

test('what a host gives back while etcd is unreachable is queued and written when it returns', async () => {
  const c = new MemoryCluster();
  const a = await member(c, 'h1');
  const p = await a.ipam.requestPool(req('198.18.152.0/24'));
  expect(c.data.has('/loom/v1/pools/198.18.152.0_24')).toBe(true);
  await partition(a);
  expect((await timed(a.ipam.releasePool(p.poolId))).ms).toBeLessThan(400);
  expect(c.data.has('/loom/v1/pools/198.18.152.0_24')).toBe(true);
  await heal(a);
  expect(c.data.has('/loom/v1/pools/198.18.152.0_24')).toBe(false);
});

test('a subnet given back and taken again while etcd is away stays claimed (newest state wins)', async () => {
  const c = new MemoryCluster();
  const a = await member(c, 'h1');
  const p = await a.ipam.requestPool(req('198.18.153.0/24'));
  await partition(a);
  await a.ipam.releasePool(p.poolId);
  await a.ipam.requestPool(req('198.18.153.0/24'));
  await heal(a);
  expect(JSON.parse(c.data.get('/loom/v1/pools/198.18.153.0_24')?.value ?? '{}')).toMatchObject({ host: 'h1' });
});

test('a hung etcd, not yet noticed, costs a local RequestPool at most the deferrable budget', async () => {
  const c = new MemoryCluster();
  const a = await member(c, 'h1');
  c.hung = true;
  const { ms } = await timed(a.ipam.requestPool(req('198.18.154.0/24')));
  expect(ms).toBeGreaterThanOrEqual(250);
  expect(ms).toBeLessThan(900);
  // etcd is now known to be slow: the next local call does not wait at all.
  expect((await timed(a.ipam.requestPool(req('198.18.155.0/24')))).ms).toBeLessThan(400);
  c.hung = false;
  await until('claims published', () => c.data.has('/loom/v1/pools/198.18.154.0_24') && c.data.has('/loom/v1/pools/198.18.155.0_24'), 8_000);
}, 15_000);

test('the write queue: the newest state of a key wins, order is kept, logic errors are dropped after retries', async () => {
  const health = new ClusterHealth(log);
  health.ok();
  const w = new DeferredWrites(health, log, 3, { initialMs: 5, maxMs: 10 });
  const done: string[] = [];
  let gate!: () => void;
  const first = new Promise<void>((r) => (gate = r));
  w.set('k0', 'blocker', async () => first.then(() => void done.push('k0')));
  w.set('k1', 'old', async () => void done.push('k1-old'));
  w.set('k2', 'x', async () => void done.push('k2'));
  w.set('k1', 'new', async () => void done.push('k1-new'));
  let bad = 0;
  w.set('k3', 'bad', async () => {
    bad++;
    throw new Error('etcd refused the value');
  });
  gate();
  await until('drained', () => w.size === 0);
  expect(done).toEqual(['k0', 'k2', 'k1-new']);
  expect(bad).toBe(3);
  // Unavailable is never dropped: it waits for etcd.
  let tries = 0;
  w.set('k4', 'needs etcd', async () => {
    if (++tries < 5) {
      health.failed(new Error('down'));
      setTimeout(() => health.ok(), 10);
      throw new ClusterUnavailableError('etcd: down');
    }
  });
  await until('k4 written', () => w.size === 0);
  expect(tries).toBe(5);
  await w.stop();
});
