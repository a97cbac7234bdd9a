/**
 * Restarts and failures around loom: a simulated reboot, dockerd stopped with and
 * without --live-restore and killed with SIGKILL, `--restart always` containers, and
 * a network removed while loomd was down. Afterwards every running container has
 * connectivity and Docker, loom and the kernel agree exactly (no leaked address,
 * no orphan object).
 */
import { OUTSIDE_IP, TestHost } from '../helpers/test-host';
import { settle } from '../helpers/invariants';

jest.setTimeout(300_000);

let host: TestHost;
beforeAll(async () => {
  host = await TestHost.create();
  await host.startLoomd();
  await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', '198.18.30.0/24', '--aux-address', 'r=198.18.30.250', 'rs']);
  for (const c of ['s1', 's2']) {
    await host.cliOk(['run', '-d', '--init', '--restart', 'always', '--name', c, '--network', 'rs', 'local/busybox', 'sleep', '86400']);
  }
});
afterAll(async () => {
  await host?.destroy();
});

const ipOf = (name: string): Promise<string> => host.containerIp(name, 'rs');

async function expectConnected(): Promise<void> {
  const running = (await host.cliOk(['ps', '--format', '{{.Names}}'])).split('\n').filter(Boolean).sort();
  expect(running).toEqual(expect.arrayContaining(['s1', 's2']));
  const ips = await Promise.all(running.map(ipOf));
  for (const c of running) {
    for (const ip of ips) expect(await host.ping(c, ip)).toBe(true);
    expect(await host.ping(c, OUTSIDE_IP)).toBe(true);
  }
}

const waitRunning = (names: string[]): Promise<void> => host.waitRunning(names, 60_000);

test('dockerd stopped and started without live-restore: restart-policy containers come back connected', async () => {
  await expectConnected();
  await host.stopDockerd('SIGTERM');
  await host.startDockerd([]);
  await waitRunning(['s1', 's2']);
  await expectConnected();
  expect(await settle(host)).toEqual([]);
});

test('dockerd with --live-restore: containers keep running and connected across its restart', async () => {
  await host.stopDockerd('SIGTERM');
  await host.startDockerd(['--live-restore']);
  await waitRunning(['s1', 's2']);
  const before = await ipOf('s1');
  await host.stopDockerd('SIGTERM');
  // dockerd is down: the containers still answer on the loom network.
  expect((await host.exec(['busybox', 'ping', '-c', '1', '-W', '2', before])).code).toBe(0);
  await host.startDockerd(['--live-restore']);
  await waitRunning(['s1', 's2']);
  expect(await ipOf('s1')).toBe(before);
  await expectConnected();
  expect(await settle(host)).toEqual([]);
  await host.stopDockerd('SIGTERM');
  await host.startDockerd([]);
  await waitRunning(['s1', 's2']);
});

test('dockerd killed with SIGKILL: after its restart everything converges', async () => {
  await host.stopDockerd('SIGKILL');
  await host.startDockerd([]);
  await waitRunning(['s1', 's2']);
  await expectConnected();
  expect(await settle(host)).toEqual([]);
});

test('simulated reboot: loom\'s bridges, veths and rules deleted by hand while everything is down', async () => {
  await host.stopLoomd('SIGTERM');
  await host.stopDockerd('SIGKILL');
  for (const l of await host.ipJson<Array<{ ifname: string }>>(['link', 'show'])) {
    if (/^(lm-|lv|lc)/.test(l.ifname)) await host.execOk(['ip', 'link', 'del', l.ifname]);
  }
  await host.flushLoomFirewall();
  // Boot order of a real host: loomd (systemd Before=docker.service), then dockerd.
  await host.startLoomd();
  await host.startDockerd([]);
  await waitRunning(['s1', 's2']);
  await expectConnected();
  expect(await settle(host)).toEqual([]);
});

test('a network removed while loomd was down is cleaned up when it returns', async () => {
  await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', '198.18.31.0/24', 'gone']);
  await host.stopLoomd('SIGKILL');
  // Docker retries the unreachable plugin, then logs the errors and removes its network anyway.
  await host.cli(['network', 'rm', 'gone'], { timeoutMs: 120_000 });
  await host.startLoomd();
  expect(await settle(host, 60_000)).toEqual([]);
  const log = host.loomdLog();
  expect(log).toMatch(/"repair":"remove-stale-network"/);
  expect(log).toMatch(/"repair":"release-orphan-pool"/);
});
