/**
 * loom as a managed (v2) plugin of a real dockerd: `npm run plugin:build` (offline)
 * creates the plugin, then its whole life: `docker plugin set` and `enable`, a
 * network with loom as driver and IPAM, containers talking, `disable` refused while
 * in use, the driver scope setting, the plugin process killed with SIGKILL (Docker
 * restarts it), an upgrade (disable -f, rm -f, create the newer build, enable on the
 * same state mount) that keeps running containers connected and the network's
 * allocations, dockerd restarts with restart-policy containers, and service discovery
 * (cluster mode with a one-member etcd in the host's namespace): two containers on a loom
 * overlay resolve each other by name through loom's resolver in their namespaces, which the
 * plugin enters through its mount of Docker's exec root.
 *
 * The plugin is built once per file (about 40 s; the offline base image's tarball is
 * cached in /tmp/loom-e2e). Swarm (a global-scope network across three hosts) waits
 * for the overlay driver.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OUTSIDE_IP, TestHost } from '../helpers/test-host';
import { settle } from '../helpers/invariants';
import { buildPlugin, configurePlugin, MANAGED_PLUGIN_HOST, PLUGIN_NAME as NAME, PluginBuild, removePlugin } from '../helpers/managed-plugin';
import { killAndWait, runOk, stepTimer, waitFor } from '../helpers/run';
import { unixRequest } from '../helpers/unix-http';
import { LOOMD_NODE_FLAGS } from '../../driver/node-flags';

jest.setTimeout(600_000);

const ENTRYPOINT = ['/usr/local/bin/node', ...LOOMD_NODE_FLAGS, '/opt/loom/dist/driver/main.js'].join(' ');
const SUBNET = '198.18.60.0/24';

let host: TestHost;
let build: PluginBuild;
/** The one-member etcd of the service discovery test (in the host's namespace), when started. */
let etcdPid: number | undefined;
const ETCD = 'http://127.0.0.1:23790';
/** Durations of the slow steps, printed once at the end (run time is worth watching here). */
const { timings, timed } = stepTimer();

beforeAll(async () => {
  // The plugin's admin socket lives in its state mount: that is where loomState() (invariants) reads.
  host = await TestHost.create(MANAGED_PLUGIN_HOST);
  build = await timed('plugin:build', () => buildPlugin(host, { create: true }));
});

afterAll(async () => {
  if (!host) return;
  console.log(`Docker ${host.engine.id}: ${timings.join(', ')}`);
  try {
    await host.removeContainers();
    const nets = (await host.cli(['network', 'ls', '-q', '--filter', `driver=${NAME}`])).stdout.split('\n').filter(Boolean);
    if (nets.length) await host.cli(['network', 'rm', ...nets]);
    await removePlugin(host);
  } finally {
    if (etcdPid) await killAndWait(etcdPid, 'SIGTERM').catch(() => undefined);
    await host.destroy();
  }
});

const pluginId = (): Promise<string> => host.cliOk(['plugin', 'inspect', '-f', '{{.Id}}', NAME]);
const ipOf = (c: string, net = 'm1'): Promise<string> => host.containerIp(c, net);
const admin = async (p: string): Promise<any> => (await unixRequest(host.adminSocket, 'GET', p)).json; // eslint-disable-line @typescript-eslint/no-explicit-any
/** The plugin's socket as dockerd sees it (TestHost binds host.pluginDir over /run/docker/plugins). */
const pluginSocket = (id: string): string => path.join(host.pluginDir, id, 'loom.sock');

