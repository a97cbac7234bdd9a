/** The reconciler's pure planner: Observed state (+ previous suspects) -> repair actions. */
import { Action, Observed, ObservedPool, PlanOptions, plan } from '../../driver/reconcile/plan';
import { nextPassDelay } from '../../driver/reconcile/reconciler';
import type { DockerNetwork } from '../../driver/reconcile/docker-view';
import type { EndpointRecord, NetworkRecord } from '../../driver/model/types';
import { bridgeNameFor, hostVethFor, peerVethFor } from '../../driver/model/naming';
import type { LinkOwner } from '../../driver/kernel/link-owner';
import { parsePrefix } from '../../lib/prefix';
import { GLOBAL_SPACE, LOCAL_SPACE, poolIdOf } from '../../ipam-driver/index';

const AT = 1_000_000_000_000;
const OPTS: PlanOptions = { graceMs: 10_000, confirmMs: 5_000 };
const OLD = new Date(AT - 3_600_000).toISOString();
const YOUNG = new Date(AT - 1_000).toISOString();

const NET = 'a1'.repeat(32);
const EP = 'b2'.repeat(32);
const BR = bridgeNameFor(NET);
const HOST = hostVethFor(EP);
/** Pool ids as loom makes them (LoomLocal/<subnet>, see ipam-service.ts poolIdOf). */
const pid = (subnet: string, space = LOCAL_SPACE): string => poolIdOf(space, parsePrefix(subnet));
const P4 = pid('198.18.10.0/24');
const P6 = pid('fd00:10::/64');

const network = (over: Partial<NetworkRecord> = {}): NetworkRecord => ({
  id: NET, bridge: BR, mtu: 1500, internal: false, icc: true, masquerade: true, enableIpv6: true,
  ipv4: [{ pool: '198.18.10.0/24', gateway: '198.18.10.1/24', aux: { host: '198.18.10.5/24' } }],
  ipv6: [{ pool: 'fd00:10::/64', gateway: 'fd00:10::1/64', aux: {} }],
  options: {}, createdAt: OLD,
  ...over,
});

const endpoint = (over: Partial<EndpointRecord> = {}): EndpointRecord => ({
  networkId: NET, id: EP, hostIf: HOST, peerIf: peerVethFor(EP), mac: '02:42:c6:12:0a:07', macFromDocker: false,
  address: '198.18.10.7/24',
  addressV6: 'fd00:10::7/64',
  options: {}, createdAt: OLD,
  ...over,
});

const alloc = (address: string, kind = 'dynamic', createdAt = OLD) => ({ address, kind, createdAt });
const pool = (id: string, p: string, allocations: ObservedPool['allocations'], createdAt = OLD): ObservedPool => ({ id, pool: p, createdAt, allocations });

const dockerNet = (over: Partial<DockerNetwork> = {}): DockerNetwork => ({
  id: NET, name: 'n1', driver: 'loom', ipamDriver: 'loom',
  subnets: ['198.18.10.0/24', 'fd00:10::/64'],
  reserved: ['198.18.10.1', '198.18.10.5', 'fd00:10::1'],
  endpoints: new Map([[EP, ['198.18.10.7', 'fd00:10::7']]]),
  ...over,
});

/** A consistent world: one network with one endpoint, its two pools, Docker agreeing. */
function observed(over: Partial<Observed> = {}, withDocker = true): Observed {
  return {
    at: AT,
    networks: [network()],
    endpoints: [endpoint()],
    pools: [
      pool(P4, '198.18.10.0/24', [alloc('198.18.10.1', 'gateway'), alloc('198.18.10.5', 'explicit'), alloc('198.18.10.7')]),
      pool(P6, 'fd00:10::/64', [alloc('fd00:10::1', 'gateway'), alloc('fd00:10::7')]),
    ],
    links: [
      { name: BR, kind: 'bridge', up: true, owner: 'self' },
      { name: HOST, kind: 'veth', up: true, owner: 'self' },
    ],
    bridgeAddresses: new Map([[BR, ['198.18.10.1/24', 'fd00:10::1/64']]]),
    firewallDrift: [],
    liveSandboxes: new Set<string>(),
    docker: withDocker ? { at: AT, networks: new Map([[NET, dockerNet()]]), containerNames: new Map() } : undefined,
    ...over,
  };
}

