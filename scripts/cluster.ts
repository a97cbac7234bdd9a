/**
 * `npm run cluster -- up [--hosts N] [--rebuild] [--from-registry] | demo | down [--images]`: a multi-host loom
 * cluster on one machine (issue 17, docs/overlay.md "A cluster on one machine in one command").
 *
 *   up    a user-defined network of the outer engine (198.19.240.0/24, LOOM_CLUSTER_SUBNET), a
 *         3-member etcd (containers of loom's DinD image running its etcd, from Debian's etcd-server) and N
 *         privileged DinD nodes (loom's image, plugin-config/dind/) whose loomd joins that etcd
 *         (LOOM_ETCD_ENDPOINTS, LOOM_ADVERTISE_ADDRESS); every inner engine also answers on
 *         tcp://NODE_IP:2375 and has local/busybox (the image's static busybox).
 *   demo  an overlay across the nodes, one container per node, pings by IP and by name.
 *   down  removes exactly what `up` recorded in the state file; idempotent.
 *
 * The outer engine is the local one if it answers (DOCKER_HOST, DOCKER = the CLI), otherwise a
 * private engine in its own namespaces, the quick start's (test/helpers/test-host.ts), kept after
 * `up` exits and removed by `down`. The image is built with `npm run dind:build` when the outer
 * engine does not have it or has one built from another source (its org.loom.source label,
 * test/helpers/dind.ts's dindSourceKey); --rebuild: always. It is built offline from this host's
 * Debian apt mirror, or from public base images with a registry (`npm run dind:build --
 * --from-registry`, plugin-config/dind/Dockerfile) with --from-registry or when this host has no
 * Debian bookworm apt mirror (a laptop with Docker); `up` says which and why.
 *
 * Environment: LOOM_CLUSTER_STATE (default /var/lib/loom-cluster/state.json), LOOM_CLUSTER_SUBNET
 * (a /24 in 198.18.0.0/15), LOOM_CLUSTER_PREFIX (container and network names, default loom-),
 * LOOM_DIND_IMAGE (default loom/dind:latest).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, TestHost } from '../test/helpers/test-host';
import { DOCKER28_PREFIX, Engine, engineFromEnv } from '../test/helpers/engines';
import { run, RunResult, sleep } from '../test/helpers/run';
import { dindSourceKey } from '../test/helpers/dind';

const STATE = process.env.LOOM_CLUSTER_STATE ?? '/var/lib/loom-cluster/state.json';
const PREFIX = process.env.LOOM_CLUSTER_PREFIX ?? 'loom-';
const IMAGE = process.env.LOOM_DIND_IMAGE ?? 'loom/dind:latest';
const SUBNET = process.env.LOOM_CLUSTER_SUBNET ?? '198.19.240.0/24';
const DEMO_NET = 'loom-demo';
const DEMO_SUBNET = '198.19.250.0/24';
const ETCD_MEMBERS = 3;

const step = (msg: string): void => console.log(`\n==> ${msg}`);

/** What `up` created, written after every step so that `down` (also after a failed `up`) removes exactly that. */
interface State {
  /** The outer engine: the local one (its CLI and DOCKER_HOST), or a private TestHost. */
  engine: { kind: 'local'; client: string; dockerHost?: string } | { kind: 'private'; host: string; id: Engine['id']; dockerdPid: number; sock: string };
  network?: string;
  containers: string[];
  nodes: Array<{ name: string; ip: string }>;
  etcd: string[];
  /** Set when `up` built (or rebuilt) the image, so `down --images` may remove it. */
  builtImage?: string;
  image: string;
}

class ClusterError extends Error {}

function loadState(): State | undefined {
  if (!fs.existsSync(STATE)) return undefined;
  return JSON.parse(fs.readFileSync(STATE, 'utf8')) as State;
}

function saveState(s: State): void {
  fs.mkdirSync(path.dirname(STATE), { recursive: true });
  fs.writeFileSync(`${STATE}.tmp`, JSON.stringify(s, null, 2));
  fs.renameSync(`${STATE}.tmp`, STATE);
}

