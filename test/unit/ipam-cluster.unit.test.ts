/**
 * Cluster-wide IPAM on the in-memory cluster store: subnets claimed once across hosts,
 * an overlay's subnet shared, dynamic addresses from per-host blocks without clashes,
 * static addresses reserved cluster-wide (the block owner grants them), and released
 * addresses of a shared pool kept in quarantine.
 */
import { MemoryCluster } from '../../driver/cluster/memory-store';
import { silentLogger } from '../../lib/logger';
import { MemoryKv } from '../../lib/kv';
import { ClusterPools } from '../../ipam-driver/cluster-pools';
import { parseDefaultPool } from '../../ipam-driver/core/pool-picker';
import { LOCAL_SPACE } from '../../ipam-driver/address-spaces';
import { IpamService } from '../../ipam-driver/ipam-service';
import { QUARANTINE_MS } from '../../ipam-driver/shared-holds';
import { IpamRepository } from '../../ipam-driver/ipam-store';

const log = silentLogger();

function host(c: MemoryCluster, id: string): { ipam: IpamService; pools: ClusterPools } {
  const pools = new ClusterPools(c.view(), id, log, { grantTimeoutMs: 1_000 });
  const ipam = new IpamService(
    new IpamRepository(new MemoryKv()),
    { defaultPools: ['198.18.128.0/17:24'].map(parseDefaultPool), hostRoutes: async () => [], cluster: { pools, overlayReserved: () => new Set(['198.18.200.1']) } },
    log,
  );
  return { ipam, pools };
}
const req = (pool: string) => ({ addressSpace: LOCAL_SPACE, pool, subPool: '', options: {}, v6: false });

/** Two hosts sharing the overlay subnet 198.18.200.0/24 ('blue'): h1 created it, h2 joined. */
async function sharedBlue() {
  const c = new MemoryCluster();
  const [a, b] = [host(c, 'h1'), host(c, 'h2')];
  const pa = await a.ipam.requestPool(req('198.18.200.0/24'));
  await a.ipam.markShared('198.18.200.0/24', 'blue');
  await a.pools.settle('198.18.200.0/24', 'overlay', 'blue');
  const pb = await b.ipam.requestPool(req('198.18.200.0/24')); // joins
  return { c, a, b, pa, pb };
}

test('a subnet is claimed once across hosts; automatic subnets avoid every claim', async () => {
  const c = new MemoryCluster();
  const [a, b] = [host(c, 'h1'), host(c, 'h2')];
  await a.ipam.requestPool(req('198.18.150.0/24'));
  await expect(b.ipam.requestPool(req('198.18.150.0/24'))).rejects.toThrow(/in use by a network being created on host h1/);
  const auto1 = await a.ipam.requestPool(req(''));
  const auto2 = await b.ipam.requestPool(req(''));
  expect(auto1.pool).not.toBe(auto2.pool);
});

test('an overlay subnet is shared: each host allocates from its own blocks, never the same address', async () => {
  const { c, a, b, pa, pb } = await sharedBlue();
  const got = new Set<string>();
  for (let i = 0; i < 40; i++) {
    for (const [h, p] of [[a, pa], [b, pb]] as const) {
      const { address } = await h.ipam.requestAddress({ poolId: p.poolId, address: '', options: {} });
      expect(got.has(address)).toBe(false);
      got.add(address);
    }
  }
  expect(got.size).toBe(80);
  const blocks = [...c.data.keys()].filter((k) => k.startsWith('/loom/v1/blocks/'));
  expect(blocks.length).toBeGreaterThanOrEqual(2);
});

test('a static address in another host\'s block is granted by that host, and refused when it is in use', async () => {
  const { c, a, b, pa, pb } = await sharedBlue();
  // Every host holds the overlay's gateway locally first, as Docker asks for it.
  for (const [h, p] of [[a, pa], [b, pb]] as const) {
    expect((await h.ipam.requestAddress({ poolId: p.poolId, address: '', options: { RequestAddressType: 'com.docker.network.gateway' } })).address).toBe('198.18.200.1/24');
  }
  const first = (await a.ipam.requestAddress({ poolId: pa.poolId, address: '', options: {} })).address.split('/')[0] as string; // claims a block on h1
  // h1 answers reservations in its blocks (what the coordinator does from the watch).
  const off = c.subscribe('/loom/v1/reservations/', (ev) => {
    if (ev.type === 'put' && (ev.value as { state: string }).state === 'requested') {
      const ip = ev.key.slice(ev.key.lastIndexOf('/') + 1);
      void a.ipam.answerReservation('198.18.200.0/24', ip, (ev.value as { host: string }).host);
    }
  });
  await expect(b.ipam.requestAddress({ poolId: pb.poolId, address: first, options: {} })).rejects.toThrow(/in use on host h1/);
  const free = first.replace(/\.(\d+)$/, (_m, n: string) => `.${Number(n) + 5}`);
  expect((await b.ipam.requestAddress({ poolId: pb.poolId, address: free, options: {} })).address).toBe(`${free}/24`);
  // h1 now holds it as foreign: its next-fit skips it.
  const seen = new Set<string>();
  for (let i = 0; i < 10; i++) seen.add((await a.ipam.requestAddress({ poolId: pa.poolId, address: '', options: {} })).address.split('/')[0] as string);
  expect(seen.has(free)).toBe(false);
  off();
});

