/**
 * The endpoint step table (driver/dataplane/endpoint-steps.ts) against the in-memory fake
 * kernel: each step applies exactly when its condition holds, its inverse gives the kernel
 * back as it was, and the whole table creates a pair (isolated, shaped), converges an
 * existing one without re-making it, and rolls back completely when a step fails.
 */
import * as fs from 'node:fs';
import { BridgeDataPlane } from '../../driver/dataplane/bridge';
import * as S from '../../driver/dataplane/endpoint-steps';
import type { EndpointContext } from '../../driver/dataplane/endpoint-steps';
import type { SetupStep } from '../../driver/dataplane/steps';
import type { EndpointRecord, NetworkRecord } from '../../driver/model/types';
import { silentLogger } from '../../lib/logger';
import { FAKE_MARK, FakeKernel } from './fake-kernel';
import { RecordingRunner } from './step-recorder';

const BR = 'lm-aaaaaaaaaaaa';
const HOST = 'lveeeeeeeeeeee';
const PEER = 'lceeeeeeeeeeee';
const IFB = 'lbeeeeeeeeeeee';
const MAC = '02:42:c6:12:0a:07';
const log = silentLogger();

const net = (over: Partial<NetworkRecord> = {}): NetworkRecord => ({
  id: 'a'.repeat(64),
  bridge: BR,
  mtu: 1450,
  internal: false,
  icc: true,
  masquerade: true,
  enableIpv6: false,
  ipv4: [{ pool: '198.18.10.0/24', gateway: '198.18.10.1/24', aux: {} }],
  ipv6: [],
  options: {},
  createdAt: '2025-01-01T00:00:00.000Z',
  ...over,
});

const ep = (over: Partial<EndpointRecord> = {}): EndpointRecord => ({
  networkId: 'a'.repeat(64),
  id: 'e'.repeat(64),
  hostIf: HOST,
  peerIf: PEER,
  mac: MAC,
  macFromDocker: false,
  address: '198.18.10.7/24',
  options: {},
  createdAt: '2025-01-01T00:00:00.000Z',
  ...over,
});

const shaped = (): EndpointRecord => ep({ rates: { ingressBps: 10_000_000, egressBps: 5_000_000 }, ifb: IFB });

/** A fake kernel with the network's bridge made by this loomd. */
async function withBridge(): Promise<FakeKernel> {
  const k = new FakeKernel();
  await k.createBridge(BR, 1450);
  await k.setUp(BR);
  return k;
}

async function applyStep(k: FakeKernel, step: SetupStep<EndpointContext>, n: NetworkRecord, e: EndpointRecord, creating = false): Promise<RecordingRunner> {
  const c = await S.observeEndpoint(k.deps(log), n, e, { creating });
  const runner = new RecordingRunner(log);
  await step.apply(c, runner);
  return runner;
}

const dp = (k: FakeKernel): BridgeDataPlane => new BridgeDataPlane(k, log, { sysctl: k.sysctl, tc: k.tc });

