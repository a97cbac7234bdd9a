/** IpamService pools: RequestPool / ReleasePool over a MemoryKv store. */
import { staticAnswers } from '../../driver/api/static-answers';
import { GLOBAL_SPACE, LOCAL_SPACE } from '../../ipam-driver/address-spaces';
import { fixture, keys, poolReq, rejection } from './ipam-fixture';

describe('RequestPool with an explicit subnet', () => {
  test('returns a pool id and the canonical subnet, and stores a pool record', async () => {
    const f = fixture();
    const r = await f.ipam.requestPool(poolReq({ pool: '198.18.10.0/24', options: { a: 'b' } }));
    expect(r).toEqual({ poolId: 'LoomLocal/198.18.10.0/24', pool: '198.18.10.0/24' });
    const stored = await f.kv.get<Record<string, unknown>>('ipam/pool/LoomLocal/198.18.10.0/24');
    expect(stored).toMatchObject({ id: r.poolId, addressSpace: LOCAL_SPACE, pool: '198.18.10.0/24', v6: false, refs: 1, auto: false, options: { a: 'b' } });
    expect(stored).not.toHaveProperty('subPool');
  });

  test('IPv6 subnets are canonicalised', async () => {
    const f = fixture();
    const r = await f.ipam.requestPool(poolReq({ pool: '2001:DB8:0:0::/64', v6: true }));
    expect(r).toEqual({ poolId: 'LoomLocal/2001:db8::/64', pool: '2001:db8::/64' });
  });

  test('a SubPool (ip-range) inside the subnet is part of the pool id', async () => {
    const f = fixture();
    const r = await f.ipam.requestPool(poolReq({ pool: '198.18.10.0/24', subPool: '198.18.10.128/25' }));
    expect(r).toEqual({ poolId: 'LoomLocal/198.18.10.0/24/198.18.10.128/25', pool: '198.18.10.0/24' });
    expect(f.ipam.listPools()[0]).toMatchObject({ subPool: '198.18.10.128/25', capacity: 254n, used: 0n });
  });

  test.each([
    [{ subPool: '198.18.11.0/25' }, /ip-range 198.18.11.0\/25 is not inside subnet 198.18.10.0\/24/],
    [{ subPool: '198.18.0.0/16' }, /is not inside subnet/],
    [{ subPool: '198.18.10.1/25' }, /invalid ip-range 198.18.10.1\/25: it should be 198.18.10.0\/25/],
    [{ pool: '198.18.10.1/24' }, /invalid subnet 198.18.10.1\/24: it should be 198.18.10.0\/24/],
    [{ pool: 'fd00::/64' }, /subnet fd00::\/64 is IPv6 but an IPv4 pool was requested/],
    [{ pool: '198.18.10.0/24', v6: true }, /subnet 198.18.10.0\/24 is IPv4 but an IPv6 pool was requested/],
    [{ addressSpace: 'default' }, /unknown address space "default"/],
    [{ pool: '', subPool: '198.18.10.128/25' }, /an ip-range \(SubPool\) needs an explicit subnet \(Pool\)/],
  ])('invalid request %j', async (over, message) => {
    const f = fixture();
    const err = await rejection(f.ipam.requestPool(poolReq({ pool: '198.18.10.0/24', ...over })));
    expect(err.kind).toBe('invalid');
    expect(err.message).toMatch(message);
    expect(f.ipam.listPools()).toEqual([]);
    expect(f.kv.data.size).toBe(0);
  });

  test('the same subnet twice in the local space is a conflict', async () => {
    const f = fixture();
    await f.ipam.requestPool(poolReq({ pool: '198.18.10.0/24' }));
    const err = await rejection(f.ipam.requestPool(poolReq({ pool: '198.18.10.0/24' })));
    expect(err.kind).toBe('conflict');
    expect(err.message).toBe('subnet 198.18.10.0/24 is already in use by another network');
    // A different ip-range does not make it another subnet.
    expect((await rejection(f.ipam.requestPool(poolReq({ pool: '198.18.10.0/24', subPool: '198.18.10.0/25' })))).kind).toBe('conflict');
  });

  test('overlapping subnets are a conflict naming the other subnet', async () => {
    const f = fixture();
    await f.ipam.requestPool(poolReq({ pool: '198.18.10.0/24' }));
    const wider = await rejection(f.ipam.requestPool(poolReq({ pool: '198.18.0.0/16' })));
    expect(wider.kind).toBe('conflict');
    expect(wider.message).toBe('subnet 198.18.0.0/16 overlaps subnet 198.18.10.0/24 of another network');
    const narrower = await rejection(f.ipam.requestPool(poolReq({ pool: '198.18.10.64/26' })));
    expect(narrower.message).toBe('subnet 198.18.10.64/26 overlaps subnet 198.18.10.0/24 of another network');
    await f.ipam.requestPool(poolReq({ pool: '198.18.11.0/24' }));
    expect(f.ipam.listPools()).toHaveLength(2);
  });

  test('address spaces are independent', async () => {
    const f = fixture();
    await f.ipam.requestPool(poolReq({ pool: '198.18.10.0/24' }));
    const g = await f.ipam.requestPool(poolReq({ addressSpace: GLOBAL_SPACE, pool: '198.18.10.0/24' }));
    expect(g.poolId).toBe('LoomGlobal/198.18.10.0/24');
  });
});

