/**
 * Operability: the Prometheus metrics match what was done, and when things are
 * broken by hand (a running container's veth deleted, a firewall rule deleted or changed
 * keeping every count, an address released behind Docker's back) `loomctl doctor` names
 * each problem, `loomctl gc` repairs them, and a second doctor is clean.
 */
import * as path from 'node:path';
import { TestHost, REPO } from '../helpers/test-host';
import { run, waitFor } from '../helpers/run';
import { pluginCall, unixRequest } from '../helpers/unix-http';
import { settle } from '../helpers/invariants';

jest.setTimeout(300_000);

const LOOMCTL = path.join(process.env.LOOM_DIST ?? path.join(REPO, 'dist'), 'driver', 'cli', 'loomctl.js');

let host: TestHost;
const metricsSock = (): string => path.join(host.dir, 'metrics.sock');
const loomctl = async (args: string[]): Promise<{ code: number; out: string }> => {
  const r = await run(process.execPath, [LOOMCTL, '--admin-socket', host.adminSocket, ...args], { timeoutMs: 120_000, env: { ...process.env, DOCKER_HOST: `unix://${host.dockerSock}` } });
  return { code: r.code, out: r.stdout + r.stderr };
};
const metric = (text: string, name: string, labels: Record<string, string> = {}): number | undefined => {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || line.startsWith('#')) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').pop());
  }
  return undefined;
};

beforeAll(async () => {
  host = await TestHost.create();
  // Only gc repairs here: the periodic reconciler waits an hour.
  await host.startLoomd({ LOOM_RECONCILE_INTERVAL: '3600' });
  await host.stopLoomd();
  await host.startLoomd({ LOOM_RECONCILE_INTERVAL: '3600', LOOM_METRICS: metricsSock() });
  await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', '198.18.120.0/24', 'ops']);
  for (const c of ['o1', 'o2']) await host.cliOk(['run', '-d', '--init', '--name', c, '--network', 'ops', 'local/busybox', 'sleep', '3600']);
});
afterAll(async () => {
  await host?.destroy();
});