/** The outer engine's docker CLI, as the state names it. */
function outer(s: State): { client: string; env: NodeJS.ProcessEnv; hostArgs: string[] } {
  if (s.engine.kind === 'local') {
    const env = { ...process.env };
    if (s.engine.dockerHost) env.DOCKER_HOST = s.engine.dockerHost;
    return { client: s.engine.client, env, hostArgs: [] };
  }
  const engine = engineOf(s.engine.id);
  return { client: engine.client, env: engine.env, hostArgs: ['-H', `unix://${s.engine.sock}`] };
}

function docker(s: State, args: string[], timeoutMs = 120_000, input?: string): Promise<RunResult> {
  const o = outer(s);
  return run(o.client, [...o.hostArgs, ...args], { env: o.env, timeoutMs, input });
}

async function dockerOk(s: State, args: string[], timeoutMs = 120_000): Promise<string> {
  const r = await docker(s, args, timeoutMs);
  if (r.code !== 0) throw new ClusterError(`docker ${args.join(' ')} exited ${r.code}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout.trim();
}

function engineOf(id: Engine['id']): Engine {
  const saved = process.env.LOOM_TEST_ENGINE;
  process.env.LOOM_TEST_ENGINE = id;
  try {
    return engineFromEnv();
  } finally {
    if (saved === undefined) delete process.env.LOOM_TEST_ENGINE;
    else process.env.LOOM_TEST_ENGINE = saved;
  }
}

/** Bounded retries of `fn` until it returns true; false after `timeoutMs`. */
async function until(fn: () => Promise<boolean>, timeoutMs: number, everyMs = 250): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000 && Date.now() < end; i++) {
    if (await fn()) return true;
    await sleep(everyMs);
  }
  return false;
}

function subnetBase(): string {
  const m = /^198\.(18|19)\.(\d{1,3})\.0\/24$/.exec(SUBNET);
  if (!m || Number(m[2]) > 255) throw new ClusterError(`LOOM_CLUSTER_SUBNET must be a /24 in 198.18.0.0/15 (x.y.z.0/24), got ${SUBNET}`);
  return `198.${m[1]}.${m[2]}`;
}

// ---- up -------------------------------------------------------------------------------------------

async function up(hosts: number, rebuild: boolean, fromRegistry: boolean): Promise<void> {
  if (loadState()) throw new ClusterError(`a cluster is already up (${STATE}): npm run cluster -- down first`);
  if (!Number.isInteger(hosts) || hosts < 1 || hosts > 50) throw new ClusterError(`--hosts must be 1..50, got ${hosts}`);
  const base = subnetBase();
  const t0 = Date.now();
  const s: State = { engine: await outerEngine(), containers: [], nodes: [], etcd: [], image: IMAGE };
  saveState(s);
  try {
    // Names already taken are refused before anything is made: down removes every recorded name.
    const net = `${PREFIX}cluster`;
    const names = [...Array.from({ length: ETCD_MEMBERS }, (_, i) => `${PREFIX}etcd${i + 1}`), ...Array.from({ length: hosts }, (_, i) => `${PREFIX}node${i + 1}`)];
    const taken: string[] = [];
    for (const n of names) if ((await docker(s, ['container', 'inspect', n], 30_000)).code === 0) taken.push(`container ${n}`);
    if ((await docker(s, ['network', 'inspect', net], 30_000)).code === 0) taken.push(`network ${net}`);
    if (taken.length) throw new ClusterError(`the engine already has ${taken.join(', ')} (not made by this up): remove them, or set LOOM_CLUSTER_PREFIX (and LOOM_CLUSTER_SUBNET) for a second cluster`);
    await ensureImage(s, rebuild, fromRegistry);
    step(`docker network create --subnet ${SUBNET} ${net}`);
    await dockerOk(s, ['network', 'create', '--label', 'loom.cluster=1', '--subnet', SUBNET, '--gateway', `${base}.1`, net]);
    s.network = net;
    saveState(s);

    const etcdIps = Array.from({ length: ETCD_MEMBERS }, (_, i) => `${base}.${11 + i}`);
    const initial = etcdIps.map((ip, i) => `${PREFIX}etcd${i + 1}=http://${ip}:2380`).join(',');
    const endpoints = etcdIps.map((ip) => `http://${ip}:2379`).join(',');
    step(`a 3-member etcd: ${etcdIps.join(', ')}`);
    for (const [i, ip] of etcdIps.entries()) {
      const name = `${PREFIX}etcd${i + 1}`;
      s.containers.push(name);
      s.etcd.push(name);
      saveState(s);
      await dockerOk(s, ['run', '-d', '--name', name, '--hostname', name, '--label', 'loom.cluster=1', '--network', net, '--ip', ip,
        '--entrypoint', '/usr/local/bin/etcd', IMAGE, '--name', name, '--data-dir', '/var/lib/etcd/data',
        '--listen-client-urls', `http://${ip}:2379`, '--advertise-client-urls', `http://${ip}:2379`,
        '--listen-peer-urls', `http://${ip}:2380`, '--initial-advertise-peer-urls', `http://${ip}:2380`,
        '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', `${PREFIX}cluster`]);
    }
    const healthy = await until(async () => {
      const r = await docker(s, ['exec', s.etcd[0] as string, 'bash', '-c',
        `exec 3<>/dev/tcp/${etcdIps[0]}/2379 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && timeout 2 cat <&3`], 10_000);
      return /"health":\s*"true"/.test(r.stdout);
    }, 60_000, 500);
    if (!healthy) throw new ClusterError(`etcd is not healthy after 60 s:\n${(await docker(s, ['logs', '--tail', '20', s.etcd[0] as string])).stderr}`);

    step(`${hosts} DinD node(s) with loomd joined to ${endpoints}`);
    for (let i = 1; i <= hosts; i++) {
      const name = `${PREFIX}node${i}`;
      const ip = `${base}.${20 + i}`;
      s.containers.push(name);
      s.nodes.push({ name, ip });
      saveState(s);
      await dockerOk(s, ['run', '-d', '--privileged', '--name', name, '--hostname', name, '--label', 'loom.cluster=1', '--network', net, '--ip', ip,
        '-e', `LOOM_ETCD_ENDPOINTS=${endpoints}`, '-e', `LOOM_ADVERTISE_ADDRESS=${ip}`, '-e', 'LOOM_DIND_TCP=0.0.0.0:2375', IMAGE]).catch((err: Error) => {
        if (!/apply caps|operation not permitted/i.test(err.message)) throw err;
        throw new ClusterError(`${err.message}\nthis engine cannot start privileged containers here: Docker 20.10 asks runc for every capability the kernel knows and this machine's bounding set lacks some (docs/ci.md); use Docker 23 or later (bash test/setup-docker28.sh installs a private 28.5 that up then uses)`);
      });
    }
    for (const n of s.nodes) {
      const ready = await until(async () => {
        const state = (await docker(s, ['inspect', '-f', '{{.State.Running}}', n.name])).stdout.trim();
        if (state !== 'true') return true; // reported below
        return (await docker(s, ['exec', n.name, 'docker', 'version', '-f', '{{.Server.Version}}'], 10_000)).code === 0;
      }, 90_000, 500);
      const running = (await docker(s, ['inspect', '-f', '{{.State.Running}}', n.name])).stdout.trim() === 'true';
      if (!ready || !running) {
        const logs = await docker(s, ['logs', '--tail', '30', n.name]);
        throw new ClusterError(`node ${n.name} did not start its inner engine${running ? ' within 90 s' : ''}:\n${logs.stdout}${logs.stderr}`);
      }
      // local/busybox inside the node, from the image's own static busybox (no registry needed)
      await dockerOk(s, ['exec', n.name, 'sh', '-c',
        'set -e; d=$(mktemp -d); mkdir $d/bin; cp /bin/busybox $d/bin/; for a in $(/bin/busybox --list); do [ -e $d/bin/$a ] || ln -s busybox $d/bin/$a; done; ' +
        'tar -C $d -c . | docker import -c \'CMD ["/bin/sh"]\' - local/busybox >/dev/null; rm -rf $d'], 60_000);
    }
    step(`the cluster is up (${((Date.now() - t0) / 1000).toFixed(1)} s); state in ${STATE}`);
    printUsage(s);
  } catch (err) {
    console.error(`\nup failed: ${err instanceof Error ? err.message : String(err)}\n==> removing what it made`);
    await down(false);
    throw new ClusterError('up failed (everything it made is removed)');
  }
}

