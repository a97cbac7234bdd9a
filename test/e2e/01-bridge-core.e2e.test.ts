/**
 * The core promise with a real dockerd: IPAM flags, static IPs, aux addresses,
 * automatic subnets, isolation between loom networks, internal networks, NAT to
 * "the outside", and a clean `docker network rm`.
 */
import { OUTSIDE_IP, TestHost } from '../helpers/test-host';

jest.setTimeout(300_000);

let host: TestHost;

beforeAll(async () => {
  host = await TestHost.create();
  await host.startLoomd();
});

afterAll(async () => {
  await host?.destroy();
});

function containerIp(name: string, network: string): Promise<string> {
  return host.containerIp(name, network);
}

async function run(name: string, network: string, extra: string[] = []): Promise<void> {
  await host.cliOk(['run', '-d', '--init', '--name', name, '--network', network, ...extra, 'local/busybox', 'sleep', '3600']);
}

describe('bridge networks with a real Docker engine', () => {
  test('n1: ip-range, gateway, aux address, static IP; every container reaches every other one and the gateway', async () => {
    await host.cliOk([
      'network', 'create', '-d', 'loom', '--ipam-driver', 'loom',
      '--subnet', '198.18.10.0/24', '--ip-range', '198.18.10.128/25', '--gateway', '198.18.10.1',
      '--aux-address', 'host1=198.18.10.5', 'n1',
    ]);
    await run('a1', 'n1');
    await run('a2', 'n1');
    await run('a3', 'n1', ['--ip', '198.18.10.200']);
    const ips = [await containerIp('a1', 'n1'), await containerIp('a2', 'n1'), await containerIp('a3', 'n1')];
    expect(ips[2]).toBe('198.18.10.200');
    for (const ip of ips.slice(0, 2)) {
      const last = Number(ip.split('.')[3]);
      expect(ip.startsWith('198.18.10.')).toBe(true);
      expect(last).toBeGreaterThanOrEqual(128);
    }
    expect(new Set(ips).size).toBe(3);
    for (const c of ['a1', 'a2', 'a3']) {
      expect(await host.ping(c, '198.18.10.1')).toBe(true);
      for (const ip of ips) expect(await host.ping(c, ip)).toBe(true);
    }
    // The aux address is reserved: it is never handed out.
    expect(ips).not.toContain('198.18.10.5');
    // Default route through loom's gateway.
    const route = await host.inContainer('a1', ['ip', 'route']);
    expect(route.stdout).toContain('default via 198.18.10.1');
  });

  test('a static IP already in use is refused with a clear error', async () => {
    const r = await host.cli(['run', '-d', '--init', '--name', 'dup', '--network', 'n1', '--ip', '198.18.10.200', 'local/busybox', 'sleep', '60']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/already in use/);
    await host.cli(['rm', '-f', 'dup']);
  });

  test('containers reach the outside through NAT', async () => {
    expect(await host.ping('a1', OUTSIDE_IP)).toBe(true);
  });

  test('traffic between n1\'s containers skips connection tracking; traffic leaving n1 is tracked', async () => {
    // A probe table of the test's own counts forwarded packets by conntrack state.
    const probe = ['inet', 'loomtest-probe'];
    await host.execOk(['nft', 'add', 'table', ...probe]);
    try {
      await host.execOk(['nft', 'add', 'chain', ...probe, 'counts', '{ type filter hook forward priority 10; policy accept; }']);
      await host.execOk(['nft', 'add', 'rule', ...probe, 'counts', 'ip', 'saddr', '198.18.10.0/24', 'ip', 'daddr', '198.18.10.0/24', 'ct', 'state', 'untracked', 'counter']);
      await host.execOk(['nft', 'add', 'rule', ...probe, 'counts', 'ip', 'saddr', '198.18.10.0/24', 'ip', 'daddr', '198.18.10.0/24', 'ct', 'state', '!=', 'untracked', 'counter']);
      await host.execOk(['nft', 'add', 'rule', ...probe, 'counts', 'ip', 'saddr', '198.18.10.0/24', 'ip', 'daddr', OUTSIDE_IP, 'ct', 'state', 'new,established', 'counter']);
      expect(await host.ping('a1', await containerIp('a2', 'n1'))).toBe(true);
      expect(await host.ping('a1', OUTSIDE_IP)).toBe(true);
      const counts = [...(await host.execOk(['nft', 'list', 'table', ...probe])).matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]));
      expect(counts).toHaveLength(3);
      expect(counts[0]).toBeGreaterThanOrEqual(2); // a1 <-> a2, both directions, untracked
      expect(counts[1]).toBe(0); // nothing between n1's containers was tracked
      expect(counts[2]).toBeGreaterThanOrEqual(1); // to the outside: tracked (NAT needs it)
    } finally {
      await host.exec(['nft', 'delete', 'table', ...probe]);
    }
  });

  test('n2 gets a free subnet by itself and is isolated from n1', async () => {
    await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', 'n2']);
    const subnet = await host.cliOk(['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Subnet}}', 'n2']);
    expect(subnet).toMatch(/^198\.18\.(12[89]|1[3-9]\d|2[0-5]\d)\.0\/24$/);
    await run('b1', 'n2');
    await run('b2', 'n2');
    const b2 = await containerIp('b2', 'n2');
    expect(await host.ping('b1', b2)).toBe(true);
    expect(await host.ping('b1', await containerIp('a1', 'n1'), 2)).toBe(false);
    expect(await host.ping('a1', b2, 2)).toBe(false);
  });

  test('an --internal network has no route out', async () => {
    await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--internal', '--subnet', '198.18.11.0/24', 'n3']);
    await run('i1', 'n3');
    await run('i2', 'n3');
    expect(await host.ping('i1', await containerIp('i2', 'n3'))).toBe(true);
    const route = await host.inContainer('i1', ['ip', 'route']);
    expect(route.stdout).not.toContain('default');
    expect(await host.ping('i1', OUTSIDE_IP, 2)).toBe(false);
    expect(await host.ping('i1', await containerIp('a1', 'n1'), 2)).toBe(false);
  });

  test('docker network rm leaves no bridge, veth, rule or allocation behind', async () => {
    await host.cliOk(['rm', '-f', 'a1', 'a2', 'a3', 'b1', 'b2', 'i1', 'i2']);
    await host.cliOk(['network', 'rm', 'n1', 'n2', 'n3']);
    const links = await host.ipJson<Array<{ ifname: string }>>(['link', 'show']);
    expect(links.map((l) => l.ifname).filter((n) => /^(lm-|lv|lc)/.test(n))).toEqual([]);
    expect(await host.execOk(['nft', 'list', 'tables'])).not.toMatch(/table inet loom/);
    const ipt = await host.execOk(['iptables', '-w', '-S']);
    expect(ipt).not.toContain('LOOM');
    // IPAM: nothing left (pools and addresses), asked of loomd itself.
    const state = await host.loomState();
    expect(state.pools).toEqual([]);
    expect(state.networks).toEqual([]);
  });
});
