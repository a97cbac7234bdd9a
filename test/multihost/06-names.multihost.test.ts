/**
 * Service discovery across hosts (issue 15): containers on a loom overlay resolve the names and
 * aliases of containers on other hosts, with no DNS setting anywhere. Every host's resolv.conf
 * names only the DNS server the test runs in its outside namespace (outside-dns.ts): nothing is
 * ever sent to the machine's own resolver.
 * Hosts A, B, C; overlays red and blue; webb on B and webc on C on red, both with alias api.
 */
import { dnsClientIn } from '../helpers/dns-client';
import { TestCluster } from '../helpers/cluster';
import { OUTSIDE_NAME_IP, OutsideDns, startOutsideDns } from '../helpers/outside-dns';
import * as path from 'node:path';
import { runOk, waitFor } from '../helpers/run';
import { OUTSIDE_IP, REPO, TestHost } from '../helpers/test-host';
import { unixRequest } from '../helpers/unix-http';

jest.setTimeout(600_000);

let c: TestCluster;
let A: TestHost;
let B: TestHost;
let C: TestHost;
const outside: OutsideDns[] = [];
beforeAll(async () => {
  c = await TestCluster.create(3, { host: { resolvConf: `nameserver ${OUTSIDE_IP}\n` }, loomEnv: { LOOM_LOG_LEVEL: 'debug', LOOM_METRICS: '127.0.0.1:9323' } });
  [A, B, C] = c.hosts as [TestHost, TestHost, TestHost];
  for (const h of c.hosts) outside.push(await startOutsideDns(h));
});
afterAll(async () => {
  for (const o of outside) await o.stop().catch(() => undefined);
  await c?.destroy();
});

const ipOf = (h: TestHost, ctr: string, net: string): Promise<string> =>
  h.cliOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, ctr]);

/** The IPv4 addresses `name` resolves to from `ctr` (busybox nslookup through the container's resolver); [] when it does not resolve. */
async function resolve(h: TestHost, ctr: string, name: string): Promise<string[]> {
  const r = await h.inContainer(ctr, ['nslookup', '-type=a', name], 15_000);
  const after = r.stdout.split(/^Name:/m).slice(1).join('\n');
  return [...after.matchAll(/^Address:\s*(\d+\.\d+\.\d+\.\d+)\s*$/gm)].map((m) => m[1] as string).sort();
}

/** Whether the container's namespace holds loom's steering table. */
async function hasLoomDnsTable(h: TestHost, ctr: string): Promise<boolean> {
  const key = await h.cliOk(['inspect', '-f', '{{.NetworkSettings.SandboxKey}}', ctr]);
  return (await h.exec(['nsenter', `--net=${key}`, 'nft', 'list', 'tables'])).stdout.includes('table ip loom_dns');
}


/** `n` sequential A queries for `name` from `ctr`'s namespace to its resolver (127.0.0.11), each timed (ms). */
async function latency(h: TestHost, ctr: string, name: string, n = 300): Promise<{ n: number; answers: number; p50: number; p95: number; max: number }> {
  const client = await dnsClientIn(h, ctr);
  try {
    await client.ready;
    const ms: number[] = [];
    let answers = 0;
    for (let i = 0; i < n; i++) {
      const r = await client.query(name);
      if (r.ms === undefined) throw new Error(`no answer for ${name} from ${ctr} within the client's timeout`);
      ms.push(r.ms);
      if (r.a?.length) answers++;
    }
    ms.sort((a, b) => a - b);
    const q = (p: number): number => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))] as number;
    return { n, answers, p50: q(0.5), p95: q(0.95), max: ms[ms.length - 1] as number };
  } finally {
    await client.stop();
  }
}

const run = (h: TestHost, name: string, net: string, extra: string[] = []): Promise<string> =>
  h.cliOk(['run', '-d', '--init', '--name', name, '--network', net, ...extra, 'local/busybox', 'sleep', '3600']);