const dockerWith = (...nets: DockerNetwork[]): Observed['docker'] => ({ at: AT, networks: new Map(nets.map((n) => [n.id, n])), containerNames: new Map() });
const kinds = (actions: Action[]): string[] => actions.map((a) => a.kind);

/** Pass 1 at AT, then pass 2 `after` ms later with the suspects of pass 1. */
function twoPasses(o: Observed, after = OPTS.confirmMs) {
  const first = plan(o, new Map(), OPTS);
  const second = plan({ ...o, at: o.at + after }, first.suspects, OPTS);
  return { first, second };
}

describe('plan: consistent state', () => {
  test.each([true, false])('no actions and no suspects (Docker view: %s)', (withDocker) => {
    const p = plan(observed({}, withDocker), new Map(), { ...OPTS, force: true });
    expect(p.actions).toEqual([]);
    expect(p.suspects.size).toBe(0);
  });
});

describe('plan: restoring loom networks', () => {
  test.each<[string, Partial<Observed>, RegExp]>([
    ['missing', { links: [{ name: HOST, kind: 'veth', up: true, owner: 'self' }] }, /bridge lm-a1a1a1a1a1a1 is missing/],
    ['down', { links: [{ name: BR, kind: 'bridge', up: false, owner: 'self' }, { name: HOST, kind: 'veth', up: true, owner: 'self' }] }, /is down/],
    ['lacking its v4 gateway', { bridgeAddresses: new Map([[BR, ['fd00:10::1/64']]]) }, /lacks 198\.18\.10\.1\/24$/],
    ['lacking every address', { bridgeAddresses: new Map() }, /lacks 198\.18\.10\.1\/24, fd00:10::1\/64/],
  ])('bridge %s -> restore-network on the first pass', (_, over, reason) => {
    const p = plan(observed(over), new Map(), OPTS);
    expect(p.actions).toEqual([{ kind: 'restore-network', networkId: NET, reason: expect.stringMatching(reason) }]);
    expect(p.suspects.size).toBe(0);
  });

  test('the v6 gateway is not required on the bridge when IPv6 is disabled', () => {
    const o = observed({ networks: [network({ enableIpv6: false })], bridgeAddresses: new Map([[BR, ['198.18.10.1/24']]]) });
    expect(plan(o, new Map(), OPTS).actions).toEqual([]);
  });

  test('an interface with the bridge name that is not a bridge is never touched', () => {
    const o = observed({ links: [{ name: BR, kind: 'dummy', up: false, owner: 'none' }, { name: HOST, kind: 'veth', up: true, owner: 'self' }], bridgeAddresses: new Map() });
    const p = plan(o, new Map(), { ...OPTS, force: true });
    expect(p.actions).toEqual([]);
    expect(p.suspects.size).toBe(0);
  });
});

test('firewall drift -> a single sync-firewall carrying every reason', () => {
  const p = plan(observed({ firewallDrift: ['chain LOOM-FWD missing', 'rule 3 differs'] }), new Map(), OPTS);
  expect(p.actions).toEqual([{ kind: 'sync-firewall', reason: expect.stringMatching(/chain LOOM-FWD missing.*rule 3 differs/) }]);
});

