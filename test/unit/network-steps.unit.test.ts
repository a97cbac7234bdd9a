/**
 * The network step table (driver/dataplane/network-steps.ts) against the in-memory fake
 * kernel: each step applies exactly when its condition holds, does what its name says, and
 * its inverse (when it has one) gives back the kernel as it was; the whole table creates,
 * converges without redoing, and rolls back completely when a step fails. The real kernel:
 * test/kernel/bridge-firewall.kernel.test.ts and ownership.kernel.test.ts.
 */
import * as fs from 'node:fs';
import { BridgeDataPlane } from '../../driver/dataplane/bridge';
import * as S from '../../driver/dataplane/network-steps';
import type { NetworkContext } from '../../driver/dataplane/network-steps';
import type { SetupStep } from '../../driver/dataplane/steps';
import type { NetworkRecord } from '../../driver/model/types';
import { silentLogger } from '../../lib/logger';
import { FAKE_MARK, FakeKernel } from './fake-kernel';
import { RecordingRunner, capturingLogger } from './step-recorder';

const BR = 'lm-aaaaaaaaaaaa';
const VX = 'lxaaaaaaaaaaaa';
const log = silentLogger();

function net(over: Partial<NetworkRecord> = {}): NetworkRecord {
  return {
    id: 'a'.repeat(64),
    bridge: BR,
    mtu: 1500,
    internal: false,
    icc: true,
    masquerade: true,
    enableIpv6: false,
    ipv4: [{ pool: '198.18.10.0/24', gateway: '198.18.10.1/24', aux: {} }],
    ipv6: [{ pool: 'fd5c:10::/64', gateway: 'fd5c:10::1/64', aux: {} }],
    options: {},
    createdAt: '2025-01-01T00:00:00.000Z',
    ...over,
  };
}

const overlay = { key: 'ov1', vni: 4100, vxlan: VX, local: '198.18.0.1', origin: 'h1' };

/** Observes `n` on `k` as ensureNetwork does and applies one step; returns the runner (for rollback) and its step names. */
async function applyStep(k: FakeKernel, step: SetupStep<NetworkContext>, n: NetworkRecord, creating = false): Promise<RecordingRunner> {
  const c = await S.observeNetwork(k.deps(log), n, { creating });
  const runner = new RecordingRunner(log);
  await step.apply(c, runner);
  return runner;
}

/** A bridge as the table leaves it: marked, up, gateway on. */
async function made(k: FakeKernel, n = net()): Promise<void> {
  await new BridgeDataPlane(k, log, { sysctl: k.sysctl, tc: k.tc }).ensureNetwork(n, new RecordingRunner(log), { creating: true });
}