describe('a new pair', () => {
  test('create-veth: host end on the bridge and up, container end down with the MAC, both marked; undone, both are gone', async () => {
    const k = await withBridge();
    const before = k.state();
    const r = await applyStep(k, S.createVeth, net(), ep(), true);
    expect(r.names).toEqual([`create veth ${HOST}/${PEER}`]);
    expect(k.link(HOST)).toMatchObject({ kind: 'veth', alias: FAKE_MARK, up: true, mtu: 1450, master: k.link(BR)?.index });
    expect(k.link(PEER)).toMatchObject({ kind: 'veth', alias: FAKE_MARK, up: false, mtu: 1450, mac: MAC });
    await r.rollback();
    expect(k.state()).toEqual(before);
  });

  test('create-veth: a stale container end of this loomd\'s blocks the pair and is removed, then the pair made; anyone else\'s makes the create fail', async () => {
    const k = await withBridge();
    await k.createIfb(PEER, 1500); // any own link with the container end's name
    await applyStep(k, S.createVeth, net(), ep(), true);
    expect(k.link(PEER)).toMatchObject({ kind: 'veth', mac: MAC });
    const other = await withBridge();
    other.addLink(PEER, 'veth');
    await expect(applyStep(other, S.createVeth, net(), ep(), true)).rejects.toThrow(/create veth .*already exists/);
    expect(other.link(HOST)).toBeUndefined();
  });

  test('isolate-port: with ICC off the new port is isolated; with ICC on nothing', async () => {
    const k2 = await withBridge();
    const c2 = await S.observeEndpoint(k2.deps(log), net({ icc: false }), ep(), { creating: true });
    const r = new RecordingRunner(log);
    for (const s of [S.createVeth, S.isolatePort]) await s.apply(c2, r);
    expect(r.names).toEqual([`create veth ${HOST}/${PEER}`, `isolate port ${HOST}`]);
    expect(k2.link(HOST)?.isolated).toBe(true);
    const k3 = await withBridge();
    const c3 = await S.observeEndpoint(k3.deps(log), net(), ep(), { creating: true });
    const r3 = new RecordingRunner(log);
    for (const s of [S.createVeth, S.isolatePort]) await s.apply(c3, r3);
    expect(r3.names).toEqual([`create veth ${HOST}/${PEER}`]);
  });

  test('limit-ingress, create-ifb, limit-egress: tbf on the host end, an IFB (undone: gone) with its tbf, the redirect', async () => {
    const k = await withBridge();
    const c = await S.observeEndpoint(k.deps(log), net(), shaped(), { creating: true });
    const r = new RecordingRunner(log);
    await S.createVeth.apply(c, r);
    for (const s of [S.limitIngress, S.createIfb, S.limitEgress]) await s.apply(c, r);
    expect(r.names).toEqual([`create veth ${HOST}/${PEER}`, `limit ${HOST} ingress 10000000bit/s`, `create ifb ${IFB}`, `limit ${HOST} egress 5000000bit/s`]);
    expect(k.qdisc.get(HOST)).toBe(10_000_000);
    expect(k.qdisc.get(IFB)).toBe(5_000_000);
    expect(k.redirect.get(HOST)).toBe(IFB);
    expect(k.link(IFB)).toMatchObject({ kind: 'ifb', alias: FAKE_MARK, up: true, mtu: 1450 });
    expect(S.limitIngress.reversible || S.limitEgress.reversible).toBe(false); // the qdiscs go with their links
    const r2 = new RecordingRunner(log);
    await S.createIfb.apply(c, r2);
    await r2.rollback();
    expect(k.link(IFB)).toBeUndefined();
  });

  test('create-ifb: a recorded endpoint\'s unmarked IFB (an earlier loom\'s) is replaced; a new endpoint leaves an unmarked one alone', async () => {
    const k = await withBridge();
    k.addLink(IFB, 'ifb');
    const c = await S.observeEndpoint(k.deps(log), net(), shaped(), {});
    c.host = undefined; // as for a pair that is being made again
    await S.createIfb.apply(c, new RecordingRunner(log));
    expect(k.link(IFB)?.alias).toBe(FAKE_MARK);
    const k2 = await withBridge();
    k2.addLink(IFB, 'ifb');
    await expect(applyStep(k2, S.createIfb, net(), shaped(), true)).rejects.toThrow(/create ifb .*already exists/);
  });

  test('no rates: no shaping steps', async () => {
    const k = await withBridge();
    for (const s of [S.limitIngress, S.createIfb, S.limitEgress]) expect((await applyStep(k, s, net(), ep(), true)).names).toEqual([]);
  });
});

