/**
 * The bridge data plane and the nftables firewall on the real kernel (throwaway
 * namespace): networks and endpoints are built, adopted when already right,
 * rolled back on failure, and removed without leftovers.
 */
import { BridgeDataPlane } from '../../driver/dataplane/bridge';
import { StepRunner } from '../../driver/dataplane/steps';
import { NftFirewall } from '../../driver/firewall/nft-firewall';
import { firewallNames } from '../../driver/firewall/render';
import type { Firewall } from '../../driver/firewall/model';
import { NetlinkKernel } from '../../driver/kernel/netlink-kernel';
import { ownerMark } from '../../driver/kernel/link-owner';
import { runCommand } from '../../driver/kernel/command';
import { testNetworks } from '../helpers/network-stack';
import { silentLogger } from '../../lib/logger';

const log = silentLogger();
const FW = firewallNames('kt0000000002');
let kernel: NetlinkKernel;
beforeAll(() => {
  kernel = new NetlinkKernel(ownerMark('kt0000000002'));
});
afterAll(() => kernel.close());
afterEach(async () => {
  for (const name of await loomLinks()) await kernel.deleteLink(name);
  const tables = (await runCommand('nft', ['list', 'tables'])).stdout;
  for (const m of tables.matchAll(/^table inet (loom\S*)$/gm)) await runCommand('nft', ['delete', 'table', 'inet', m[1] as string]);
  for (const tool of ['iptables', 'ip6tables']) {
    for (const chain of (await runCommand(tool, ['-w', '-S'])).stdout.matchAll(/^-N (LOOM\S*)$/gm)) {
      await runCommand(tool, ['-w', '-D', 'FORWARD', '-j', chain[1] as string]);
      await runCommand(tool, ['-w', '-F', chain[1] as string]);
      await runCommand(tool, ['-w', '-X', chain[1] as string]);
    }
  }
});

const NET_A = 'a'.repeat(64);
const NET_B = 'b'.repeat(64);
const netInput = (id: string, pool: string, gw: string, extra: Record<string, string> = {}, internal = false) => ({
  id,
  options: extra,
  enableIpv6: false,
  internal,
  ipv4: [{ pool, gateway: gw, aux: {} }],
  ipv6: [],
});

async function loomLinks(): Promise<string[]> {
  return (await kernel.listLinks()).map((l) => l.name).filter((n) => /^(lm-|lv|lc|kt-)/.test(n)).sort();
}

async function nft(args: string[]): Promise<{ code: number; stdout: string }> {
  return runCommand('nft', args);
}