describe('plan: links by owner mark', () => {
  const withLink = (name: string, kind: string | undefined, owner: LinkOwner = 'self', base: Observed = observed()): Observed => ({ ...base, links: [...base.links, { name, kind, up: true, owner }] });

  test.each([
    ['lm-0123456789ab', 'bridge'],
    ['lv0123456789ab', 'veth'],
    ['lc0123456789ab', 'veth'],
    ['corp7', 'bridge'], // any name: the mark decides
    ['lb0123456789ab', 'ifb'],
  ])('%s (%s) with this loomd\'s mark and no record is suspected first, deleted only confirmMs after the first sighting', (name, kind) => {
    const o = withLink(name, kind);
    const p1 = plan(o, new Map(), OPTS);
    expect(p1.actions).toEqual([]);
    expect([...p1.suspects]).toEqual([[`link:${name}`, AT]]);
    const p2 = plan({ ...o, at: AT + OPTS.confirmMs - 1 }, p1.suspects, OPTS);
    expect(p2.actions).toEqual([]);
    expect(p2.suspects.get(`link:${name}`)).toBe(AT);
    const p3 = plan({ ...o, at: AT + OPTS.confirmMs }, p2.suspects, OPTS);
    expect(p3.actions).toEqual([{ kind: 'delete-orphan-link', name, reason: expect.any(String) }]);
  });

  test('an unfinished link (no mark, this loomd\'s temporary name) is deleted after two sightings; an unmarked stranger never', () => {
    const base = observed();
    const o = { ...base, links: [...base.links, { name: 'lt0123456abcdef', kind: 'veth', up: false, owner: 'none' as const, unfinished: true }, { name: 'lt0123456fedcba', kind: 'veth', up: false, owner: 'none' as const }] };
    const p1 = plan(o, new Map(), OPTS);
    expect(p1.actions).toEqual([]);
    const p2 = plan({ ...o, at: AT + OPTS.confirmMs }, p1.suspects, OPTS);
    expect(p2.actions).toEqual([{ kind: 'delete-orphan-link', name: 'lt0123456abcdef', reason: expect.stringMatching(/temporary name/) }]);
  });

  test('force=true still needs two sightings for links (they carry no age: a call may be in flight)', () => {
    const p = plan(withLink('lv0123456789ab', 'veth'), new Map(), { ...OPTS, force: true });
    expect(p.actions).toEqual([]);
    expect([...p.suspects.keys()]).toEqual(['link:lv0123456789ab']);
  });

  test.each([
    ['eth0', 'device', 'none'],
    ['docker0', 'bridge', 'none'],
    ['lm-0123456789ab', 'bridge', 'none'], // loom's names, no mark: an older loom's or someone else's
    ['lv0123456789ab', 'veth', 'none'],
    ['lc0123456789ab', 'veth', 'none'],
    ['lx0123456789ab', 'vxlan', 'none'],
    ['lm-0123456789ab', 'bridge', 'foreign'], // another loomd's
    ['lv0123456789ab', 'veth', 'foreign'],
    ['lo', undefined, 'none'], // no kind, no record
  ] as Array<[string, string | undefined, LinkOwner]>)('%s (%s, %s mark) is never suspected', (name, kind, owner) => {
    const p = plan(withLink(name, kind, owner), new Map(), { ...OPTS, force: 'all' });
    expect(p.actions).toEqual([]);
    expect(p.suspects.size).toBe(0);
  });

  test('links named in this loomd\'s records without a mark (an earlier loom made them) are marked at once', () => {
    const o = observed();
    o.links = o.links.map((l) => ({ ...l, owner: 'none' }));
    expect(plan(o, new Map(), OPTS).actions).toEqual([
      { kind: 'mark-link', name: BR, reason: expect.stringMatching(/made by an earlier loom/) },
      { kind: 'mark-link', name: HOST, reason: expect.stringMatching(/made by an earlier loom/) },
    ]);
  });

  test('a borrowed bridge and a link of another kind than its record are never marked', () => {
    const o = observed();
    o.networks = o.networks.map((n) => ({ ...n, adoptedBridge: true }));
    o.links = o.links.map((l) => (l.name === BR ? { ...l, owner: 'none' } : { ...l, kind: 'dummy', owner: 'none' }));
    const p = plan(o, new Map(), { ...OPTS, force: 'all' });
    expect(p.actions).toEqual([]);
  });

  test('a link another loomd marked with a record\'s name is not this loomd\'s: its bridge counts as missing', () => {
    const o = observed();
    o.links = o.links.map((l) => (l.name === BR ? { ...l, owner: 'foreign' } : l));
    expect(plan(o, new Map(), OPTS).actions).toEqual([{ kind: 'restore-network', networkId: expect.any(String), reason: expect.stringMatching(/is missing/) }]);
  });
});