interface Proc {
  pid: number;
  ppid: number;
  argv: string[];
}

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      out.push({ pid: Number(e), ppid, argv: fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').filter(Boolean) });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/**
 * The plugin's loomd, identified precisely: the child running loom's entrypoint of the
 * containerd shim whose command line names this plugin's id in containerd's
 * "plugins.moby" namespace and this test host's containerd (never by name alone).
 */
function pluginPid(id: string): number | undefined {
  const procs = processes();
  const arg = (p: Proc, flag: string): string | undefined => p.argv[p.argv.indexOf(flag) + 1];
  const shims = procs.filter(
    (p) => path.basename(p.argv[0] ?? '').startsWith('containerd-shim') && arg(p, '-namespace') === 'plugins.moby' && arg(p, '-id') === id && p.argv.some((a) => a.startsWith(`${host.dir}/`)),
  );
  const kids = procs.filter((p) => shims.some((s) => s.pid === p.ppid) && p.argv.join(' ') === ENTRYPOINT);
  if (kids.length > 1) throw new Error(`more than one loomd for plugin ${id}: ${kids.map((k) => k.pid).join(' ')}`);
  return kids[0]?.pid;
}

async function capabilities(id: string): Promise<{ Scope: string; ConnectivityScope: string }> {
  const r = await unixRequest(pluginSocket(id), 'POST', '/NetworkDriver.GetCapabilities', undefined, 5_000);
  return r.json;
}

async function enable(): Promise<void> {
  await timed('enable', () => host.cliOk(['plugin', 'enable', NAME]));
  expect(await host.cliOk(['plugin', 'inspect', '-f', '{{.Enabled}}', NAME])).toBe('true');
}

/** The settings every run of this file gives the plugin (besides its state on the test host and this host's Docker API). */
const configure = (extra: string[] = []): Promise<void> => configurePlugin(host, ['LOOM_DEFAULT_POOLS=198.18.128.0/17:24,fd5c:10a::/48:64', ...extra]);

const waitRunning = (names: string[]): Promise<void> => host.waitRunning(names, 90_000);

test('npm run plugin:build creates the plugin from a rootfs with only what loomd needs at run time', async () => {
  const size = /rootfs (\S+),/.exec(build.log)?.[1];
  console.log(`plugin:build on Docker ${host.engine.id}: rootfs ${size}`);
  expect(size).toBeDefined();
  const rootfs = path.join(build.dir, 'rootfs');
  const has = (p: string): boolean => fs.existsSync(path.join(rootfs, p));
  for (const p of ['usr/local/bin/node', 'usr/bin/nsenter', 'usr/sbin/nft', 'usr/sbin/iptables', 'usr/sbin/ip6tables-restore', 'usr/sbin/tc', 'run/docker/plugins', 'opt/loom/dist/driver/main.js', 'opt/loom/package.json']) {
    expect([p, has(p)]).toEqual([p, true]);
  }
  // Native modules: only this platform's prebuilds.
  expect(fs.readdirSync(path.join(rootfs, 'opt/loom/node_modules/classic-level/prebuilds'))).toEqual(['linux-x64']);
  expect(fs.readdirSync(path.join(rootfs, 'opt/loom/node_modules/netlink/prebuilds'))).toEqual(['linux-x64']);
  // No dev dependencies, build tools, sources or tests.
  for (const p of ['opt/loom/node_modules/typescript', 'opt/loom/node_modules/jest', 'opt/loom/node_modules/ts-jest', 'opt/loom/node_modules/@types/jest', 'opt/loom/node_modules/@types/express', 'opt/loom/node_modules/fast-check', 'usr/local/lib/node_modules/npm', 'opt/loom/driver', 'opt/loom/test', 'opt/loom/tsconfig.json']) {
    expect([p, has(p)]).toEqual([p, false]);
  }
  const ts = (await runOk('find', [path.join(rootfs, 'opt/loom'), '-name', '*.ts', '-o', '-name', '*.map'])).trim();
  expect(ts).toBe('');
  // The plugin exists, disabled, with loom's interfaces.
  const plugin = JSON.parse(await host.cliOk(['plugin', 'inspect', NAME]))[0];
  expect(plugin.Enabled).toBe(false);
  // Docker 20.10 shows the types as strings, later engines as {Prefix, Capability, Version}.
  const types = (plugin.Config.Interface.Types as Array<string | { Prefix: string; Capability: string; Version: string }>).map((t) =>
    typeof t === 'string' ? t : `${t.Prefix}.${t.Capability}/${t.Version}`,
  );
  expect(types).toEqual(['docker.networkdriver/1.0', 'docker.ipamdriver/1.0']);
  expect(plugin.Config.Linux.Capabilities).toEqual(['CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_ADMIN']);
  const execMount = (plugin.Config.Mounts as Array<{ Name: string; Destination: string; Options: string[] }>).find((m) => m.Name === 'docker-exec');
  expect(execMount).toMatchObject({ Destination: '/run/loom/docker-exec', Options: ['rbind', 'ro', 'rslave'] });
});

test('LOOM_SCOPE=global makes loom a global-scope driver (what Swarm needs)', async () => {
  await configure(['LOOM_SCOPE=global']);
  await enable();
  try {
    expect(await capabilities(await pluginId())).toMatchObject({ Scope: 'global', ConnectivityScope: 'global' });
    const r = await host.cli(['network', 'create', '-d', NAME, '--ipam-driver', NAME, '--subnet', '198.18.61.0/24', 'g1']);
    if (host.engine.id === '20.10') {
      // Docker 20.10 creates networks of a global-scope driver only through a swarm manager.
      expect(r.stderr).toMatch(/not a swarm manager/);
    } else {
      // Docker 28 creates a node-local network that says "global" outside Swarm.
      expect(r.code).toBe(0);
      expect(await host.cliOk(['network', 'inspect', '-f', '{{.Scope}}', 'g1'])).toBe('global');
      await host.cliOk(['network', 'rm', 'g1']);
    }
  } finally {
    await host.cliOk(['plugin', 'disable', NAME]);
  }
});

test('set, enable, a loom network, two containers that ping each other; disable is refused while in use', async () => {
  await configure(['LOOM_SCOPE=local']);
  await enable();
  const id = await pluginId();
  expect(await capabilities(id)).toMatchObject({ Scope: 'local', ConnectivityScope: 'local' });
  await host.cliOk(['network', 'create', '-d', NAME, '--ipam-driver', NAME, '--subnet', SUBNET, 'm1']);
  expect(await host.cliOk(['network', 'inspect', '-f', '{{.Driver}} {{.IPAM.Driver}} {{.Scope}}', 'm1'])).toBe(`${NAME} ${NAME} local`);
  for (const c of ['ma', 'mb']) await host.cliOk(['run', '-d', '--init', '--name', c, '--network', 'm1', 'local/busybox', 'sleep', '3600']);
  expect(await host.ping('ma', await ipOf('mb'))).toBe(true);
  expect(await host.ping('mb', await ipOf('ma'))).toBe(true);
  expect(await host.ping('ma', OUTSIDE_IP)).toBe(true);

  // The admin socket is reachable on the host, in the state mount; the reconciler sees Docker.
  expect(await admin('/v1/status')).toMatchObject({ stateDir: '/var/lib/loom', networks: 1, endpoints: 2 });
  await waitFor('a reconcile pass with Docker\'s view', async () => (await admin('/v1/reconcile'))?.last?.dockerView === true, 20_000, 500);

  const r = await host.cli(['plugin', 'disable', NAME]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/in use/);
  expect(await timed('settle', () => settle(host))).toEqual([]);
});

test('kill -9 of the plugin process: Docker restarts it and the next docker run on its network works', async () => {
  const id = await pluginId();
  const pid = pluginPid(id);
  expect(pid).toBeDefined();
  process.kill(pid as number, 'SIGKILL');
  const again = await timed('plugin restarted after SIGKILL', () => waitFor('Docker to restart the plugin', async () => {
    const p = pluginPid(id);
    return p !== undefined && p !== pid ? p : undefined;
  }, 30_000, 100));
  expect(again).not.toBe(pid);
  await waitFor('the restarted plugin to answer', async () => (await capabilities(id)).Scope === 'local', 15_000, 100);
  await host.cliOk(['run', '-d', '--init', '--name', 'mc', '--network', 'm1', 'local/busybox', 'sleep', '3600']);
  expect(await host.ping('mc', await ipOf('ma'))).toBe(true);
  expect(await host.ping('ma', await ipOf('mc'))).toBe(true);
  expect(await timed('settle', () => settle(host))).toEqual([]);
});

test('upgrade (disable -f, rm -f, create the newer build, enable on the same state): connectivity and allocations are kept', async () => {
  const before = await admin('/v1/ipam');
  const allocations = (state: any): string[] => // eslint-disable-line @typescript-eslint/no-explicit-any
    state.find((p: { pool: string }) => p.pool === SUBNET).allocations.map((a: { address: string; kind: string }) => `${a.address} ${a.kind}`).sort();
  const oldVersion = (await admin('/v1/status')).version as string;

  // The "newer build": the same plugin directory with another version in loom's package.json.
  const v2 = path.join(host.dir, 'plugin-build-v2');
  await runOk('cp', ['-al', build.dir, v2]);
  const pkgPath = path.join(v2, 'rootfs/opt/loom/package.json');
  const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8'));
  pkg.version = `${oldVersion}-upgrade`;
  fs.writeFileSync(`${pkgPath}.new`, JSON.stringify(pkg, null, 2));
  fs.renameSync(`${pkgPath}.new`, pkgPath); // a new inode: the hard-linked original stays as it was

  // A ping from ma to mb runs through the whole upgrade (5 per second).
  const mbIp = await ipOf('mb');
  await host.cliOk(['exec', '-d', 'ma', 'sh', '-c', `echo $$ > /tmp/up.pid; exec ping -i 0.2 ${mbIp} > /tmp/up.log 2>&1`]);
  await waitFor('the ping to start', async () => (await host.inContainer('ma', ['cat', '/tmp/up.log'])).stdout.includes('seq='), 5_000, 100);

  const oldId = await pluginId();
  // Usually instant; sometimes 10 s after Docker restarted a killed plugin: dockerd misses the exit of
  // the restarted instance (loomd is gone within 0.1 s) and waits for its shutdown timeout.
  await timed('disable -f', () => host.cliOk(['plugin', 'disable', '-f', NAME]));
  // The data plane does not need loomd.
  expect(await host.ping('ma', await ipOf('mb'))).toBe(true);
  const rm = await host.cli(['plugin', 'rm', NAME]);
  expect(rm.stderr).toMatch(/in use/); // networks still refer to it
  await timed('rm -f', () => host.cliOk(['plugin', 'rm', '-f', NAME]));
  await timed('create (upgrade)', () => host.cliOk(['plugin', 'create', NAME, v2]));
  await configure();
  await enable();
  expect(await pluginId()).not.toBe(oldId);
  expect((await admin('/v1/status')).version).toBe(`${oldVersion}-upgrade`);
  expect(allocations(await admin('/v1/ipam'))).toEqual(allocations(before));

  // Not one ping lost (the last one may still be in flight when it is stopped).
  const log = (await host.cliOk(['exec', 'ma', 'sh', '-c', 'kill -INT $(cat /tmp/up.pid); sleep 0.5; cat /tmp/up.log'])).split('\n');
  const stats = /(\d+) packets transmitted, (\d+) packets received/.exec(log.find((l) => l.includes('transmitted')) ?? '');
  expect(stats).not.toBeNull();
  const [sent, received] = [Number(stats?.[1]), Number(stats?.[2])];
  console.log(`upgrade on Docker ${host.engine.id}: ${received}/${sent} pings answered during it`);
  expect(sent).toBeGreaterThan(10);
  expect(received).toBeGreaterThanOrEqual(sent - 1);

  for (const [a, b] of [['ma', 'mb'], ['mb', 'mc'], ['mc', 'ma']] as const) expect(await host.ping(a, await ipOf(b))).toBe(true);
  // The new plugin serves the existing network: a new container joins it with a fresh address.
  await host.cliOk(['run', '-d', '--init', '--name', 'md', '--network', 'm1', 'local/busybox', 'sleep', '3600']);
  const ips = await Promise.all(['ma', 'mb', 'mc', 'md'].map((c) => ipOf(c)));
  expect(new Set(ips).size).toBe(4);
  expect(await host.ping('md', ips[0] as string)).toBe(true);
  await host.cliOk(['rm', '-f', 'md']);
  expect(await timed('settle', () => settle(host))).toEqual([]);
});

test('dockerd restarts with the managed plugin: networks and --restart always containers come back', async () => {
  for (const c of ['ma', 'mb', 'mc']) await host.cliOk(['rm', '-f', c]);
  for (const c of ['r1', 'r2']) await host.cliOk(['run', '-d', '--init', '--restart', 'always', '--name', c, '--network', 'm1', 'local/busybox', 'sleep', '86400']);
  const id = await pluginId();

  await timed('dockerd stop', () => host.stopDockerd('SIGTERM'));
  expect(pluginPid(id)).toBeUndefined(); // dockerd stops its plugins (no live-restore)
  await timed('dockerd start', () => host.startDockerd());
  await timed('restart-policy containers back', () => waitRunning(['r1', 'r2']));
  expect(await host.cliOk(['plugin', 'inspect', '-f', '{{.Enabled}}', NAME])).toBe('true');
  expect(pluginPid(id)).toBeDefined();
  expect(await host.cliOk(['network', 'inspect', '-f', '{{.Driver}}', 'm1'])).toBe(NAME);
  expect(await host.ping('r1', await ipOf('r2'))).toBe(true);
  expect(await host.ping('r2', await ipOf('r1'))).toBe(true);
  expect(await host.ping('r1', OUTSIDE_IP)).toBe(true);
  // The restarted plugin reaches the new dockerd's API socket again.
  await waitFor('a reconcile pass with Docker\'s view', async () => (await admin('/v1/reconcile'))?.last?.dockerView === true, 20_000, 500);
  expect(await timed('settle', () => settle(host))).toEqual([]);

  // And after a SIGKILL of dockerd (its plugin keeps running under its shim until dockerd is back).
  await host.stopDockerd('SIGKILL');
  expect(pluginPid(id)).toBeDefined();
  await host.startDockerd();
  await waitRunning(['r1', 'r2']);
  expect(await host.ping('r1', await ipOf('r2'))).toBe(true);
  expect(await timed('settle', () => settle(host))).toEqual([]);
});

/** Whether the container's namespace holds loom's steering table (looked at from the host, by Docker's SandboxKey). */
async function hasLoomDnsTable(ctr: string): Promise<boolean> {
  const key = await host.cliOk(['inspect', '-f', '{{.NetworkSettings.SandboxKey}}', ctr]);
  return (await host.exec(['nsenter', `--net=${key}`, 'nft', 'list', 'tables'])).stdout.includes('table ip loom_dns');
}

/** The IPv4 addresses `name` resolves to from `ctr` (busybox nslookup through the container's resolver, 127.0.0.11). */
async function resolve(ctr: string, name: string): Promise<string[]> {
  const r = await host.inContainer(ctr, ['nslookup', '-type=a', name], 15_000);
  const after = r.stdout.split(/^Name:/m).slice(1).join('\n');
  return [...after.matchAll(/^Address:\s*(\d+\.\d+\.\d+\.\d+)\s*$/gm)].map((m) => m[1] as string).sort();
}

test('service discovery: two containers on a loom overlay of the managed plugin resolve each other by name through loom\'s resolver', async () => {
  // Cluster mode (discovery runs on overlays): a one-member etcd on the host's loopback.
  etcdPid = host.spawnService([
    'etcd', '--name', 'e2e', '--data-dir', path.join(host.dir, 'etcd'),
    '--listen-client-urls', ETCD, '--advertise-client-urls', ETCD,
    '--listen-peer-urls', 'http://127.0.0.1:23800', '--initial-advertise-peer-urls', 'http://127.0.0.1:23800',
    '--initial-cluster', 'e2e=http://127.0.0.1:23800',
  ], 'etcd.log');
  await waitFor('etcd', async () => (await host.exec(['etcdctl', `--endpoints=${ETCD}`, 'endpoint', 'health'], { timeoutMs: 5_000 })).code === 0, 30_000, 200);
  // The earlier tests' containers and network go; settings change only while the plugin is disabled.
  await host.removeContainers();
  await host.cliOk(['network', 'rm', 'm1']);
  await host.cliOk(['plugin', 'disable', NAME]);
  await configure(['LOOM_SCOPE=local', `LOOM_ETCD_ENDPOINTS=${ETCD}`, 'LOOM_METRICS=127.0.0.1:9323']);
  await enable();
  await host.cliOk(['network', 'create', '-d', NAME, '--ipam-driver', NAME, '-o', 'loom.mode=overlay', '--subnet', '198.18.62.0/24', 'n1']);
  for (const c of ['na', 'nb']) await host.cliOk(['run', '-d', '--init', '--name', c, '--network', 'n1', 'local/busybox', 'sleep', '3600']);
  // loomd found its netns directory receiving mount propagation (no start-up warning; the test
  // host's exec root is a shared mount, like / on a systemd host).
  const pluginLog = (re: RegExp): string[] => fs.readFileSync(path.join(host.dir, 'dockerd.log'), 'utf8').split('\n').filter((l) => re.test(l));
  expect(pluginLog(/will not resolve through loom/)).toEqual([]);
  // The plugin entered both namespaces (started after it: the rslave mount shows them).
  for (const c of ['na', 'nb']) await timed(`resolver attached in ${c}`, () => waitFor(`loom's resolver in ${c}`, () => hasLoomDnsTable(c), 20_000, 200));
  const [na, nb] = [await ipOf('na', 'n1'), await ipOf('nb', 'n1')];
  await waitFor('nb resolves in na', async () => (await resolve('na', 'nb')).join() === nb, 15_000, 200);
  await waitFor('na resolves in nb', async () => (await resolve('nb', 'na')).join() === na, 15_000, 200);
  expect(await host.ping('na', 'nb')).toBe(true);

  // The queries went through loom's resolver (local names: relayed to Docker's) ...
  const metrics = await host.execOk(['curl', '-sf', 'http://127.0.0.1:9323/metrics']);
  const relayed = Number(/^loom_dns_queries_total\{result="relayed"\} (\d+)/m.exec(metrics)?.[1] ?? 0);
  expect(relayed).toBeGreaterThanOrEqual(2);
  // ... which knows both names (learned from Docker through the API socket).
  const names = (await admin('/v1/names?network=n1')) as Array<{ name: string; v4: string[]; local: boolean }>;
  expect(names).toEqual(expect.arrayContaining([
    expect.objectContaining({ name: 'na', v4: [na], local: true }),
    expect.objectContaining({ name: 'nb', v4: [nb], local: true }),
  ]));
  expect(pluginLog(/dns socket helper .* exited/)).toEqual([]);
});
