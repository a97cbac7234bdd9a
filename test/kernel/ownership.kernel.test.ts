/**
 * Ownership on the real kernel (throwaway namespace): a borrowed bridge is given back
 * exactly as it was found (also when its network's creation fails, and after a crash
 * between the borrow and the record); a bridge loom made is never taken for a borrowed
 * one; another loomd's bridge is refused untouched; links an earlier loom made without a
 * mark are marked when their records are restored; uniqueness holds under parallel creates.
 */
import * as fs from 'node:fs';
import { BridgeDataPlane } from '../../driver/dataplane/bridge';
import { StepRunner } from '../../driver/dataplane/steps';
import { NftFirewall } from '../../driver/firewall/nft-firewall';
import { firewallNames } from '../../driver/firewall/render';
import type { Firewall } from '../../driver/firewall/model';
import { NetlinkKernel } from '../../driver/kernel/netlink-kernel';
import { ownerMark, tempLinkName } from '../../driver/kernel/link-owner';
import { runCommand } from '../../driver/kernel/command';
import { TestNetworks, testNetworks } from '../helpers/network-stack';
import type { NetworkRecord } from '../../driver/model/types';
import { silentLogger } from '../../lib/logger';
import { MemoryKv } from '../../lib/kv';
import { NetworkRepository } from '../../driver/store/network-repo';

const log = silentLogger();
const FW = firewallNames('kt0000000003');
const MARK = ownerMark('kt0000000003');
let kernel: NetlinkKernel;
beforeAll(() => {
  kernel = new NetlinkKernel(MARK);
});
afterAll(() => kernel.close());
afterEach(async () => {
  for (const l of await kernel.listLinks()) if (/^(lm-|lv|lc|lt|lb|kt-)/.test(l.name)) await kernel.deleteLink(l.name);
  const tables = (await runCommand('nft', ['list', 'tables'])).stdout;
  for (const m of tables.matchAll(/^table inet (loom\S*)$/gm)) await runCommand('nft', ['delete', 'table', 'inet', m[1] as string]);
});

