/**
 * Addresses behave at least as well as Docker's own bridge (scenarios ported from moby's
 * integration-cli): a container that comes back with the same address (reconnected with the
 * same --ip, or restarted) is reachable from its peers at once, although they still hold it in
 * their neighbour caches; and after an ungraceful dockerd restart (kill -9, loomd stopped,
 * dockerd then loomd started) the address Docker could not release is free again within 5 s.
 */
import { run, sleep } from '../helpers/run';
import { TestHost } from '../helpers/test-host';

jest.setTimeout(300_000);

let h: TestHost;
beforeAll(async () => {
  h = await TestHost.create();
  await h.startLoomd();
  await h.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', '198.18.70.0/24', 'addr']);
  await h.cliOk(['run', '-d', '--init', '--name', 'peer', '--network', 'addr', 'local/busybox', 'sleep', '86400']);
});
afterAll(async () => {
  await h?.destroy();
});

/**
 * ms from now until `peer` gets a reply from `ip` (one ping per try, each waiting at most 1 s),
 * sent from the peer's network namespace directly (no `docker exec` start-up in the figure).
 */
async function msUntilReachable(ip: string, limitMs = 40_000): Promise<number> {
  const pid = await h.cliOk(['inspect', '-f', '{{.State.Pid}}', 'peer']);
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs) {
    const r = await run('nsenter', [`--net=/proc/${pid}/ns/net`, '/bin/busybox', 'ping', '-c', '1', '-W', '1', ip], { timeoutMs: 5_000 });
    if (r.code === 0) return Date.now() - t0;
  }
  return Infinity;
}

/** The peer's neighbour entry for `ip` (the MAC it will send to), as `ip neigh` shows it. */
const neighOf = async (ip: string): Promise<string> => (await h.inContainer('peer', ['ip', 'neigh', 'show', ip])).stdout.trim();

test('reconnected with the same --ip: reachable from a peer at once (TestDockerNetworkConnectPreferredIP)', async () => {
  const ip = '198.18.70.50';
  await h.cliOk(['run', '-d', '--init', '--name', 'moved', '--network', 'addr', '--ip', ip, 'local/busybox', 'sleep', '86400']);
  expect(await msUntilReachable(ip)).toBeLessThan(2_000);
  const cached = await neighOf(ip);
  expect(cached).toMatch(/lladdr/);
  await h.cliOk(['network', 'disconnect', 'addr', 'moved']);
  await h.cliOk(['network', 'connect', '--ip', ip, 'addr', 'moved']);
  const ms = await msUntilReachable(ip);
  console.log(`reconnect with the same address: reachable after ${ms} ms (peer's cache before: ${cached})`);
  expect(ms).toBeLessThan(1_000);
});

test('restarted with its --ip: reachable from a peer at once', async () => {
  const ip = '198.18.70.51';
  await h.cliOk(['run', '-d', '--init', '--name', 'again', '--network', 'addr', '--ip', ip, 'local/busybox', 'sleep', '86400']);
  expect(await msUntilReachable(ip)).toBeLessThan(2_000);
  await h.cliOk(['restart', '-t', '0', 'again']);
  const ms = await msUntilReachable(ip);
  console.log(`docker restart: reachable after ${ms} ms`);
  expect(ms).toBeLessThan(1_000);
});

test('after kill -9 of dockerd with loomd stopped, the --ip is free within 5 s of both being up (TestDockerNetworkDriverUngracefulRestart)', async () => {
  const ip = '198.18.70.60';
  await h.cliOk(['run', '-d', '--init', '--name', 'ungraceful', '--network', 'addr', '--ip', ip, 'local/busybox', 'sleep', '86400']);
  await h.stopDockerd('SIGKILL');
  await h.stopLoomd('SIGTERM');
  // As on a host where the plugin comes up after dockerd: dockerd's start waits on it.
  await h.startDockerd([], { wait: false });
  await h.startLoomd();
  await h.waitDockerd(120_000);
  const t0 = Date.now();
  let ms = Infinity;
  for (let i = 0; Date.now() - t0 < 30_000; i++) {
    const r = await h.cli(['run', '-d', '--init', '--name', `ungraceful-${i}`, '--network', 'addr', '--ip', ip, 'local/busybox', 'sleep', '86400']);
    if (r.code === 0) {
      ms = Date.now() - t0;
      break;
    }
    expect(r.stderr).toMatch(/already in use|address/);
    await h.cli(['rm', '-f', `ungraceful-${i}`]);
    await sleep(250);
  }
  console.log(`ungraceful restart: --ip ${ip} usable again ${ms} ms after dockerd and loomd were both up`);
  expect(ms).toBeLessThan(5_000);
});
