/**
 * Cross-checks of one test host: Docker's view, loom's state and the kernel must
 * agree exactly. Returns the list of violations (empty: consistent).
 *
 *   networks   Docker's loom networks          == loom's network records
 *   endpoints  Docker's endpoints on them      == loom's endpoint records
 *   addresses  gateways + aux + live endpoints == loom's IPAM allocations (no leak, no loss)
 *   pools      subnets of loom-IPAM networks   == loom's pools
 *   kernel     links with this loomd's owner mark == its networks' bridges (borrowed ones
 *              aside), VXLAN devices, endpoints' host veths and IFBs (no orphan object, no
 *              container end left in the host namespace); no link with one of loom's name
 *              shapes is left without a loom mark (a leak or a temporary name)
 *
 * Several loomd may serve one host: pass the one to check (its driver name and admin
 * socket; default: the host's own loomd). Links of other loomd (their marks) are theirs.
 */
import type { TestHost } from './test-host';
import { unixRequest } from './unix-http';

/** One loomd of a test host, as the invariants see it. */
export interface LoomdView {
  driver: string;
  adminSocket: string;
}

export interface InvariantOptions {
  /** Unmarked links the test made itself with loom-like names (someone else's, never loom's). */
  foreign?: ReadonlySet<string>;
}

/** Interface names loom derives (network/naming.ts) and the temporary names of link-owner.ts. */
const LOOM_SHAPED = /^(lm-|l[vcbx][0-9a-z]{12}$|lt[0-9a-f]{13}$)/;

interface DockerNet {
  Id: string;
  Name: string;
  Driver: string;
  IPAM: { Driver: string; Config: Array<{ Subnet?: string; Gateway?: string; AuxiliaryAddresses?: Record<string, string> }> | null };
  Containers: Record<string, { EndpointID: string; IPv4Address: string; IPv6Address: string }> | null;
}

const plain = (s: string): string => s.split('/')[0] as string;
const diff = (what: string, expected: Set<string>, actual: Set<string>): string[] => {
  const out: string[] = [];
  const missing = [...expected].filter((x) => !actual.has(x));
  const extra = [...actual].filter((x) => !expected.has(x));
  if (missing.length) out.push(`${what}: missing ${missing.join(', ')}`);
  if (extra.length) out.push(`${what}: unexpected ${extra.join(', ')}`);
  return out;
};

export async function dockerNetworks(host: TestHost): Promise<DockerNet[]> {
  const ids = (await host.cliOk(['network', 'ls', '-q', '--no-trunc'])).split('\n').filter(Boolean);
  if (!ids.length) return [];
  return JSON.parse(await host.cliOk(['network', 'inspect', ...ids])) as DockerNet[];
}

export async function invariantViolations(host: TestHost, loomd: LoomdView = host, opts: InvariantOptions = {}): Promise<string[]> {
  const nets = await dockerNetworks(host);
  const loomNets = nets.filter((n) => n.Driver === loomd.driver);
  const loomIpam = nets.filter((n) => n.IPAM.Driver === loomd.driver);
  const state = {
    networks: (await unixRequest(loomd.adminSocket, 'GET', '/v1/networks')).json as Array<Record<string, any>>,
    pools: (await unixRequest(loomd.adminSocket, 'GET', '/v1/ipam')).json as Array<Record<string, any>>,
  };
  const mark = (await unixRequest(loomd.adminSocket, 'GET', '/v1/status')).json?.owner?.mark as string | undefined;
  const out: string[] = [];

  out.push(...diff('networks', new Set(loomNets.map((n) => n.Id)), new Set(state.networks.map((n) => n.id as string))));
  const dockerEps = new Set(loomNets.flatMap((n) => Object.values(n.Containers ?? {}).map((c) => c.EndpointID)));
  const loomEps = new Set(state.networks.flatMap((n) => (n.endpoints as Array<{ id: string }>).map((e) => e.id)));
  out.push(...diff('endpoints', dockerEps, loomEps));

  const expectedAddrs = new Set<string>();
  for (const n of loomIpam) {
    for (const c of n.IPAM.Config ?? []) {
      if (c.Gateway) expectedAddrs.add(plain(c.Gateway));
      for (const a of Object.values(c.AuxiliaryAddresses ?? {})) expectedAddrs.add(plain(a));
    }
    for (const c of Object.values(n.Containers ?? {})) {
      if (c.IPv4Address) expectedAddrs.add(plain(c.IPv4Address));
      if (c.IPv6Address) expectedAddrs.add(plain(c.IPv6Address));
    }
  }
  const subnets = new Set(loomIpam.flatMap((n) => (n.IPAM.Config ?? []).map((c) => c.Subnet).filter((s): s is string => Boolean(s))));
  // dockerd shows a gateway it did not get from the user only for automatic subnets: take loom's
  // gateway allocation of each pool in use (at most one per pool).
  for (const p of state.pools) {
    const gws = (p.allocations as Array<{ address: string; kind: string }>).filter((a) => a.kind === 'gateway');
    if (gws.length > 1) out.push(`pool ${p.pool as string} has ${gws.length} gateways`);
    if (subnets.has(p.pool as string)) gws.forEach((g) => expectedAddrs.add(g.address));
  }
  const allocated = new Set<string>(state.pools.flatMap((p) => (p.allocations as Array<{ address: string }>).map((a) => a.address)));
  out.push(...diff('addresses', expectedAddrs, allocated));
  out.push(...diff('pools', subnets, new Set(state.pools.map((p) => p.pool as string))));

  if (!mark) return [...out, 'loomd does not report its owner mark'];
  const links = await host.ipJson<Array<{ ifname: string; ifalias?: string }>>(['link', 'show']);
  const marked = new Set(links.filter((l) => l.ifalias === mark).map((l) => l.ifname));
  const expectedLinks = new Set<string>();
  for (const n of state.networks) {
    if (!n.adoptedBridge) expectedLinks.add(n.bridge as string);
    if (n.overlay?.vxlan) expectedLinks.add(n.overlay.vxlan as string);
    for (const e of n.endpoints as Array<{ hostIf: string; ifb?: string }>) {
      expectedLinks.add(e.hostIf);
      if (e.ifb) expectedLinks.add(e.ifb);
    }
  }
  out.push(...diff(`links marked ${mark}`, expectedLinks, marked));
  const unmarked = links.filter((l) => !l.ifalias?.startsWith('loom:') && LOOM_SHAPED.test(l.ifname) && !opts.foreign?.has(l.ifname)).map((l) => l.ifname);
  const borrowed = new Set(state.networks.filter((n) => n.adoptedBridge).map((n) => n.bridge as string));
  const leaked = unmarked.filter((n) => !borrowed.has(n));
  if (leaked.length) out.push(`links with loom's names and no loom mark: ${leaked.join(', ')}`);
  return out;
}

/** Polls until the host is consistent (the reconciler may need a few passes); returns the last violations. */
export async function settle(host: TestHost, timeoutMs = 30_000, loomd: LoomdView = host, opts: InvariantOptions = {}): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let v: string[] = [];
  while (Date.now() < deadline) {
    v = await invariantViolations(host, loomd, opts);
    if (v.length === 0) return v;
    await new Promise((r) => setTimeout(r, 500));
  }
  return v;
}
