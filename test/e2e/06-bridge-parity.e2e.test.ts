/**
 * Parity with Docker's own bridge driver: the same compose-style scenario runs with
 * `-d bridge` and then with `-d loom --ipam-driver loom` (same flags, options and
 * containers) and must behave the same: published ports answer (from outside, from
 * the host, through loopback, and from a neighbour through the host address), ICC
 * off blocks neighbours but keeps the gateway and the outside, IPv6 works inside a
 * dual-stack network, internal networks stay closed. Then loom-only extras:
 * automatic ULA subnets, connect/disconnect with --ip, MACs and driver-opts.
 */
import { OUTSIDE_IP, TestHost, UPLINK_IP } from '../helpers/test-host';
import { httpGet } from '../helpers/http-get';
import { settle } from '../helpers/invariants';
import { run, sleep, waitFor } from '../helpers/run';

jest.setTimeout(600_000);

let host: TestHost;
beforeAll(async () => {
  // Docker 20.10 only writes IPv6 firewall rules for its own bridges with --ip6tables (experimental then,
  // default since 27); without them the host's ip6tables FORWARD DROP blocks the reference run.
  host = await TestHost.create({ dockerdArgs: process.env.LOOM_TEST_ENGINE === '28.5' ? [] : ['--experimental', '--ip6tables'] });
  await host.importTools();
  await host.startLoomd();
});
afterAll(async () => {
  await host?.destroy();
});

const ipOf = (c: string, net: string, v6 = false): Promise<string> => host.containerIp(c, net, v6 ? 6 : 4);


async function scenario(tag: string, driver: string[]): Promise<void> {
  const n = (s: string): string => `${tag}-${s}`;
  const subnet = (i: number): string => `198.18.${tag === 'bridge' ? 80 + i : 90 + i}.0/24`;
  const port = tag === 'bridge' ? 18080 : 28080;

  // Published ports: TCP on every address, TCP on loopback only, UDP.
  await host.cliOk(['network', 'create', ...driver, '--subnet', subnet(0), n('web')]);
  await host.cliOk([
    'run', '-d', '--init', '--name', n('srv'), '--network', n('web'),
    '-p', `${port}:80`, '-p', `127.0.0.1:${port + 1}:80`, '-p', `${port + 2}:5353/udp`,
    'local/tools', 'sh', '-c', `echo ${tag}-ok > /tmp/index.html; httpd -p 80 -h /tmp; exec socat -u UDP-RECV:5353 STDOUT`,
  ]);
  await host.cliOk(['run', '-d', '--init', '--name', n('cli'), '--network', n('web'), 'local/busybox', 'sleep', '3600']);
  const ok = `${tag}-ok\n`;
  expect(await waitFor('the published port', () => httpGet(host, 'outside', `http://${UPLINK_IP}:${port}/`), 15_000, 300)).toBe(ok);
  expect(await httpGet(host, 'host', `http://${UPLINK_IP}:${port}/`)).toBe(ok);
  expect(await httpGet(host, 'host', `http://127.0.0.1:${port + 1}/`)).toBe(ok);
  expect(await httpGet(host, 'outside', `http://${UPLINK_IP}:${port + 1}/`)).toBeUndefined();
  expect(await httpGet(host, { container: n('cli') }, `http://${UPLINK_IP}:${port}/`)).toBe(ok); // hairpin
  await run('nsenter', [`--net=/run/netns/${host.outNetns}`, 'socat', '-u', 'STDIN', `UDP-SENDTO:${UPLINK_IP}:${port + 2}`], { timeoutMs: 10_000, input: `udp-${tag}\n` });
  await waitFor('the UDP datagram', async () => (await host.cli(['logs', n('srv')])).stdout.includes(`udp-${tag}`), 10_000, 300);
  await host.cliOk(['rm', '-f', n('srv')]);
  await sleep(300);
  expect(await httpGet(host, 'outside', `http://${UPLINK_IP}:${port}/`)).toBeUndefined();

  // ICC off: neighbours are blocked, the gateway and the outside are not.
  await host.cliOk(['network', 'create', ...driver, '--subnet', subnet(1), '-o', 'com.docker.network.bridge.enable_icc=false', n('noicc')]);
  for (const c of ['i1', 'i2']) await host.cliOk(['run', '-d', '--init', '--name', n(c), '--network', n('noicc'), 'local/busybox', 'sleep', '3600']);
  expect(await host.ping(n('i1'), await ipOf(n('i2'), n('noicc')), 2)).toBe(false);
  expect(await host.ping(n('i1'), subnet(1).replace('0/24', '1'))).toBe(true);
  expect(await host.ping(n('i1'), OUTSIDE_IP)).toBe(true);

  // Dual stack: IPv6 between containers and to the gateway.
  await host.cliOk(['network', 'create', ...driver, '--ipv6', '--subnet', subnet(2), '--subnet', `fd5c:${tag === 'bridge' ? 'b' : 'c'}::/64`, n('v6')]);
  for (const c of ['s1', 's2']) await host.cliOk(['run', '-d', '--init', '--name', n(c), '--network', n('v6'), 'local/busybox', 'sleep', '3600']);
  const s2v6 = await ipOf(n('s2'), n('v6'), true);
  expect(s2v6).toMatch(/^fd5c:/);
  expect(await host.ping(n('s1'), s2v6)).toBe(true);
  expect(await host.ping(n('s1'), `fd5c:${tag === 'bridge' ? 'b' : 'c'}::1`)).toBe(true);
  expect(await host.ping(n('s1'), await ipOf(n('s2'), n('v6')))).toBe(true);

  // Internal: no way out.
  await host.cliOk(['network', 'create', ...driver, '--internal', '--subnet', subnet(3), n('int')]);
  await host.cliOk(['run', '-d', '--init', '--name', n('x1'), '--network', n('int'), 'local/busybox', 'sleep', '3600']);
  expect(await host.ping(n('x1'), OUTSIDE_IP, 2)).toBe(false);

  await host.cliOk(['rm', '-f', n('cli'), n('i1'), n('i2'), n('s1'), n('s2'), n('x1')]);
  await host.cliOk(['network', 'rm', n('web'), n('noicc'), n('v6'), n('int')]);
}