test('a released address of a shared pool is quarantined before it can be handed out again', async () => {
  const c = new MemoryCluster();
  const a = host(c, 'h1');
  const p = await a.ipam.requestPool(req('198.18.200.0/30'));
  await a.ipam.markShared('198.18.200.0/30', 'tiny');
  const x = (await a.ipam.requestAddress({ poolId: p.poolId, address: '', options: {} })).address.split('/')[0] as string;
  const y = (await a.ipam.requestAddress({ poolId: p.poolId, address: '', options: {} })).address.split('/')[0] as string;
  expect([x, y].sort()).toEqual(['198.18.200.1', '198.18.200.2']);
  await a.ipam.releaseAddress(p.poolId, x);
  await expect(a.ipam.requestAddress({ poolId: p.poolId, address: '', options: {} })).rejects.toMatchObject({ kind: 'exhausted' });
  const now = Date.now();
  const spy = jest.spyOn(Date, 'now').mockReturnValue(now + QUARANTINE_MS + 1);
  try {
    expect((await a.ipam.requestAddress({ poolId: p.poolId, address: '', options: {} })).address).toBe(`${x}/30`);
  } finally {
    spy.mockRestore();
  }
});

test('a host that took its last free address of a shared pool claims its next block ahead: the next allocation needs no etcd', async () => {
  const { c, a, pa } = await sharedBlue(); // a /24 in blocks of /28: 16 blocks
  const blocksOf = (hostId: string): string[] =>
    [...c.data.entries()].filter(([k, e]) => k.startsWith('/loom/v1/blocks/') && JSON.parse(e.value).host === hostId).map(([k]) => k.slice(k.lastIndexOf('/') + 1));
  const next = async (): Promise<string> => (await a.ipam.requestAddress({ poolId: pa.poolId, address: '', options: {} })).address.split('/')[0] as string;
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 5));
  };
  const got: string[] = [];
  for (let i = 0; i < 20 && blocksOf('h1').length < 2; i++) {
    got.push(await next());
    await settle();
  }
  // The second block came right after the first one's last free address went, before any allocation needed it.
  expect(blocksOf('h1')).toEqual(['198.18.200.0', '198.18.200.16']);
  expect(got[got.length - 1]).toBe('198.18.200.15');
  expect(got.every((ip) => Number(ip.split('.')[3]) < 16)).toBe(true);
  // etcd down: the next container's address still comes, from the block claimed ahead.
  c.down = true;
  expect(await next()).toBe('198.18.200.16');
  c.down = false;
});

test('a block is claimed ahead only while four or more would stay unclaimed: the last ones are left to hosts that have none', async () => {
  const c = new MemoryCluster();
  const a = host(c, 'h1');
  // A /26 in blocks of /30: 16 blocks; the first holds 3 addresses to hand out (not .0), the others 4 (the last 3).
  const p = await a.ipam.requestPool(req('198.18.201.0/26'));
  await a.ipam.markShared('198.18.201.0/26', 'small');
  const claimed = (): number => [...c.data.keys()].filter((k) => k.startsWith('/loom/v1/blocks/198.18.201.0_26/')).length;
  const take = async (n: number): Promise<number> => {
    for (let i = 0; i < n; i++) await a.ipam.requestAddress({ poolId: p.poolId, address: '', options: {} });
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 5));
    return claimed();
  };
  expect(await take(3)).toBe(2); // the first block full: the second claimed ahead
  for (let k = 1; k <= 10; k++) expect(await take(4)).toBe(2 + k); // each full block brings the next
  expect(await take(4)).toBe(12); // 4 unclaimed: no block ahead any more
  expect(await take(1)).toBe(13); // claimed when needed, as before
});