describe('plan: stale endpoints', () => {
  const noVeth = (over: Partial<Observed> = {}, withDocker = true): Observed =>
    observed({ links: [{ name: BR, kind: 'bridge', up: true, owner: 'self' }], ...over }, withDocker);

  test.each([true, false])('veth gone -> remove-stale-endpoint after confirmation (Docker view: %s)', (withDocker) => {
    const { first, second } = twoPasses(noVeth({}, withDocker));
    expect(first.actions).toEqual([]);
    expect([...first.suspects]).toEqual([[`endpoint:${EP}`, AT]]);
    expect(second.actions).toEqual([{ kind: 'remove-stale-endpoint', networkId: NET, endpointId: EP, reason: `veth ${HOST} is gone` }]);
  });

  test('an endpoint younger than graceMs is never suspected', () => {
    const p = plan(noVeth({ endpoints: [endpoint({ createdAt: YOUNG })] }), new Map(), { ...OPTS, force: true });
    expect(p.actions).toEqual([]);
    expect(p.suspects.size).toBe(0);
  });

  test('Docker knows the network but not the endpoint -> stale after confirmation', () => {
    const { first, second } = twoPasses(observed({ docker: dockerWith(dockerNet({ endpoints: new Map() })) }));
    expect(kinds(first.actions)).toEqual([]);
    expect(first.suspects.has(`endpoint:${EP}`)).toBe(true);
    expect(second.actions).toEqual([
      { kind: 'remove-stale-endpoint', networkId: NET, endpointId: EP, reason: 'Docker no longer knows this endpoint' },
      // Its addresses go in the same pass (no third sighting): nothing else holds them.
      { kind: 'release-orphan-address', poolId: P4, address: '198.18.10.7', reason: `only stale endpoint ${EP.slice(0, 12)} held it` },
      { kind: 'release-orphan-address', poolId: P6, address: 'fd00:10::7', reason: `only stale endpoint ${EP.slice(0, 12)} held it` },
    ]);
  });

  test('a stale endpoint\'s address that Docker shows in use elsewhere is kept', () => {
    const other = dockerNet({ id: 'c3'.repeat(32), endpoints: new Map([['d4'.repeat(32), ['198.18.10.7']]]) });
    const { second } = twoPasses(observed({ docker: dockerWith(dockerNet({ endpoints: new Map() }), other) }));
    expect(kinds(second.actions)).toEqual(['remove-stale-endpoint', 'release-orphan-address']);
    expect(second.actions[1]).toMatchObject({ address: 'fd00:10::7' });
  });

  test('a young stale endpoint is not removed, nor its addresses released', () => {
    const young = observed({ endpoints: [endpoint({ createdAt: YOUNG })], docker: dockerWith(dockerNet({ endpoints: new Map() })) });
    expect(twoPasses(young).second.actions).toEqual([]);
  });

  test('without a Docker view only the kernel rule applies: a present veth keeps the endpoint', () => {
    const p = plan(observed({}, false), new Map(), { ...OPTS, force: true });
    expect(p.actions).toEqual([]);
  });

  test('a young network Docker does not list yet: its endpoint is judged by the kernel rule only', () => {
    const o = observed({ networks: [network({ createdAt: YOUNG })], docker: dockerWith() });
    expect(plan(o, new Map(), { ...OPTS, force: true }).actions).toEqual([]);
  });
});

