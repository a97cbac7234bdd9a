/**
 * loomd killed (SIGKILL) and restarted while containers run: the data plane
 * keeps working without it, and after the restart new containers join the same
 * networks with addresses that do not collide with the running ones.
 */
import { TestHost } from '../helpers/test-host';

jest.setTimeout(300_000);

let host: TestHost;
beforeAll(async () => {
  host = await TestHost.create();
  await host.startLoomd();
});
afterAll(async () => {
  await host?.destroy();
});

const ipOf = (name: string, net: string): Promise<string> => host.containerIp(name, net);

test('containers keep connectivity across a loomd crash, and new containers join afterwards', async () => {
  await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', '198.18.20.0/24', 'r1']);
  for (const c of ['r-a', 'r-b']) await host.cliOk(['run', '-d', '--init', '--name', c, '--network', 'r1', 'local/busybox', 'sleep', '3600']);
  const b = await ipOf('r-b', 'r1');
  expect(await host.ping('r-a', b)).toBe(true);

  await host.stopLoomd('SIGKILL');
  // The data plane does not depend on loomd being up.
  expect(await host.ping('r-a', b)).toBe(true);
  expect(await host.ping('r-a', '198.18.20.1')).toBe(true);

  await host.startLoomd();
  await host.cliOk(['run', '-d', '--init', '--name', 'r-c', '--network', 'r1', 'local/busybox', 'sleep', '3600']);
  const c = await ipOf('r-c', 'r1');
  const a = await ipOf('r-a', 'r1');
  expect(new Set([a, b, c]).size).toBe(3);
  expect(await host.ping('r-c', a)).toBe(true);
  expect(await host.ping('r-a', c)).toBe(true);

  // A second network created after the restart works too.
  await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', 'r2']);
  await host.cliOk(['run', '-d', '--init', '--name', 'r-d', '--network', 'r2', 'local/busybox', 'sleep', '3600']);
  expect(await host.ping('r-d', (await ipOf('r-d', 'r2')).replace(/\.\d+$/, '.1'))).toBe(true);

  // The IPAM holds exactly the gateways and the live endpoints.
  const state = await host.loomState();
  const r1Pool = state.pools.find((p) => p.pool === '198.18.20.0/24');
  expect(r1Pool?.allocations.map((x: { address: string }) => x.address).sort()).toEqual(['198.18.20.1', a, b, c].sort());
});

test('SIGTERM stops loomd cleanly (exit 0) and leaves the data plane up', async () => {
  const pid = host.loomdPid as number;
  await host.stopLoomd('SIGTERM');
  expect(host.loomdLog()).toMatch(/"msg":"stopping/);
  expect(await host.ping('r-a', await ipOf('r-b', 'r1'))).toBe(true);
  expect(pid).toBeGreaterThan(0);
  await host.startLoomd();
});