describe('RequestPool without a subnet (automatic)', () => {
  test('picks the first free default subnet for each family', async () => {
    const f = fixture();
    expect(await f.ipam.requestPool(poolReq())).toEqual({ poolId: 'LoomLocal/172.16.0.0/16', pool: '172.16.0.0/16' });
    expect((await f.ipam.requestPool(poolReq({ v6: true }))).pool).toBe('fd00:1::/64');
    expect(f.ipam.listPools().every((p) => p.refs === 1)).toBe(true);
    expect((await f.kv.get<{ auto: boolean }>('ipam/pool/LoomLocal/172.16.0.0/16'))?.auto).toBe(true);
  });

  test("repeated requests return different pools (Docker's overlap loop holds the earlier ones)", async () => {
    const f = fixture();
    const got: string[] = [];
    for (let i = 0; i < 4; i++) got.push((await f.ipam.requestPool(poolReq())).pool);
    expect(got).toEqual(['172.16.0.0/16', '172.17.0.0/16', '172.18.0.0/16', '172.19.0.0/16']);
    await f.ipam.releasePool('LoomLocal/172.17.0.0/16');
    expect((await f.ipam.requestPool(poolReq())).pool).toBe('172.17.0.0/16');
  });

  test('concurrent automatic requests never get the same subnet', async () => {
    const f = fixture();
    const got = await Promise.all(Array.from({ length: 8 }, () => f.ipam.requestPool(poolReq())));
    expect(new Set(got.map((g) => g.pool)).size).toBe(8);
  });

  test('avoids explicit pools and prefixes routed on the host; a default route does not block anything', async () => {
    const f = fixture();
    await f.ipam.requestPool(poolReq({ pool: '172.16.1.0/24' }));
    f.routes.push('0.0.0.0/0', '172.17.0.0/16', '172.18.0.0/15');
    expect((await f.ipam.requestPool(poolReq())).pool).toBe('172.20.0.0/16');
  });

  test('a failing route lookup only leaves loom pools to avoid', async () => {
    const broken = fixture({
      hostRoutes: async () => {
        throw new Error('netlink down');
      },
    });
    expect((await broken.ipam.requestPool(poolReq())).pool).toBe('172.16.0.0/16');
    expect((await broken.ipam.requestPool(poolReq())).pool).toBe('172.17.0.0/16');
  });

  test('no free subnet left is a conflict listing the default pools', async () => {
    const f = fixture({ defaultPools: ['10.99.0.0/23:24', 'fd00:1::/48:64'] });
    await f.ipam.requestPool(poolReq());
    await f.ipam.requestPool(poolReq());
    const err = await rejection(f.ipam.requestPool(poolReq()));
    expect(err.kind).toBe('conflict');
    expect(err.message).toBe('no free IPv4 subnet left in the default pools (10.99.0.0/23:24); pass --subnet or configure more default pools');
    const none = await rejection(fixture({ defaultPools: ['10.99.0.0/23:24'] }).ipam.requestPool(poolReq({ v6: true })));
    expect(none.message).toMatch(/no free IPv6 subnet left in the default pools \(none configured\)/);
  });

  test('automatic pools of the global space do not consider local pools', async () => {
    const f = fixture();
    await f.ipam.requestPool(poolReq());
    expect((await f.ipam.requestPool(poolReq({ addressSpace: GLOBAL_SPACE }))).pool).toBe('172.16.0.0/16');
  });
});