test('metrics: calls, networks, endpoints and pool utilisation match what was done', async () => {
  await host.ping('o1', await host.cliOk(['inspect', '-f', '{{.NetworkSettings.Networks.ops.IPAddress}}', 'o2']));
  const text = (await unixRequest(metricsSock(), 'GET', '/metrics')).body;
  expect(metric(text, 'loom_plugin_calls_total', { method: 'NetworkDriver.CreateNetwork', outcome: 'ok' })).toBe(1);
  expect(metric(text, 'loom_plugin_calls_total', { method: 'NetworkDriver.CreateEndpoint', outcome: 'ok' })).toBe(2);
  expect(metric(text, 'loom_plugin_calls_total', { method: 'NetworkDriver.Join', outcome: 'ok' })).toBe(2);
  expect(metric(text, 'loom_networks', { mode: 'bridge' })).toBe(1);
  expect(metric(text, 'loom_ipam_pool_used_addresses', { pool: '198.18.120.0/24' })).toBe(3); // gateway + 2
  expect(metric(text, 'loom_ipam_pool_capacity_addresses', { pool: '198.18.120.0/24' })).toBe(254);
  expect(metric(text, 'loom_ipam_pool_utilisation_ratio', { pool: '198.18.120.0/24' })).toBeCloseTo(3 / 254, 5);
  expect(metric(text, 'loom_plugin_call_duration_seconds_count', { method: 'IpamDriver.RequestAddress', outcome: 'ok' })).toBe(3);
  expect(text).toMatch(/loom_endpoint_sent_bytes\{network="[0-9a-f]{12}",endpoint="[0-9a-f]{12}",container="[^"]*"\} \d+/);
  // Its standard output is read: no log line lost.
  expect(metric(text, 'loom_log_lines_dropped_total')).toBe(0);
  expect(metric(text, 'loom_log_write_errors_total')).toBe(0);
});

/**
 * Waits (bounded) until the reconciler's last pass left nothing to confirm and saw Docker: its
 * next pass is then LOOM_RECONCILE_INTERVAL (an hour) away and cannot repair, before doctor looks,
 * what a test breaks by hand. A pass with suspects (a link being made while it looked) is followed
 * by another within seconds.
 */
async function reconcilerIdle(): Promise<void> {
  await waitFor('reconciler idle', async () => {
    const r = JSON.parse((await unixRequest(host.adminSocket, 'GET', '/v1/reconcile')).body) as { passes: number; last?: { newSuspects?: number; dockerView?: boolean } };
    return r.passes > 0 && r.last?.newSuspects === 0 && r.last?.dockerView === true;
  }, 20_000, 200);
}

test('doctor names what was broken by hand, gc repairs it, a second doctor is clean', async () => {
  await reconcilerIdle();
  expect((await loomctl(['doctor'])).code).toBe(0);
  const state = await host.loomState();
  const eps = state.networks[0]?.endpoints as Array<{ id: string; hostIf: string; address: string }>;
  const o2 = await host.cliOk(['inspect', '-f', '{{.NetworkSettings.Networks.ops.EndpointID}}', 'o2']);
  const victim = eps.find((e) => e.id === o2) as { hostIf: string; address: string };
  const other = eps.find((e) => e.id !== o2) as { address: string };
  // 1. a running container's veth, 2. a firewall rule, 3. an address released behind Docker's back.
  await host.execOk(['ip', 'link', 'del', victim.hostIf]);
  const { nftTable } = await host.loomOwner();
  const rules = await host.execOk(['nft', '-a', 'list', 'chain', 'inet', nftTable, 'postrouting']);
  const handle = /masquerade # handle (\d+)/.exec(rules)?.[1] as string;
  await host.execOk(['nft', 'delete', 'rule', 'inet', nftTable, 'postrouting', 'handle', handle]);
  const poolId = state.pools[0]?.id as string;
  expect((await pluginCall(host.socket, 'IpamDriver.ReleaseAddress', { PoolID: poolId, Address: other.address.split('/')[0] })).status).toBe(200);

  const doctor = await loomctl(['doctor']);
  expect(doctor.code).toBe(1);
  expect(doctor.out).toMatch(/replumb-endpoint: .*veth .* is gone while its container runs/);
  expect(doctor.out).toMatch(/sync-firewall: .*chain postrouting has 0 rules, expected 1/);
  expect(doctor.out).toMatch(new RegExp(`restore-allocation: .*${other.address.split('/')[0].replace(/\./g, '\\.')} \\(endpoint .*\\) is not allocated`));
  expect(doctor.out).toMatch(/repair: loomctl gc/);
  const json = JSON.parse((await loomctl(['doctor', '--json'])).out);
  expect(json.problems.length).toBeGreaterThanOrEqual(3);

  const gc = await loomctl(['gc']);
  expect(gc.code).toBe(0);
  expect(gc.out).toMatch(/repaired replumb-endpoint/);
  expect(gc.out).toMatch(/repaired sync-firewall/);
  expect(gc.out).toMatch(/repaired restore-allocation/);

  const again = await loomctl(['doctor']);
  expect(again.out).toMatch(/no problems found/);
  expect(again.code).toBe(0);
  // The re-plumbed container talks again, and everything agrees.
  expect(await host.ping('o2', other.address.split('/')[0] as string)).toBe(true);
  expect(await host.ping('o1', victim.address.split('/')[0] as string)).toBe(true);
  expect(await settle(host)).toEqual([]);
  const text = (await unixRequest(metricsSock(), 'GET', '/metrics')).body;
  expect(metric(text, 'loom_reconciler_repairs_total', { kind: 'replumb-endpoint' })).toBe(1);
});

test('rules changed by hand with every count kept: doctor names each rule, gc repairs them', async () => {
  await reconcilerIdle();
  expect((await loomctl(['doctor'])).code).toBe(0);
  const { nftTable, iptablesChain } = await host.loomOwner();
  // nft: the network's masquerade narrowed to half its subnet (postrouting keeps its one rule).
  const rules = await host.execOk(['nft', '-a', 'list', 'chain', 'inet', nftTable, 'postrouting']);
  const [, bridge, handle] = /ip saddr 198\.18\.120\.0\/24 oifname != "(\S+)" masquerade # handle (\d+)/.exec(rules) as unknown as [string, string, string];
  await host.execOk(['nft', 'replace', 'rule', 'inet', nftTable, 'postrouting', 'handle', handle, 'ip', 'saddr', '198.18.120.0/25', 'oifname', '!=', bridge, 'masquerade']);
  // iptables: the shim's first rule accepts another interface (the chain keeps its two rules).
  const shim = (await host.execOk(['iptables', '-w', '-S', iptablesChain])).split('\n').filter((l) => l.startsWith('-A'));
  await host.execOk(['iptables', '-w', '-R', iptablesChain, '1', '-i', 'eth9', '-j', 'ACCEPT']);
  expect((await host.execOk(['iptables', '-w', '-S', iptablesChain])).split('\n').filter((l) => l.startsWith('-A'))).toHaveLength(shim.length);

  const doctor = await loomctl(['doctor']);
  expect(doctor.code).toBe(1);
  expect(doctor.out).toMatch(new RegExp(`sync-firewall: .*chain postrouting rule 1 is 'ip saddr 198\\.18\\.120\\.0/25 oifname != "${bridge}" masquerade', expected 'ip saddr 198\\.18\\.120\\.0/24 oifname != "${bridge}" masquerade'`));
  expect(doctor.out).toMatch(new RegExp(`iptables chain ${iptablesChain} rule 1 is '-A ${iptablesChain} -i eth9 -j ACCEPT', expected '-A ${iptablesChain} -i ${bridge} `));
  const gc = await loomctl(['gc']);
  expect(gc.code).toBe(0);
  expect(gc.out).toMatch(/repaired sync-firewall/);
  const again = await loomctl(['doctor']);
  expect(again.out).toMatch(/no problems found/);
  expect(await host.execOk(['nft', 'list', 'chain', 'inet', nftTable, 'postrouting'])).toContain(`ip saddr 198.18.120.0/24 oifname != "${bridge}" masquerade`);
  expect(await host.ping('o1', await host.cliOk(['inspect', '-f', '{{.NetworkSettings.Networks.ops.IPAddress}}', 'o2']))).toBe(true);
});

test('status, networks, endpoints, ipam and peers print tables and JSON', async () => {
  const status = await loomctl(['status']);
  expect(status.code).toBe(0);
  expect(status.out).toMatch(/loomd \S+ \(pid \d+\)/);
  expect(status.out).toMatch(/cluster: +none/);
  expect(status.out).toMatch(/logs: +0 lines dropped \(stdout not read\)\n/);
  expect((await loomctl(['networks'])).out).toMatch(/NETWORK +BRIDGE +MODE/);
  const endpoints = await loomctl(['endpoints']);
  expect(endpoints.out).toMatch(/\/o1|o1/);
  expect((await loomctl(['ipam'])).out).toMatch(/198\.18\.120\.0\/24 +LoomLocal/);
  expect((await loomctl(['peers'])).out).toMatch(/not in a cluster/);
  expect(JSON.parse((await loomctl(['ipam', '--json'])).out)[0].pool).toBe('198.18.120.0/24');
  expect((await loomctl(['bogus'])).code).toBe(2);
  expect((await run(process.execPath, [LOOMCTL, '--admin-socket', '/nonexistent.sock', 'status'])).code).toBe(3);
});