/** The local engine if one answers; otherwise a private one (the quick start's sandbox), kept running. */
async function outerEngine(): Promise<State['engine']> {
  const client = process.env.DOCKER ?? 'docker';
  const local = await run(client, ['version', '-f', '{{.Server.Version}}'], { timeoutMs: 10_000 });
  if (local.code === 0) {
    step(`using the local Docker engine ${local.stdout.trim()}${process.env.DOCKER_HOST ? ` at ${process.env.DOCKER_HOST}` : ''}`);
    return { kind: 'local', client, dockerHost: process.env.DOCKER_HOST };
  }
  // Docker 20.10's --privileged fails on kernels whose bounding set lacks a capability it asks for
  // (docs/ci.md): the private engine is Docker 28 when test/setup-docker28.sh installed it.
  const id: Engine['id'] = (process.env.LOOM_TEST_ENGINE as Engine['id'] | undefined) ?? (fs.existsSync(path.join(DOCKER28_PREFIX, 'usr/sbin/dockerd')) ? '28.5' : '20.10');
  const engine = engineOf(id);
  if (!fs.existsSync(engine.dockerd)) {
    throw new ClusterError(`no Docker engine answers (${client} version: ${(local.stderr || local.stdout).trim().split('\n').pop()}) and there is no dockerd to start a private one (${engine.dockerd}): install docker.io (bash scripts/setup-host.sh quickstart) or start your engine`);
  }
  step(`no local Docker engine answers: starting a private one (Docker ${id}) in its own namespaces`);
  let host: TestHost;
  try {
    host = await TestHost.create({ engine });
  } catch (err) {
    throw new ClusterError(`could not start a private Docker engine: ${err instanceof Error ? err.message : String(err)}`);
  }
  host.detach();
  return { kind: 'private', host: host.name, id, dockerdPid: host.dockerdPid as number, sock: host.dockerSock };
}

