/**
 * Bugs the fuzz test (fuzz.contract.test.ts) found, all fixed: each test asserts the correct
 * behaviour against the real loomd, so that the bug cannot come back unnoticed. Each makes
 * and removes its own objects (198.18.80-84.x); nothing may stay behind for the next test
 * file in this namespace.
 */
import { pluginCall } from '../helpers/unix-http';
import { FuzzHarness } from './fuzz/harness';
import { boundSockets } from './fuzz/snapshot';
import { Body, epBody, firstRecorded, PORTMAP, retarget } from './fuzz/seed';

jest.setTimeout(60_000);

let fuzz: FuzzHarness;
beforeAll(async () => {
  fuzz = await FuzzHarness.start();
});
afterAll(async () => {
  if (!fuzz) return;
  try {
    expect(await fuzz.daemon.state()).toEqual({ networks: [], pools: [] });
    expect((await fuzz.kernel.listLinks()).map((l) => l.name).filter((n) => /^l[mvc]/.test(n))).toEqual([]);
    expect(await boundSockets()).toEqual([]);
  } finally {
    await fuzz.stop();
  }
});

const call = (method: string, body: unknown) => pluginCall(fuzz.daemon.socket, method, body);
const net = (id: string, prefix3: string): Body => ({ ...retarget(firstRecorded('NetworkDriver.CreateNetwork'), prefix3), NetworkID: id });
const cleanup = async (networks: string[], pools: string[] = []): Promise<void> => {
  for (const n of networks) await call('NetworkDriver.DeleteNetwork', { NetworkID: n });
  for (const p of pools) await call('IpamDriver.ReleasePool', { PoolID: p });
};

test('CreateEndpoint refuses an id whose first 12 characters match an endpoint of another network (veth names collide)', async () => {
  const [n1, n2] = ['b0a1' + '1'.repeat(60), 'b0a2' + '2'.repeat(60)];
  const e1 = 'b0e1' + 'a'.repeat(60);
  const e2 = e1.slice(0, 12) + 'b'.repeat(52);
  try {
    await fuzz.ok('NetworkDriver.CreateNetwork', net(n1, '198.18.80.'));
    await fuzz.ok('NetworkDriver.CreateNetwork', net(n2, '198.18.81.'));
    await fuzz.ok('NetworkDriver.CreateEndpoint', { ...epBody('198.18.80.2/24'), NetworkID: n1, EndpointID: e1 });
    const before = await fuzz.coreSnapshot();
    // The bug: 200, and network 2's endpoint adopted network 1's veth pair (moved to the other
    // bridge); deleting it then removed the veth pair network 1's endpoint still listed.
    const res = await call('NetworkDriver.CreateEndpoint', { ...epBody('198.18.81.2/24'), NetworkID: n2, EndpointID: e2 });
    expect(res.status).toBe(500);
    expect(await fuzz.coreSnapshot()).toBe(before);
  } finally {
    await call('NetworkDriver.DeleteEndpoint', { NetworkID: n2, EndpointID: e2 });
    await call('NetworkDriver.DeleteEndpoint', { NetworkID: n1, EndpointID: e1 });
    await cleanup([n1, n2]);
  }
});

test('CreateNetwork refuses the same subnet twice in IPv4Data', async () => {
  const id = 'b0a3' + '3'.repeat(60);
  const body = { ...net(id, '198.18.82.'), IPv4Data: [
    { AddressSpace: 'LoomLocal', Pool: '198.18.82.0/24', Gateway: '198.18.82.1/24' },
    { AddressSpace: 'LoomLocal', Pool: '198.18.82.0/24', Gateway: '198.18.82.2/24' },
  ] };
  const before = await fuzz.coreSnapshot();
  try {
    // The bug: 200, a network with two copies of the subnet and two gateway addresses on its bridge.
    const res = await call('NetworkDriver.CreateNetwork', body);
    expect(res.status).toBe(500);
    expect(await fuzz.coreSnapshot()).toBe(before);
  } finally {
    await cleanup([id]);
  }
});

test('RequestPool refuses a prefix length with a leading zero (as it refuses /024)', async () => {
  const before = await fuzz.coreSnapshot();
  try {
    // The bug: 200 {"PoolID":"LoomLocal/fd00:83::/64"} (while 198.18.83.0/024 was refused).
    const res = await call('IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: 'fd00:83::/064', SubPool: '', Options: {}, V6: true });
    expect(res.status).toBe(500);
    expect(await fuzz.coreSnapshot()).toBe(before);
  } finally {
    await cleanup([], ['LoomLocal/fd00:83::/64']);
  }
});

test('ProgramExternalConnectivity refuses a port map whose Proto is not a number', async () => {
  const id = 'b0a4' + '4'.repeat(60);
  const ep = 'b0e4' + '4'.repeat(60);
  try {
    await fuzz.ok('NetworkDriver.CreateNetwork', net(id, '198.18.84.'));
    await fuzz.ok('NetworkDriver.CreateEndpoint', { ...epBody('198.18.84.2/24'), NetworkID: id, EndpointID: ep });
    const before = await fuzz.fullSnapshot();
    // The bug: 200, and tcp 0.0.0.0:8084 was published and bound ("6" and [6] indexed the protocol table).
    const res = await call('NetworkDriver.ProgramExternalConnectivity', {
      NetworkID: id,
      EndpointID: ep,
      Options: { [PORTMAP]: [{ Proto: '6', Port: 80, HostPort: 8084 }] },
    });
    expect(res.status).toBe(500);
    expect(await fuzz.fullSnapshot()).toEqual(before);
  } finally {
    await call('NetworkDriver.RevokeExternalConnectivity', { NetworkID: id, EndpointID: ep });
    await call('NetworkDriver.DeleteEndpoint', { NetworkID: id, EndpointID: ep });
    await cleanup([id]);
  }
});
