/**
 * Swarm: loom as a managed plugin with global scope on a 3-node swarm of test hosts
 * (etcd for loom's control plane). A swarm-scoped overlay created on the manager and
 * a service with 3 replicas (dnsrr: service VIPs cannot work on this kernel): the
 * tasks on all three nodes reach each other, and resolve each other's container names
 * through loom's resolver (service discovery with the managed plugin: it enters the
 * tasks' namespaces through its mount of Docker's exec root).
 */
import { TestCluster } from '../helpers/cluster';
import { buildPlugin, configurePlugin, MANAGED_PLUGIN_HOST, PLUGIN_NAME as NAME, removePlugin } from '../helpers/managed-plugin';
import { unixRequest } from '../helpers/unix-http';
import { waitFor } from '../helpers/run';
import type { TestHost } from '../helpers/test-host';

jest.setTimeout(900_000);

let c: TestCluster;
let hosts: TestHost[];
/** The service's tasks, one per node (the first test finds them). */
const tasks: Array<{ host: TestHost; container: string; ip: string }> = [];

beforeAll(async () => {
  c = await TestCluster.create(3, { legacyLoomd: false, host: MANAGED_PLUGIN_HOST });
  hosts = c.hosts;
  // Build the plugin directory once (offline), then create the plugin on every host.
  const build = await buildPlugin(hosts[0] as TestHost, { create: false });
  for (const [i, h] of hosts.entries()) {
    await h.cliOk(['plugin', 'create', NAME, build.dir], { timeoutMs: 300_000 });
    await configurePlugin(h, [
      'LOOM_SCOPE=global',
      `LOOM_ETCD_ENDPOINTS=${c.endpoints}`,
      `LOOM_ADVERTISE_ADDRESS=198.18.0.${i + 1}`,
      'LOOM_DEFAULT_POOLS=198.18.128.0/17:24',
    ]);
    await h.cliOk(['plugin', 'enable', NAME], { timeoutMs: 120_000 });
  }
  const [m, ...workers] = hosts as [TestHost, ...TestHost[]];
  await m.cliOk(['swarm', 'init', '--advertise-addr', '198.18.0.1', '--listen-addr', '198.18.0.1:2377']);
  const token = await m.cliOk(['swarm', 'join-token', '-q', 'worker']);
  for (const [i, w] of workers.entries()) {
    await w.cliOk(['swarm', 'join', '--token', token, '--advertise-addr', `198.18.0.${i + 2}`, '--listen-addr', `198.18.0.${i + 2}:2377`, '198.18.0.1:2377']);
  }
  await waitFor('3 ready nodes', async () => (await m.cliOk(['node', 'ls', '--format', '{{.Status}}'])).split('\n').filter((s) => s === 'Ready').length === 3, 60_000, 500);
});

afterAll(async () => {
  if (!c) return;
  // Only the manager can remove a service.
  await c.hosts[0]?.cli(['service', 'rm', 'sw'], { timeoutMs: 60_000 });
  for (const h of [...c.hosts].reverse()) await h.cli(['swarm', 'leave', '--force'], { timeoutMs: 60_000 });
  for (const h of c.hosts) {
    await h.removeContainers();
    await removePlugin(h);
  }
  await c.destroy();
});

test('a swarm-scoped loom overlay: tasks of a 3-replica service on three nodes reach each other', async () => {
  const m = hosts[0] as TestHost;
  await m.cliOk(['network', 'create', '-d', NAME, '--ipam-driver', NAME, '--scope', 'swarm', '--attachable', '-o', 'loom.mode=overlay', '--subnet', '198.18.220.0/24', 'swnet']);
  await m.cliOk([
    'service', 'create', '--name', 'sw', '--replicas', '3', '--replicas-max-per-node', '1', '--endpoint-mode', 'dnsrr',
    '--network', 'swnet', '--no-resolve-image', '--init', 'local/busybox', 'sleep', '3600',
  ], { timeoutMs: 300_000 });
  // One task per node, each with an address on the loom overlay.
  await waitFor('a running task on every node', async () => {
    tasks.length = 0;
    for (const h of hosts) {
      const id = (await h.cli(['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=sw'])).stdout.trim().split('\n')[0];
      if (!id) return false;
      const ip = (await h.cli(['inspect', '-f', '{{(index .NetworkSettings.Networks "swnet").IPAddress}}', id])).stdout.trim();
      if (!ip) return false;
      tasks.push({ host: h, container: id, ip });
    }
    return true;
  }, 180_000, 1_000);
  expect(new Set(tasks.map((t) => t.ip)).size).toBe(3);
  for (const t of tasks) expect(t.ip.startsWith('198.18.220.')).toBe(true);
  for (const from of tasks) {
    for (const to of tasks) {
      if (from === to) continue;
      await waitFor(`${from.ip} -> ${to.ip}`, async () => from.host.ping(from.container, to.ip, 1), 30_000, 250);
    }
  }
});

/** Whether the container's namespace holds loom's steering table (looked at from its host, by Docker's SandboxKey). */
async function hasLoomDnsTable(h: TestHost, ctr: string): Promise<boolean> {
  const key = await h.cliOk(['inspect', '-f', '{{.NetworkSettings.SandboxKey}}', ctr]);
  return (await h.exec(['nsenter', `--net=${key}`, 'nft', 'list', 'tables'])).stdout.includes('table ip loom_dns');
}

/** The IPv4 addresses `name` resolves to from `ctr` (busybox nslookup through the container's resolver). */
async function resolve(h: TestHost, ctr: string, name: string): Promise<string[]> {
  const r = await h.inContainer(ctr, ['nslookup', '-type=a', name], 15_000);
  const after = r.stdout.split(/^Name:/m).slice(1).join('\n');
  return [...after.matchAll(/^Address:\s*(\d+\.\d+\.\d+\.\d+)\s*$/gm)].map((m) => m[1] as string).sort();
}

test('names across nodes with the managed plugin: a task resolves the container name of a task on another node through loom', async () => {
  expect(tasks.length).toBe(3);
  for (const t of tasks) await waitFor(`loom's resolver in ${t.container.slice(0, 12)} on ${t.host.name}`, () => hasLoomDnsTable(t.host, t.container), 30_000, 250);
  const [a, b] = tasks as [(typeof tasks)[0], (typeof tasks)[0]];
  const bName = (await b.host.cliOk(['inspect', '-f', '{{.Name}}', b.container])).replace(/^\//, '');
  // loom on a's node knows b's task name as a remote one (learned on b's node, published in etcd).
  await waitFor(`${bName} known to loom on ${a.host.name}`, async () => {
    const names = (await unixRequest(a.host.adminSocket, 'GET', '/v1/names?network=swnet')).json as Array<{ name: string; v4: string[]; local: boolean }>;
    return names.some((n) => n.name === bName && n.v4.join() === b.ip && !n.local);
  }, 30_000, 250);
  await waitFor(`${bName} resolves in a task on ${a.host.name}`, async () => (await resolve(a.host, a.container, bName)).join() === b.ip, 15_000, 250);
  await waitFor(`${a.host.name} -> ${bName} by name`, async () => a.host.ping(a.container, bName, 1), 30_000, 250);
});