describe('bridge steps', () => {
  test('create-bridge: a missing bridge is created marked and down; undone, it is gone', async () => {
    const k = new FakeKernel();
    const before = k.state();
    const r = await applyStep(k, S.createBridge, net(), true);
    expect(r.names).toEqual([`create bridge ${BR}`]);
    expect(k.link(BR)).toMatchObject({ kind: 'bridge', alias: FAKE_MARK, up: false, mtu: 1500 });
    await r.rollback();
    expect(k.state()).toEqual(before);
  });

  test('create-bridge: a bridge already there is not created again', async () => {
    const k = new FakeKernel();
    await made(k);
    expect((await applyStep(k, S.createBridge, net())).names).toEqual([]);
  });

  test('take-over-bridge: this loomd\'s own bridge met by a create is taken (changed in nothing) and deleted if the create fails', async () => {
    const k = new FakeKernel();
    await k.createBridge(BR, 1500);
    const r = await applyStep(k, S.takeOverBridge, net(), true);
    expect(r.names).toEqual([`take over bridge ${BR}`]);
    expect(k.link(BR)).toBeDefined();
    await r.rollback();
    expect(k.link(BR)).toBeUndefined();
    await k.createBridge(BR, 1500);
    expect((await applyStep(k, S.takeOverBridge, net(), false)).names).toEqual([]); // a restore: nothing to take over
  });

  test('mark-bridge: a recorded bridge an earlier loom made without a mark is marked; a borrowed one never', async () => {
    const k = new FakeKernel();
    k.addLink(BR, 'bridge');
    expect((await applyStep(k, S.markBridge, net())).names).toEqual([`mark bridge ${BR} as this loomd's`]);
    expect(k.link(BR)?.alias).toBe(FAKE_MARK);
    const k2 = new FakeKernel();
    k2.addLink('corp0', 'bridge');
    expect((await applyStep(k2, S.markBridge, net({ bridge: 'corp0', adoptedBridge: true }))).names).toEqual([]);
    expect(k2.link('corp0')?.alias).toBeUndefined();
  });

  test('bridge-mtu: set only when it differs', async () => {
    const k = new FakeKernel();
    await k.createBridge(BR, 1400);
    expect((await applyStep(k, S.bridgeMtu, net())).names).toEqual([`set ${BR} mtu 1500`]);
    expect(k.link(BR)?.mtu).toBe(1500);
    expect((await applyStep(k, S.bridgeMtu, net())).names).toEqual([]);
  });

  test('bridge-ipv6: an IPv4-only network has IPv6 off; an IPv6 one on, without router advertisements', async () => {
    const k = new FakeKernel();
    await k.createBridge(BR, 1500);
    expect((await applyStep(k, S.bridgeIpv6, net())).names).toEqual([`disable IPv6 on ${BR}`]);
    expect(k.iface.get(`ipv6/${BR}/disable_ipv6`)).toBe('1');
    expect((await applyStep(k, S.bridgeIpv6, net({ enableIpv6: true }))).names).toEqual([`enable IPv6 on ${BR}`]);
    expect(k.iface.get(`ipv6/${BR}/disable_ipv6`)).toBe('0');
    expect(k.iface.get(`ipv6/${BR}/accept_ra`)).toBe('0');
  });

  test('gateway-address: one named step per gateway (IPv6 ones only on IPv6 networks); an address already there is fine', async () => {
    const k = new FakeKernel();
    await k.createBridge(BR, 1500);
    expect((await applyStep(k, S.gatewayAddress, net())).names).toEqual([`add 198.18.10.1/24 to ${BR}`]);
    const r = await applyStep(k, S.gatewayAddress, net({ enableIpv6: true }));
    expect(r.names).toEqual([`add 198.18.10.1/24 to ${BR}`, `add fd5c:10::1/64 to ${BR}`]);
    expect((k.state() as { addresses: string[] }).addresses).toEqual([`${BR} 198.18.10.1/24`, `${BR} fd5c:10::1/64`]);
    expect((await applyStep(k, S.gatewayAddress, net({ ipv4: [{ pool: '198.18.10.0/24', aux: {} }], ipv6: [] }))).names).toEqual([]); // no gateway allocated
  });

  test('bridge-up', async () => {
    const k = new FakeKernel();
    await k.createBridge(BR, 1500);
    expect((await applyStep(k, S.bridgeUp, net())).names).toEqual([`set ${BR} up`]);
    expect(k.link(BR)?.up).toBe(true);
  });
});