describe('plan: stale networks', () => {
  test('Docker does not know an old network -> remove-stale-network after confirmation; its endpoints are not removed separately', () => {
    // the kernel lost everything too: neither restore-network nor remove-stale-endpoint is planned
    const o = observed({ docker: dockerWith(), links: [], bridgeAddresses: new Map() });
    const { first, second } = twoPasses(o);
    expect(first.actions).toEqual([]);
    expect(first.suspects.get(`network:${NET}`)).toBe(AT);
    expect([...first.suspects.keys()].some((k) => k.startsWith('endpoint:'))).toBe(false);
    expect(second.actions).toEqual([{ kind: 'remove-stale-network', networkId: NET, reason: 'Docker no longer knows this network' }]);
  });

  test('without a Docker view a network is never removed', () => {
    const p = plan(observed({}, false), new Map(), { ...OPTS, force: true });
    expect(kinds(p.actions)).not.toContain('remove-stale-network');
  });

  test('a young network Docker does not list is not suspected', () => {
    const p = plan(observed({ networks: [network({ createdAt: YOUNG })], docker: dockerWith() }), new Map(), { ...OPTS, force: true });
    expect(kinds(p.actions)).not.toContain('remove-stale-network');
    expect(p.suspects.has(`network:${NET}`)).toBe(false);
  });
});

describe('plan: IPAM', () => {
  const force = { ...OPTS, force: true };
  const ipamActions = (p: { actions: Action[] }) => p.actions.filter((a) => a.kind.startsWith('release-'));

  test('without a Docker view: nothing released and no suspects (in-use addresses are still restored)', () => {
    const o = observed({ pools: [pool(pid('10.9.0.0/16'), '10.9.0.0/16', [alloc('10.9.0.9')]), pool(P4, '198.18.10.0/24', [alloc('198.18.10.99')])] }, false);
    const p = plan(o, new Map(), force);
    expect(ipamActions(p)).toEqual([]);
    expect(p.actions.map((a) => (a.kind === 'restore-allocation' ? a.address : a.kind))).toEqual(['198.18.10.1', '198.18.10.5', '198.18.10.7']);
    expect(p.suspects.size).toBe(0);
  });

  test('loom records alone account for gateways, aux (CIDR) and endpoint v4/v6 addresses', () => {
    const o = observed({ docker: dockerWith(dockerNet({ reserved: [], endpoints: new Map([[EP, []]]) })) });
    expect(plan(o, new Map(), force).actions).toEqual([]);
  });

  test("Docker's reserved addresses and endpoint addresses are kept (network of another driver using loom IPAM)", () => {
    const other = dockerNet({
      id: 'c3'.repeat(32),
      driver: 'bridge',
      subnets: ['10.77.0.0/24'],
      reserved: ['10.77.0.3'],
      endpoints: new Map([['d4'.repeat(32), ['10.77.0.8']]]),
    });
    const o = observed({ docker: dockerWith(dockerNet(), other) });
    o.pools.push(pool(pid('10.77.0.0/24'), '10.77.0.0/24', [alloc('10.77.0.1', 'gateway'), alloc('10.77.0.3', 'explicit'), alloc('10.77.0.8')]));
    const p = plan(o, new Map(), force);
    expect(p.actions).toEqual([]);
    // its unaccounted allocations are still released one by one
    o.pools[2].allocations.push(alloc('10.77.0.200'));
    expect(ipamActions(plan(o, new Map(), force))).toEqual([
      { kind: 'release-orphan-address', poolId: pid('10.77.0.0/24'), address: '10.77.0.200', reason: expect.any(String) },
    ]);
  });

  test('an unaccounted old allocation -> release-orphan-address after confirmation', () => {
    const o = observed();
    o.pools[1].allocations.push(alloc('fd00:10::99'));
    const { first, second } = twoPasses(o);
    expect(first.actions).toEqual([]);
    expect([...first.suspects]).toEqual([[`address:${P6}|fd00:10::99`, AT]]);
    expect(second.actions).toEqual([
      { kind: 'release-orphan-address', poolId: P6, address: 'fd00:10::99', reason: 'no endpoint, gateway or aux address holds it' },
    ]);
  });

  test('gateway allocations are never released individually; young allocations are kept', () => {
    const o = observed();
    o.pools[0].allocations.push(alloc('198.18.10.254', 'gateway'), alloc('198.18.10.100', 'dynamic', YOUNG));
    const p = plan(o, new Map(), force);
    expect(p.actions).toEqual([]);
    expect(p.suspects.size).toBe(0);
  });

  test('a pool no loom network and no Docker network uses -> release-orphan-pool after confirmation; its allocations are not listed', () => {
    const o = observed();
    o.pools.push(pool(pid('10.9.0.0/16'), '10.9.0.0/16', [alloc('10.9.0.1', 'gateway'), alloc('10.9.0.9')]));
    const { first, second } = twoPasses(o);
    expect(first.actions).toEqual([]);
    expect([...first.suspects]).toEqual([[`pool:${pid('10.9.0.0/16')}`, AT]]);
    expect(second.actions).toEqual([{ kind: 'release-orphan-pool', poolId: pid('10.9.0.0/16'), reason: 'no network uses this pool' }]);
  });

  test('a young unused pool is kept', () => {
    const o = observed();
    o.pools.push(pool(pid('10.9.0.0/16'), '10.9.0.0/16', [], YOUNG));
    expect(plan(o, new Map(), force).actions).toEqual([]);
  });

  test('a pool used only by a Docker network of another driver is kept', () => {
    const o = observed({ docker: dockerWith(dockerNet(), dockerNet({ id: 'e5'.repeat(32), driver: 'bridge', subnets: ['10.9.0.0/16'], reserved: [], endpoints: new Map() })) });
    o.pools.push(pool(pid('10.9.0.0/16'), '10.9.0.0/16', [alloc('10.9.0.1', 'gateway')]));
    const p = plan(o, new Map(), force);
    expect(p.actions).toEqual([]);
    expect(p.suspects.size).toBe(0);
  });
});

