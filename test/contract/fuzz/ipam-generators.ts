/** Generators of hostile IPAM calls: RequestPool, RequestAddress, ReleasePool, ReleaseAddress. */
import fc from 'fast-check';
import { BAD_CIDR_V4, BAD_CIDR_V6, BAD_POOL_ADDRESSES } from './hostile-values';
import { badCidr, broken, drop, hostile, hugeString, noop, notBool, notObject, notString, objOf, optKey, set, unknownPoolId } from './arbitraries';
import { Body, rec, SEED_BODIES, SEED_POOL } from './seed';

export const requestPool = broken('IpamDriver.RequestPool', [...rec('IpamDriver.RequestPool'), SEED_BODIES.pool], [
  set('AddressSpace', fc.oneof(notString(false), hostile, fc.constantFrom('loomlocal', 'LoomLocal ', 'tracerlocal', 'Elsewhere', 'LoomLocal/', 's'.repeat(65)))),
  drop('AddressSpace'),
  set('Pool', fc.oneof(badCidr, notString(false), hugeString)).map((m) => (b: Body) => ({ ...m(b), V6: false })),
  set('Pool', fc.oneof(fc.constantFrom(...BAD_CIDR_V6), fc.constantFrom('198.18.60.0/24', 'fd00:60::/64'))).map((m) => (b: Body) => {
    const out = m(b);
    // a valid subnet of the other family than V6 asks for
    return { ...out, V6: typeof out.Pool === 'string' && !out.Pool.includes(':') };
  }),
  set('SubPool', notString(false)),
  fc.oneof(badCidr, fc.constantFrom('198.18.61.0/25', '198.18.60.0/23', '198.18.50.0/25', 'fd00:60::/80')).map((sub) => (b: Body) => ({
    ...b,
    Pool: '198.18.60.0/24',
    SubPool: sub,
    V6: false,
  })),
  fc.constantFrom('198.18.60.0/25', 'fd00:60::/80').map((sub) => (b: Body) => ({ ...b, Pool: '', SubPool: sub })),
  set('Options', notObject(true)),
  fc.tuple(fc.oneof(fc.constantFrom('RequestAddressType', 'com.docker.network.ipam.serial', 'x'), optKey), notString(false)).map(
    ([k, v]) => (b: Body) => ({ ...b, Options: { ...objOf(b.Options), [k]: v } }),
  ),
  set('Options', fc.constant({ ['k'.repeat(257)]: 'v' })),
  set('V6', notBool),
  // Overlaps the seeded pool in its address space.
  fc.constantFrom('198.18.50.0/24', '198.18.50.128/25', '198.18.0.0/15', '198.18.50.0/23', '198.18.50.7/32', '198.0.0.0/8', '0.0.0.0/0').map(
    (pool) => (b: Body) => ({ ...b, AddressSpace: 'LoomLocal', Pool: pool, SubPool: '', V6: false }),
  ),
]);

export const requestAddress = broken('IpamDriver.RequestAddress', [...rec('IpamDriver.RequestAddress'), SEED_BODIES.address, SEED_BODIES.gateway], [
  set('PoolID', fc.oneof(notString(false), fc.constant(''), fc.constant('p'.repeat(257)), unknownPoolId)),
  drop('PoolID'),
  set('Address', fc.oneof(fc.constantFrom(...BAD_POOL_ADDRESSES), hostile.filter((s) => s !== ''), notString(false), hugeString)).map((m) => (b: Body) => ({
    ...m(b),
    PoolID: SEED_POOL,
  })),
  set('Options', notObject(true)),
  fc.tuple(fc.oneof(fc.constant('RequestAddressType'), optKey), notString(false)).map(([k, v]) => (b: Body) => ({ ...b, Options: { ...objOf(b.Options), [k]: v } })),
]);

export const releasePool = fc.oneof(
  broken('IpamDriver.ReleasePool', rec('IpamDriver.ReleasePool'), [set('PoolID', fc.oneof(notString(false), fc.constant(''), fc.constant('p'.repeat(257)))), drop('PoolID')]),
  noop('IpamDriver.ReleasePool', fc.oneof(unknownPoolId.map((id) => ({ PoolID: id })), fc.constantFrom(...rec('IpamDriver.ReleasePool')))),
);
export const releaseAddress = fc.oneof(
  broken('IpamDriver.ReleaseAddress', rec('IpamDriver.ReleaseAddress'), [
    set('PoolID', fc.oneof(notString(false), fc.constant(''), fc.constant('p'.repeat(257)))),
    drop('PoolID'),
    set('Address', fc.oneof(notString(false), fc.constant(''), hugeString, fc.constantFrom(...BAD_CIDR_V4.filter((c) => !/^\d+\.\d+\.\d+\.\d+(\/\d{1,2})?$/.test(c))))),
    drop('Address'),
  ]),
  noop(
    'IpamDriver.ReleaseAddress',
    fc.oneof(
      fc.record({ PoolID: unknownPoolId, Address: fc.constantFrom('198.18.50.1', '198.18.50.2', '198.19.99.2', 'fd00::1') }),
      fc.record({ PoolID: fc.constant(SEED_POOL), Address: fc.constantFrom('198.18.50.200', '198.18.50.0', '198.18.50.255', '::ffff:198.18.50.2', '198.18.60.1') }),
      fc.constantFrom(...rec('IpamDriver.ReleaseAddress')),
    ),
  ),
);
