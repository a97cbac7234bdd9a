/** IpamService addresses: RequestAddress / ReleaseAddress, store contents, restart and rollback. */
import { KvOp, MemoryKv } from '../../lib/kv';
import { GLOBAL_SPACE } from '../../ipam-driver/address-spaces';
import { GATEWAY, fixture, keys, poolReq, rejection } from './ipam-fixture';

const POOL = 'LoomLocal/198.18.10.0/24';

async function withPool(subPool = '') {
  const f = fixture();
  const { poolId } = await f.ipam.requestPool(poolReq({ pool: '198.18.10.0/24', subPool }));
  const req = (address = '', options: Record<string, string> = {}) => f.ipam.requestAddress({ poolId, address, options });
  const addr = async (address = '', options: Record<string, string> = {}) => (await req(address, options)).address;
  return { ...f, poolId, req, addr };
}

describe('RequestAddress', () => {
  test('gateway: the lowest host address, returned with the prefix length', async () => {
    const t = await withPool('198.18.10.128/25');
    expect(await t.addr('', GATEWAY)).toBe('198.18.10.1/24');
    expect(await t.kv.get(`ipam/addr/${t.poolId}|198.18.10.1`)).toMatchObject({ poolId: t.poolId, address: '198.18.10.1', kind: 'gateway' });
  });

  test('explicit gateway (--gateway) and explicit addresses (--ip, --aux-address), with or without a length', async () => {
    const t = await withPool();
    expect(await t.addr('198.18.10.254', GATEWAY)).toBe('198.18.10.254/24');
    expect(await t.addr('198.18.10.5')).toBe('198.18.10.5/24');
    expect(await t.addr('198.18.10.6/24')).toBe('198.18.10.6/24');
    expect(t.ipam.listPools()[0]?.allocations.map((a) => [a.address, a.kind])).toEqual([
      ['198.18.10.254', 'gateway'],
      ['198.18.10.5', 'explicit'],
      ['198.18.10.6', 'explicit'],
    ]);
  });

  test('dynamic addresses: next-fit inside the ip-range, never a just-released one first', async () => {
    const t = await withPool('198.18.10.128/25');
    await t.addr('', GATEWAY);
    expect([await t.addr(), await t.addr(), await t.addr()]).toEqual(['198.18.10.128/24', '198.18.10.129/24', '198.18.10.130/24']);
    await t.ipam.releaseAddress(t.poolId, '198.18.10.129');
    expect(await t.addr()).toBe('198.18.10.131/24');
    expect(t.ipam.listPools()[0]).toMatchObject({ used: 4n, capacity: 254n });
    expect((await t.kv.get<{ cursor: string }>(`ipam/pool/${t.poolId}`))?.cursor).toBe(String(0xc6120a83));
  });

  test('IPv6 pool: ::1 is the gateway, dynamic addresses follow', async () => {
    const f = fixture();
    const { poolId } = await f.ipam.requestPool(poolReq({ pool: 'fd00:aa::/64', v6: true }));
    expect((await f.ipam.requestAddress({ poolId, address: '', options: GATEWAY })).address).toBe('fd00:aa::1/64');
    expect((await f.ipam.requestAddress({ poolId, address: '', options: {} })).address).toBe('fd00:aa::2/64');
    const anycast = await rejection(f.ipam.requestAddress({ poolId, address: 'fd00:aa::', options: {} }));
    expect(anycast.kind).toBe('invalid');
    // Any spelling of an allocated address releases it (records use the canonical form).
    await f.ipam.releaseAddress(poolId, 'FD00:AA:0:0::2/64');
    expect(f.ipam.listPools()[0]?.allocations.map((a) => a.address)).toEqual(['fd00:aa::1']);
  });

  test('an address in use is a conflict and changes nothing', async () => {
    const t = await withPool();
    await t.addr('198.18.10.7');
    const before = new Map(t.kv.data);
    const err = await rejection(t.req('198.18.10.7'));
    expect(err.kind).toBe('conflict');
    expect(err.message).toContain('198.18.10.7 is already in use');
    expect(t.kv.data).toEqual(before);
    const gw = await rejection(t.req('198.18.10.7', GATEWAY));
    expect(gw.kind).toBe('conflict');
  });

  test.each([
    ['198.18.11.7', /address 198.18.11.7 is outside pool 198.18.10.0\/24/],
    ['fd00::7', /address fd00::7 is outside pool 198.18.10.0\/24/],
    ['198.18.10.0', /reserved/],
    ['198.18.10.255', /reserved/],
    ['198.18.10.300', /invalid address "198.18.10.300"/],
  ])('%s is invalid', async (address, message) => {
    const t = await withPool();
    const err = await rejection(t.req(address));
    expect(err.kind).toBe('invalid');
    expect(err.message).toMatch(message);
  });

  test('an unknown pool is not-found', async () => {
    const f = fixture();
    const err = await rejection(f.ipam.requestAddress({ poolId: 'LoomLocal/10.0.0.0/8', address: '', options: {} }));
    expect(err.kind).toBe('not-found');
  });

  test('an exhausted pool says so', async () => {
    const f = fixture();
    const { poolId } = await f.ipam.requestPool(poolReq({ pool: '198.18.10.0/30' }));
    await f.ipam.requestAddress({ poolId, address: '', options: {} });
    await f.ipam.requestAddress({ poolId, address: '', options: {} });
    const err = await rejection(f.ipam.requestAddress({ poolId, address: '', options: {} }));
    expect(err.kind).toBe('exhausted');
  });

  test('concurrent requests in one pool get distinct addresses', async () => {
    const t = await withPool();
    const got = await Promise.all(Array.from({ length: 50 }, () => t.addr()));
    expect(new Set(got).size).toBe(50);
    expect(keys(t.kv, 'ipam/addr/')).toHaveLength(50);
  });

  test('a failed store write leaves neither the address nor the cursor taken', async () => {
    const t = await withPool();
    await t.addr();
    const batch = t.kv.batch.bind(t.kv);
    let fail = true;
    t.kv.batch = async (ops: KvOp[]) => {
      if (fail) {
        fail = false;
        throw new Error('disk full');
      }
      return batch(ops);
    };
    await expect(t.req()).rejects.toThrow('disk full');
    expect(await t.addr()).toBe('198.18.10.2/24');
    expect(t.ipam.listPools()[0]?.used).toBe(2n);
  });
});

