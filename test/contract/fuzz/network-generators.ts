/** Generators of hostile network calls: CreateNetwork, GwAllocCheck, AllocateNetwork, FreeNetwork, DeleteNetwork, Discover*. */
import fc from 'fast-check';
import type { FuzzCase } from './cases';
import { BAD_BOOLS, BAD_BRIDGE_SYNTAX, BAD_BRIDGES, BAD_FLAGS, BAD_HOST_BINDINGS, BAD_LOOM_KEYS, BAD_MODES, BAD_MTUS } from './hostile-values';
import {
  badCidr, badGateway, badOrHostileCidr, broken, drop, graphemes, hex64, hugeString, idBreakers, noop, notArray, notInt, notObject, notString, objOf,
  optionsGarbage, optKey, set, setGeneric, setMany, unknownNetId,
} from './arbitraries';
import { Body, GENERIC, ipamEntry, NET, OPT_BRIDGE, OPT_HOST_BINDING, OPT_ICC, OPT_MASQ, OPT_MTU, rec, SEED_BODIES, SEED_BRIDGE } from './seed';

/** IPv4Data / IPv6Data entries that fail the schema or the checks. */
const badIpamEntry: fc.Arbitrary<unknown> = fc.oneof(
  notObject(false),
  fc.constant({ AddressSpace: 'LoomLocal', Gateway: '198.18.60.1/24' }),
  badOrHostileCidr.map((p) => ipamEntry({ Pool: p })),
  fc.constant(ipamEntry({ Pool: '' })),
  fc.oneof(badGateway, fc.constantFrom('198.19.250.1/24', 'fd00::1/64', '198.18.61.1/24')).map((g) => ipamEntry({ Gateway: g })),
  fc.oneof(badGateway, fc.constantFrom('198.19.250.9/24', 'fd00::9/64')).map((a) => ipamEntry({ AuxAddresses: { host1: a } })),
  notObject(true).map((a) => ipamEntry({ AuxAddresses: a })),
  fc.constant(ipamEntry({ AuxAddresses: { ['k'.repeat(257)]: '198.18.60.9/24' } })),
  fc.oneof(notString(true), fc.constant('s'.repeat(65))).map((s) => ipamEntry({ AddressSpace: s })),
);

export const createNetwork = broken('NetworkDriver.CreateNetwork', [...rec('NetworkDriver.CreateNetwork'), SEED_BODIES.network], [
  ...idBreakers('NetworkID'),
  set('Options', notObject(true)),
  notObject(true).map((g) => (b: Body) => ({ ...b, Options: { ...objOf(b.Options), [GENERIC]: g } })),
  setGeneric(fc.tuple(fc.oneof(fc.constantFrom(OPT_MTU, OPT_BRIDGE, OPT_ICC, 'foo', 'loom.mode'), optKey), notString(false))),
  setGeneric(fc.tuple(fc.oneof(fc.constantFrom(...BAD_LOOM_KEYS), graphemes.map((s) => `loom.${s}`)).filter((k) => k !== 'loom.mode'), fc.string({ maxLength: 8 }))),
  setGeneric(fc.tuple(fc.constant(OPT_MTU), fc.constantFrom(...BAD_MTUS))),
  setGeneric(fc.tuple(fc.constant(OPT_MTU), fc.integer({ min: 65536, max: 99999 }).map(String))),
  setGeneric(fc.tuple(fc.constant(OPT_MTU), fc.integer({ min: 0, max: 67 }).map(String))),
  setGeneric(fc.tuple(fc.constant(OPT_BRIDGE), fc.constantFrom(...BAD_BRIDGES))),
  setGeneric(fc.tuple(fc.constant(OPT_BRIDGE), fc.string({ unit: 'grapheme-ascii', minLength: 16, maxLength: 40 }))),
  setGeneric(fc.tuple(fc.constantFrom(OPT_ICC, OPT_MASQ), fc.constantFrom(...BAD_BOOLS))),
  setGeneric(fc.tuple(fc.constant('loom.mode'), fc.constantFrom(...BAD_MODES))),
  setGeneric(fc.tuple(fc.constant(OPT_HOST_BINDING), fc.constantFrom(...BAD_HOST_BINDINGS))),
  fc.tuple(fc.constantFrom('com.docker.network.enable_ipv6', 'com.docker.network.internal'), fc.constantFrom(...BAD_FLAGS)).map(
    ([k, v]) => (b: Body) => ({ ...b, Options: { ...objOf(b.Options), [k]: v } }),
  ),
  set('IPv4Data', notArray(true)),
  set('IPv6Data', notArray(true)),
  set('IPv4Data', fc.constant(Array.from({ length: 65 }, (_, i) => ipamEntry({ Pool: `198.18.${100 + i}.0/24`, Gateway: undefined })))),
  set('IPv4Data', badIpamEntry.map((e) => [e])),
  set('IPv6Data', badIpamEntry.map((e) => [e])),
  set('IPv4Data', fc.constant([ipamEntry({ Pool: 'fd00:60::/64', Gateway: 'fd00:60::1/64' })])),
  set('IPv6Data', fc.constant([ipamEntry({ Pool: '198.18.60.0/24' })])),
  // Overlaps the seeded network's subnet, or reuses its bridge: refused before any change.
  setMany(
    fc.record({
      NetworkID: fc.oneof(hex64, fc.constant(NET.toUpperCase())),
      IPv4Data: fc.constantFrom(
        [ipamEntry({ Pool: '198.18.50.0/24', Gateway: '198.18.50.1/24' })],
        [ipamEntry({ Pool: '198.18.50.128/25', Gateway: '198.18.50.129/25' })],
        [ipamEntry({ Pool: '198.18.0.0/15', Gateway: '198.18.0.1/15' })],
        [ipamEntry({ Pool: '198.18.60.0/24' }), ipamEntry({ Pool: '198.18.50.0/26', Gateway: undefined })],
      ),
    }),
  ),
  fc.tuple(hex64, fc.constantFrom(SEED_BRIDGE, 'lo')).map(([id, br]) => (b: Body) => ({
    ...b,
    NetworkID: id,
    Options: { ...objOf(b.Options), [GENERIC]: { [OPT_BRIDGE]: br } },
    IPv4Data: [ipamEntry({})],
  })),
  // The seeded id with another configuration.
  fc
    .constantFrom<Body>(
      { Options: { [GENERIC]: { [OPT_MTU]: '1400' } } },
      { Options: { 'com.docker.network.internal': true } },
      { IPv4Data: [ipamEntry({ Pool: '198.18.50.0/24', Gateway: '198.18.50.254/24' })] },
      { IPv4Data: [] },
      { IPv4Data: [ipamEntry({ Pool: '198.18.50.0/24', Gateway: '198.18.50.1/24', AuxAddresses: { a: '198.18.50.9/24' } })] },
    )
    .map((over) => (b: Body) => ({ ...b, ...over, NetworkID: NET })),
]);