describe('global space confirmations and ReleasePool reference counts', () => {
  test('an identical global request is a confirmation; each ReleasePool drops one reference', async () => {
    const f = fixture();
    const req = poolReq({ addressSpace: GLOBAL_SPACE, pool: '10.20.0.0/24' });
    const a = await f.ipam.requestPool(req);
    const b = await f.ipam.requestPool(req);
    expect(b).toEqual(a);
    expect(f.ipam.listPools()).toMatchObject([{ id: a.poolId, refs: 2 }]);
    expect((await f.kv.get<{ refs: number }>(`ipam/pool/${a.poolId}`))?.refs).toBe(2);

    await f.ipam.releasePool(a.poolId);
    expect(f.ipam.listPools()).toMatchObject([{ refs: 1 }]);
    expect((await f.kv.get<{ refs: number }>(`ipam/pool/${a.poolId}`))?.refs).toBe(1);
    await f.ipam.releasePool(a.poolId);
    expect(f.ipam.listPools()).toEqual([]);
    expect(f.kv.data.size).toBe(0);
  });

  test('a global request with another ip-range over the same subnet is still a conflict', async () => {
    const f = fixture();
    await f.ipam.requestPool(poolReq({ addressSpace: GLOBAL_SPACE, pool: '10.20.0.0/24' }));
    const err = await rejection(f.ipam.requestPool(poolReq({ addressSpace: GLOBAL_SPACE, pool: '10.20.0.0/24', subPool: '10.20.0.0/25' })));
    expect(err.kind).toBe('conflict');
  });

  test('ReleasePool of an unknown pool is a no-op', async () => {
    const f = fixture();
    await f.ipam.releasePool('LoomLocal/10.0.0.0/8');
    await f.ipam.requestPool(poolReq({ pool: '10.0.0.0/8' }));
    await f.ipam.releasePool('LoomLocal/10.0.0.0/8');
    await f.ipam.releasePool('LoomLocal/10.0.0.0/8');
    expect(keys(f.kv, '')).toEqual([]);
  });

  test('a released subnet can be requested again', async () => {
    const f = fixture();
    const r = await f.ipam.requestPool(poolReq({ pool: '198.18.10.0/24' }));
    await f.ipam.releasePool(r.poolId);
    expect(await f.ipam.requestPool(poolReq({ pool: '198.18.10.0/24' }))).toEqual(r);
  });
});

describe('capabilities and address spaces', () => {
  test('constant answers (shared by the handlers and the early socket)', () => {
    const a = staticAnswers('global');
    expect(a['IpamDriver.GetCapabilities']).toEqual({ RequiresMACAddress: false, RequiresRequestReplay: false });
    expect(a['IpamDriver.GetDefaultAddressSpaces']).toEqual({ LocalDefaultAddressSpace: 'LoomLocal', GlobalDefaultAddressSpace: 'LoomGlobal' });
    expect(a['NetworkDriver.GetCapabilities']).toEqual({ Scope: 'global', ConnectivityScope: 'global', GwAllocChecker: true });
  });
});