describe('ReleaseAddress', () => {
  test('removes the record; releasing again, an unknown address or an unknown pool is a no-op', async () => {
    const t = await withPool();
    await t.addr('198.18.10.9');
    await t.ipam.releaseAddress(t.poolId, '198.18.10.9/24');
    expect(keys(t.kv, 'ipam/addr/')).toEqual([]);
    await t.ipam.releaseAddress(t.poolId, '198.18.10.9');
    await t.ipam.releaseAddress(t.poolId, '198.18.10.77');
    await t.ipam.releaseAddress('LoomLocal/10.0.0.0/8', '10.0.0.1');
    expect(t.ipam.listPools()[0]?.used).toBe(0n);
    expect(await t.addr('198.18.10.9')).toBe('198.18.10.9/24');
  });

  test('a malformed address is invalid', async () => {
    const t = await withPool();
    expect((await rejection(t.ipam.releaseAddress(t.poolId, 'nope'))).kind).toBe('invalid');
  });
});

describe('ReleasePool with allocations left', () => {
  test('removes the pool record and every leftover allocation', async () => {
    const t = await withPool();
    const other = await t.ipam.requestPool(poolReq({ pool: '198.18.11.0/24' }));
    await t.ipam.requestAddress({ poolId: other.poolId, address: '', options: {} });
    await t.addr('', GATEWAY);
    await t.addr();
    await t.addr('198.18.10.100');
    expect(keys(t.kv, `ipam/addr/${POOL}|`)).toHaveLength(3);
    await t.ipam.releasePool(t.poolId);
    expect(keys(t.kv, '')).toEqual(['ipam/addr/LoomLocal/198.18.11.0/24|198.18.11.1', 'ipam/pool/LoomLocal/198.18.11.0/24']);
    expect(t.ipam.listPools().map((p) => p.id)).toEqual([other.poolId]);
    // The subnet is free again and starts empty.
    await t.ipam.requestPool(poolReq({ pool: '198.18.10.0/24' }));
    expect((await t.ipam.requestAddress({ poolId: POOL, address: '', options: {} })).address).toBe('198.18.10.1/24');
  });
});