const ip = async (args: string[]): Promise<void> => {
  const r = await runCommand('ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
};
const id = (c: string): string => c.repeat(64);
const input = (netId: string, pool: string, gw: string, options: Record<string, string> = {}) => ({
  id: netId,
  options,
  enableIpv6: false,
  internal: false,
  ipv4: [{ pool, gateway: gw, aux: {} }],
  ipv6: [],
});
const service = (kv = new MemoryKv(), firewall: Firewall = new NftFirewall(log, FW)): TestNetworks =>
  testNetworks(new BridgeDataPlane(kernel, log), firewall, log, kv);

/** Everything loom may change on a bridge, as the kernel reports it. */
async function bridgeState(name: string): Promise<Record<string, unknown>> {
  const link = await kernel.findLink(name);
  const sys = (fam: string, leaf: string): string | undefined => {
    try {
      return fs.readFileSync(`/proc/sys/net/${fam}/conf/${name}/${leaf}`, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  const addrs = (await kernel.listAddresses()).filter((a) => a.index === link?.index && !a.cidr.startsWith('fe80')).map((a) => a.cidr).sort();
  return {
    exists: Boolean(link),
    mtu: link?.mtu,
    up: link?.up,
    alias: link?.alias,
    addrs,
    disable_ipv6: sys('ipv6', 'disable_ipv6'),
    accept_ra: sys('ipv6', 'accept_ra'),
    force_forwarding: sys('ipv6', 'force_forwarding'),
    route_localnet: sys('ipv4', 'route_localnet'),
  };
}

/** A bridge someone else made (no loom mark), set up unlike anything loom would do. */
async function userBridge(name: string): Promise<void> {
  await ip(['link', 'add', name, 'mtu', '1400', 'type', 'bridge']);
  fs.writeFileSync(`/proc/sys/net/ipv6/conf/${name}/disable_ipv6`, '0');
  fs.writeFileSync(`/proc/sys/net/ipv6/conf/${name}/accept_ra`, '2');
  await ip(['addr', 'add', '198.18.71.254/24', 'dev', name]);
  await ip(['addr', 'add', '198.18.70.1/24', 'dev', name]); // the gateway loom will use: already there
  await ip(['addr', 'add', 'fd5c:71::1/64', 'dev', name, 'nodad']);
}

describe('borrowed bridges', () => {
  test('are given back exactly after DeleteNetwork: MTU, down, sysctls, addresses (IPv6 ones the kernel dropped too)', async () => {
    await userBridge('kt-user1');
    const before = await bridgeState('kt-user1');
    expect(before).toMatchObject({ mtu: 1400, up: false, alias: undefined, disable_ipv6: '0', accept_ra: '2', route_localnet: '0' });
    const svc = service();
    await svc.createNetwork(input(id('a'), '198.18.70.0/24', '198.18.70.1/24', { 'com.docker.network.bridge.name': 'kt-user1', 'com.docker.network.driver.mtu': '1500' }));
    const record = svc.get(id('a')) as NetworkRecord;
    expect(record.adoptedBridge).toBe(true);
    expect(record.borrowed).toMatchObject({ mtu: 1400, up: false, addresses: before.addrs });
    // loom's changes while the network lives: an IPv4-only network has no IPv6 at all.
    expect(await bridgeState('kt-user1')).toMatchObject({ mtu: 1500, up: true, alias: undefined, disable_ipv6: '1', route_localnet: '1' });
    await svc.createEndpoint({ networkId: id('a'), id: id('e'), address: '198.18.70.7/24', addressV6: '', mac: '', options: {} });
    await svc.deleteEndpoint(id('a'), id('e'));
    await svc.deleteNetwork(id('a'));
    expect(await bridgeState('kt-user1')).toEqual(before);
  });

  test('are given back when the network\'s creation fails', async () => {
    await userBridge('kt-user2');
    const before = await bridgeState('kt-user2');
    const failing: Firewall = { sync: async () => Promise.reject(new Error('injected firewall failure')), check: async () => [] };
    const svc = service(new MemoryKv(), failing);
    await expect(svc.createNetwork(input(id('b'), '198.18.72.0/24', '198.18.72.1/24', { 'com.docker.network.bridge.name': 'kt-user2' }))).rejects.toThrow(/injected/);
    expect(await bridgeState('kt-user2')).toEqual(before);
  });

  test('a create retried after a crash gives back the bridge as it was before the first attempt', async () => {
    await userBridge('kt-user3');
    const original = await bridgeState('kt-user3');
    const kv = new MemoryKv();
    // First attempt: borrowed, recorded as pending, then loomd "died" after changing the bridge.
    const snapshot = await new BridgeDataPlane(kernel, log).inspectBridge('kt-user3');
    expect(snapshot.kind).toBe('unmarked');
    if (snapshot.kind !== 'unmarked') return;
    await new NetworkRepository(kv).putPendingBorrow('kt-user3', snapshot.snapshot);
    await ip(['link', 'set', 'kt-user3', 'mtu', '1500', 'up']);
    fs.writeFileSync('/proc/sys/net/ipv6/conf/kt-user3/disable_ipv6', '1');
    const svc = service(kv);
    await svc.createNetwork(input(id('c'), '198.18.73.0/24', '198.18.73.1/24', { 'com.docker.network.bridge.name': 'kt-user3' }));
    expect(svc.get(id('c'))?.borrowed).toEqual(snapshot.snapshot);
    expect(await kv.get('borrow/kt-user3')).toBeUndefined(); // moved into the record
    await svc.deleteNetwork(id('c'));
    expect(await bridgeState('kt-user3')).toEqual(original);
  });
});

test('a bridge this loomd made (an interrupted create) is taken as its own and deleted with its network', async () => {
  await kernel.createBridge(`lm-${'d'.repeat(12)}`, 1500); // marked, no record: what a SIGKILL mid-create leaves
  const svc = service();
  await svc.createNetwork(input(id('d'), '198.18.74.0/24', '198.18.74.1/24'));
  expect(svc.get(id('d'))?.adoptedBridge).toBeUndefined();
  expect(svc.get(id('d'))?.borrowed).toBeUndefined();
  await svc.deleteNetwork(id('d'));
  expect(await kernel.findLink(`lm-${'d'.repeat(12)}`)).toBeUndefined();
});

test('another loomd\'s bridge is refused and left exactly as it was', async () => {
  await ip(['link', 'add', 'kt-other1', 'type', 'bridge']);
  await ip(['link', 'set', 'kt-other1', 'alias', 'loom:0ther0000002']);
  const before = await bridgeState('kt-other1');
  const svc = service();
  await expect(svc.createNetwork(input(id('f'), '198.18.75.0/24', '198.18.75.1/24', { 'com.docker.network.bridge.name': 'kt-other1' }))).rejects.toMatchObject({
    kind: 'conflict',
    message: expect.stringMatching(/belongs to another loomd \(loom:0ther0000002\)/),
  });
  expect(await bridgeState('kt-other1')).toEqual(before);
  expect(svc.list()).toEqual([]);
});

test('upgrade: links an earlier loom made without a mark, named in this loomd\'s records, are marked when restored', async () => {
  const kv = new MemoryKv();
  const svc1 = service(kv);
  await svc1.createNetwork(input(id('1'), '198.18.76.0/24', '198.18.76.1/24'));
  await svc1.createEndpoint({ networkId: id('1'), id: id('2'), address: '198.18.76.7/24', addressV6: '', mac: '', options: {} });
  await svc1.background.settle(); // the pair is made after CreateEndpoint's answer
  const bridge = `lm-${'1'.repeat(12)}`;
  const veth = `lv${'2'.repeat(12)}`;
  // What the previous loom left: the same objects, no marks.
  for (const n of [bridge, veth, `lc${'2'.repeat(12)}`]) await ip(['link', 'set', n, 'alias', '']);
  expect((await kernel.findLink(bridge))?.alias).toBeUndefined();
  const svc2 = service(kv);
  await svc2.load();
  await svc2.withNetworkLock(id('1'), () => svc2.restoreNetwork(svc2.get(id('1')) as NetworkRecord, new StepRunner('restore', log)));
  expect((await kernel.findLink(bridge))?.alias).toBe(MARK);
  await svc2.join(id('1'), id('2'), '/var/run/docker/netns/x');
  expect((await kernel.findLink(veth))?.alias).toBe(MARK);
  await svc2.deleteNetwork(id('1'));
  expect((await kernel.listLinks()).filter((l) => /^l[mvc]/.test(l.name))).toEqual([]);
});

test('parallel CreateNetwork: one subnet, different ids: exactly one succeeds; one bridge name: exactly one', async () => {
  const svc = service();
  const ids = ['3', '4', '5', '6'].map(id);
  const same = await Promise.allSettled(ids.map((n) => svc.createNetwork(input(n, '198.18.77.0/24', '198.18.77.1/24'))));
  expect(same.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  for (const r of same) if (r.status === 'rejected') expect(r.reason).toMatchObject({ kind: 'conflict', message: expect.stringMatching(/overlaps/) });
  const withGateway = (await kernel.listAddresses()).filter((a) => a.cidr === '198.18.77.1/24');
  expect(withGateway).toHaveLength(1);
  const named = await Promise.allSettled(['7', '8', '9'].map((c, i) => svc.createNetwork(input(id(c), `198.18.${78 + i}.0/24`, `198.18.${78 + i}.1/24`, { 'com.docker.network.bridge.name': 'kt-race0' }))));
  expect(named.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  for (const { record } of svc.list()) await svc.deleteNetwork(record.id);
});

test('the reconciler, doctor and gc of a real loomd touch only links with its own mark', async () => {
  const { startTestDaemon } = await import('../helpers/daemon');
  const { unixRequest } = await import('../helpers/unix-http');
  const d = await startTestDaemon();
  try {
    const status = (await unixRequest(d.adminSocket, 'GET', '/v1/status')).json;
    expect(status.owner.mark).toMatch(/^loom:[0-9a-f]{12}$/);
    expect(status.owner.nftTable).toBe(`loom-${status.owner.instance}`);
    // Someone else's links with loom's names (no mark; another loomd's mark), and an orphan of this loomd's.
    await ip(['link', 'add', 'lv0123456789ab', 'type', 'veth', 'peer', 'name', 'lc0123456789ab']);
    await ip(['link', 'add', 'lm-0123456789ab', 'type', 'bridge']);
    await ip(['link', 'add', 'lvfedcba987654', 'type', 'veth', 'peer', 'name', 'lcfedcba987654']);
    await ip(['link', 'set', 'lvfedcba987654', 'alias', 'loom:0ther0000003']);
    await ip(['link', 'add', 'lm-feedfeedfeed', 'type', 'bridge']);
    await ip(['link', 'set', 'lm-feedfeedfeed', 'alias', status.owner.mark]);
    // What a loomd killed inside a create leaves: a link under a temporary name, no mark (its
    // own, and another loomd's that must stay).
    const unfinished = tempLinkName(status.owner.mark, 'lm-abcabcabcabc');
    const othersUnfinished = tempLinkName('loom:0ther0000003', 'lm-abcabcabcabc');
    await ip(['link', 'add', unfinished, 'type', 'bridge']);
    await ip(['link', 'add', othersUnfinished, 'type', 'bridge']);
    const doctor = (await unixRequest(d.adminSocket, 'GET', '/v1/doctor')).json;
    expect(doctor.actions).toEqual(expect.arrayContaining([
      { kind: 'delete-orphan-link', name: 'lm-feedfeedfeed', reason: expect.stringMatching(/this loomd's mark/) },
      { kind: 'delete-orphan-link', name: unfinished, reason: expect.stringMatching(/temporary name/) },
    ]));
    expect(doctor.actions).toHaveLength(2);
    const gc = (await unixRequest(d.adminSocket, 'POST', '/v1/reconcile?force=1', undefined, 60_000)).json;
    expect(gc.applied).toEqual(expect.arrayContaining([
      expect.objectContaining({ kind: 'delete-orphan-link', name: 'lm-feedfeedfeed' }),
      expect.objectContaining({ kind: 'delete-orphan-link', name: unfinished }),
    ]));
    expect(gc.applied).toHaveLength(2);
    expect(gc.errors).toEqual([]);
    const left = (await kernel.listLinks()).map((l) => l.name);
    expect(left).toEqual(expect.arrayContaining(['lv0123456789ab', 'lc0123456789ab', 'lm-0123456789ab', 'lvfedcba987654', 'lcfedcba987654', othersUnfinished]));
    expect(left).not.toContain('lm-feedfeedfeed');
    expect(left).not.toContain(unfinished);
    expect((await unixRequest(d.adminSocket, 'GET', '/v1/doctor')).json.actions).toEqual([]);
  } finally {
    await d.stop();
    fs.rmSync(d.dir, { recursive: true, force: true });
  }
}, 60_000);

test('a new endpoint: a name its record would hold (either end of its pair, its IFB) taken by someone else\'s link is refused by CreateEndpoint itself, before anything is recorded, and the link is left alone', async () => {
  const svc = service();
  await svc.createNetwork(input(id('c'), '198.18.82.0/24', '198.18.82.1/24'));
  const kindOf = async (name: string): Promise<string | undefined> => (await kernel.findLink(name))?.kind;
  // (no dummy module on these kernels: bridges and unmarked veths stand for someone else's links)
  const cases: Array<[string, string, string[], Record<string, string>]> = [
    ['d', `lv${'d'.repeat(12)}`, ['type', 'veth', 'peer', 'name', 'kt-peer-d'], {}], // an unmarked veth at the host end's name
    ['e', `lv${'e'.repeat(12)}`, ['type', 'bridge'], {}], // not a veth
    ['f', `lc${'f'.repeat(12)}`, ['type', 'veth', 'peer', 'name', 'kt-peer-f'], {}], // the container end's name
    ['9', `lb${'9'.repeat(12)}`, ['type', 'bridge'], { 'loom.egress_rate': '10mbit' }], // the IFB's name (an egress rate)
  ];
  for (const [ep, name, kind, options] of cases) {
    await ip(['link', 'add', name, ...kind]);
    const before = await kindOf(name);
    await expect(svc.createEndpoint({ networkId: id('c'), id: id(ep), address: '198.18.82.7/24', addressV6: '', mac: '', options })).rejects.toMatchObject({ kind: 'conflict', message: expect.stringContaining(name) });
    expect(svc.table.state(id('c'))?.endpoints.has(id(ep))).toBe(false);
    await svc.background.settle();
    expect(await kindOf(name)).toBe(before);
    expect((await kernel.findLink(name))?.alias).toBeUndefined();
    expect((await kernel.listLinks()).filter((l) => l.name.endsWith(ep.repeat(12)) && l.name !== name)).toEqual([]);
  }
  await svc.deleteNetwork(id('c'));
});

test('an endpoint id created again while its earlier pair is still being deleted: the new pair is made after that deletion, and Join finds it', async () => {
  const svc = service();
  await svc.createNetwork(input(id('7'), '198.18.84.0/24', '198.18.84.1/24'));
  const ep = { networkId: id('7'), id: id('8'), address: '198.18.84.7/24', addressV6: '', mac: '', options: {} };
  await svc.createEndpoint(ep);
  await svc.join(id('7'), id('8'), '/var/run/docker/netns/x');
  await svc.deleteEndpoint(id('7'), id('8'));
  await svc.createEndpoint(ep); // the old pair is still there (its deletion runs after the answer)
  expect(await svc.join(id('7'), id('8'), '/var/run/docker/netns/x')).toMatchObject({ srcName: `lc${'8'.repeat(12)}` });
  await svc.background.settle();
  expect((await kernel.findLink(`lv${'8'.repeat(12)}`))?.alias).toBe(MARK);
  expect((await kernel.findLink(`lc${'8'.repeat(12)}`))?.alias).toBe(MARK);
  await svc.deleteEndpoint(id('7'), id('8'));
  await svc.background.settle();
  expect((await kernel.listLinks()).filter((l) => l.name.endsWith('8'.repeat(12)))).toEqual([]);
  await svc.deleteNetwork(id('7'));
});

test('a pair whose making fails after CreateEndpoint\'s answer: Join makes it (or reports why), and the endpoint works', async () => {
  class FailingOnce extends BridgeDataPlane {
    failures = 1;
    override async ensureEndpoint(...args: Parameters<BridgeDataPlane['ensureEndpoint']>): Promise<void> {
      if (this.failures-- > 0) throw new Error('injected failure');
      return super.ensureEndpoint(...args);
    }
  }
  const dp = new FailingOnce(kernel, log);
  const svc = testNetworks(dp, new NftFirewall(log, FW), log);
  await svc.createNetwork(input(id('f'), '198.18.83.0/24', '198.18.83.1/24'));
  await svc.createEndpoint({ networkId: id('f'), id: id('a'), address: '198.18.83.7/24', addressV6: '', mac: '', options: {} });
  await svc.background.settle();
  expect(dp.failures).toBe(0);
  expect(await kernel.findLink(`lv${'a'.repeat(12)}`)).toBeUndefined();
  expect(await svc.join(id('f'), id('a'), '/var/run/docker/netns/x')).toMatchObject({ srcName: `lc${'a'.repeat(12)}` });
  expect((await kernel.findLink(`lv${'a'.repeat(12)}`))?.alias).toBe(MARK);
  expect((await kernel.findLink(`lc${'a'.repeat(12)}`))?.alias).toBe(MARK);
  await svc.deleteEndpoint(id('f'), id('a'));
  await svc.background.settle();
  expect((await kernel.listLinks()).filter((l) => l.name.endsWith('a'.repeat(12)))).toEqual([]);
  await svc.deleteNetwork(id('f'));
});

test('CreateEndpoint whose record cannot be written fails with the store\'s reason and leaves no pair and no endpoint', async () => {
  class EndpointWriteFails extends MemoryKv {
    override async batch(...args: Parameters<MemoryKv['batch']>): Promise<void> {
      if (args[0].some((op) => op.key.includes(id('b')))) throw new Error('state store: the disk is full');
      return super.batch(...args);
    }
  }
  const svc = service(new EndpointWriteFails());
  await svc.createNetwork(input(id('9'), '198.18.85.0/24', '198.18.85.1/24'));
  await expect(svc.createEndpoint({ networkId: id('9'), id: id('b'), address: '198.18.85.7/24', addressV6: '', mac: '', options: {} })).rejects.toThrow(/the disk is full/);
  await svc.background.settle();
  expect((await kernel.listLinks()).filter((l) => l.name.endsWith('b'.repeat(12)))).toEqual([]);
  expect(svc.table.state(id('9'))?.endpoints.has(id('b'))).toBe(false);
  await svc.deleteNetwork(id('9'));
  await svc.background.settle();
});