describe('the same scenario with -d bridge and with -d loom', () => {
  test('Docker\'s built-in bridge (the reference)', async () => {
    await scenario('bridge', ['-d', 'bridge']);
  });
  test('loom', async () => {
    await scenario('loom', ['-d', 'loom', '--ipam-driver', 'loom']);
    expect(await settle(host)).toEqual([]);
    const { nftTable } = await host.loomOwner();
    expect((await host.execOk(['nft', 'list', 'table', 'inet', nftTable]).catch(() => ''))).not.toContain('dnat');
  });
});

describe('loom extras', () => {
  test('--ipv6 without an IPv6 subnet gets a ULA /64 chosen by loom', async () => {
    await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--ipv6', 'ula']);
    const subnets = await host.cliOk(['network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}} {{end}}', 'ula']);
    expect(subnets).toMatch(/fd[0-9a-f]{0,2}:[0-9a-f:]*\/64/);
    await host.cliOk(['run', '-d', '--init', '--name', 'u1', '--network', 'ula', 'local/busybox', 'sleep', '3600']);
    await host.cliOk(['run', '-d', '--init', '--name', 'u2', '--network', 'ula', 'local/busybox', 'sleep', '3600']);
    expect(await host.ping('u1', await ipOf('u2', 'ula', true))).toBe(true);
    await host.cliOk(['rm', '-f', 'u1', 'u2']);
    await host.cliOk(['network', 'rm', 'ula']);
  });

  test('connect --ip / disconnect: reachable only while connected; MACs and driver-opts; nothing leaks', async () => {
    await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', '198.18.100.0/24', 'm1']);
    await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', '198.18.101.0/24', 'm2']);
    await host.cliOk(['run', '-d', '--init', '--name', 'k1', '--network', 'm1', 'local/busybox', 'sleep', '3600']);
    await host.cliOk(['run', '-d', '--init', '--name', 'k2', '--network', 'name=m2,driver-opt=com.example.tag=blue', 'local/busybox', 'sleep', '3600']);
    const k2 = await ipOf('k2', 'm2');
    expect(await host.ping('k1', k2, 2)).toBe(false);
    await host.cliOk(['network', 'connect', '--ip', '198.18.101.50', '--driver-opt', 'com.example.tag=green', 'm2', 'k1']);
    expect(await ipOf('k1', 'm2')).toBe('198.18.101.50');
    expect(await host.ping('k1', k2)).toBe(true);
    expect(await host.ping('k2', '198.18.101.50')).toBe(true);
    const state = await host.loomState();
    const eps = state.networks.flatMap((n) => n.endpoints as Array<{ options: Record<string, string>; mac: string }>);
    expect(eps.map((e) => e.options['com.example.tag']).filter(Boolean).sort()).toEqual(['blue', 'green']);
    // The MAC loom chose is the one the container's interface carries.
    const macInContainer = (await host.inContainer('k2', ['cat', '/sys/class/net/eth0/address'])).stdout.trim();
    expect(eps.map((e) => e.mac)).toContain(macInContainer);
    await host.cliOk(['network', 'disconnect', 'm2', 'k1']);
    expect(await host.ping('k1', k2, 2)).toBe(false);
    expect(await settle(host)).toEqual([]);
    await host.cliOk(['rm', '-f', 'k1', 'k2']);
    await host.cliOk(['network', 'rm', 'm1', 'm2']);
    expect(await settle(host)).toEqual([]);
  });

  // `--ipv4=false` exists since Docker 28: Docker requests no IPv4 pool and no IPv4 address.
  (process.env.LOOM_TEST_ENGINE === '28.5' ? test : test.skip)('--ipv4=false: an IPv6-only network (Docker 28)', async () => {
    await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--ipv4=false', '--ipv6', '--subnet', 'fd5c:6::/64', 'v6only']);
    expect(await host.cliOk(['network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}} {{end}}', 'v6only'])).toBe('fd5c:6::/64');
    await host.cliOk(['run', '-d', '--init', '--name', 'o1', '--network', 'v6only', 'local/busybox', 'sleep', '3600']);
    await host.cliOk(['run', '-d', '--init', '--name', 'o2', '--network', 'v6only', 'local/busybox', 'sleep', '3600']);
    expect(await ipOf('o1', 'v6only')).toBe('');
    const o2 = await ipOf('o2', 'v6only', true);
    expect(o2).toMatch(/^fd5c:6::/);
    // No IPv4 inside the container, only link-local/loopback; IPv6 to the neighbour and the gateway.
    expect((await host.inContainer('o1', ['ip', '-4', 'addr', 'show', 'eth0'])).stdout).not.toContain('inet ');
    expect(await host.ping('o1', o2)).toBe(true);
    expect(await host.ping('o1', 'fd5c:6::1')).toBe(true);
    expect(await settle(host)).toEqual([]);
    await host.cliOk(['rm', '-f', 'o1', 'o2']);
    await host.cliOk(['network', 'rm', 'v6only']);
    expect(await settle(host)).toEqual([]);
  });

  test('--mac-address is honoured and never echoed back', async () => {
    await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', '198.18.102.0/24', 'mac']);
    const macArgs = host.engine.id === '20.10' ? ['--network', 'mac', '--mac-address', '02:42:c6:12:66:07'] : ['--network', 'name=mac,mac-address=02:42:c6:12:66:07'];
    await host.cliOk(['run', '-d', '--init', '--name', 'mc', ...macArgs, 'local/busybox', 'sleep', '3600']);
    expect((await host.inContainer('mc', ['cat', '/sys/class/net/eth0/address'])).stdout.trim()).toBe('02:42:c6:12:66:07');
    await host.cliOk(['rm', '-f', 'mc']);
    await host.cliOk(['network', 'rm', 'mac']);
  });
});