describe('persistence', () => {
  test('a new service over the same store has the same pools and allocations, and continues after the cursor', async () => {
    const t = await withPool('198.18.10.0/25');
    const g = await t.ipam.requestPool(poolReq({ addressSpace: GLOBAL_SPACE, pool: '10.20.0.0/24' }));
    await t.ipam.requestPool(poolReq({ addressSpace: GLOBAL_SPACE, pool: '10.20.0.0/24' }));
    await t.addr('', GATEWAY);
    for (let i = 0; i < 5; i++) await t.addr(); // .2 - .6
    await t.addr('198.18.10.200');
    await t.ipam.releaseAddress(t.poolId, '198.18.10.6');
    await t.ipam.releaseAddress(t.poolId, '198.18.10.3');

    const again = await t.reopen();
    const strip = (s: typeof t.ipam) =>
      s
        .listPools()
        .map((p) => ({ ...p, allocations: p.allocations.map((a) => a.address).sort() }))
        .sort((a, b) => a.id.localeCompare(b.id));
    expect(strip(again)).toEqual(strip(t.ipam));
    expect(again.listPools().find((p) => p.id === g.poolId)?.refs).toBe(2);
    expect((await again.requestAddress({ poolId: t.poolId, address: '', options: {} })).address).toBe('198.18.10.7/24');
    expect((await rejection(again.requestAddress({ poolId: t.poolId, address: '198.18.10.200', options: {} }))).kind).toBe('conflict');
    expect((await rejection(again.requestPool(poolReq({ pool: '198.18.10.0/24' })))).kind).toBe('conflict');
    await again.releasePool(g.poolId);
    expect(again.listPools().find((p) => p.id === g.poolId)?.refs).toBe(1);
  });

  test('stored allocations of unknown pools, outside their pool, or duplicated are skipped at load', async () => {
    const kv = new MemoryKv();
    const t = fixture({ kv });
    const { poolId } = await t.ipam.requestPool(poolReq({ pool: '198.18.10.0/24' }));
    await t.ipam.requestAddress({ poolId, address: '198.18.10.5', options: {} });
    const put = (address: string, id = poolId) =>
      kv.batch([{ type: 'put', key: `ipam/addr/${id}|${address}`, value: { poolId: id, address, kind: 'explicit', createdAt: '' } }]);
    await put('10.0.0.1', 'LoomLocal/10.0.0.0/8');
    await put('198.18.99.1');
    await put('198.18.10.5/24'); // same address spelt differently
    const again = await t.reopen();
    expect(again.listPools()[0]?.allocations.map((a) => a.address)).toEqual(['198.18.10.5']);
    expect(again.listPools()[0]?.used).toBe(1n);
  });

  test('concurrent requests in one pool have their writes in flight together (they can share a sync)', async () => {
    const t = await withPool();
    const batch = t.kv.batch.bind(t.kv);
    const held: Array<() => void> = [];
    let inFlight = 0;
    let most = 0;
    t.kv.batch = async (ops: KvOp[]) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise<void>((r) => held.push(r));
      inFlight--;
      return batch(ops);
    };
    const all = Promise.all(Array.from({ length: 8 }, () => t.addr()));
    for (let i = 0; i < 50 && held.length < 8; i++) await new Promise((r) => setImmediate(r));
    expect(held.length).toBe(8);
    for (const r of held) r();
    expect(new Set(await all).size).toBe(8);
    expect(most).toBe(8);
    expect(keys(t.kv, 'ipam/addr/')).toHaveLength(8);
  });

  test('ReleasePool waits for allocation writes in flight (no allocation is stored after its pool is gone)', async () => {
    const t = await withPool();
    const batch = t.kv.batch.bind(t.kv);
    let release!: () => void;
    let first = true;
    t.kv.batch = async (ops: KvOp[]) => {
      if (first) {
        first = false;
        await new Promise<void>((r) => (release = r));
      }
      return batch(ops);
    };
    const pending = t.addr();
    for (let i = 0; i < 50 && !release; i++) await new Promise((r) => setImmediate(r));
    const dropped = t.ipam.releasePool(t.poolId);
    await new Promise((r) => setTimeout(r, 10));
    release();
    await pending;
    await dropped;
    expect(keys(t.kv, 'ipam/addr/')).toHaveLength(0);
    expect(t.ipam.listPools()).toHaveLength(0);
  });
});
