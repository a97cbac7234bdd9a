/**
 * The exhaustive catalogue: every listed hostile value (hostile-values.ts) in every field it
 * can reach, out-of-order calls on objects that are gone, and the seeded objects re-created
 * with another configuration. Each case expects an error, or a no-op where Docker's protocol
 * makes the call idempotent.
 */
import { FuzzCase, jsonCase, mkCase } from './cases';
import {
  BAD_BOOLS, BAD_BRIDGE_SYNTAX, BAD_BRIDGE_TAKEN, BAD_BRIDGES, BAD_CIDR_V4, BAD_CIDR_V6, BAD_EP_ADDRESSES, BAD_FLAGS, BAD_GATEWAYS, BAD_HOST_BINDINGS,
  BAD_IDS, BAD_LOOM_KEYS, BAD_MACS, BAD_MODES, BAD_MTUS, BAD_POOL_ADDRESSES, BAD_PORTMAPS, HOSTILE, UNKNOWN_EP_IDS, UNKNOWN_NET_IDS, UNKNOWN_POOL_IDS,
} from './hostile-values';
import { ALL_ROUTES, Expect, UNKNOWN } from './routes';
import {
  Body, clone, EP, GENERIC, ipamEntry, NET, OPT_BRIDGE, OPT_HOST_BINDING, OPT_ICC, OPT_MASQ, OPT_MTU, PORTMAP, RELEASED_POOL, SANDBOX, SEED_BODIES, SEED_POOL,
} from './seed';

