/**
 * Generators of hostile endpoint calls: CreateEndpoint, Join, Leave, DeleteEndpoint,
 * EndpointOperInfo, and the published-port calls (Program/RevokeExternalConnectivity).
 */
import fc from 'fast-check';
import { FuzzCase, jsonCase } from './cases';
import { BAD_CIDR_V6, BAD_EP_ADDRESSES, BAD_LOOM_KEYS, BAD_MACS } from './hostile-values';
import {
  broken, graphemes, hostile, hugeString, idBreakers, Mut, noop, notObject, notString, objOf, optionsGarbage, optKey, set, unknownEpId, unknownNetId,
} from './arbitraries';
import { Body, EP, epBody, NET, PORTMAP, rec, SEED_BODIES } from './seed';

const onSeededNet = (m: fc.Arbitrary<Mut>): fc.Arbitrary<Mut> => m.map((f) => (b: Body) => ({ ...f(b), NetworkID: NET }));
const withInterface = (key: string, v: fc.Arbitrary<unknown>): fc.Arbitrary<Mut> =>
  v.map((x) => (b: Body) => ({ ...b, Interface: { ...objOf(b.Interface), [key]: x } }));
export const createEndpoint = broken(
  'NetworkDriver.CreateEndpoint',
  [...rec('NetworkDriver.CreateEndpoint'), { ...epBody('198.18.50.77/24'), EndpointID: 'c0ffee'.padEnd(64, '7') }],
  [
    ...idBreakers('NetworkID', 'EndpointID'),
    set('NetworkID', unknownNetId),
    set('Interface', notObject(true)),
    onSeededNet(withInterface('Address', fc.oneof(fc.constantFrom(...BAD_EP_ADDRESSES), notString(false), hugeString))),
    onSeededNet(withInterface('AddressIPv6', fc.oneof(fc.constantFrom(...BAD_CIDR_V6, 'fd00::5/64', '198.18.50.9/24', 'fe80::5/64'), hostile.filter((s) => s !== ''), notString(false)))),
    onSeededNet(withInterface('MacAddress', fc.oneof(fc.constantFrom(...BAD_MACS), hostile.filter((s) => s !== ''), notString(false), hugeString))),
    onSeededNet(set('Options', notObject(true))),
    onSeededNet(
      fc
        .tuple(fc.oneof(fc.constantFrom('foo', 'com.docker.networkX', 'loom.x', 'x'), optKey.filter((k) => !/^com\.docker\.network\./.test(k))), notString(false))
        .map(([k, v]) => (b: Body) => ({ ...b, Options: { ...objOf(b.Options), [k]: v } })),
    ),
    onSeededNet(
      fc
        .tuple(fc.oneof(fc.constantFrom(...BAD_LOOM_KEYS, 'loom.mode'), graphemes.map((s) => `loom.${s}`)), fc.string({ maxLength: 8 }))
        .map(([k, v]) => (b: Body) => ({ ...b, Options: { ...objOf(b.Options), [k]: v } })),
    ),
    // Another endpoint whose interface names would collide with the seeded one.
    onSeededNet(
      fc
        .oneof(fc.constant(EP.toUpperCase()), fc.stringMatching(/^[0-9a-f]{52}$/).map((t) => EP.slice(0, 12) + t))
        .filter((id) => id !== EP)
        .map((id) => (b: Body) => ({ ...b, EndpointID: id, Interface: { Address: '198.18.50.78/24', AddressIPv6: '', MacAddress: '' } })),
    ),
    // The seeded endpoint re-created with other addresses.
    onSeededNet(
      fc
        .constantFrom<Body>(
          { Address: '198.18.50.9/24', AddressIPv6: '', MacAddress: '' },
          { Address: '', AddressIPv6: '', MacAddress: '' },
          { Address: '198.18.50.2/24', AddressIPv6: '', MacAddress: '02:42:c6:12:32:09' },
        )
        .map((iface) => (b: Body) => ({ ...b, EndpointID: EP, Interface: iface })),
    ),
  ],
);

