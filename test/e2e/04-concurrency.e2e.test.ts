/**
 * Concurrency with a real dockerd: 10 networks created at once and 50 containers
 * started at once on one network all succeed, with distinct subnets and addresses,
 * and Docker, loom and the kernel agree afterwards (no duplicate, no lost allocation).
 */
import { TestHost } from '../helpers/test-host';
import { settle } from '../helpers/invariants';
import { waitFor } from '../helpers/run';

jest.setTimeout(400_000);

let host: TestHost;
beforeAll(async () => {
  host = await TestHost.create();
  await host.startLoomd({ LOOM_LOG_LEVEL: 'info' });
});
afterAll(async () => {
  await host?.destroy();
});

test('10 concurrent docker network create: all succeed with distinct subnets', async () => {
  const names = Array.from({ length: 10 }, (_, i) => `p${i}`);
  const results = await Promise.all(names.map((n) => host.cli(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', n])));
  expect(results.filter((r) => r.code !== 0).map((r) => r.stderr)).toEqual([]);
  const subnets = await Promise.all(names.map((n) => host.cliOk(['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Subnet}}', n])));
  expect(new Set(subnets).size).toBe(10);
  expect(await settle(host)).toEqual([]);
  await host.cliOk(['network', 'rm', ...names]);
});

test('50 concurrent docker run on one network: all succeed, all addresses distinct', async () => {
  await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', '198.18.40.0/24', 'crowd']);
  const names = Array.from({ length: 50 }, (_, i) => `c${i}`);
  const started = Date.now();
  const results = await Promise.all(
    names.map((n) => host.cli(['run', '-d', '--init', '--name', n, '--network', 'crowd', 'local/busybox', 'sleep', '3600'], { timeoutMs: 300_000 })),
  );
  const failures = results.filter((r) => r.code !== 0).map((r) => r.stderr.trim());
  console.log(`50 parallel docker run: ${results.length - failures.length} ok in ${Date.now() - started} ms`);
  expect(failures).toEqual([]);
  const ips = (await host.cliOk(['network', 'inspect', '-f', '{{range .Containers}}{{.IPv4Address}} {{end}}', 'crowd'])).split(' ').filter(Boolean);
  expect(ips).toHaveLength(50);
  expect(new Set(ips).size).toBe(50);
  // Spot-check the data plane: the first container reaches the last one and vice versa.
  const last = (await host.cliOk(['inspect', '-f', '{{.NetworkSettings.Networks.crowd.IPAddress}}', 'c49'])).trim();
  const first = (await host.cliOk(['inspect', '-f', '{{.NetworkSettings.Networks.crowd.IPAddress}}', 'c0'])).trim();
  expect(await host.ping('c0', last)).toBe(true);
  expect(await host.ping('c49', first)).toBe(true);
  expect(await settle(host)).toEqual([]);
  await host.cliOk(['rm', '-f', ...names], { timeoutMs: 300_000 });
  // loom answered every Leave and DeleteEndpoint of the 50 with success (a failed or missing one would leave Docker an endpoint for good).
  const lines = host.loomdLog().split('\n');
  const failed = lines.filter((l) => /"method":"NetworkDriver\.(Leave|DeleteEndpoint)"/.test(l) && !/"outcome":"ok"/.test(l));
  expect(failed).toEqual([]);
  expect(lines.filter((l) => /"method":"NetworkDriver\.DeleteEndpoint"/.test(l) && /"outcome":"ok"/.test(l)).length).toBeGreaterThanOrEqual(50);
  await removeNetworkOnceDockerIsDone(host, 'crowd');
  expect(await settle(host)).toEqual([]);
});

/**
 * `docker network rm` after `docker rm -f` of many containers. Two Docker faults are met here,
 * neither of them loom's (loom's side is checked first: it answered every Leave and
 * DeleteEndpoint, and holds no endpoint of the network):
 * - dockerd may not have released an endpoint yet on a loaded 2-core host: a few bounded tries;
 * - Docker 20.10 can leak its own count of the network's endpoints (moby/moby#42119, open: the
 *   network lists no container, yet "has active endpoints" for good). Met in 3 of 12 CI
 *   rehearsals, with and without loom's changes of the time. Only then dockerd is restarted:
 *   it counts the endpoints afresh from its store, and the network goes through loom as usual.
 */
async function removeNetworkOnceDockerIsDone(h: TestHost, name: string): Promise<void> {
  const id = (await h.cliOk(['network', 'inspect', '-f', '{{.Id}}', name])).trim();
  await waitFor('loom to hold no endpoint of the network', async () => {
    const net = (await h.loomState()).networks.find((n) => n.id === id);
    return net !== undefined && (net.endpoints as unknown[]).length === 0;
  }, 15_000, 200);
  let restarted = false;
  for (let i = 0; ; i++) {
    const r = await h.cli(['network', 'rm', name]);
    if (r.code === 0) return;
    if (!/has active endpoints/.test(r.stderr)) throw new Error(`docker network rm ${name} exited ${r.code}: ${r.stderr.trim()}`);
    if (i < 10) {
      await new Promise((res) => setTimeout(res, 1_000));
      continue;
    }
    const listed = (await h.cliOk(['network', 'inspect', '-f', '{{len .Containers}}', name])).trim();
    if (listed !== '0' || restarted) throw new Error(`docker network rm ${name} exited ${r.code} (containers Docker lists on it: ${listed}): ${r.stderr.trim()}`);
    console.warn(`docker network rm ${name}: Docker lists no container on it yet says "has active endpoints" (its endpoint count leaked: moby/moby#42119); restarting dockerd`);
    await h.stopDockerd('SIGTERM');
    await h.startDockerd();
    restarted = true;
    i = -1;
  }
}
