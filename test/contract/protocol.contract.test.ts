/**
 * The protocol edge against the real loomd: handshake, raw requests exactly as
 * dockerd sends them, and bad input that must get a clear error and change
 * nothing (neither loom's state nor the kernel).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { startTestDaemon, TestDaemon } from '../helpers/daemon';
import { TRACE_DIR } from '../helpers/trace';
import { pluginCall, unixRequest } from '../helpers/unix-http';
import { NetlinkKernel } from '../../driver/kernel/netlink-kernel';

jest.setTimeout(60_000);

let daemon: TestDaemon;
let kernel: NetlinkKernel;
const NET = 'c0ffee'.padEnd(64, '0');
const EP = 'beef'.padEnd(64, '1');

beforeAll(async () => {
  daemon = await startTestDaemon();
  kernel = new NetlinkKernel();
});
afterAll(async () => {
  kernel.close();
  await daemon.stop();
});

/** loom's state plus the kernel's links: what a failed call must leave untouched. */
async function snapshot(): Promise<string> {
  const s = await daemon.state();
  const links = (await kernel.listLinks()).map((l) => l.name).sort();
  return JSON.stringify({ s, links });
}

async function expectError(method: string, body: unknown, pattern: RegExp): Promise<void> {
  const before = await snapshot();
  const res = await pluginCall(daemon.socket, method, body);
  expect(res.status).toBe(500);
  expect(res.json.Err).toMatch(pattern);
  expect(res.json.Error).toBe(res.json.Err);
  expect(await snapshot()).toBe(before);
}