describe('an existing pair', () => {
  test('mark-host-end: a recorded pair an earlier loom made without a mark is marked; a new endpoint meeting one is refused', async () => {
    const k = await withBridge();
    k.addLink(HOST, 'veth', { master: k.link(BR)?.index, up: true });
    expect((await applyStep(k, S.markHostEnd, net(), ep())).names).toEqual([`mark ${HOST} as this loomd's`]);
    expect(k.link(HOST)?.alias).toBe(FAKE_MARK);
    const k2 = await withBridge();
    k2.addLink(HOST, 'veth');
    const before = k2.state();
    await expect(dp(k2).ensureEndpoint(net(), ep(), new RecordingRunner(log), { creating: true })).rejects.toMatchObject({ kind: 'conflict', message: expect.stringMatching(/no owner mark/) });
    expect(k2.state()).toEqual(before);
  });

  test('attach-host-end and isolate-port: a pair off its bridge (the bridge was re-made) is attached again, and isolated with ICC off', async () => {
    const k = await withBridge();
    await k.createVethPair(HOST, PEER, { mtu: 1450, peerMac: MAC, master: BR });
    await k.deleteOwnedLink(BR);
    await k.createBridge(BR, 1450);
    const c = await S.observeEndpoint(k.deps(log), net({ icc: false }), ep(), {});
    const r = new RecordingRunner(log);
    for (const s of [S.attachHostEnd, S.isolatePort]) await s.apply(c, r);
    expect(r.names).toEqual([`attach ${HOST} to ${BR}`, `isolate port ${HOST}`]);
    expect(k.link(HOST)).toMatchObject({ master: k.link(BR)?.index, isolated: true });
    expect((await applyStep(k, S.attachHostEnd, net(), ep())).names).toEqual([]);
  });

  test('host-end-up: a host end that is down is set up', async () => {
    const k = await withBridge();
    await k.createVethPair(HOST, PEER, { mtu: 1450, master: BR });
    await k.setDown(HOST);
    expect((await applyStep(k, S.hostEndUp, net(), ep())).names).toEqual([`set ${HOST} up`]);
    expect(k.link(HOST)?.up).toBe(true);
    expect((await applyStep(k, S.hostEndUp, net(), ep())).names).toEqual([]);
  });

  test('refused untouched: another loomd\'s host end, a link of another kind', async () => {
    for (const setUp of [(k: FakeKernel) => k.addLink(HOST, 'veth', { alias: 'loom:0ther0000001' }), (k: FakeKernel) => k.addLink(HOST, 'bridge')]) {
      const k = await withBridge();
      setUp(k);
      const before = k.state();
      await expect(dp(k).ensureEndpoint(net(), ep(), new RecordingRunner(log))).rejects.toMatchObject({ kind: 'conflict' });
      expect(k.state()).toEqual(before);
    }
  });
});

describe('the whole table', () => {
  test('every step of the table has a test of its own in this file (named by its id)', () => {
    const titles = [...fs.readFileSync(__filename, 'utf8').matchAll(/^\s*test\('([^']*)'/gm)].map((m) => m[1] as string);
    for (const s of S.ENDPOINT_STEPS) expect(titles.filter((t) => new RegExp(`(^|[ ,])${s.id}([ ,:]|$)`).test(t))).not.toEqual([]);
  });

  test('lists every step once, in order; only the creations have inverses', () => {
    expect(S.ENDPOINT_STEPS.map((s) => s.id)).toEqual(['create-veth', 'mark-host-end', 'attach-host-end', 'isolate-port', 'limit-ingress', 'create-ifb', 'limit-egress', 'host-end-up']);
    expect(S.ENDPOINT_STEPS.filter((s) => s.reversible).map((s) => s.id)).toEqual(['create-veth', 'create-ifb']);
  });

  test('a new shaped endpoint on an ICC-off network, then converging it: nothing is re-made', async () => {
    const k = await withBridge();
    const r = new RecordingRunner(log);
    await dp(k).ensureEndpoint(net({ icc: false }), shaped(), r, { creating: true });
    expect(r.names).toEqual([`create veth ${HOST}/${PEER}`, `isolate port ${HOST}`, `limit ${HOST} ingress 10000000bit/s`, `create ifb ${IFB}`, `limit ${HOST} egress 5000000bit/s`]);
    const made = k.state();
    const again = new RecordingRunner(log);
    await dp(k).ensureEndpoint(net({ icc: false }), shaped(), again);
    expect(again.names).toEqual([]);
    expect(k.state()).toEqual(made);
  });

  test('a step that fails rolls back the pair and the IFB; the error names the step', async () => {
    const k = await withBridge();
    const before = k.state();
    k.failOn('shapeIngressVia', HOST);
    const r = new RecordingRunner(log, 'create endpoint eeeeeeeeeeee');
    await expect(dp(k).ensureEndpoint(net(), shaped(), r, { creating: true })).rejects.toThrow(`create endpoint eeeeeeeeeeee: limit ${HOST} egress 5000000bit/s: shapeIngressVia ${HOST}: injected failure`);
    expect(k.state()).toEqual(before);
  });
});
