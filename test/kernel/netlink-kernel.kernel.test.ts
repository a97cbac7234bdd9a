/**
 * The kernel adapter against the real kernel, as root, inside the throwaway
 * network namespace of `npm run test:kernel` (unshare --net).
 */
import { NetlinkKernel } from '../../driver/kernel/netlink-kernel';
import { parseIpMaybeCidr } from '../../ipam-driver/core/prefix';

let k: NetlinkKernel;
beforeAll(() => {
  k = new NetlinkKernel();
});
afterAll(() => k.close());
afterEach(async () => {
  for (const l of await k.listLinks()) if (/^(kt-|lv|lc)/.test(l.name)) await k.deleteLink(l.name);
});

const v4 = (cidr: string): [4 | 6, bigint, number] => {
  const ip = parseIpMaybeCidr(cidr);
  return [ip.family, ip.value, ip.len ?? 32];
};

test('bridge: create, find by name, MTU, address (idempotent), up, delete', async () => {
  await k.createBridge('kt-br0', 1400);
  const br = await k.findLink('kt-br0');
  expect(br).toMatchObject({ name: 'kt-br0', kind: 'bridge', mtu: 1400 });
  await expect(k.createBridge('kt-br0', 1400)).rejects.toMatchObject({ kind: 'conflict', errno: 'EEXIST' });
  await k.addAddress('kt-br0', ...v4('198.18.10.1/24'));
  await k.addAddress('kt-br0', ...v4('198.18.10.1/24')); // already there: fine
  const addrs = (await k.listAddresses()).filter((a) => a.index === br?.index);
  expect(addrs.map((a) => a.cidr)).toEqual(['198.18.10.1/24']);
  await k.setUp('kt-br0');
  expect((await k.findLink('kt-br0'))?.up).toBe(true);
  await k.setMtu('kt-br0', 1300);
  expect((await k.findLink('kt-br0'))?.mtu).toBe(1300);
  const routes = await k.listRoutes();
  expect(routes.some((r) => r.prefix.len === 24 && r.prefix.family === 4)).toBe(true);
  await k.delAddress('kt-br0', ...v4('198.18.10.1/24'));
  await k.delAddress('kt-br0', ...v4('198.18.10.1/24')); // already gone: fine
  expect(await k.deleteLink('kt-br0')).toBe(true);
  expect(await k.deleteLink('kt-br0')).toBe(false);
  expect(await k.findLink('kt-br0')).toBeUndefined();
});

test('veth pair: created attached to its bridge, up, with the peer MAC; deleting one end removes both', async () => {
  await k.createBridge('kt-br1', 1500);
  await k.createVethPair('lvaaaaaaaaaaaa', 'lcaaaaaaaaaaaa', { mtu: 1450, peerMac: '02:11:22:33:44:55', master: 'kt-br1' });
  const host = await k.findLink('lvaaaaaaaaaaaa');
  const peer = await k.findLink('lcaaaaaaaaaaaa');
  const br = await k.findLink('kt-br1');
  expect(host).toMatchObject({ kind: 'veth', mtu: 1450, master: br?.index, up: true });
  expect(peer).toMatchObject({ kind: 'veth', mtu: 1450, mac: '02:11:22:33:44:55' });
  expect(await k.deleteLink('lvaaaaaaaaaaaa')).toBe(true);
  expect(await k.findLink('lcaaaaaaaaaaaa')).toBeUndefined();
});

test('kernel errors carry the errno and a loom error kind', async () => {
  await expect(k.setUp('kt-missing')).rejects.toMatchObject({ kind: 'not-found' });
  await expect(k.createVethPair('lvbbbbbbbbbbbb', 'lcbbbbbbbbbbbb', { mtu: 1500, master: 'kt-missing' })).rejects.toMatchObject({ kind: 'not-found' });
  await k.createBridge('kt-br2', 1500);
  await expect(k.setMtu('kt-br2', 10)).rejects.toMatchObject({ kind: 'invalid', errno: 'EINVAL' });
});

test('IPv6 addresses', async () => {
  await k.createBridge('kt-br3', 1500);
  await k.setUp('kt-br3');
  const ip = parseIpMaybeCidr('fd5c:10a::1/64');
  await k.addAddress('kt-br3', 6, ip.value, 64);
  const br = await k.findLink('kt-br3');
  const addrs = (await k.listAddresses()).filter((a) => a.index === br?.index && a.family === 6 && !a.cidr.startsWith('fe80'));
  expect(addrs.map((a) => a.cidr)).toEqual(['fd5c:10a::1/64']);
});

test('bridge port isolation (enable_icc=false) is set on the port', async () => {
  await k.createBridge('kt-br4', 1500);
  await k.createVethPair('lvcccccccccccc', 'lccccccccccccc', { mtu: 1500, master: 'kt-br4' });
  await k.setPortIsolated('lvcccccccccccc', true);
  const { runCommand } = await import('../../driver/kernel/command');
  expect((await runCommand('ip', ['-d', 'link', 'show', 'lvcccccccccccc'])).stdout).toMatch(/isolated on/);
  await k.setPortIsolated('lvcccccccccccc', false);
  expect((await runCommand('ip', ['-d', 'link', 'show', 'lvcccccccccccc'])).stdout).toMatch(/isolated off/);
});