describe('handshake', () => {
  test('Activate, capabilities and address spaces answer empty bodies', async () => {
    expect((await pluginCall(daemon.socket, 'Plugin.Activate')).json).toEqual({ Implements: ['NetworkDriver', 'IpamDriver'] });
    expect((await pluginCall(daemon.socket, 'NetworkDriver.GetCapabilities')).json).toEqual({ Scope: 'local', ConnectivityScope: 'local', GwAllocChecker: true });
    expect((await pluginCall(daemon.socket, 'NetworkDriver.GwAllocCheck', { Options: { 'com.docker.network.generic': {} } })).json).toEqual({ SkipIPv4: false, SkipIPv6: false });
    expect((await pluginCall(daemon.socket, 'NetworkDriver.GwAllocCheck', { Options: { 'com.docker.network.generic': { 'loom.bogus': '1' } } })).status).toBe(500);
    expect((await pluginCall(daemon.socket, 'IpamDriver.GetCapabilities')).json).toEqual({ RequiresMACAddress: false, RequiresRequestReplay: false });
    expect((await pluginCall(daemon.socket, 'IpamDriver.GetDefaultAddressSpaces')).json).toEqual({
      LocalDefaultAddressSpace: 'LoomLocal',
      GlobalDefaultAddressSpace: 'LoomGlobal',
    });
  });

  test('a connection is kept across an idle spell longer than Node\'s default idle close (dockerd reuses it; it must never be closed under it)', async () => {
    // dockerd keeps idle plugin connections for ever; had loomd closed one after 5 s idle, a call
    // sent as it closed would fail with EOF and come back from dockerd's retry with an empty body.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    // No Keep-Alive: timeout=N hint either (Node's agent would honour it, Go's client ignores it).
    const call = async (method: string): Promise<{ status: number; connection?: string; hint?: string; reused: boolean }> => {
      const { status, headers, reused } = await pluginCall(daemon.socket, method, undefined, agent);
      return { status, ...(headers.connection ? { connection: headers.connection } : {}), ...(headers['keep-alive'] ? { hint: String(headers['keep-alive']) } : {}), reused };
    };
    try {
      const first = await call('Plugin.Activate');
      expect(first).toEqual({ status: 200, connection: 'keep-alive', reused: false });
      expect(await call('IpamDriver.GetDefaultAddressSpaces')).toEqual({ status: 200, connection: 'keep-alive', reused: true });
      await new Promise((r) => setTimeout(r, 6_500)); // Node's default: closed after 5 s (+1 s)
      expect(await call('IpamDriver.GetCapabilities')).toEqual({ status: 200, connection: 'keep-alive', reused: true });
    } finally {
      agent.destroy();
    }
  });

  test('raw requests exactly as recorded (no Content-Type, trailing newline) succeed', async () => {
    const lines = fs.readFileSync(path.join(TRACE_DIR, 'raw-http-requests.jsonl'), 'utf8').split('\n').filter(Boolean);
    for (const line of lines) {
      const { url, rawBody } = JSON.parse(line) as { url: string; rawBody: string };
      const res = await unixRequest(daemon.socket, 'POST', url, rawBody.replace(/10\.99\.0\./g, '198.19.99.'));
      expect(res.status).toBe(200);
    }
    // Clean up the network that the raw CreateNetwork made.
    const created = lines.map((l) => JSON.parse(l) as { url: string; rawBody: string }).find((l) => l.url.endsWith('CreateNetwork'));
    if (created) await pluginCall(daemon.socket, 'NetworkDriver.DeleteNetwork', { NetworkID: JSON.parse(created.rawBody).NetworkID });
  });

  test('the plugin socket, the admin socket and the state directory are root-only; no TCP listener', async () => {
    expect(fs.statSync(daemon.socket).mode & 0o777).toBe(0o600);
    expect(fs.statSync(daemon.adminSocket).mode & 0o777).toBe(0o600);
    expect(fs.statSync(daemon.stateDir).mode & 0o777).toBe(0o700);
    // This test process is loomd: it must hold no listening TCP socket.
    const inodes = new Set(
      fs.readdirSync('/proc/self/fd').map((fd) => {
        try {
          return /socket:\[(\d+)\]/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`))?.[1];
        } catch {
          return undefined;
        }
      }),
    );
    for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
      const listening = fs.readFileSync(file, 'utf8').split('\n').slice(1).filter((l) => l.trim().split(/\s+/)[3] === '0A');
      expect(listening.filter((l) => inodes.has(l.trim().split(/\s+/)[9]))).toEqual([]);
    }
  });

  test('unknown methods get 404 with an error text', async () => {
    const res = await pluginCall(daemon.socket, 'NetworkDriver.Frobnicate', {});
    expect(res.status).toBe(404);
    expect(res.json.Err).toMatch(/not implemented/);
  });
});

describe('bad input gets a clear error and changes nothing', () => {
  test('malformed JSON and non-object bodies', async () => {
    for (const method of ['IpamDriver.RequestPool', 'NetworkDriver.CreateNetwork', 'NetworkDriver.Join']) {
      const before = await snapshot();
      const res = await unixRequest(daemon.socket, 'POST', `/${method}`, '{"NetworkID": ');
      expect(res.status).toBe(500);
      expect(res.json.Err).toMatch(/malformed JSON/);
      const arr = await unixRequest(daemon.socket, 'POST', `/${method}`, '[1,2]');
      expect(arr.json.Err).toMatch(/JSON object/);
      expect(await snapshot()).toBe(before);
    }
  });

  test('bodies over the size limit are refused', async () => {
    const res = await unixRequest(daemon.socket, 'POST', '/IpamDriver.RequestPool', JSON.stringify({ AddressSpace: 'LoomLocal', Pool: 'x'.repeat(300_000) }));
    expect(res.status).toBe(500);
    expect(res.json.Err).toMatch(/exceeds/);
  });

  test('invalid CIDRs, wrong types and missing fields', async () => {
    await expectError('IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: '300.1.1.0/24' }, /invalid subnet/);
    await expectError('IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: '198.18.10.5/24' }, /should be 198\.18\.10\.0\/24/);
    await expectError('IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: 'fd00:1::/64', V6: false }, /IPv6 but an IPv4 pool/);
    await expectError('IpamDriver.RequestPool', { AddressSpace: 'Elsewhere', Pool: '198.18.10.0/24' }, /unknown address space/);
    await expectError('IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: '', SubPool: '198.18.10.0/25' }, /needs an explicit subnet/);
    await expectError('IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: '198.18.10.0/24', SubPool: '198.18.11.0/25' }, /not inside/);
    await expectError('IpamDriver.RequestPool', { AddressSpace: 42 }, /AddressSpace/);
    await expectError('IpamDriver.RequestAddress', { PoolID: 'LoomLocal/198.18.99.0/24' }, /not found/);
    await expectError('NetworkDriver.CreateNetwork', { NetworkID: 'not/an/id' }, /NetworkID/);
    await expectError('NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: EP, Interface: { Address: '198.18.10.9/24' } }, /network .* not found/);
    await expectError('NetworkDriver.Join', { NetworkID: NET, EndpointID: EP, SandboxKey: '/x' }, /not found/);
  });

  test('addresses outside the pool, in use, and an exhausted pool', async () => {
    const pool = await pluginCall(daemon.socket, 'IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: '198.18.40.0/30', SubPool: '', Options: {}, V6: false });
    expect(pool.status).toBe(200);
    const id = pool.json.PoolID;
    await expectError('IpamDriver.RequestAddress', { PoolID: id, Address: '198.18.41.1' }, /outside pool/);
    await expectError('IpamDriver.RequestAddress', { PoolID: id, Address: '198.18.40.3' }, /reserved/);
    await expectError('IpamDriver.RequestAddress', { PoolID: id, Address: 'banana' }, /invalid address/);
    const gw = await pluginCall(daemon.socket, 'IpamDriver.RequestAddress', { PoolID: id, Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } });
    expect(gw.json.Address).toBe('198.18.40.1/30');
    await expectError('IpamDriver.RequestAddress', { PoolID: id, Address: '198.18.40.1' }, /already in use/);
    const a = await pluginCall(daemon.socket, 'IpamDriver.RequestAddress', { PoolID: id, Address: '' });
    expect(a.json.Address).toBe('198.18.40.2/30');
    await expectError('IpamDriver.RequestAddress', { PoolID: id, Address: '' }, /no free address/);
    await expectError('IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: '198.18.40.0/24' }, /overlaps/);
    await expectError('IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: '198.18.40.0/30' }, /already in use/);
    expect((await pluginCall(daemon.socket, 'IpamDriver.ReleasePool', { PoolID: id })).status).toBe(200);
    expect((await daemon.state()).pools).toEqual([]);
  });

  test('invalid network options never create a bridge', async () => {
    const net = (generic: Record<string, string>): unknown => ({
      NetworkID: NET,
      Options: { 'com.docker.network.generic': generic, 'com.docker.network.enable_ipv6': false },
      IPv4Data: [{ AddressSpace: 'LoomLocal', Pool: '198.18.41.0/24', Gateway: '198.18.41.1/24' }],
      IPv6Data: [],
    });
    await expectError('NetworkDriver.CreateNetwork', net({ 'com.docker.network.driver.mtu': '10' }), /MTU 10 is outside 68\.\.65535/);
    await expectError('NetworkDriver.CreateNetwork', net({ 'com.docker.network.driver.mtu': 'big' }), /not a number/);
    await expectError('NetworkDriver.CreateNetwork', net({ 'loom.frobnicate': 'yes' }), /unknown network option loom\.frobnicate/);
    await expectError('NetworkDriver.CreateNetwork', net({ 'com.docker.network.bridge.name': 'a-very-long-bridge-name' }), /not a valid interface name/);
    await expectError('NetworkDriver.CreateNetwork', net({ 'com.docker.network.bridge.enable_icc': 'maybe' }), /not a boolean/);
    await expectError(
      'NetworkDriver.CreateNetwork',
      { NetworkID: NET, Options: {}, IPv4Data: [{ Pool: '198.18.41.0/24', Gateway: '198.18.42.1/24' }] },
      /outside pool/,
    );
  });

  test('subnets no container network may use, and endpoint addresses no container may hold', async () => {
    await expectError('IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: '0.0.0.0/0' }, /cover every IPv4 address/);
    await expectError('IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: '::/0', V6: true }, /cover every IPv6 address/);
    await expectError('IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: '127.0.0.0/24' }, /loopback/);
    await expectError('NetworkDriver.CreateNetwork', { NetworkID: NET, Options: {}, IPv4Data: [{ Pool: '0.0.0.0/0', Gateway: '198.18.42.1/0' }] }, /cover every/);
    const net = { NetworkID: NET, Options: {}, IPv4Data: [{ AddressSpace: 'LoomLocal', Pool: '198.18.44.0/24', Gateway: '198.18.44.1/24' }], IPv6Data: [] };
    expect((await pluginCall(daemon.socket, 'NetworkDriver.CreateNetwork', net)).status).toBe(200);
    for (const [address, what] of [['198.18.44.0/24', /network address/], ['198.18.44.255/24', /broadcast address/]] as const) {
      await expectError('NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: EP, Interface: { Address: address } }, what);
    }
    expect((await pluginCall(daemon.socket, 'NetworkDriver.DeleteNetwork', { NetworkID: NET })).status).toBe(200);
  });

  test('deleting what does not exist succeeds (idempotent)', async () => {
    for (const [method, body] of [
      ['NetworkDriver.DeleteNetwork', { NetworkID: NET }],
      ['NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: EP }],
      ['NetworkDriver.Leave', { NetworkID: NET, EndpointID: EP }],
      ['IpamDriver.ReleasePool', { PoolID: 'LoomLocal/198.18.77.0/24' }],
      ['IpamDriver.ReleaseAddress', { PoolID: 'LoomLocal/198.18.77.0/24', Address: '198.18.77.7' }],
    ] as const) {
      expect((await pluginCall(daemon.socket, method, body)).status).toBe(200);
    }
  });
});

describe('idempotent creation', () => {
  test('CreateNetwork and CreateEndpoint re-sent with the same body succeed and answer the same', async () => {
    const net = {
      NetworkID: NET,
      Options: { 'com.docker.network.generic': {}, 'com.docker.network.enable_ipv6': false },
      IPv4Data: [{ AddressSpace: 'LoomLocal', Pool: '198.18.43.0/24', Gateway: '198.18.43.1/24' }],
      IPv6Data: [],
    };
    expect((await pluginCall(daemon.socket, 'NetworkDriver.CreateNetwork', net)).status).toBe(200);
    expect((await pluginCall(daemon.socket, 'NetworkDriver.CreateNetwork', net)).status).toBe(200);
    const changed = { ...net, IPv4Data: [{ ...net.IPv4Data[0], Gateway: '198.18.43.2/24' }] };
    await expectError('NetworkDriver.CreateNetwork', changed, /different configuration/);
    const ep = { NetworkID: NET, EndpointID: EP, Interface: { Address: '198.18.43.7/24', AddressIPv6: '', MacAddress: '' }, Options: {} };
    const first = await pluginCall(daemon.socket, 'NetworkDriver.CreateEndpoint', ep);
    const again = await pluginCall(daemon.socket, 'NetworkDriver.CreateEndpoint', ep);
    expect(again.json).toEqual(first.json);
    const join = await pluginCall(daemon.socket, 'NetworkDriver.Join', { NetworkID: NET, EndpointID: EP, SandboxKey: '/var/run/docker/netns/x' });
    expect(join.json).toEqual({
      InterfaceName: { SrcName: `lc${EP.slice(0, 12)}`, DstPrefix: 'eth' },
      Gateway: '198.18.43.1',
      StaticRoutes: [],
      DisableGatewayService: true,
    });
    for (const m of ['NetworkDriver.Leave', 'NetworkDriver.DeleteEndpoint']) {
      expect((await pluginCall(daemon.socket, m, { NetworkID: NET, EndpointID: EP })).status).toBe(200);
    }
    expect((await pluginCall(daemon.socket, 'NetworkDriver.DeleteNetwork', { NetworkID: NET })).status).toBe(200);
    const mine = [`lm-${NET.slice(0, 12)}`, `lv${EP.slice(0, 12)}`, `lc${EP.slice(0, 12)}`];
    expect((await kernel.listLinks()).map((l) => l.name).filter((n) => mine.includes(n))).toEqual([]);
  });
});