describe('VXLAN steps (overlay networks)', () => {
  const ovNet = (over: Partial<NetworkRecord> = {}): NetworkRecord => net({ overlay, ...over });

  test('none of them applies to a network without an overlay', async () => {
    const k = new FakeKernel();
    await made(k);
    for (const s of [S.markVxlan, S.attachVxlan, S.vxlanMtu, S.createVxlan, S.isolateVxlan]) expect((await applyStep(k, s, net())).names).toEqual([]);
  });

  test('create-vxlan: made on the bridge with its VNI and local address; undone, it is gone', async () => {
    const k = new FakeKernel();
    await made(k);
    const before = k.state();
    const r = await applyStep(k, S.createVxlan, ovNet(), true);
    expect(r.names).toEqual([`create vxlan ${VX} vni 4100`]);
    expect(k.link(VX)).toMatchObject({ kind: 'vxlan', alias: FAKE_MARK, up: true, vxlan: { vni: 4100, local: '198.18.0.1' }, master: k.link(BR)?.index });
    await r.rollback();
    expect(k.state()).toEqual(before);
  });

  test('create-vxlan: a device with the wrong VNI is replaced; one that is right is kept', async () => {
    const k = new FakeKernel();
    await made(k);
    await k.createVxlan(VX, { vni: 9, local: '198.18.0.1', mtu: 1500, master: BR });
    expect((await applyStep(k, S.createVxlan, ovNet())).names).toEqual([`create vxlan ${VX} vni 4100`]);
    expect(k.link(VX)?.vxlan).toEqual({ vni: 4100, local: '198.18.0.1' });
    expect(k.calls.slice(-2)).toEqual([`deleteOwnedLink ${VX}`, `createVxlan ${VX}`]);
    expect((await applyStep(k, S.createVxlan, ovNet())).names).toEqual([]);
  });

  test('mark-vxlan: a recorded device an earlier loom made without a mark is marked', async () => {
    const k = new FakeKernel();
    await made(k);
    k.addLink(VX, 'vxlan', { vxlan: { vni: 4100, local: '198.18.0.1' }, master: k.link(BR)?.index });
    expect((await applyStep(k, S.markVxlan, ovNet())).names).toEqual([`mark ${VX} as this loomd's`]);
    expect(k.link(VX)?.alias).toBe(FAKE_MARK);
  });

  test('attach-vxlan and vxlan-mtu: a right device off its bridge or with another MTU is fixed, not re-made', async () => {
    const k = new FakeKernel();
    await made(k);
    await k.createBridge('lm-other', 1500);
    await k.createVxlan(VX, { vni: 4100, local: '198.18.0.1', mtu: 1450, master: 'lm-other' });
    expect((await applyStep(k, S.attachVxlan, ovNet())).names).toEqual([`attach ${VX}`]);
    expect(k.link(VX)?.master).toBe(k.link(BR)?.index);
    expect((await applyStep(k, S.vxlanMtu, ovNet())).names).toEqual([`set ${VX} mtu`]);
    expect(k.link(VX)?.mtu).toBe(1500);
    expect((await applyStep(k, S.attachVxlan, ovNet())).names).toEqual([]);
    expect((await applyStep(k, S.vxlanMtu, ovNet())).names).toEqual([]);
    expect((await applyStep(k, S.createVxlan, ovNet())).names).toEqual([]);
  });

  test('isolate-vxlan: with ICC off a new device is an isolated port', async () => {
    const k = new FakeKernel();
    await made(k);
    await applyStep(k, S.createVxlan, ovNet({ icc: false }), true);
    expect((await applyStep(k, S.isolateVxlan, ovNet({ icc: false }), true)).names).toEqual([]); // now right: nothing to do
    const k2 = new FakeKernel();
    await made(k2);
    const c = await S.observeNetwork(k2.deps(log), ovNet({ icc: false }), { creating: true });
    const r = new RecordingRunner(log);
    for (const s of [S.createVxlan, S.isolateVxlan]) await s.apply(c, r);
    expect(r.names).toEqual([`create vxlan ${VX} vni 4100`, `isolate port ${VX}`]);
    expect(k2.link(VX)?.isolated).toBe(true);
  });
});

