/**
 * loom.gateway through the real NetworkDriver handlers, the network stack and the bridge data
 * plane over the in-memory fake kernel: what Join answers Docker (gateways, default routes,
 * DisableGatewayService), what the firewall is asked to render, and that published ports are
 * left to Docker. The same with a real dockerd: test/e2e/12-gateway-ports.e2e.test.ts.
 */
import { BridgeDataPlane } from '../../driver/dataplane/bridge';
import { networkRoutes } from '../../driver/api/network-handlers';
import type { JoinReply } from '../../driver/api/wire';
import type { Firewall, FirewallNetwork } from '../../driver/firewall/model';
import { joinGateways, routesOutside } from '../../driver/model/records';
import type { NetworkRecord } from '../../driver/model/types';
import { createNetworkStack, NetworkStack } from '../../driver/network/stack';
import { NetworkRepository } from '../../driver/store/network-repo';
import { MemoryKv } from '../../lib/kv';
import { silentLogger } from '../../lib/logger';
import type { Route } from '../../lib/http-route';
import { FakeKernel } from './fake-kernel';

const log = silentLogger();

/** The error `fn` rejects with (fails the test when it resolves). */
async function errorOf(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection, the call succeeded');
}
const NET = 'a'.repeat(64);
const EP = 'e'.repeat(64);
const SANDBOX = '/var/run/docker/netns/0123456789ab';
const PORTMAP = { 'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 18080, HostPortEnd: 18080 }] };

interface World {
  stack: NetworkStack;
  call: (method: string, body: unknown) => Promise<any>;
  /** What the firewall was last asked to render. */
  rendered: () => FirewallNetwork[];
  kernel: FakeKernel;
}

function world(): World {
  const kernel = new FakeKernel();
  let last: FirewallNetwork[] = [];
  const firewall: Firewall = {
    sync: async (nets) => {
      last = nets;
    },
    check: async () => [],
  };
  const stack = createNetworkStack({ repo: new NetworkRepository(new MemoryKv()), dataplane: new BridgeDataPlane(kernel, log, { sysctl: kernel.sysctl, tc: kernel.tc }), firewall, log });
  const routes = new Map<string, Route>(networkRoutes({ networks: stack.networks, endpoints: stack.endpoints, ports: stack.ports }).map((r) => [r.method, r]));
  const call = async (method: string, body: unknown): Promise<any> => {
    const r = routes.get(method);
    if (!r) throw new Error(`no route ${method}`);
    return r.handle(r.schema ? r.schema.parse(body) : body, { reqId: 't', log });
  };
  return { stack, call, rendered: () => last, kernel };
}

/** A dual-stack network with these -o options, one endpoint, joined; returns Join's reply. */
async function joined(w: World, generic: Record<string, string>, extra: Record<string, unknown> = {}): Promise<JoinReply> {
  await w.call('NetworkDriver.CreateNetwork', {
    NetworkID: NET,
    Options: { 'com.docker.network.generic': generic, 'com.docker.network.enable_ipv6': true, ...extra },
    IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '198.18.10.0/24', Gateway: '198.18.10.1/24', AuxAddresses: {} }],
    IPv6Data: [{ AddressSpace: 'LocalDefault', Pool: 'fd5c:10::/64', Gateway: 'fd5c:10::1/64', AuxAddresses: {} }],
  });
  await w.call('NetworkDriver.CreateEndpoint', {
    NetworkID: NET,
    EndpointID: EP,
    Interface: { Address: '198.18.10.2/24', AddressIPv6: 'fd5c:10::2/64', MacAddress: '' },
    Options: { ...PORTMAP },
  });
  return w.call('NetworkDriver.Join', { NetworkID: NET, EndpointID: EP, SandboxKey: SANDBOX, Options: { ...PORTMAP } });
}