/**
 * How `up` builds the image: from public base images with a registry when asked (--from-registry)
 * or when this host has no Debian bookworm apt mirror (test/fresh-machine/rootfs.sh's host_mirror),
 * otherwise offline from that mirror.
 */
async function imageBuildPath(fromRegistry: boolean): Promise<{ registry: boolean; why: string }> {
  if (fromRegistry) return { registry: true, why: 'from public base images with a registry (--from-registry)' };
  const r = await run('bash', ['-c', `source "$1" && host_mirror`, 'bash', `${REPO}/test/fresh-machine/rootfs.sh`], { timeoutMs: 30_000 });
  if (r.code !== 0 || !r.stdout.trim()) return { registry: true, why: 'from public base images with a registry: this host has no Debian bookworm apt mirror' };
  return { registry: false, why: `offline from this host's Debian mirror ${r.stdout.trim()} (--from-registry: from public base images)` };
}

async function ensureImage(s: State, rebuild: boolean, fromRegistry: boolean): Promise<void> {
  const key = await dindSourceKey();
  if (!rebuild && (await docker(s, ['image', 'inspect', IMAGE], 30_000)).code === 0) {
    const label = (await docker(s, ['image', 'inspect', '-f', '{{index .Config.Labels "org.loom.source"}}', IMAGE], 30_000)).stdout.trim();
    if (key === undefined || label === key) {
      step(`using the image ${IMAGE}${label ? ` (built from ${label})` : ''}; --rebuild rebuilds it from this checkout`);
      return;
    }
    step(`the image ${IMAGE} was built from ${label && label !== '<no value>' ? label : 'another source'}, this checkout is ${key}: rebuilding it`);
  }
  const how = await imageBuildPath(fromRegistry);
  step(how.registry
    ? `npm run dind:build -- --from-registry: loom's DinD image ${IMAGE}, ${how.why}`
    : `npm run dind:build: loom's DinD image ${IMAGE}, ${how.why} (the Debian root filesystem is cached under /var/cache/loom-dind)`);
  const o = outer(s);
  const env: NodeJS.ProcessEnv = { ...o.env, DOCKER: o.client, LOOM_DIND_IMAGE: IMAGE, ...(key ? { LOOM_DIND_SOURCE: key } : {}) };
  if (s.engine.kind === 'private') env.DOCKER_HOST = `unix://${s.engine.sock}`;
  const t0 = Date.now();
  const r = await run('npm', ['--prefix', REPO, 'run', 'dind:build', ...(how.registry ? ['--', '--from-registry'] : [])], { env, timeoutMs: 900_000 });
  if (r.code !== 0) {
    throw new ClusterError(`image build failed (npm run dind:build exited ${r.code}):\n${(r.stdout + r.stderr).trim().split('\n').slice(-25).join('\n')}`);
  }
  s.builtImage = IMAGE;
  saveState(s);
  console.log(`built ${IMAGE} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

function printUsage(s: State): void {
  const o = outer(s);
  const cli = [o.client === 'docker' ? 'docker' : o.client, ...o.hostArgs].join(' ');
  console.log('\nEach node is a Docker host with loom (driver "loom") joined to the cluster:');
  for (const n of s.nodes) {
    if (s.engine.kind === 'local') console.log(`  ${n.name}  ${n.ip}   DOCKER_HOST=tcp://${n.ip}:2375 docker ps    or   ${cli} exec -it ${n.name} docker ps`);
    else console.log(`  ${n.name}  ${n.ip}   ${cli} exec -it ${n.name} docker ps   (the private engine's network is not reachable from this namespace)`);
  }
  console.log(`\nAn overlay on all nodes:  ${cli} exec ${s.nodes[0]?.name} docker network create -d loom --ipam-driver loom -o loom.mode=overlay --subnet ${DEMO_SUBNET} blue`);
  console.log('Then: npm run cluster -- demo   (an overlay, a container per node, pings by IP and name)');
  console.log('      npm run cluster -- down   (removes all of it)');
}