test('names across hosts: a name within 10 s, an alias with both addresses, ping by name, isolation, removal within 10 s', async () => {
  await A.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '-o', 'loom.mode=overlay', '--subnet', '198.18.210.0/24', 'red']);
  await A.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '-o', 'loom.mode=overlay', '--subnet', '198.18.211.0/24', 'blue']);
  for (const h of [B, C]) {
    for (const n of ['red', 'blue']) await waitFor(`${n} on ${h.name}`, async () => (await h.cli(['network', 'inspect', n])).code === 0, 30_000, 250);
  }
  await run(A, 'ared', 'red');
  await run(A, 'ablue', 'blue');
  await waitFor('resolver attached in ared', () => hasLoomDnsTable(A, 'ared'), 20_000, 200);

  const t0 = Date.now();
  await run(B, 'webb', 'red', ['--network-alias', 'api']);
  await run(C, 'webc', 'red', ['--network-alias', 'api']);
  const webb = await ipOf(B, 'webb', 'red');
  const webc = await ipOf(C, 'webc', 'red');
  await waitFor('webb resolves on A', async () => (await resolve(A, 'ared', 'webb')).join() === webb, 10_000, 100);
  const webbMs = Date.now() - t0;
  await waitFor('api gives both addresses', async () => (await resolve(A, 'ared', 'API')).join() === [webb, webc].sort().join(), 10_000, 100);
  console.log(`webb resolvable on A ${webbMs} ms after docker run on B (engine ${A.engine.id})`);
  expect(webbMs).toBeLessThan(10_000);
  expect(await A.ping('ared', 'webc', 5)).toBe(true);

  // Latency through the container's resolver (a client in ared's namespace, 300 sequential queries each).
  const remoteLat = await latency(A, 'ared', 'webc');
  const externalLat = await latency(A, 'ared', 'www.outside.test');
  const localLat = await latency(A, 'ared', 'ared');
  console.log(`latency ms (engine ${A.engine.id}): remote ${JSON.stringify(remoteLat)} external ${JSON.stringify(externalLat)} local ${JSON.stringify(localLat)}`);
  expect(remoteLat.answers).toBe(remoteLat.n);
  expect(externalLat.answers).toBe(externalLat.n);
  expect(localLat.answers).toBe(localLat.n);
  expect(remoteLat.p95).toBeLessThan(50); // the goal is 5 ms (logged above); this machine is shared and loaded

  // Metrics: answered by loom and relayed to Docker (loomd's metrics listen on 127.0.0.1 in A's namespace).
  const metrics = await A.execOk(['curl', '-sf', 'http://127.0.0.1:9323/metrics']);
  const count = (result: string): number => Number(new RegExp(`^loom_dns_queries_total\\{result="${result}"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
  expect(count('answered')).toBeGreaterThanOrEqual(remoteLat.n);
  expect(count('relayed')).toBeGreaterThanOrEqual(externalLat.n + localLat.n);

  // loomctl names: what A serves on red, with address and host.
  const bHost = (await B.loomOwner()).instance;
  const listed = JSON.parse(await runOk(process.execPath, [path.join(REPO, 'dist', 'driver', 'cli', 'loomctl.js'), '--admin-socket', A.adminSocket, '--json', 'names', 'red'])) as Array<Record<string, unknown>>;
  expect(listed).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'webb', network: 'red', v4: [webb], hosts: [bHost], local: false })]));
  expect(listed.find((r) => r.name === 'api')).toMatchObject({ v4: [webb, webc].sort(), local: false });
  expect(listed.find((r) => r.name === 'ared')).toMatchObject({ local: true });
  expect(listed.some((r) => r.name === 'ablue')).toBe(false);

  // Isolation: blue knows nothing of red (the query goes to the outside server, which says NXDOMAIN).
  expect(await resolve(A, 'ablue', 'webb')).toEqual([]);
  expect(await resolve(A, 'ablue', 'api')).toEqual([]);

  // External names still resolve from a container on an overlay (served by the test's outside server).
  expect(await resolve(A, 'ared', 'www.outside.test')).toEqual([OUTSIDE_NAME_IP]);
  expect(await resolve(A, 'ablue', 'www.outside.test')).toEqual([OUTSIDE_NAME_IP]);

  // Removal: gone within 10 s; the alias keeps the other address.
  const t1 = Date.now();
  await B.cliOk(['rm', '-f', 'webb']);
  await waitFor('webb stops resolving on A', async () => (await resolve(A, 'ared', 'webb')).length === 0, 10_000, 100);
  const goneMs = Date.now() - t1;
  console.log(`webb gone on A ${goneMs} ms after docker rm -f on B (engine ${A.engine.id})`);
  expect(goneMs).toBeLessThan(10_000);
  await waitFor('api gives only webc', async () => (await resolve(A, 'ared', 'api')).join() === webc, 10_000, 100);
});

test('a container on a loom bridge network is untouched: no steering table, Docker\'s names and external names as usual', async () => {
  await A.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', '198.18.212.0/24', 'lbr']);
  await run(A, 'br1', 'lbr');
  await run(A, 'br2', 'lbr', ['--network-alias', 'bralias']);
  const br2 = await ipOf(A, 'br2', 'lbr');
  expect(await resolve(A, 'br1', 'br2')).toEqual([br2]);
  expect(await resolve(A, 'br1', 'bralias')).toEqual([br2]);
  expect(await resolve(A, 'br1', 'www.outside.test')).toEqual([OUTSIDE_NAME_IP]);
  expect(await resolve(A, 'br1', 'webc')).toEqual([]);
  expect(await hasLoomDnsTable(A, 'br1')).toBe(false);
  expect(await hasLoomDnsTable(A, 'ared')).toBe(true);
});

test('drift: a steering table removed by hand is put back by the reconciler', async () => {
  const key = await A.cliOk(['inspect', '-f', '{{.NetworkSettings.SandboxKey}}', 'ared']);
  await A.execOk(['nsenter', `--net=${key}`, 'nft', 'delete', 'table', 'ip', 'loom_dns']);
  expect(await hasLoomDnsTable(A, 'ared')).toBe(false);
  await unixRequest(A.adminSocket, 'POST', '/v1/reconcile', undefined, 120_000);
  await waitFor('the steering table back in ared', () => hasLoomDnsTable(A, 'ared'), 20_000, 200);
  expect((await unixRequest(A.adminSocket, 'GET', '/v1/reconcile')).json.repairs['dns-rule']).toBeGreaterThanOrEqual(1);
  expect(await resolve(A, 'ared', 'webc')).toEqual([await ipOf(C, 'webc', 'red')]);
});

test('a graceful loomd stop removes the steering tables (Docker answers directly); a restart attaches again', async () => {
  await A.stopLoomd('SIGTERM');
  expect(await hasLoomDnsTable(A, 'ared')).toBe(false);
  expect(await resolve(A, 'ared', 'www.outside.test')).toEqual([OUTSIDE_NAME_IP]);
  const t0 = Date.now();
  await A.startLoomd({ LOOM_ETCD_ENDPOINTS: c.endpoints, LOOM_ADVERTISE_ADDRESS: '198.18.0.1', LOOM_LEASE_TTL: '4', LOOM_PEER_GRACE: '5', LOOM_LOG_LEVEL: 'debug', LOOM_METRICS: '127.0.0.1:9323' });
  const webc = await ipOf(C, 'webc', 'red');
  await waitFor('webc resolves on A again', async () => (await resolve(A, 'ared', 'webc')).join() === webc, 30_000, 200);
  console.log(`re-attached and resolving ${Date.now() - t0} ms after loomd start (engine ${A.engine.id})`);
});

test('etcd unreachable: names keep resolving from the watched copy, and converge when it returns', async () => {
  const webc = await ipOf(C, 'webc', 'red');
  const healthy = async (h: TestHost): Promise<boolean> => (await unixRequest(h.adminSocket, 'GET', '/v1/status')).json.cluster.healthy === true;
  c.pauseEtcd();
  try {
    await waitFor('A sees etcd down', async () => !(await healthy(A)), 30_000, 250);
    expect(await resolve(A, 'ared', 'webc')).toEqual([webc]);
    expect(await resolve(A, 'ared', 'api')).toEqual([webc]);
  } finally {
    c.resumeEtcd();
  }
  await c.waitEtcdHealthy();
  await waitFor('A sees etcd again', () => healthy(A), 60_000, 250);
  await waitFor('webc resolves after etcd returned', async () => (await resolve(A, 'ared', 'webc')).join() === webc, 30_000, 250);
});

test('a dead host\'s names go once its lease has expired', async () => {
  await C.stopLoomd('SIGKILL');
  const t0 = Date.now();
  await waitFor('webc stops resolving on A', async () => (await resolve(A, 'ared', 'webc')).length === 0, 30_000, 250);
  console.log(`webc gone on A ${Date.now() - t0} ms after C's loomd was killed (lease TTL 4 s, engine ${A.engine.id})`);
});