export const join = broken('NetworkDriver.Join', [...rec('NetworkDriver.Join'), SEED_BODIES.join], [
  ...idBreakers('NetworkID', 'EndpointID'),
  set('SandboxKey', fc.oneof(notString(false), fc.constant('/'.repeat(4097)))),
  set('Options', notObject(true)),
  // Join before CreateEndpoint, after DeleteEndpoint, on unknown networks.
  set('EndpointID', unknownEpId).map((m) => (b: Body) => ({ ...m(b), NetworkID: NET })),
  set('NetworkID', unknownNetId),
]);

const endpointNoopIds = (allowSeededPair: boolean): fc.Arbitrary<Body> =>
  fc.oneof(
    fc.record({ NetworkID: unknownNetId, EndpointID: fc.oneof(unknownEpId, fc.constant(EP)) }),
    fc.record({ NetworkID: fc.constant(NET), EndpointID: unknownEpId }),
    ...(allowSeededPair ? [fc.constant<Body>({ NetworkID: NET, EndpointID: EP })] : []),
  );
export const endpointCall = (method: string, allowSeededPair: boolean, extra: Array<fc.Arbitrary<Mut>> = []): fc.Arbitrary<FuzzCase> =>
  fc.oneof(
    broken(method, [...rec(method), ...rec('NetworkDriver.Leave')], [...idBreakers('NetworkID', 'EndpointID'), ...extra]),
    noop(method, fc.oneof(endpointNoopIds(allowSeededPair), fc.constantFrom(...rec(method), ...rec('NetworkDriver.DeleteEndpoint')))),
  );

const portEntry = fc.record(
  {
    Proto: fc.oneof(fc.constantFrom(6, 17, 132), fc.constantFrom(0, 1, 7, -6, 6.5, 'tcp', null)),
    IP: fc.constantFrom('', '198.18.50.2'),
    Port: fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.constantFrom(0, -1, 65536, 1.5, '80', null)),
    HostIP: fc.oneof(fc.constantFrom('', '0.0.0.0', '127.0.0.1'), fc.constantFrom('300.1.1.1', '0.0.0.0/0', 'fd00::1', '::', '::1', 'localhost', '$(reboot)'), notString(true)),
    HostPort: fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.constant(0), fc.constantFrom(-1, 65536, 1.5, '8080', 1e9)),
    HostPortEnd: fc.oneof(fc.constant(0), fc.constantFrom(-1, 65536, 1.5, '8081', 1)),
  },
  { requiredKeys: ['Proto', 'Port'] },
);
/** Exactly the entries parsePortMap, choosePorts and the seeded endpoint must refuse, and why. */
function portEntryIsBad(e: Record<string, unknown>): boolean {
  const port = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
  if (![6, 17, 132].includes(e.Proto as number)) return true;
  if (!port(e.Port)) return true;
  const hp = e.HostPort ?? 0;
  const hpe = e.HostPortEnd ?? 0;
  if (hp !== 0 && !port(hp)) return true;
  if (hpe !== 0 && (!port(hpe) || (hpe as number) < (hp as number))) return true;
  if (e.HostIP !== undefined && typeof e.HostIP !== 'string') return true;
  return typeof e.HostIP === 'string' && e.HostIP !== '' && !['0.0.0.0', '127.0.0.1'].includes(e.HostIP);
}
/** Port maps with at least one bad entry, on the seeded endpoint: refused, and nothing stays published or bound. */
export const programPorts = fc
  .tuple(fc.array(portEntry, { minLength: 1, maxLength: 4 }), fc.nat())
  .filter(([entries]) => entries.some(portEntryIsBad))
  .map(([entries]) => jsonCase('NetworkDriver.ProgramExternalConnectivity', { NetworkID: NET, EndpointID: EP, Options: { [PORTMAP]: entries } }, 'error', 'bad port map'));

/** Calls on unknown endpoints, and the seeded endpoint with options that publish nothing: a 200 must change nothing. */
export const publishNothing = noop(
  'NetworkDriver.ProgramExternalConnectivity',
  fc.oneof(
    fc.tuple(endpointNoopIds(false), optionsGarbage).map(([ids, o]) => ({ ...ids, Options: o })),
    // the seeded endpoint with options that publish nothing
    optionsGarbage.map((o) => ({ NetworkID: NET, EndpointID: EP, Options: Object.fromEntries(Object.entries(o).filter(([k]) => k !== PORTMAP)) })),
  ),
);