/** Every catalogue case, always the same ones in the same order. */
export function catalogue(): FuzzCase[] {
  const out: FuzzCase[] = [];
  const add = (method: string, body: unknown, expect: Expect, kind: string): void => {
    out.push(jsonCase(method, body, expect, kind));
  };
  const freshNet = 'c47a10' + '9'.repeat(58);
  const freshEp = 'c47a10' + '8'.repeat(58);
  const net = (over: Body, generic: Record<string, unknown> = {}): Body => ({
    NetworkID: freshNet,
    Options: { [GENERIC]: generic, 'com.docker.network.enable_ipv6': false },
    IPv4Data: [ipamEntry({})],
    IPv6Data: [],
    ...over,
  });

  for (const c of BAD_CIDR_V4) {
    add('IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: c, SubPool: '', Options: {}, V6: false }, 'error', 'catalogue: bad v4 subnet');
    add('IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: '198.18.60.0/24', SubPool: c, Options: {}, V6: false }, 'error', 'catalogue: bad v4 ip-range');
    add('NetworkDriver.CreateNetwork', net({ IPv4Data: [ipamEntry({ Pool: c, Gateway: undefined })] }), 'error', 'catalogue: bad v4 pool');
  }
  for (const c of BAD_GATEWAYS) {
    add('NetworkDriver.CreateNetwork', net({ IPv4Data: [ipamEntry({ Gateway: c })] }), 'error', 'catalogue: bad v4 gateway');
    add('NetworkDriver.CreateNetwork', net({ IPv4Data: [ipamEntry({ AuxAddresses: { h: c } })] }), 'error', 'catalogue: bad v4 aux address');
  }
  for (const c of BAD_CIDR_V6) {
    add('IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: c, SubPool: '', Options: {}, V6: true }, 'error', 'catalogue: bad v6 subnet');
    add('IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: 'fd00:60::/64', SubPool: c, Options: {}, V6: true }, 'error', 'catalogue: bad v6 ip-range');
    add(
      'NetworkDriver.CreateNetwork',
      net({ Options: { [GENERIC]: {}, 'com.docker.network.enable_ipv6': true }, IPv6Data: [ipamEntry({ Pool: c, Gateway: undefined })] }),
      'error',
      'catalogue: bad v6 pool',
    );
  }
  for (const c of BAD_GATEWAYS) {
    add(
      'NetworkDriver.CreateNetwork',
      net({ Options: { [GENERIC]: {}, 'com.docker.network.enable_ipv6': true }, IPv6Data: [ipamEntry({ Pool: 'fd00:60::/64', Gateway: c })] }),
      'error',
      'catalogue: bad v6 gateway',
    );
  }
  for (const a of BAD_EP_ADDRESSES) {
    add('NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: freshEp, Interface: { Address: a, AddressIPv6: '', MacAddress: '' }, Options: {} }, 'error', 'catalogue: bad endpoint address');
  }
  for (const a of [...BAD_CIDR_V6, 'fd00::5/64', '198.18.50.9/24']) {
    add('NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: freshEp, Interface: { Address: '198.18.50.9/24', AddressIPv6: a, MacAddress: '' }, Options: {} }, 'error', 'catalogue: bad endpoint v6 address');
  }
  for (const mac of BAD_MACS) {
    add('NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: freshEp, Interface: { Address: '198.18.50.9/24', AddressIPv6: '', MacAddress: mac }, Options: {} }, 'error', 'catalogue: bad MAC');
  }
  for (const a of BAD_POOL_ADDRESSES) {
    add('IpamDriver.RequestAddress', { PoolID: SEED_POOL, Address: a, Options: null }, 'error', 'catalogue: bad pool address');
    add('IpamDriver.RequestAddress', { PoolID: SEED_POOL, Address: a, Options: { RequestAddressType: 'com.docker.network.gateway' } }, 'error', 'catalogue: bad gateway address');
  }
  for (const a of BAD_CIDR_V4.filter((c) => !/^\d+\.\d+\.\d+\.\d+(\/\d{1,2})?$/.test(c))) {
    add('IpamDriver.ReleaseAddress', { PoolID: SEED_POOL, Address: a }, 'error', 'catalogue: bad address to release');
  }
  for (const v of BAD_MTUS) add('NetworkDriver.CreateNetwork', net({}, { [OPT_MTU]: v }), 'error', 'catalogue: bad MTU');
  for (const v of BAD_BRIDGES) add('NetworkDriver.CreateNetwork', net({}, { [OPT_BRIDGE]: v }), 'error', 'catalogue: bad bridge name');
  for (const v of BAD_BOOLS) {
    add('NetworkDriver.CreateNetwork', net({}, { [OPT_ICC]: v }), 'error', 'catalogue: bad enable_icc');
    add('NetworkDriver.CreateNetwork', net({}, { [OPT_MASQ]: v }), 'error', 'catalogue: bad enable_ip_masquerade');
  }
  for (const v of BAD_FLAGS) {
    add('NetworkDriver.CreateNetwork', net({ Options: { [GENERIC]: {}, 'com.docker.network.enable_ipv6': v } }), 'error', 'catalogue: bad enable_ipv6');
    add('NetworkDriver.CreateNetwork', net({ Options: { [GENERIC]: {}, 'com.docker.network.internal': v } }), 'error', 'catalogue: bad internal');
  }
  for (const k of [...BAD_LOOM_KEYS, 'loom.mode']) {
    if (k !== 'loom.mode') add('NetworkDriver.CreateNetwork', net({}, { [k]: 'x' }), 'error', 'catalogue: unknown loom network option');
    add('NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: freshEp, Interface: { Address: '198.18.50.9/24' }, Options: { [k]: 'x' } }, 'error', 'catalogue: unknown loom endpoint option');
  }
  for (const v of BAD_MODES) add('NetworkDriver.CreateNetwork', net({}, { 'loom.mode': v }), 'error', 'catalogue: bad loom.mode');
  for (const v of BAD_HOST_BINDINGS) add('NetworkDriver.CreateNetwork', net({}, { [OPT_HOST_BINDING]: v }), 'error', 'catalogue: bad host_binding_ipv4');
  // GwAllocCheck validates the same options without creating anything.
  const gw = (generic: Record<string, unknown>): Body => ({ Options: { [GENERIC]: generic } });
  for (const v of BAD_MTUS) add('NetworkDriver.GwAllocCheck', gw({ [OPT_MTU]: v }), 'error', 'catalogue: GwAllocCheck bad MTU');
  for (const v of BAD_BRIDGE_SYNTAX) add('NetworkDriver.GwAllocCheck', gw({ [OPT_BRIDGE]: v }), 'error', 'catalogue: GwAllocCheck bad bridge name');
  for (const v of BAD_BRIDGE_TAKEN) add('NetworkDriver.GwAllocCheck', gw({ [OPT_BRIDGE]: v }), 'noop', 'catalogue: GwAllocCheck taken bridge name');
  for (const v of BAD_BOOLS) add('NetworkDriver.GwAllocCheck', gw({ [OPT_ICC]: v }), 'error', 'catalogue: GwAllocCheck bad enable_icc');
  for (const k of BAD_LOOM_KEYS) add('NetworkDriver.GwAllocCheck', gw({ [k]: 'x' }), 'error', 'catalogue: GwAllocCheck unknown loom option');
  for (const v of [1500, true, null, { a: 1 }, ['1500']]) add('NetworkDriver.GwAllocCheck', gw({ [OPT_MTU]: v }), 'error', 'catalogue: GwAllocCheck non-string option');
  for (const v of ['x', 1, true, [], [{}]]) add('NetworkDriver.GwAllocCheck', { Options: { [GENERIC]: v } }, 'error', 'catalogue: GwAllocCheck generic of a wrong type');
  // Published ports: port maps no endpoint may get.
  for (const pm of BAD_PORTMAPS) {
    add('NetworkDriver.ProgramExternalConnectivity', { NetworkID: NET, EndpointID: EP, Options: { [PORTMAP]: pm } }, 'error', 'catalogue: bad port map');
  }
  for (const v of [1500, true, null, { a: 1 }, ['1500']]) {
    add('NetworkDriver.CreateNetwork', net({}, { [OPT_MTU]: v }), 'error', 'catalogue: non-string option value');
    add('NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: freshEp, Interface: { Address: '198.18.50.9/24' }, Options: { foo: v } }, 'error', 'catalogue: non-string endpoint option');
    add('IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: '198.18.60.0/24', Options: { foo: v } }, 'error', 'catalogue: non-string pool option');
    add('IpamDriver.RequestAddress', { PoolID: SEED_POOL, Address: '', Options: { RequestAddressType: v } }, 'error', 'catalogue: non-string address option');
  }

  // Every hostile id in every id field of every route.
  const idRoutes: Array<[string, string[], Body]> = [
    ['NetworkDriver.CreateNetwork', ['NetworkID'], net({})],
    ['NetworkDriver.DeleteNetwork', ['NetworkID'], { NetworkID: NET }],
    ['NetworkDriver.AllocateNetwork', ['NetworkID'], { NetworkID: NET, Options: {}, IPv4Data: [], IPv6Data: [] }],
    ['NetworkDriver.FreeNetwork', ['NetworkID'], { NetworkID: NET }],
    ['NetworkDriver.CreateEndpoint', ['NetworkID', 'EndpointID'], { NetworkID: NET, EndpointID: freshEp, Interface: { Address: '198.18.50.9/24' }, Options: {} }],
    ['NetworkDriver.DeleteEndpoint', ['NetworkID', 'EndpointID'], { NetworkID: NET, EndpointID: EP }],
    ['NetworkDriver.EndpointOperInfo', ['NetworkID', 'EndpointID'], { NetworkID: NET, EndpointID: EP }],
    ['NetworkDriver.Join', ['NetworkID', 'EndpointID'], { NetworkID: NET, EndpointID: EP, SandboxKey: SANDBOX, Options: {} }],
    ['NetworkDriver.Leave', ['NetworkID', 'EndpointID'], { NetworkID: NET, EndpointID: EP }],
    ['NetworkDriver.ProgramExternalConnectivity', ['NetworkID', 'EndpointID'], { NetworkID: NET, EndpointID: EP, Options: {} }],
    ['NetworkDriver.RevokeExternalConnectivity', ['NetworkID', 'EndpointID'], { NetworkID: NET, EndpointID: EP }],
  ];
  for (const [m, fields, body] of idRoutes) {
    for (const f of fields) for (const id of BAD_IDS) add(m, { ...body, [f]: id }, 'error', `catalogue: bad ${f}`);
  }
  for (const id of UNKNOWN_POOL_IDS) {
    add('IpamDriver.RequestAddress', { PoolID: id, Address: '', Options: null }, 'error', 'catalogue: unknown pool');
    add('IpamDriver.ReleasePool', { PoolID: id }, 'noop', 'catalogue: unknown pool');
    add('IpamDriver.ReleaseAddress', { PoolID: id, Address: '198.18.50.2' }, 'noop', 'catalogue: unknown pool');
  }
  for (const s of [...HOSTILE, 'loomlocal', 'LoomLocal ', 'Elsewhere']) {
    add('IpamDriver.RequestPool', { AddressSpace: s, Pool: '198.18.60.0/24' }, 'error', 'catalogue: bad address space');
  }

  // Out-of-order calls.
  for (const ep of UNKNOWN_EP_IDS) {
    add('NetworkDriver.Join', { NetworkID: NET, EndpointID: ep, SandboxKey: SANDBOX, Options: {} }, 'error', 'catalogue: Join before CreateEndpoint');
    add('NetworkDriver.Leave', { NetworkID: NET, EndpointID: ep }, 'noop', 'catalogue: Leave of an unknown endpoint');
    add('NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: ep }, 'noop', 'catalogue: DeleteEndpoint of an unknown endpoint');
  }
  for (const n of UNKNOWN_NET_IDS) {
    add('NetworkDriver.CreateEndpoint', { NetworkID: n, EndpointID: freshEp, Interface: { Address: '198.18.52.9/24' }, Options: {} }, 'error', 'catalogue: CreateEndpoint on an unknown network');
    add('NetworkDriver.Join', { NetworkID: n, EndpointID: EP, SandboxKey: SANDBOX, Options: {} }, 'error', 'catalogue: Join on an unknown network');
    add('NetworkDriver.DeleteNetwork', { NetworkID: n }, 'noop', 'catalogue: DeleteNetwork of an unknown network');
    add('NetworkDriver.DeleteEndpoint', { NetworkID: n, EndpointID: EP }, 'noop', 'catalogue: DeleteEndpoint on an unknown network');
  }
  add('IpamDriver.RequestAddress', { PoolID: RELEASED_POOL, Address: '198.18.51.5', Options: null }, 'error', 'catalogue: RequestAddress on a released pool');
  add('IpamDriver.RequestAddress', { PoolID: RELEASED_POOL, Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } }, 'error', 'catalogue: gateway on a released pool');
  add('IpamDriver.ReleaseAddress', { PoolID: RELEASED_POOL, Address: '198.18.51.1' }, 'noop', 'catalogue: ReleaseAddress on a released pool');
  add('IpamDriver.ReleasePool', { PoolID: RELEASED_POOL }, 'noop', 'catalogue: ReleasePool twice');
  // Re-creating the seeded objects differently.
  add('NetworkDriver.CreateNetwork', { ...clone(SEED_BODIES.network), Options: { [GENERIC]: { [OPT_MTU]: '9000' } } }, 'error', 'catalogue: seeded network, other MTU');
  add('NetworkDriver.CreateEndpoint', { ...clone(SEED_BODIES.endpoint), Interface: { Address: '198.18.50.3/24' } }, 'error', 'catalogue: seeded endpoint, other address');
  add('IpamDriver.RequestPool', clone(SEED_BODIES.pool), 'error', 'catalogue: seeded pool again');
  // Served paths in another case or with a trailing slash are not served: Docker's paths are exact.
  for (const m of ALL_ROUTES) {
    for (const p of [`/${m.toLowerCase()}`, `/${m.toUpperCase()}`, `/${m}/`]) out.push(mkCase(UNKNOWN, '', 'notfound', 'catalogue: not the exact path', 'POST', p));
  }
  return out;
}