describe('plan: suspects map', () => {
  test('the first sighting is preserved across passes; vanished suspects are dropped', () => {
    const o = observed({ links: [...observed().links, { name: 'lv0123456789ab', kind: 'veth', up: true, owner: 'self' }] });
    const previous = new Map([
      ['link:lv0123456789ab', AT - 2_000],
      ['link:lvdeadbeef0000', AT - 60_000],
      [`endpoint:${'f6'.repeat(32)}`, AT - 60_000],
    ]);
    const p = plan(o, previous, OPTS);
    expect([...p.suspects]).toEqual([['link:lv0123456789ab', AT - 2_000]]);
    expect(p.actions).toEqual([]); // 2 s < confirmMs
    const later = plan({ ...o, at: AT + 3_000 }, p.suspects, OPTS);
    expect(later.suspects.get('link:lv0123456789ab')).toBe(AT - 2_000);
    expect(kinds(later.actions)).toEqual(['delete-orphan-link']);
  });

  test('force still records suspects (first seen now) and does not mutate the previous map', () => {
    const previous = new Map<string, number>();
    const o = observed({ links: [...observed().links, { name: 'lc0123456789ab', kind: 'veth', up: true, owner: 'self' }] });
    const p = plan(o, previous, { ...OPTS, force: true });
    expect([...p.suspects]).toEqual([['link:lc0123456789ab', AT]]);
    expect(previous.size).toBe(0);
  });
});