describe('forwarding steps', () => {
  test('ipv4-forwarding: turned on once for a routed network; never for an internal one', async () => {
    const k = new FakeKernel();
    await k.createBridge(BR, 1500);
    expect((await applyStep(k, S.ipv4Forwarding, net({ internal: true }))).names).toEqual([]);
    expect(k.global.get('net.ipv4.ip_forward')).toBe('0');
    expect((await applyStep(k, S.ipv4Forwarding, net())).names).toEqual(['enable IPv4 forwarding']);
    expect(k.global.get('net.ipv4.ip_forward')).toBe('1');
    await applyStep(k, S.ipv4Forwarding, net());
    expect(k.calls.filter((c) => c.startsWith('sysctl net.ipv4.ip_forward'))).toHaveLength(1);
  });

  test('ipv6-forwarding: force_forwarding on the bridge only, nothing when the host forwards anyway, a warning on older kernels', async () => {
    const k = new FakeKernel();
    await k.createBridge(BR, 1500);
    expect((await applyStep(k, S.ipv6Forwarding, net())).names).toEqual([]); // IPv4-only
    expect((await applyStep(k, S.ipv6Forwarding, net({ enableIpv6: true }))).names).toEqual([`IPv6 forwarding on ${BR}`]);
    expect(k.iface.get(`ipv6/${BR}/force_forwarding`)).toBe('1');
    expect(k.global.get('net.ipv6.conf.all.forwarding')).toBe('0');

    const forwarding = new FakeKernel();
    forwarding.global.set('net.ipv6.conf.all.forwarding', '1');
    await forwarding.createBridge(BR, 1500);
    await applyStep(forwarding, S.ipv6Forwarding, net({ enableIpv6: true }));
    expect(forwarding.iface.get(`ipv6/${BR}/force_forwarding`)).toBe('0');

    const old = new FakeKernel(FAKE_MARK, { forceForwarding: false });
    await old.createBridge(BR, 1500);
    const { log: captured, lines } = capturingLogger();
    const c = await S.observeNetwork(old.deps(captured), net({ enableIpv6: true }), {});
    await S.ipv6Forwarding.apply(c, new RecordingRunner(log));
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual([expect.stringMatching(/no per-interface force_forwarding/)]);
  });

  test('route-localnet: on for a routed network (published ports on 127.0.0.1), not for an internal one', async () => {
    const k = new FakeKernel();
    await k.createBridge(BR, 1500);
    expect((await applyStep(k, S.routeLocalnet, net({ internal: true }))).names).toEqual([]);
    expect((await applyStep(k, S.routeLocalnet, net())).names).toEqual([`route_localnet on ${BR}`]);
    expect(k.iface.get(`ipv4/${BR}/route_localnet`)).toBe('1');
  });
});