// ---- demo -----------------------------------------------------------------------------------------

async function demo(): Promise<void> {
  const s = loadState();
  if (!s || s.nodes.length === 0) throw new ClusterError(`no cluster is up (${STATE}): npm run cluster -- up`);
  const inner = (node: string, args: string[], timeoutMs = 60_000): Promise<RunResult> => docker(s, ['exec', node, 'docker', ...args], timeoutMs);
  const innerOk = async (node: string, args: string[], timeoutMs = 60_000): Promise<string> => {
    const r = await inner(node, args, timeoutMs);
    if (r.code !== 0) throw new ClusterError(`${node}: docker ${args.join(' ')} exited ${r.code}: ${(r.stderr || r.stdout).trim()}`);
    return r.stdout.trim();
  };
  const first = s.nodes[0]!.name;
  const names = s.nodes.map((n) => `demo-${n.name}`);
  // a previous demo's containers and overlay go first (the demo can be run again)
  for (const [i, n] of s.nodes.entries()) await inner(n.name, ['rm', '-f', names[i] as string]);
  if ((await inner(first, ['network', 'inspect', DEMO_NET])).code === 0) {
    await innerOk(first, ['network', 'rm', DEMO_NET]);
    await until(async () => {
      for (const n of s.nodes) if ((await inner(n.name, ['network', 'inspect', DEMO_NET])).code === 0) return false;
      return true;
    }, 30_000, 500);
  }
  step(`${first}: docker network create -d loom --ipam-driver loom -o loom.mode=overlay --subnet ${DEMO_SUBNET} ${DEMO_NET}`);
  await innerOk(first, ['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '-o', 'loom.mode=overlay', '--subnet', DEMO_SUBNET, DEMO_NET]);
  const everywhere = await until(async () => {
    for (const n of s.nodes) if ((await inner(n.name, ['network', 'inspect', DEMO_NET], 10_000)).code !== 0) return false;
    return true;
  }, 30_000, 250);
  if (!everywhere) throw new ClusterError(`${DEMO_NET} did not appear on every node within 30 s (etcd, loomd: docker logs ${s.nodes[1]?.name ?? first})`);
  console.log(`${DEMO_NET} exists on ${s.nodes.map((n) => n.name).join(', ')}`);

  step('a container on every node');
  const ips: string[] = [];
  for (const [i, n] of s.nodes.entries()) {
    await innerOk(n.name, ['run', '-d', '--init', '--name', names[i] as string, '--hostname', names[i] as string, '--network', DEMO_NET, 'local/busybox', 'sleep', '1d']);
    ips.push(await innerOk(n.name, ['inspect', '-f', `{{(index .NetworkSettings.Networks "${DEMO_NET}").IPAddress}}`, names[i] as string]));
    console.log(`  ${names[i]} on ${n.name}: ${ips[i]}`);
  }

  step('every container pings every other one, by IP and by name');
  const failed: string[] = [];
  for (const [i, n] of s.nodes.entries()) {
    for (const [j] of s.nodes.entries()) {
      if (i === j) continue;
      for (const target of [ips[j] as string, names[j] as string]) {
        // names are published in the background after a container starts: a few seconds at most
        let last: RunResult | undefined;
        const ok = await until(async () => {
          last = await inner(n.name, ['exec', names[i] as string, 'ping', '-c', '1', '-W', '1', target], 10_000);
          return last.code === 0;
        }, 20_000, 500);
        const rtt = /time=([\d.]+ ms)/.exec(last?.stdout ?? '')?.[1];
        console.log(`  ${names[i]} -> ${target.padEnd(18)} ${ok ? `ok (${rtt ?? '?'})` : `FAILED: ${(last?.stdout ?? '').trim().split('\n').pop()} ${(last?.stderr ?? '').trim()}`}`);
        if (!ok) failed.push(`${names[i]} -> ${target}`);
      }
    }
  }
  if (failed.length) throw new ClusterError(`${failed.length} ping(s) failed: ${failed.join(', ')}`);
  step(`done: containers on ${s.nodes.length} nodes reach each other over the loom overlay ${DEMO_NET}, by IP and by name (they keep running; npm run cluster -- down removes everything)`);
}

// ---- down -----------------------------------------------------------------------------------------

async function down(images: boolean): Promise<void> {
  const s = loadState();
  if (!s) {
    step(`no cluster state (${STATE}): nothing to remove`);
    return;
  }
  const errors: string[] = [];
  const engineUp = s.engine.kind === 'local' || (await docker(s, ['version'], 10_000)).code === 0;
  if (engineUp) {
    for (const c of [...s.containers].reverse()) {
      step(`docker rm -f -v ${c}`);
      const r = await docker(s, ['rm', '-f', '-v', c], 180_000);
      if (r.code !== 0 && !/No such container/i.test(r.stderr)) errors.push(`rm ${c}: ${r.stderr.trim()}`);
    }
    if (s.network) {
      step(`docker network rm ${s.network}`);
      const r = await docker(s, ['network', 'rm', s.network], 60_000);
      if (r.code !== 0 && !/not found|No such network/i.test(r.stderr)) errors.push(`network rm ${s.network}: ${r.stderr.trim()}`);
    }
    if (images && s.builtImage && s.engine.kind === 'local') {
      step(`docker image rm ${s.builtImage} (built by up)`);
      const r = await docker(s, ['image', 'rm', s.builtImage], 60_000);
      if (r.code !== 0 && !/No such image/i.test(r.stderr)) errors.push(`image rm ${s.builtImage}: ${r.stderr.trim()}`);
    } else if (images && s.engine.kind === 'local') {
      step(`keeping ${s.image}: up did not build it (docker image rm ${s.image} removes it)`);
    }
  }
  if (s.engine.kind === 'private') {
    step(`stopping the private engine ${s.engine.host} and removing its namespaces, mounts and files`);
    await TestHost.adopt(s.engine.host, engineOf(s.engine.id), s.engine.dockerdPid).destroy();
  }
  if (errors.length) throw new ClusterError(`down left something behind (run it again): ${errors.join('; ')}`);
  fs.rmSync(STATE, { force: true });
  step('the cluster is removed');
}

// ---- main -----------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  if (process.getuid?.() !== 0) throw new ClusterError('run as root: the cluster runs privileged containers (and may start a private engine)');
  const flag = (name: string): boolean => rest.includes(name);
  const value = (name: string): string | undefined => {
    const i = rest.indexOf(name);
    return i >= 0 ? rest[i + 1] : rest.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
  };
  switch (cmd) {
    case 'up':
      return up(Number(value('--hosts') ?? 3), flag('--rebuild'), flag('--from-registry'));
    case 'demo':
      return demo();
    case 'down':
      return down(flag('--images'));
    default:
      throw new ClusterError('usage: npm run cluster -- up [--hosts N] [--rebuild] [--from-registry] | demo | down [--images]');
  }
}

main().catch((err) => {
  console.error(`cluster: ${err instanceof ClusterError ? err.message : err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exit(1);
});
