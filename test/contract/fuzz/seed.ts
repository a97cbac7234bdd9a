/**
 * The valid state the fuzz test seeds before it sends anything (a pool with its gateway, a
 * network, an address and a joined endpoint in 198.18.50.0/24, plus objects made and removed
 * again), and the request bodies recorded from dockerd that the generators start from.
 * Every generated batch must leave the seeded state exactly as it was.
 */
import { loadTrace, TRACE_FILES, TraceTranslator } from '../../helpers/trace';

export type Body = Record<string, unknown>;

export const NET = 'fa22ed' + '1'.repeat(58);
export const EP = 'fa22ed' + 'e'.repeat(58);
export const SEED_POOL = 'LoomLocal/198.18.50.0/24';
export const SANDBOX = '/var/run/docker/netns/fa22ed000001';
/** Made and then removed while seeding: out-of-order calls target them. */
export const DELETED_NET = 'dead0e' + '2'.repeat(58);
export const DELETED_EP = 'dead0e' + 'f'.repeat(58);
export const RELEASED_POOL = 'LoomLocal/198.18.51.0/24';
export const SEED_BRIDGE = `lm-${NET.slice(0, 12)}`;

// Option keys the generators and the catalogue aim at.
export const GENERIC = 'com.docker.network.generic';
export const OPT_MTU = 'com.docker.network.driver.mtu';
export const OPT_BRIDGE = 'com.docker.network.bridge.name';
export const OPT_ICC = 'com.docker.network.bridge.enable_icc';
export const OPT_MASQ = 'com.docker.network.bridge.enable_ip_masquerade';
export const OPT_HOST_BINDING = 'com.docker.network.bridge.host_binding_ipv4';
export const PORTMAP = 'com.docker.network.portmap';

export function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}
export const isObj = (v: unknown): v is Body => typeof v === 'object' && v !== null && !Array.isArray(v);
/** legacy-basic's first network used 10.99.0.0/24; move a body of it to another /24. */
export const retarget = <T>(v: T, prefix3: string): T => JSON.parse(JSON.stringify(v).replace(/198\.19\.99\./g, prefix3)) as T;

/** Translated recorded request bodies per method (10.A.0.B -> 198.19.A.B, tracer spaces -> Loom*). */
export const recorded: Record<string, Body[]> = {};
{
  const tr = new TraceTranslator();
  const seen = new Set<string>();
  for (const call of TRACE_FILES.flatMap((f) => loadTrace(f))) {
    if (!call.req || typeof call.req !== 'object') continue;
    const body = tr.value(call.req) as Body;
    const key = `${call.method} ${JSON.stringify(body)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    (recorded[call.method] ??= []).push(body);
  }
}
/** Every recorded body of `method` (none for calls the traces never saw). */
export const rec = (method: string): Body[] => recorded[method] ?? [];
export const firstRecorded = (method: string): Body => {
  const b = recorded[method]?.[0];
  if (!b) throw new Error(`no recorded ${method} body`);
  return clone(b);
};

/** An IPv4Data / IPv6Data entry of 198.18.60.0/24 (a subnet no seeded object uses), with overrides. */
export const ipamEntry = (over: Body): Body => ({ AddressSpace: 'LoomLocal', Pool: '198.18.60.0/24', Gateway: '198.18.60.1/24', ...over });

/** Valid bodies built from the recorded ones, retargeted to the seeded objects. */
export const SEED_BODIES: Record<'pool' | 'gateway' | 'network' | 'address' | 'endpoint' | 'join', Body> = {
  pool: { ...retarget(firstRecorded('IpamDriver.RequestPool'), '198.18.50.'), AddressSpace: 'LoomLocal' },
  gateway: { ...retarget(firstRecorded('IpamDriver.RequestAddress'), '198.18.50.'), PoolID: SEED_POOL },
  network: { ...retarget(firstRecorded('NetworkDriver.CreateNetwork'), '198.18.50.'), NetworkID: NET },
  address: { PoolID: SEED_POOL, Address: '', Options: null },
  endpoint: { ...retarget(firstRecorded('NetworkDriver.CreateEndpoint'), '198.18.50.'), NetworkID: NET, EndpointID: EP },
  join: { ...retarget(firstRecorded('NetworkDriver.Join'), '198.18.50.'), NetworkID: NET, EndpointID: EP, SandboxKey: SANDBOX },
};

/** A CreateEndpoint body on the seeded network without an endpoint id, asking for `addr`. */
export const epBody = (addr: string): Body => ({ ...clone(SEED_BODIES.endpoint), EndpointID: undefined, Interface: { Address: addr, AddressIPv6: '', MacAddress: '' } });