describe('when the next pass runs', () => {
  const opts = { intervalMs: 30_000, graceMs: 10_000, confirmMs: 2_000, dockerTimeoutMs: 10_000 };
  test('the interval when all is calm', () => expect(nextPassDelay(opts, { newSuspects: 0, dockerMissing: false }, 0)).toBe(30_000));
  test('after confirmMs when new suspects wait for their second sighting', () => expect(nextPassDelay(opts, { newSuspects: 2, dockerMissing: false }, 0)).toBe(2_000));
  test('retries backing off from 1 s while Docker does not answer, never beyond the interval', () => {
    expect([1, 2, 3, 4, 5, 6, 20].map((n) => nextPassDelay(opts, { newSuspects: 0, dockerMissing: true }, n))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });
  test('a short interval wins', () => expect(nextPassDelay({ ...opts, intervalMs: 500 }, { newSuspects: 1, dockerMissing: true }, 1)).toBe(500));
});

describe('plan: restore-allocation (addresses in use that loom does not hold)', () => {
  const without = (poolId: string, address: string): Observed => {
    const o = observed();
    const p = o.pools.find((x) => x.id === poolId) as ObservedPool;
    p.allocations = p.allocations.filter((a) => a.address !== address);
    return o;
  };

  test.each<[string, string, string, 'gateway' | 'explicit' | 'dynamic']>([
    ['an endpoint address (v4)', P4, '198.18.10.7', 'dynamic'],
    ['an endpoint address (v6)', P6, 'fd00:10::7', 'dynamic'],
    ['the gateway', P4, '198.18.10.1', 'gateway'],
    ['an aux address', P4, '198.18.10.5', 'explicit'],
  ])('%s -> restore-allocation in its LoomLocal pool on the first pass', (_, poolId, address, allocKind) => {
    const p = plan(without(poolId, address), new Map(), OPTS);
    expect(p.actions).toEqual([{ kind: 'restore-allocation', poolId, address, allocKind, reason: expect.stringContaining(`${address} (`) }]);
    expect(p.suspects.size).toBe(0);
  });

  test('not for an endpoint whose veth is gone, nor one Docker no longer lists', () => {
    const gone = without(P4, '198.18.10.7');
    gone.links = gone.links.filter((l) => l.name !== HOST);
    expect(kinds(plan(gone, new Map(), OPTS).actions)).not.toContain('restore-allocation');
    const forgotten = without(P4, '198.18.10.7');
    forgotten.docker = dockerWith(dockerNet({ endpoints: new Map() }));
    expect(kinds(plan(forgotten, new Map(), OPTS).actions)).not.toContain('restore-allocation');
  });

  test('never in a pool of the global space (Swarm allocates those)', () => {
    const o = observed({ pools: [pool(pid('198.18.10.0/24', GLOBAL_SPACE), '198.18.10.0/24', []), pool(pid('fd00:10::/64', GLOBAL_SPACE), 'fd00:10::/64', [])] });
    expect(kinds(plan(o, new Map(), OPTS).actions)).not.toContain('restore-allocation');
  });

  test('an address outside every loom pool (another IPAM driver) is not loom\'s to restore', () => {
    const o = observed({ pools: [] });
    expect(kinds(plan(o, new Map(), OPTS).actions)).not.toContain('restore-allocation');
  });
});

describe('plan: replumb-endpoint (veth gone, container alive)', () => {
  const noVeth = (over: Partial<Observed> = {}, withDocker = true): Observed =>
    observed({ links: [{ name: BR, kind: 'bridge', up: true, owner: 'self' }], liveSandboxes: new Set([EP]), ...over }, withDocker);

  test.each([true, false])('its sandbox lives -> replumb-endpoint on the first pass, even when young (Docker view: %s)', (withDocker) => {
    const p = plan(noVeth({ endpoints: [endpoint({ createdAt: YOUNG })] }, withDocker), new Map(), OPTS);
    expect(p.actions).toEqual([{ kind: 'replumb-endpoint', networkId: NET, endpointId: EP, reason: `veth ${HOST} is gone while its container runs` }]);
    expect(p.suspects.size).toBe(0);
  });

  test('Docker no longer lists it -> not replumbed but removed after confirmation', () => {
    const { first, second } = twoPasses(noVeth({ docker: dockerWith(dockerNet({ endpoints: new Map() })) }));
    expect(kinds(first.actions)).toEqual([]);
    // Its addresses go with it in the same pass (nothing else holds them).
    expect(kinds(second.actions)).toEqual(['remove-stale-endpoint', 'release-orphan-address', 'release-orphan-address']);
  });

  test('its sandbox is gone too -> not replumbed but removed after confirmation', () => {
    const { first, second } = twoPasses(noVeth({ liveSandboxes: new Set() }));
    expect(kinds(first.actions)).toEqual([]);
    expect(kinds(second.actions)).toEqual(['remove-stale-endpoint']);
  });

  test('its address is neither released nor restored while it is re-plumbed', () => {
    const p = plan(noVeth(), new Map(), { ...OPTS, force: true });
    expect(kinds(p.actions)).toEqual(['replumb-endpoint']);
  });
});

describe('plan: shared (overlay) pools in a cluster', () => {
  const OV = pid('198.18.200.0/24');
  /** The overlay pool on this host: its gateway, one local endpoint, and what it keeps for other hosts. */
  const withOverlay = (allocations: ObservedPool['allocations']): Observed => {
    const o = observed();
    o.pools.push(pool(OV, '198.18.200.0/24', [alloc('198.18.200.1', 'gateway'), ...allocations]));
    o.docker = dockerWith(dockerNet(), dockerNet({ id: 'e5'.repeat(32), subnets: ['198.18.200.0/24'], reserved: [], endpoints: new Map() }));
    return o;
  };

  test('foreign (held for another host\'s container) and quarantined addresses are never suspected, even forced', () => {
    const o = withOverlay([alloc('198.18.200.9', 'foreign'), alloc('198.18.200.10', 'quarantine')]);
    for (const force of [true, 'all'] as const) {
      const p = plan(o, new Map(), { ...OPTS, force });
      expect(p.actions).toEqual([]);
      expect(p.suspects.size).toBe(0);
    }
  });

  test('many passes (every 2 s, 2 s grace and confirmation, 30 s) never release a foreign address', () => {
    const opts: PlanOptions = { graceMs: 2_000, confirmMs: 2_000 };
    const o = withOverlay([alloc('198.18.200.9', 'foreign'), alloc('198.18.200.10', 'quarantine'), alloc('198.18.200.11', 'borrowed')]);
    let suspects = new Map<string, number>();
    const released: string[] = [];
    for (let t = 0; t <= 30_000; t += 2_000) {
      const p = plan({ ...o, at: AT + t }, suspects, opts);
      suspects = p.suspects;
      released.push(...p.actions.flatMap((a) => (a.kind === 'release-orphan-address' ? [a.address] : [])));
    }
    // Only the borrowed address no local endpoint holds goes (back to its owner, by the IPAM);
    // the planner proposes it on every pass after its confirmation (nothing is applied here).
    expect(new Set(released)).toEqual(new Set(['198.18.200.11']));
  });

  test('a borrowed address a local endpoint holds is kept; unheld, it is released after confirmation', () => {
    const held = withOverlay([alloc('198.18.200.11', 'borrowed')]);
    (held.docker?.networks.get('e5'.repeat(32)) as DockerNetwork).endpoints.set('f6'.repeat(32), ['198.18.200.11']);
    expect(plan(held, new Map(), { ...OPTS, force: true }).actions).toEqual([]);
    const { first, second } = twoPasses(withOverlay([alloc('198.18.200.11', 'borrowed')]));
    expect(first.actions).toEqual([]);
    expect(second.actions).toEqual([{ kind: 'release-orphan-address', poolId: OV, address: '198.18.200.11', reason: expect.any(String) }]);
  });
});