test('a network is a bridge with its gateway, firewall rules and shim; removal leaves nothing', async () => {
  const svc = testNetworks(new BridgeDataPlane(kernel, log), new NftFirewall(log, FW), log);
  await svc.createNetwork(netInput(NET_A, '198.18.10.0/24', '198.18.10.1/24'));
  await svc.createNetwork(netInput(NET_B, '198.18.11.0/24', '198.18.11.1/24', { 'com.docker.network.bridge.enable_icc': 'false' }, true));
  const br = await kernel.findLink(`lm-${'a'.repeat(12)}`);
  expect(br).toMatchObject({ kind: 'bridge', up: true, mtu: 1500 });
  const addrs = (await kernel.listAddresses()).filter((a) => a.index === br?.index).map((a) => a.cidr);
  expect(addrs).toEqual(['198.18.10.1/24']);
  const table = (await nft(['list', 'table', 'inet', FW.table])).stdout;
  expect(table).toContain(`ip saddr 198.18.10.0/24 oifname != "lm-aaaaaaaaaaaa" masquerade`);
  expect(table).not.toMatch(/198\.18\.11\.0\/24[^\n]*masquerade/); // internal: no NAT
  expect(table).toMatch(/iifname "lm-aaaaaaaaaaaa" ip saddr 198\.18\.10\.0\/24 ip daddr 198\.18\.10\.0\/24 fib daddr type != local notrack/);
  expect(table).toMatch(/oifname "lm-bbbbbbbbbbbb" drop/); // ICC off
  const shim = (await runCommand('iptables', ['-w', '-S'])).stdout;
  expect(shim).toContain(`-A FORWARD -j ${FW.chain}`);
  expect(shim).toContain(`-A ${FW.chain} -i lm-aaaaaaaaaaaa`);

  const ep = await svc.createEndpoint({ networkId: NET_A, id: 'e'.repeat(64), address: '198.18.10.7/24', addressV6: '', mac: '', options: {} });
  expect(ep.mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  const join = await svc.join(NET_A, 'e'.repeat(64), '/var/run/docker/netns/x');
  expect(join).toEqual({ srcName: `lc${'e'.repeat(12)}`, gateway: '198.18.10.1', dockerGateway: false });
  expect(await svc.join(NET_B, 'e'.repeat(64), '/x').catch((e) => e.kind)).toBe('not-found');

  await svc.deleteEndpoint(NET_A, 'e'.repeat(64));
  // The answer does not wait for the kernel's veth deletion; settling does.
  expect(svc.table.state(NET_A)?.endpoints.size).toBe(0);
  await svc.background.settle(NET_A);
  expect((await loomLinks()).filter((n) => n.endsWith('e'.repeat(12)))).toEqual([]);
  await svc.deleteNetwork(NET_A);
  await svc.deleteNetwork(NET_B);
  await svc.deleteNetwork(NET_B); // idempotent
  expect(await loomLinks()).toEqual([]);
  expect((await nft(['list', 'table', 'inet', FW.table])).code).not.toBe(0);
  expect((await runCommand('iptables', ['-w', '-S'])).stdout).not.toContain('LOOM');
});

test('a failing step rolls back everything done before it', async () => {
  const failing: Firewall = { sync: async () => Promise.reject(new Error('injected firewall failure')), check: async () => [] };
  const svc = testNetworks(new BridgeDataPlane(kernel, log), failing, log);
  await expect(svc.createNetwork(netInput(NET_A, '198.18.10.0/24', '198.18.10.1/24'))).rejects.toThrow(/install firewall rules: injected firewall failure/);
  expect(await loomLinks()).toEqual([]);
  expect(svc.list()).toEqual([]);
});

test('an existing bridge named by com.docker.network.bridge.name is adopted and kept on removal', async () => {
  await runCommand('ip', ['link', 'add', 'kt-user0', 'type', 'bridge']); // someone else's: no loom mark
  const svc = testNetworks(new BridgeDataPlane(kernel, log), new NftFirewall(log, FW), log);
  await svc.createNetwork(netInput(NET_A, '198.18.12.0/24', '198.18.12.1/24', { 'com.docker.network.bridge.name': 'kt-user0' }));
  expect(svc.get(NET_A)?.adoptedBridge).toBe(true);
  await svc.deleteNetwork(NET_A);
  const br = await kernel.findLink('kt-user0');
  expect(br).toBeDefined();
  expect((await kernel.listAddresses()).filter((a) => a.index === br?.index && a.family === 4)).toEqual([]);
  await kernel.deleteLink('kt-user0');
});

test('the data plane re-creates what a reboot wiped and adopts what is right', async () => {
  const dp = new BridgeDataPlane(kernel, log);
  const svc = testNetworks(dp, new NftFirewall(log, FW), log);
  await svc.createNetwork(netInput(NET_A, '198.18.13.0/24', '198.18.13.1/24'));
  const record = svc.get(NET_A)!;
  await kernel.deleteLink(record.bridge); // "reboot"
  await svc.restoreNetwork(record, new StepRunner('restore', log));
  const br = await kernel.findLink(record.bridge);
  expect(br?.up).toBe(true);
  expect((await kernel.listAddresses()).filter((a) => a.index === br?.index).map((a) => a.cidr)).toEqual(['198.18.13.1/24']);
  await svc.restoreNetwork(record, new StepRunner('restore again', log)); // nothing to do
  await svc.deleteNetwork(NET_A);
  expect(await loomLinks()).toEqual([]);
});

describe('two loomd on one host: each its own table and shim chain', () => {
  const OTHER = firewallNames('kt0000000009');
  const fwNet = (id: string, bridge: string, subnet: string) => ({ id, bridge, subnets4: [subnet], subnets6: [], internal: false, icc: true, masquerade: true, published: [] });

  test('each syncs and checks only its own objects; removing one\'s networks leaves the other\'s rules', async () => {
    const mine = new NftFirewall(log, FW);
    const theirs = new NftFirewall(log, OTHER);
    const a = [fwNet(NET_A, 'lm-aaaaaaaaaaaa', '198.18.10.0/24')];
    const b = [fwNet(NET_B, 'lm-bbbbbbbbbbbb', '198.18.11.0/24')];
    await mine.sync(a);
    await theirs.sync(b);
    expect(await mine.check(a)).toEqual([]);
    expect(await theirs.check(b)).toEqual([]);
    const before = (await nft(['list', 'table', 'inet', OTHER.table])).stdout;
    await mine.sync([]);
    expect((await nft(['list', 'table', 'inet', FW.table])).code).not.toBe(0);
    expect((await nft(['list', 'table', 'inet', OTHER.table])).stdout).toBe(before);
    expect(await theirs.check(b)).toEqual([]);
    const ipt = (await runCommand('iptables', ['-w', '-S'])).stdout;
    expect(ipt).not.toContain(FW.chain);
    expect(ipt).toContain(`-A FORWARD -j ${OTHER.chain}`);
  });

  test('an older loom\'s shared table and chain go in the first sync when they hold only this loomd\'s networks', async () => {
    const legacyScript = (bridge: string, id12: string): string =>
      `table inet loom {\n\tset bridges {\n\t\ttype ifname\n\t\telements = { "${bridge}" }\n\t}\n\tchain net-${id12}-out {\n\t\taccept\n\t}\n\tchain net-${id12}-in {\n\t\tdrop\n\t}\n}\n`;
    const legacyShim = (bridge: string, id12: string): string =>
      `*filter\n:LOOM-FORWARD - [0:0]\n-A LOOM-FORWARD -i ${bridge} -m comment --comment "loom ${id12}" -j ACCEPT\n-A LOOM-FORWARD -o ${bridge} -m comment --comment "loom ${id12}" -j ACCEPT\nCOMMIT\n`;
    const a = [fwNet(NET_A, 'lm-aaaaaaaaaaaa', '198.18.10.0/24')];
    // Someone else's (another loomd still on the old version): left alone.
    await runCommand('nft', ['-f', '-'], legacyScript('lm-bbbbbbbbbbbb', 'b'.repeat(12)));
    await runCommand('iptables-restore', ['-w', '--noflush'], legacyShim('lm-bbbbbbbbbbbb', 'b'.repeat(12)));
    const fw = new NftFirewall(log, FW);
    expect(await fw.check(a)).not.toContainEqual(expect.stringMatching(/older loom/));
    await fw.sync(a);
    expect((await nft(['list', 'table', 'inet', 'loom'])).code).toBe(0);
    expect((await runCommand('iptables', ['-w', '-S', 'LOOM-FORWARD'])).code).toBe(0);
    await nft(['delete', 'table', 'inet', 'loom']);
    await runCommand('iptables', ['-w', '-F', 'LOOM-FORWARD']);
    await runCommand('iptables', ['-w', '-X', 'LOOM-FORWARD']);
    // This loomd's own, from before its upgrade: reported, then removed with the first sync.
    await runCommand('nft', ['-f', '-'], legacyScript('lm-aaaaaaaaaaaa', 'a'.repeat(12)));
    await runCommand('iptables-restore', ['-w', '--noflush'], legacyShim('lm-aaaaaaaaaaaa', 'a'.repeat(12)));
    await runCommand('iptables', ['-w', '-I', 'FORWARD', '1', '-j', 'LOOM-FORWARD']);
    const upgraded = new NftFirewall(log, FW);
    expect(await upgraded.check(a)).toEqual(expect.arrayContaining([expect.stringMatching(/table inet loom of an older loom/), expect.stringMatching(/iptables chain LOOM-FORWARD of an older loom/)]));
    await upgraded.sync(a);
    expect((await nft(['list', 'table', 'inet', 'loom'])).code).not.toBe(0);
    const ipt = (await runCommand('iptables', ['-w', '-S'])).stdout;
    expect(ipt).not.toContain('LOOM-FORWARD');
    expect(ipt).toContain(`-A FORWARD -j ${FW.chain}`);
    expect(await upgraded.check(a)).toEqual([]);
  });
});
