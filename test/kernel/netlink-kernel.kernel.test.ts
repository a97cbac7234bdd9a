/**
 * The kernel adapter against the real kernel, as root, inside the throwaway
 * network namespace of `npm run test:kernel` (unshare --net).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as esbuild from 'esbuild';
import { NetlinkKernel } from '../../driver/kernel/netlink-kernel';
import { ownerMark } from '../../driver/kernel/link-owner';
import { NetlinkWorker } from '../../driver/kernel/netlink-worker';
import { parseIpMaybeCidr } from '../../lib/prefix';

let k: NetlinkKernel;
beforeAll(() => {
  k = new NetlinkKernel(ownerMark('kt0000000001'));
});
afterAll(() => k.close());
afterEach(async () => {
  for (const l of await k.listLinks()) if (/^(kt-|lv|lc|lt)/.test(l.name)) await k.deleteLink(l.name);
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

describe('owner marks', () => {
  const MARK = ownerMark('kt0000000001');
  const alias = async (name: string): Promise<string | undefined> => (await k.findLink(name))?.alias;
  const temps = async (): Promise<string[]> => (await k.listLinks()).map((l) => l.name).filter((n) => /^lt[0-9a-f]{13}$/.test(n));
  afterEach(async () => {
    for (const n of ['kt-vx0', 'kt-ifb0', 'kt-other0', 'kt-plain0']) await k.deleteLink(n);
    for (const n of await temps()) await k.deleteLink(n);
  });

  test('every link loom creates carries the mark from the moment it has its name; ip -d link shows it', async () => {
    await k.createBridge('kt-br5', 1500);
    await k.createVethPair('lvdddddddddddd', 'lcdddddddddddd', { mtu: 1500, master: 'kt-br5' });
    await k.createIfb('kt-ifb0', 1500);
    await k.createVxlan('kt-vx0', { vni: 4242, local: '198.18.0.9', mtu: 1450, master: 'kt-br5' });
    for (const n of ['kt-br5', 'lvdddddddddddd', 'lcdddddddddddd', 'kt-ifb0', 'kt-vx0']) expect([n, await alias(n)]).toEqual([n, MARK]);
    expect((await k.listLinks()).filter((l) => l.alias === MARK).map((l) => l.name).sort()).toEqual(['kt-br5', 'kt-ifb0', 'kt-vx0', 'lcdddddddddddd', 'lvdddddddddddd']);
    expect(await k.findLink('lvdddddddddddd')).toMatchObject({ up: true, master: (await k.findLink('kt-br5'))?.index });
    expect(await k.findLink('kt-vx0')).toMatchObject({ up: true, kind: 'vxlan' });
    expect(await k.vxlanInfo('kt-vx0')).toEqual({ vni: 4242, local: '198.18.0.9' });
    const { runCommand } = await import('../../driver/kernel/command');
    expect((await runCommand('ip', ['-d', 'link', 'show', 'kt-br5'])).stdout).toContain(`alias ${MARK}`);
    expect(await temps()).toEqual([]);
  });

  test('a create whose name is taken fails as a conflict and leaves no temporary link', async () => {
    await k.createBridge('kt-br6', 1500);
    await expect(k.createVethPair('kt-br6', 'lceeeeeeeeeeee', { mtu: 1500 })).rejects.toMatchObject({ kind: 'conflict' });
    expect(await temps()).toEqual([]);
    expect(await k.findLink('lceeeeeeeeeeee')).toBeUndefined();
  });

  test('the leftover of a create killed half-way (its temporary name) is replaced by the next attempt', async () => {
    const { tempLinkName } = await import('../../driver/kernel/link-owner');
    const { runCommand } = await import('../../driver/kernel/command');
    expect((await runCommand('ip', ['link', 'add', tempLinkName(MARK, 'kt-br7'), 'type', 'bridge'])).code).toBe(0);
    await k.createBridge('kt-br7', 1500);
    expect(await alias('kt-br7')).toBe(MARK);
    expect(await temps()).toEqual([]);
  });

  test('deleteOwnedLink deletes only this loomd\'s links (and unmarked ones only when asked)', async () => {
    const { runCommand } = await import('../../driver/kernel/command');
    await runCommand('ip', ['link', 'add', 'kt-other0', 'type', 'bridge']);
    await runCommand('ip', ['link', 'set', 'kt-other0', 'alias', 'loom:0ther0000001']);
    await runCommand('ip', ['link', 'add', 'kt-plain0', 'type', 'bridge']);
    await k.createBridge('kt-br8', 1500);
    expect(await k.deleteOwnedLink('kt-other0', { unmarkedToo: true })).toBe('not-ours');
    expect(await k.deleteOwnedLink('kt-plain0')).toBe('not-ours');
    expect(await k.deleteOwnedLink('kt-missing')).toBe('absent');
    expect(await k.deleteOwnedLink('kt-br8')).toBe('deleted');
    expect(await k.findLink('kt-other0')).toBeDefined();
    expect(await k.findLink('kt-plain0')).toBeDefined();
    expect(await k.deleteOwnedLink('kt-plain0', { unmarkedToo: true })).toBe('deleted');
    await k.setOwnerMark('kt-other0');
    expect(await alias('kt-other0')).toBe(MARK);
  });

  test('a handle without a mark cannot create links', async () => {
    const bare = new NetlinkKernel();
    try {
      await expect(bare.createBridge('kt-br9', 1500)).rejects.toThrow(/no owner mark/);
    } finally {
      bare.close();
    }
  });
});

describe('link deletions on a worker thread (netlink-worker.ts)', () => {
  test('a veth pair is deleted without holding the event loop', async () => {
    await k.createVethPair('kt-del0', 'kt-del1', { mtu: 1500 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const t0 = performance.now();
    try {
      expect(await k.deleteOwnedLink('kt-del0')).toBe('deleted');
    } finally {
      clearInterval(timer);
    }
    const ms = performance.now() - t0;
    expect(await k.findLink('kt-del1')).toBeUndefined();
    // The kernel answers a veth pair's deletion after ~10-20 ms (RCU grace periods). Sent from
    // the main thread (as before), no timer ran until it had answered; the check needs a
    // deletion long enough to tell the two apart.
    if (ms >= 8) expect({ ms, ticks: ticks >= 3 }).toEqual({ ms, ticks: true });
  });

  test('the kernel\'s refusals come back with their errno', async () => {
    expect(await k.deleteLink('kt-none0')).toBe(false);
    expect(await k.deleteOwnedLink('kt-none0')).toBe('absent');
    await k.createBridge('kt-br7', 1500);
    await k.createBridge('kt-br8', 1500);
    // Deleted concurrently: both through the worker, one after the other.
    expect(await Promise.all([k.deleteLink('kt-br7'), k.deleteLink('kt-br8'), k.deleteLink('kt-br7')])).toEqual([true, true, false]);
  });

  test('a deletion waiting behind others is not timed while it waits (50 containers removed at once)', async () => {
    // A deadline of 200 ms per request; 24 pairs take the kernel ~0.3-0.5 s one after the other.
    const w = new NetlinkWorker(200);
    try {
      const names = Array.from({ length: 24 }, (_, i) => `kt-q${i}`);
      for (const n of names) await k.createVethPair(n, `${n}p`, { mtu: 1500 });
      await w.delLink({}, { ifname: names[0] }); // the worker started (its start has a deadline of its own)
      const t0 = performance.now();
      const results = await Promise.allSettled(names.slice(1).map((n) => w.delLink({}, { ifname: n })));
      const ms = performance.now() - t0;
      expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
      for (const n of names) expect(await k.findLink(n)).toBeUndefined();
      console.log(`23 queued veth pair deletions on the worker: ${ms.toFixed(0)} ms`);
    } finally {
      await w.stop();
    }
  });

  // The netlink addon's socket crashes the process (SIGSEGV) if it is still open when a thread
  // ends: the worker opens one per deletion. A process that exits right after a deletion, or
  // after closing the handle, must exit with its own code.
  test.each([
    ['exits at once after a deletion (the worker alive)', 'process.exit(3)', 3],
    // close() resolves (the worker held until it has ended), and the process then ends by itself.
    ['closes the handle, then ends by itself', 'await k.close(); process.stderr.write(\'closed\')', 0],
  ])('a process that %s exits cleanly', async (_what, end, code) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-nlw-'));
    try {
      const entry = path.join(dir, 'entry.ts');
      fs.writeFileSync(
        entry,
        `import { NetlinkKernel } from ${JSON.stringify(path.resolve(__dirname, '../../driver/kernel/netlink-kernel'))};
         import { ownerMark } from ${JSON.stringify(path.resolve(__dirname, '../../driver/kernel/link-owner'))};
         (async () => {
           const k = new NetlinkKernel(ownerMark('kt0000000002'));
           await k.createVethPair('kt-ex0', 'kt-ex1', { mtu: 1500 });
           if ((await k.deleteOwnedLink('kt-ex0')) !== 'deleted') throw new Error('not deleted');
           ${end};
         })();`,
      );
      const out = path.join(dir, 'entry.js');
      esbuild.buildSync({ entryPoints: [entry], bundle: true, platform: 'node', target: 'node20', external: ['netlink'], outfile: out, logLevel: 'warning' });
      const r = spawnSync(process.execPath, [out], { env: { ...process.env, NODE_PATH: path.resolve(__dirname, '../../node_modules') }, encoding: 'utf8', timeout: 20_000 });
      expect({ status: r.status, signal: r.signal, stderr: r.stderr }).toEqual({ status: code, signal: null, stderr: code === 0 ? 'closed' : '' });
      expect(await k.findLink('kt-ex1')).toBeUndefined();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