export const deleteNetwork = fc.oneof(
  broken('NetworkDriver.DeleteNetwork', rec('NetworkDriver.DeleteNetwork'), idBreakers('NetworkID')),
  noop('NetworkDriver.DeleteNetwork', fc.oneof(unknownNetId.map((id) => ({ NetworkID: id })), fc.constantFrom(...rec('NetworkDriver.DeleteNetwork')))),
);
export const freeNetwork = fc.oneof(
  broken('NetworkDriver.FreeNetwork', rec('NetworkDriver.FreeNetwork'), idBreakers('NetworkID')),
  noop('NetworkDriver.FreeNetwork', fc.oneof(unknownNetId, fc.constant(NET)).map((id) => ({ NetworkID: id }))),
);
export const allocateNetwork = fc.oneof(
  broken('NetworkDriver.AllocateNetwork', [...rec('NetworkDriver.AllocateNetwork'), ...rec('NetworkDriver.CreateNetwork')], [
    ...idBreakers('NetworkID'),
    set('Options', notObject(true)),
    set('Options', fc.constant({ [GENERIC]: {} })),
    fc.tuple(optKey, notString(false)).map(([k, v]) => (b: Body) => ({ ...b, Options: { [k]: v } })),
    set('IPv4Data', notArray(true)),
    set('IPv6Data', notArray(true)),
    set('IPv4Data', fc.oneof(notObject(false), fc.constant({ Gateway: '198.18.60.1/24' }), fc.constant(ipamEntry({ Pool: '' }))).map((e) => [e])),
  ]),
  noop(
    'NetworkDriver.AllocateNetwork',
    fc.tuple(fc.oneof(unknownNetId, fc.constant(NET)), fc.dictionary(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), { maxKeys: 4 }), badCidr).map(
      ([id, opts, pool]) => ({ NetworkID: id, Options: opts, IPv4Data: [ipamEntry({ Pool: pool })], IPv6Data: null }),
    ),
  ),
);
export const discovery = (method: string): fc.Arbitrary<FuzzCase> =>
  fc.oneof(
    broken(method, rec('NetworkDriver.DiscoverNew'), [set('DiscoveryType', notInt), drop('DiscoveryType')]),
    noop(
      method,
      fc.record({ DiscoveryType: fc.oneof(fc.integer(), fc.constantFrom(Number.MAX_SAFE_INTEGER, -1, 0)), DiscoveryData: fc.oneof(fc.jsonValue({ maxDepth: 4 }), hugeString) }),
    ),
  );
export const gwAllocCheck = fc.oneof(
  broken(
    'NetworkDriver.GwAllocCheck',
    [{ Options: { [GENERIC]: {} } }, ...rec('NetworkDriver.CreateNetwork').map((b) => ({ Options: b.Options }))],
    [
      set('Options', notObject(true)),
      notObject(true).map((g) => (b: Body) => ({ ...b, Options: { ...objOf(b.Options), [GENERIC]: g } })),
      setGeneric(fc.tuple(fc.oneof(fc.constantFrom(OPT_MTU, OPT_BRIDGE, OPT_ICC, 'foo'), optKey), notString(false))),
      setGeneric(fc.tuple(fc.constantFrom(...BAD_LOOM_KEYS), fc.string({ maxLength: 8 }))),
      setGeneric(fc.tuple(fc.constant(OPT_MTU), fc.constantFrom(...BAD_MTUS))),
      setGeneric(fc.tuple(fc.constant(OPT_BRIDGE), fc.constantFrom(...BAD_BRIDGE_SYNTAX))),
      setGeneric(fc.tuple(fc.constantFrom(OPT_ICC, OPT_MASQ), fc.constantFrom(...BAD_BOOLS))),
      setGeneric(fc.tuple(fc.constant('loom.mode'), fc.constantFrom(...BAD_MODES))),
    ],
  ),
  noop('NetworkDriver.GwAllocCheck', fc.oneof(optionsGarbage.map((o) => ({ Options: o })), fc.constant<Body>({}), fc.constant<Body>({ Options: null }))),
);
