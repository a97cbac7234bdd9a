/**
 * The routes loom serves, grouped by what a hostile request to each may get back, and the
 * required fields of each schema route.
 */

/** Argument-less calls: any JSON object body is ignored and the answer is fixed (learnt from an empty call). */
export const READONLY = ['Plugin.Activate', 'NetworkDriver.GetCapabilities', 'IpamDriver.GetCapabilities', 'IpamDriver.GetDefaultAddressSpaces'];
/** Calls that create or change something: state is compared after every single one. */
const CREATING = ['NetworkDriver.CreateNetwork', 'NetworkDriver.CreateEndpoint', 'NetworkDriver.Join', 'IpamDriver.RequestPool', 'IpamDriver.RequestAddress'];
/** Checked after every single call too: it publishes ports on a real endpoint. */
export const CHECK_EACH = [...CREATING, 'NetworkDriver.ProgramExternalConnectivity'];
/** Validation only (Docker 28+ asks before CreateNetwork): 200 or a clear error, never a change. */
export const VALIDATING = ['NetworkDriver.GwAllocCheck'];
/** Calls that succeed on unknown ids by protocol: a 200 is fine if nothing changes. */
export const IDEMPOTENT = [
  'NetworkDriver.DeleteNetwork',
  'NetworkDriver.DeleteEndpoint',
  'NetworkDriver.Leave',
  'IpamDriver.ReleasePool',
  'IpamDriver.ReleaseAddress',
  'NetworkDriver.EndpointOperInfo',
  'NetworkDriver.DiscoverNew',
  'NetworkDriver.DiscoverDelete',
  'NetworkDriver.ProgramExternalConnectivity',
  'NetworkDriver.RevokeExternalConnectivity',
  'NetworkDriver.AllocateNetwork',
  'NetworkDriver.FreeNetwork',
];
export const SCHEMA_ROUTES = [...CREATING, ...IDEMPOTENT, ...VALIDATING];
export const ALL_ROUTES = [...READONLY, ...SCHEMA_ROUTES];
/** The route a request to a path loom does not serve is counted under. */
export const UNKNOWN = '(unknown path)';

/** The required fields of each schema route. */
export const REQUIRED: Record<string, string[]> = {
  'NetworkDriver.CreateNetwork': ['NetworkID'],
  'NetworkDriver.DeleteNetwork': ['NetworkID'],
  'NetworkDriver.AllocateNetwork': ['NetworkID'],
  'NetworkDriver.FreeNetwork': ['NetworkID'],
  'NetworkDriver.CreateEndpoint': ['NetworkID', 'EndpointID'],
  'NetworkDriver.DeleteEndpoint': ['NetworkID', 'EndpointID'],
  'NetworkDriver.EndpointOperInfo': ['NetworkID', 'EndpointID'],
  'NetworkDriver.Join': ['NetworkID', 'EndpointID'],
  'NetworkDriver.Leave': ['NetworkID', 'EndpointID'],
  'NetworkDriver.ProgramExternalConnectivity': ['NetworkID', 'EndpointID'],
  'NetworkDriver.RevokeExternalConnectivity': ['NetworkID', 'EndpointID'],
  'NetworkDriver.DiscoverNew': ['DiscoveryType'],
  'NetworkDriver.DiscoverDelete': ['DiscoveryType'],
  'IpamDriver.RequestPool': ['AddressSpace'],
  'IpamDriver.ReleasePool': ['PoolID'],
  'IpamDriver.RequestAddress': ['PoolID'],
  'IpamDriver.ReleaseAddress': ['PoolID', 'Address'],
  'NetworkDriver.GwAllocCheck': [],
};

/**
 * What an answer must be:
 * error:    500, JSON, Err == Error, non-empty
 * noop:     200 (any JSON object) or such a 500; nothing may change either way
 * readonly: 200 with the call's fixed answer
 * notfound: 404, JSON, Err == Error, non-empty
 */
export type Expect = 'error' | 'noop' | 'readonly' | 'notfound';

/** What a garbage body for this route must get: an error, or a no-op on the idempotent routes. */
export const garbageExpect = (method: string): Expect =>
  IDEMPOTENT.includes(method) || VALIDATING.includes(method) ? 'noop' : READONLY.includes(method) ? 'readonly' : 'error';
/** What a JSON object body without the route's required fields must get. */
export const objectExpect = (method: string): Expect => ((REQUIRED[method] ?? []).length > 0 ? 'error' : garbageExpect(method));
