/**
 * Overlay networks with a namespace of their own (docs/overlay.md): the planner's findings on
 * the layout (namespace, bridge and ports inside it, gateway and tunnel veths, VXLAN device),
 * endpoints whose host end lives in the namespace, names, the gateway MAC and the nsid answer.
 */
import { Observed, ObservedLink, PlanOptions, plan } from '../../driver/reconcile/plan';
import type { EndpointRecord, NetworkRecord } from '../../driver/model/types';
import { bridgeNameFor, hostVethFor, overlayNsLayoutFor, peerVethFor, vxlanFor } from '../../driver/model/naming';
import { gatewayMacFor } from '../../driver/model/mac';
import { gatewayIfOf } from '../../driver/model/records';
import { parseNsid } from '../../driver/kernel/netns-links';

const AT = 1_000_000_000_000;
const OPTS: PlanOptions = { graceMs: 10_000, confirmMs: 5_000 };
const OLD = new Date(AT - 3_600_000).toISOString();
const NET = 'c3'.repeat(32);
const EP = 'd4'.repeat(32);
const L = overlayNsLayoutFor('abcd1234', NET);
const BR = bridgeNameFor(NET);
const VX = vxlanFor(NET);

const network = (): NetworkRecord => ({
  id: NET, bridge: BR, mtu: 1450, internal: false, icc: true, masquerade: true, enableIpv6: false,
  ipv4: [{ pool: '198.18.40.0/24', gateway: '198.18.40.1/24', aux: {} }], ipv6: [],
  overlay: { key: NET, vni: 4242, vxlan: VX, local: '198.18.0.1', origin: 'h1', ns: L },
  options: {}, createdAt: OLD,
});
const endpoint = (): EndpointRecord => ({
  networkId: NET, id: EP, hostIf: hostVethFor(EP), peerIf: peerVethFor(EP), mac: '02:42:c6:12:28:07', macFromDocker: false,
  address: '198.18.40.7/24', options: {}, createdAt: OLD, sandboxKey: '/var/run/docker/netns/x',
});
const link = (name: string, kind: string, up = true): ObservedLink => ({ name, kind, up, owner: 'self' });

function observed(over: Partial<Observed> = {}): Observed {
  return {
    at: AT,
    networks: [network()],
    endpoints: [endpoint()],
    pools: [],
    links: [link(L.gatewayIf, 'veth'), link(L.tunnelIf, 'veth'), link(VX, 'vxlan'), link(peerVethFor(EP), 'veth')],
    nsLinks: new Map([[L.netns, [link(BR, 'bridge'), link(L.gatewayPeer, 'veth'), link(L.tunnelPeer, 'veth'), link(hostVethFor(EP), 'veth')]]]),
    bridgeAddresses: new Map([[L.gatewayIf, ['198.18.40.1/24']]]),
    firewallDrift: [],
    liveSandboxes: new Set<string>(),
    docker: undefined,
    ...over,
  };
}

const without = (list: ObservedLink[], name: string): ObservedLink[] => list.filter((l) => l.name !== name);
const inside = (): ObservedLink[] => observed().nsLinks?.get(L.netns) ?? [];

describe('plan: an overlay namespace layout', () => {
  test('all there: no actions, no suspects (the namespace\'s links are no orphans)', () => {
    const p = plan(observed(), new Map(), { ...OPTS, force: 'all' });
    expect(p.actions).toEqual([]);
  });

  test.each<[string, Partial<Observed>, RegExp]>([
    ['the namespace missing', { nsLinks: new Map() }, /namespace loom-abcd1234-c3c3c3c3c3c3 is missing/],
    ['the bridge missing', { nsLinks: new Map([[L.netns, without(inside(), BR)]]) }, /bridge lm-c3c3c3c3c3c3 is missing in loom-/],
    ['the bridge down', { nsLinks: new Map([[L.netns, [link(BR, 'bridge', false), ...without(inside(), BR)]]]) }, /is down/],
    ['the tunnel port missing', { nsLinks: new Map([[L.netns, without(inside(), L.tunnelPeer)]]) }, /port lu/],
    ['the gateway veth missing', { links: without(observed().links, L.gatewayIf) }, /gateway veth lg\S+ is missing/],
    ['the gateway address missing', { bridgeAddresses: new Map() }, /lacks 198\.18\.40\.1\/24/],
    ['the tunnel veth missing', { links: without(observed().links, L.tunnelIf) }, /tunnel veth lt\S+ is missing/],
    ['the VXLAN device missing', { links: without(observed().links, VX) }, /vxlan lx\S+ is missing/],
  ])('%s -> restore-network', (_, over, reason) => {
    expect(plan(observed(over), new Map(), OPTS).actions).toEqual([{ kind: 'restore-network', networkId: NET, reason: expect.stringMatching(reason) }]);
  });

  test('an endpoint whose host end is gone from the namespace while its container runs is re-plumbed', () => {
    const o = observed({ nsLinks: new Map([[L.netns, without(inside(), hostVethFor(EP))]]), liveSandboxes: new Set([EP]) });
    expect(plan(o, new Map(), OPTS).actions).toEqual([expect.objectContaining({ kind: 'replumb-endpoint', endpointId: EP })]);
  });
});

describe('names, gateway and MAC', () => {
  test('namespace and veth names fit the limits and name the instance and the network', () => {
    expect(L).toEqual({ netns: 'loom-abcd1234-c3c3c3c3c3c3', gatewayIf: 'lgc3c3c3c3c3c3', gatewayPeer: 'lkc3c3c3c3c3c3', tunnelIf: 'ltc3c3c3c3c3c3', tunnelPeer: 'luc3c3c3c3c3c3' });
    for (const n of [L.gatewayIf, L.gatewayPeer, L.tunnelIf, L.tunnelPeer]) expect(n.length).toBeLessThanOrEqual(15);
    expect(gatewayIfOf(network())).toBe(L.gatewayIf);
    expect(gatewayIfOf({ ...network(), overlay: undefined })).toBe(BR);
  });

  test('the gateway MAC is stable, unicast and locally administered, and differs per loomd and network', () => {
    const m = gatewayMacFor('loom:abcd1234', NET);
    expect(m).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    expect(parseInt(m.slice(0, 2), 16) & 0x03).toBe(0x02);
    expect(gatewayMacFor('loom:abcd1234', NET)).toBe(m);
    expect(gatewayMacFor('loom:ffff1234', NET)).not.toBe(m);
    expect(gatewayMacFor('loom:abcd1234', 'e5'.repeat(32))).not.toBe(m);
  });

  test('parseNsid reads NETNSA_NSID out of an RTM_NEWNSID answer', () => {
    expect(parseNsid(Buffer.from('000000000800010002000000', 'hex'))).toBe(2);
    expect(parseNsid(Buffer.from('00000000', 'hex'))).toBeUndefined();
  });
});
