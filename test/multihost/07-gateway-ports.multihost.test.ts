/**
 * An overlay with `-o loom.gateway=docker` on two Docker hosts: the option reaches the copy of
 * the network the other host makes by itself; containers on both hosts reach each other over
 * the overlay, each host's docker_gwbridge gives its containers their default route and
 * published ports, which `docker port` shows, and a container on one host reaches a port
 * published on the other through its own host's docker_gwbridge and the underlay.
 * The single-host cases (isolation, dual stack, restarts...): test/e2e/12-gateway-ports.
 */
import { TestCluster } from '../helpers/cluster';
import { waitFor } from '../helpers/run';
import type { TestHost } from '../helpers/test-host';
import { httpGet } from '../helpers/http-get';

jest.setTimeout(600_000);

let c: TestCluster;
let A: TestHost;
let B: TestHost;
beforeAll(async () => {
  // docker0 and docker_gwbridge of every host inside the test range.
  c = await TestCluster.create(2, { host: { dockerdArgs: ['--default-address-pool', 'base=198.18.96.0/20,size=24'] } });
  [A, B] = c.hosts as [TestHost, TestHost];
});
afterAll(async () => {
  await c?.destroy();
});


test('an overlay with loom.gateway=docker: peers across hosts over the overlay, ports through each host\'s docker_gwbridge, shown by docker port', async () => {
  await A.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '-o', 'loom.mode=overlay', '-o', 'loom.gateway=docker', '--subnet', '198.18.210.0/24', 'green']);
  await waitFor('green on B', async () => (await B.cli(['network', 'inspect', 'green'])).code === 0, 30_000, 250);
  const idB = await B.cliOk(['network', 'inspect', '-f', '{{.Id}}', 'green']);
  expect((await B.loomState()).networks.find((n) => n.id === idB)).toMatchObject({ gatewayService: 'docker' });

  await A.cliOk(['run', '-d', '--init', '--name', 'a1', '--network', 'green', '-p', '18080:80', 'local/busybox', 'sh', '-c', 'echo green-a > /tmp/index.html; exec httpd -f -p 80 -h /tmp']);
  await B.cliOk(['run', '-d', '--init', '--name', 'b1', '--network', 'green', 'local/busybox', 'sleep', '3600']);
  const a1 = await A.containerIp('a1', 'green');
  const b1 = await B.containerIp('b1', 'green');
  expect(await B.ping('b1', a1, 10)).toBe(true);
  expect(await A.ping('a1', b1, 10)).toBe(true);
  expect(await httpGet(B, { container: 'b1' }, `http://${a1}/`)).toBe('green-a\n');

  // Each host's docker_gwbridge: the default route, and the published port Docker shows.
  for (const [h, name] of [[A, 'a1'], [B, 'b1']] as Array<[TestHost, string]>) {
    expect((await h.inContainer(name, ['ip', 'route'])).stdout).toMatch(/^default via 198\.18\.\d+\.1 dev eth1/m);
  }
  expect(await A.cliOk(['port', 'a1', '80/tcp'])).toContain('0.0.0.0:18080');
  expect(await waitFor('the published port on A', () => httpGet(A, 'host', 'http://198.18.0.1:18080/'), 15_000, 300)).toBe('green-a\n');
  // From B's container, out through B's docker_gwbridge and the underlay to A's published port.
  expect(await httpGet(B, { container: 'b1' }, 'http://198.18.0.1:18080/')).toBe('green-a\n');

  await A.cliOk(['rm', '-f', 'a1']);
  await B.cliOk(['rm', '-f', 'b1']);
  await A.cliOk(['network', 'rm', 'green']);
  await waitFor('green gone from B', async () => (await B.cli(['network', 'inspect', 'green'])).code !== 0, 30_000, 250);
});