describe('Join reply', () => {
  test('default (loom.gateway absent or loom): loom\'s gateways for both families, no docker_gwbridge', async () => {
    for (const generic of [{}, { 'loom.gateway': 'loom' }] as Array<Record<string, string>>) {
      const w = world();
      const reply = await joined(w, generic);
      expect(reply).toEqual({
        InterfaceName: { SrcName: expect.stringMatching(/^lc/), DstPrefix: 'eth' },
        Gateway: '198.18.10.1',
        GatewayIPv6: 'fd5c:10::1',
        StaticRoutes: [],
        DisableGatewayService: true,
      });
    }
  });

  test('loom.gateway=docker: no gateway of either family, no default route, DisableGatewayService false', async () => {
    const w = world();
    const reply = await joined(w, { 'loom.gateway': 'docker' });
    expect(reply).toEqual({ InterfaceName: { SrcName: expect.stringMatching(/^lc/), DstPrefix: 'eth' }, StaticRoutes: [], DisableGatewayService: false });
    // No default route of any family hidden in the static routes (Docker 20.10 counts 0.0.0.0/0 as a gateway).
    expect(reply.StaticRoutes.some((r) => r.Destination === '0.0.0.0/0' || r.Destination === '::/0')).toBe(false);
    // The interface itself is made as always: the container still talks to its network's peers.
    expect(w.kernel.link(reply.InterfaceName.SrcName)).toBeDefined();
    expect(w.stack.table.get(NET)).toMatchObject({ gatewayService: 'docker', internal: false });
  });

  test('--internal: no gateway and DisableGatewayService true (Docker attaches nothing); with loom.gateway=docker refused before anything is built', async () => {
    const w = world();
    const reply = await joined(w, {}, { 'com.docker.network.internal': true });
    expect(reply).toEqual({ InterfaceName: { SrcName: expect.stringMatching(/^lc/), DstPrefix: 'eth' }, StaticRoutes: [], DisableGatewayService: true });

    const w2 = world();
    const err = await errorOf(() => joined(w2, { 'loom.gateway': 'docker' }, { 'com.docker.network.internal': true }));
    expect(err.message).toMatch(/loom\.gateway=docker cannot be used with --internal/);
    expect(w2.stack.table.get(NET)).toBeUndefined();
    expect(w2.kernel.state()).toEqual(new FakeKernel().state());
    // GwAllocCheck (Docker 28) refuses it already, before any IPAM work.
    const gw = await errorOf(() =>
      w2.call('NetworkDriver.GwAllocCheck', { Options: { 'com.docker.network.generic': { 'loom.gateway': 'docker' }, 'com.docker.network.internal': true } }),
    );
    expect(gw.message).toMatch(/cannot be used with --internal/);
    await expect(w2.call('NetworkDriver.GwAllocCheck', { Options: { 'com.docker.network.generic': { 'loom.gateway': 'docker' } } })).resolves.toEqual({ SkipIPv4: false, SkipIPv6: false });
  });

  test('a bad value is refused by CreateNetwork and GwAllocCheck, naming the option', async () => {
    const w = world();
    expect((await errorOf(() => joined(w, { 'loom.gateway': 'gwbridge' }))).message).toMatch(/^option loom\.gateway: "gwbridge" is not supported/);
    expect((await errorOf(() => w.call('NetworkDriver.GwAllocCheck', { Options: { 'com.docker.network.generic': { 'loom.gateway': 'yes' } } }))).message).toMatch(
      /^option loom\.gateway: "yes" is not supported/,
    );
  });
});

describe('outside connectivity of a loom.gateway=docker network', () => {
  test('ProgramExternalConnectivity and Revoke change nothing: no ports held, nothing to render', async () => {
    const w = world();
    await joined(w, { 'loom.gateway': 'docker' });
    await expect(w.call('NetworkDriver.ProgramExternalConnectivity', { NetworkID: NET, EndpointID: EP, Options: { ...PORTMAP } })).resolves.toEqual({});
    expect(w.stack.table.endpoint(NET, EP)?.ports).toBeUndefined();
    await expect(w.call('NetworkDriver.RevokeExternalConnectivity', { NetworkID: NET, EndpointID: EP })).resolves.toEqual({});
    expect(w.stack.table.endpoint(NET, EP)?.ports).toBeUndefined();
  });

  test('the firewall renders it like an internal network: nothing forwarded beyond the bridge, no NAT, no DNAT, ICC kept', async () => {
    const w = world();
    await joined(w, { 'loom.gateway': 'docker', 'com.docker.network.bridge.enable_icc': 'false' });
    await w.stack.firewall.sync();
    expect(w.rendered()).toEqual([
      { id: NET, bridge: `lm-${'a'.repeat(12)}`, subnets4: ['198.18.10.0/24'], subnets6: ['fd5c:10::/64'], internal: true, icc: false, masquerade: true, published: [] },
    ]);
  });

  test('no forwarding or route_localnet is turned on for it (Docker turns forwarding on for docker_gwbridge itself)', async () => {
    const w = world();
    await joined(w, { 'loom.gateway': 'docker' });
    expect(w.kernel.global.get('net.ipv4.ip_forward')).toBe('0');
    expect([...w.kernel.iface].filter(([k, v]) => k.endsWith('/route_localnet') && v === '1')).toEqual([]);
    const w2 = world();
    await joined(w2, {});
    expect(w2.kernel.global.get('net.ipv4.ip_forward')).toBe('1');
  });

  test('routesOutside / joinGateways: only loom-routed, non-internal networks give gateways', () => {
    const base = {
      id: NET, bridge: 'lm-x', mtu: 1500, internal: false, icc: true, masquerade: true, enableIpv6: true, options: {}, createdAt: '',
      ipv4: [{ pool: '198.18.10.0/24', gateway: '198.18.10.1/24', aux: {} }],
      ipv6: [{ pool: 'fd5c:10::/64', gateway: 'fd5c:10::1/64', aux: {} }],
    } as NetworkRecord;
    const ep = { address: '198.18.10.2/24', addressV6: 'fd5c:10::2/64' };
    expect(routesOutside(base)).toBe(true);
    expect(joinGateways(base, ep)).toEqual({ v4: '198.18.10.1', v6: 'fd5c:10::1' });
    expect(joinGateways({ ...base, enableIpv6: false }, ep)).toEqual({ v4: '198.18.10.1' });
    for (const n of [{ ...base, internal: true }, { ...base, gatewayService: 'docker' as const }]) {
      expect(routesOutside(n)).toBe(false);
      expect(joinGateways(n, ep)).toEqual({});
    }
  });
});