describe('observeNetwork refuses before anything changes', () => {
  test.each([
    ['a link of another kind under the bridge\'s name', (k: FakeKernel) => k.addLink(BR, 'veth'), {}, /interface lm-aaaaaaaaaaaa exists and is not a bridge/],
    ['another loomd\'s bridge', (k: FakeKernel) => k.addLink(BR, 'bridge', { alias: 'loom:0ther0000001' }), {}, /belongs to another loomd \(loom:0ther0000001\)/],
    ['an unmarked bridge met by a create (not borrowed)', (k: FakeKernel) => k.addLink(BR, 'bridge'), {}, /exists and is not this loomd's \(no owner mark\)/],
    ['another loomd\'s VXLAN device', (k: FakeKernel) => k.addLink(VX, 'vxlan', { alias: 'loom:0ther0000001' }), { overlay }, /interface lxaaaaaaaaaaaa belongs to another loomd/],
    ['an unmarked VXLAN device met by a create', (k: FakeKernel) => k.addLink(VX, 'vxlan'), { overlay }, /interface lxaaaaaaaaaaaa exists and is not this loomd's/],
  ])('%s', async (_what, setUp, over, why) => {
    const k = new FakeKernel();
    setUp(k);
    const before = k.state();
    const dp = new BridgeDataPlane(k, log, { sysctl: k.sysctl, tc: k.tc });
    await expect(dp.ensureNetwork(net(over), new RecordingRunner(log), { creating: true })).rejects.toMatchObject({ kind: 'conflict', message: expect.stringMatching(why) });
    expect(k.state()).toEqual(before);
  });
});

describe('the whole table', () => {
  test('every step of the table has a test of its own in this file (named by its id)', () => {
    const titles = [...fs.readFileSync(__filename, 'utf8').matchAll(/^\s*test\('([^']*)'/gm)].map((m) => m[1] as string);
    for (const s of S.NETWORK_STEPS) expect(titles.filter((t) => new RegExp(`(^|[ ,])${s.id}([ ,:]|$)`).test(t))).not.toEqual([]);
  });

  const dp = (k: FakeKernel): BridgeDataPlane => new BridgeDataPlane(k, log, { sysctl: k.sysctl, tc: k.tc });

  test('lists every step once, with a distinct id, in the order of the doc', () => {
    expect(S.NETWORK_STEPS.map((s) => s.id)).toEqual([
      'create-bridge', 'take-over-bridge', 'mark-bridge', 'bridge-mtu', 'bridge-ipv6', 'gateway-address', 'bridge-up',
      'mark-vxlan', 'attach-vxlan', 'vxlan-mtu', 'create-vxlan', 'isolate-vxlan', 'ipv6-forwarding', 'ipv4-forwarding', 'route-localnet',
    ]);
    expect(S.NETWORK_STEPS.filter((s) => s.reversible).map((s) => s.id)).toEqual(['create-bridge', 'take-over-bridge', 'create-vxlan']);
  });

  test('a new overlay network: every step in order; converging again redoes only the settings', async () => {
    const k = new FakeKernel();
    const n = net({ overlay, icc: false, enableIpv6: true });
    const first = new RecordingRunner(log);
    expect(await dp(k).ensureNetwork(n, first, { creating: true })).toEqual({ createdBridge: true });
    expect(first.names).toEqual([
      `create bridge ${BR}`, `enable IPv6 on ${BR}`, `add 198.18.10.1/24 to ${BR}`, `add fd5c:10::1/64 to ${BR}`, `set ${BR} up`,
      `create vxlan ${VX} vni 4100`, `isolate port ${VX}`, `IPv6 forwarding on ${BR}`, 'enable IPv4 forwarding', `route_localnet on ${BR}`,
    ]);
    const made1 = k.state();
    const again = new RecordingRunner(log);
    expect(await dp(k).ensureNetwork(n, again)).toEqual({ createdBridge: true });
    expect(again.names).toEqual([`enable IPv6 on ${BR}`, `add 198.18.10.1/24 to ${BR}`, `add fd5c:10::1/64 to ${BR}`, `set ${BR} up`, `IPv6 forwarding on ${BR}`, 'enable IPv4 forwarding', `route_localnet on ${BR}`]);
    expect(k.state()).toEqual(made1);
  });

  test('a step that fails rolls back everything before it, newest first; the error names the step', async () => {
    const k = new FakeKernel();
    const before = k.state();
    k.failOn('createVxlan', VX);
    const r = new RecordingRunner(log, 'create network aaaaaaaaaaaa');
    await expect(dp(k).ensureNetwork(net({ overlay }), r, { creating: true })).rejects.toThrow(`create network aaaaaaaaaaaa: create vxlan ${VX} vni 4100: createVxlan ${VX}: injected failure`);
    expect(k.state()).toEqual(before);
    expect(r.names).toEqual([`create bridge ${BR}`, `disable IPv6 on ${BR}`, `add 198.18.10.1/24 to ${BR}`, `set ${BR} up`, `create vxlan ${VX} vni 4100`]);
  });

  test('createdBridge: loom\'s own (new, taken over, an earlier loom\'s) but not a borrowed one', async () => {
    const own = new FakeKernel();
    await own.createBridge(BR, 1500);
    expect(await dp(own).ensureNetwork(net(), new RecordingRunner(log), { creating: true })).toEqual({ createdBridge: true });
    const older = new FakeKernel();
    older.addLink(BR, 'bridge');
    expect(await dp(older).ensureNetwork(net(), new RecordingRunner(log))).toEqual({ createdBridge: true });
    const borrowed = new FakeKernel();
    borrowed.addLink('corp0', 'bridge', { mtu: 1400 });
    const r = new RecordingRunner(log);
    expect(await dp(borrowed).ensureNetwork(net({ bridge: 'corp0', adoptedBridge: true }), r, { creating: true })).toEqual({ createdBridge: false });
    expect(r.names[0]).toBe('set corp0 mtu 1500');
    expect(borrowed.link('corp0')?.alias).toBeUndefined();
  });
});
