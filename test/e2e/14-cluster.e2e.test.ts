/**
 * `npm run cluster -- up | demo | down` (issue 17 point 3, scripts/cluster.ts) as a user runs it,
 * against a TestHost's engine as "the local Docker engine" (DOCKER_HOST, DOCKER): up with 3 nodes
 * (3-member etcd, 3 privileged DinD nodes of loom's image with loomd joined to it), the printed
 * DOCKER_HOST of a node answers, demo (an overlay, a container per node, every pair pinging by IP
 * and by name), then `down --images` leaves the engine and the host's namespaces as they were:
 * no container, network, volume, image, network namespace, link or mount of the run.
 *
 * Docker 28.5 pass only, like 13-dind and for the same reason (Docker 20.10's --privileged fails
 * on these machines' capability bounding set). The image build reuses 13-dind's cached rootfs.
 */
import * as path from 'node:path';
import { REPO, TestHost } from '../helpers/test-host';
import { run, RunResult } from '../helpers/run';
import { engineFromEnv } from '../helpers/engines';

jest.setTimeout(900_000);

const OUTER_OK = engineFromEnv().id === '28.5';
const maybe = OUTER_OK ? test : test.skip;
if (!OUTER_OK) console.log('14-cluster: runs with LOOM_TEST_ENGINE=28.5 only (npm run test:e2e:28): see 13-dind');

const IMAGE = 'loom/dind:cluster-test';
let host: TestHost;
let env: NodeJS.ProcessEnv;
let upDone = false;
const timings: string[] = [];

async function cluster(args: string[], timeoutMs = 900_000): Promise<RunResult> {
  const t0 = Date.now();
  const r = await run('npm', ['--prefix', REPO, 'run', 'cluster', '--', ...args], { env, timeoutMs });
  timings.push(`${args[0]} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return r;
}

async function clusterOk(args: string[]): Promise<string> {
  const r = await cluster(args);
  if (r.code !== 0) throw new Error(`npm run cluster -- ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/**
 * What a run could leave behind on the outer engine and in its host's namespaces. /run/netns is
 * the machine's (shared with the host's mount namespace): other test runs' hosts (loomt-*) come
 * and go there meanwhile and are left out.
 */
async function snapshot(): Promise<Record<string, string[]>> {
  // Other runs on the machine (test hosts loomt-*, benchmark namespaces loomb-*) come and go meanwhile.
  const foreign = (l: string): boolean => (/loomt-[0-9a-z]+/.test(l) && !l.includes(`loomt-${host.name}`)) || /^loomb-/.test(l);
  const lines = (s: string): string[] => s.split('\n').map((l) => l.trim()).filter((l) => l && !foreign(l)).sort();
  const mounts = (await host.execOk(['cat', '/proc/self/mountinfo'])).split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m && !foreign(m));
  return {
    containers: lines(await host.cliOk(['ps', '-a', '--format', '{{.Names}}'])),
    networks: lines(await host.cliOk(['network', 'ls', '--format', '{{.Name}}'])),
    volumes: lines(await host.cliOk(['volume', 'ls', '-q'])),
    images: lines(await host.cliOk(['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}'])),
    netns: lines(await host.execOk(['ip', 'netns', 'list'])),
    links: lines(await host.execOk(['ip', '-o', 'link', 'show'])).map((l) => l.split(':')[1]?.trim().split('@')[0] ?? l).sort(),
    mounts: [...new Set(mounts)].sort(),
  };
}

beforeAll(async () => {
  if (!OUTER_OK) return;
  host = await TestHost.create();
  env = {
    ...host.engine.env,
    DOCKER_HOST: `unix://${host.dockerSock}`,
    DOCKER: host.engine.client,
    LOOM_DIND_IMAGE: IMAGE,
    LOOM_CLUSTER_STATE: path.join(host.dir, 'cluster-state.json'),
  };
});

afterAll(async () => {
  if (!host) return;
  console.log(`cluster on Docker ${host.engine.id}: ${timings.join(', ')}`);
  try {
    if (upDone) await cluster(['down', '--images'], 300_000);
  } finally {
    await host.destroy();
  }
});

maybe('npm run cluster -- up (3 nodes), demo, down leaves nothing behind', async () => {
  const before = await snapshot();
  upDone = true; // from here on, afterAll runs down (idempotent) whatever happens
  const upOut = await clusterOk(['up', '--hosts', '3']);
  expect(upOut).toMatch(/using the local Docker engine/);
  const nodeIps = [...upOut.matchAll(/DOCKER_HOST=tcp:\/\/([\d.]+):2375/g)].map((m) => m[1] as string);
  expect(nodeIps).toHaveLength(3);
  expect((await host.cliOk(['ps', '--format', '{{.Names}}'])).split('\n').sort()).toEqual(
    ['loom-etcd1', 'loom-etcd2', 'loom-etcd3', 'loom-node1', 'loom-node2', 'loom-node3']);
  // the image names the source it was built from (a later up reuses it only for the same source)
  expect(await host.cliOk(['image', 'inspect', '-f', '{{index .Config.Labels "org.loom.source"}}', IMAGE])).toMatch(/^[0-9a-f]{12}-[0-9a-f]{12}$/);
  // the printed DOCKER_HOST answers from the outer engine's host
  const v = await host.exec([host.engine.client, '-H', `tcp://${nodeIps[0]}:2375`, 'info', '-f', '{{.Name}}'], { timeoutMs: 30_000 });
  expect(v.stdout.trim()).toBe('loom-node1');
  // a second up is refused while one is recorded
  const again = await cluster(['up']);
  expect(again.code).not.toBe(0);
  expect(again.stderr).toMatch(/already up/);

  const demoOut = await clusterOk(['demo']);
  const pings = demoOut.split('\n').filter((l) => /demo-loom-node\d -> /.test(l));
  expect(pings).toHaveLength(12); // 3 x 2 peers x (IP, name)
  for (const l of pings) expect(l).toMatch(/ ok \(/);
  expect(pings.filter((l) => /-> demo-loom-node\d /.test(l))).toHaveLength(6); // by name

  await clusterOk(['down', '--images']);
  const after = await snapshot();
  expect(after).toEqual(before);
  // idempotent
  expect(await clusterOk(['down'])).toMatch(/nothing to remove/);
  upDone = false;
});
