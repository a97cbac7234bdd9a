/**
 * Docker-in-Docker (issue 17): loom inside a privileged container that runs its own dockerd, as
 * in CI jobs with a `docker:dind` service. The outer engine is a TestHost's; the DinD image is
 * loom's own (plugin-config/dind/build.sh), run twice:
 *
 *   - plain (LOOM_DIND=off: only docker.io, as a docker:dind service is): loom's managed plugin
 *     (plugin-config/build.sh's output) is created and enabled through the inner engine's API,
 *     then a loom network, two containers pinging each other, a published port reached from the
 *     DinD container's namespace and from the outer host, and a restart of the inner dockerd after
 *     which all of it works again;
 *   - as shipped: loomd already runs as a legacy plugin, `docker network create -d loom` works
 *     at once and two inner containers ping.
 *
 * An e2e file rather than a script tier: it needs an outer engine, and TestHost already gives one
 * in its own namespaces with a clean-up that survives failures. Everything inside a DinD container
 * goes with `docker rm -f -v`; the host's destroy() removes the rest.
 *
 * It runs in the Docker 28.5 pass only (`npm run test:e2e:28`): Docker 20.10's `--privileged` asks
 * runc for every capability the kernel knows, and these machines' bounding set lacks
 * CAP_SYS_RESOURCE ("unable to apply caps: operation not permitted"); Docker 23 and later grant the
 * bounding set's. That also keeps it to one run per `npm test` (the image build is ~30 s warm).
 * The inner engine is the image's own Debian docker.io 20.10.
 */
import { TestHost } from '../helpers/test-host';
import { cachedPluginBuild, PLUGIN_NAME, PluginBuild } from '../helpers/managed-plugin';
import { buildDindImage, Dind, DIND_IMAGE } from '../helpers/dind';
import { stepTimer, waitFor } from '../helpers/run';
import { engineFromEnv } from '../helpers/engines';

jest.setTimeout(900_000);

const SUBNET_PLAIN = '198.18.72.0/24';
const SUBNET_LOOM = '198.18.73.0/24';

let host: TestHost;
let build: PluginBuild;
const dinds: Dind[] = [];
const { timings, timed } = stepTimer();

const OUTER_OK = engineFromEnv().id === '28.5';
const maybe = OUTER_OK ? test : test.skip;
if (!OUTER_OK) console.log('13-dind: runs with LOOM_TEST_ENGINE=28.5 only (npm run test:e2e:28): see the header');

beforeAll(async () => {
  if (!OUTER_OK) return;
  host = await TestHost.create();
  // Both builds use the outer engine, side by side (they share no files: the plugin's compiles
  // inside docker build, the image's install.sh compiles this checkout's dist/).
  // allSettled: neither build is left running against an engine that afterAll removes.
  const [image, plugin] = await Promise.allSettled([
    timed('dind:build', () => buildDindImage(host)),
    timed('plugin:build', () => cachedPluginBuild(host)),
  ]);
  if (image.status === 'rejected') throw image.reason;
  if (plugin.status === 'rejected') throw plugin.reason;
  build = plugin.value;
});

afterAll(async () => {
  if (!host) return;
  console.log(`DinD on Docker ${host.engine.id}: ${timings.join(', ')}`);
  try {
    for (const d of dinds) await d.remove();
  } finally {
    await host.destroy();
  }
});

async function startDind(name: string, env: Record<string, string> = {}): Promise<Dind> {
  const d = await timed(`start ${name}`, () => Dind.start(host, name, env));
  dinds.push(d);
  return d;
}

/** GET /hostname on the DinD container's own address and `port`, from the DinD container's namespace (bash's /dev/tcp). */
async function fetchFromDind(d: Dind, port: number): Promise<string> {
  const script = `exec 3<>/dev/tcp/${await d.ip()}/${port} && printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3`;
  const r = await d.exec(['timeout', '5', 'bash', '-c', script], 20_000);
  return r.code === 0 ? r.stdout : `GET exited ${r.code}: ${r.stderr}`;
}

maybe('loom managed plugin in a plain inner dockerd: network, pings, a published port, a dockerd restart', async () => {
  const d = await startDind('dind-plain', { LOOM_DIND: 'off' });
  expect((await d.exec(['sh', '-c', 'ls /run/docker/plugins'])).stdout.trim()).toBe(''); // no loomd: a docker.io engine
  await timed('plugin create+enable', async () => {
    await d.cliOk(['plugin', 'create', PLUGIN_NAME, build.dir], { timeoutMs: 300_000 });
    await d.cliOk(['plugin', 'set', PLUGIN_NAME, 'LOOM_LOG_LEVEL=debug']);
    await d.cliOk(['plugin', 'enable', PLUGIN_NAME], { timeoutMs: 120_000 });
  });
  await d.cliOk(['network', 'create', '-d', PLUGIN_NAME, '--ipam-driver', PLUGIN_NAME, '--subnet', SUBNET_PLAIN, 'n1']);
  for (const c of ['c1', 'c2']) {
    await d.cliOk(['run', '-d', '--init', '--restart', 'always', '--name', c, '--hostname', c, '--network', 'n1', 'local/busybox', 'sleep', '1d']);
  }
  await d.cliOk(['run', '-d', '--init', '--restart', 'always', '--name', 'web', '--hostname', 'web-in-dind', '--network', 'n1', '-p', '18080:80',
    'local/busybox', 'sh', '-c', 'mkdir -p /www && hostname > /www/hostname && exec httpd -f -p 80 -h /www']);
  const check = async (): Promise<void> => {
    expect(await d.ping('c1', 'c2')).toBe(true);
    expect(await d.ping('c2', await d.cliOk(['inspect', '-f', '{{(index .NetworkSettings.Networks "n1").IPAddress}}', 'c1']))).toBe(true);
    const body = await waitFor('published port 18080', async () => {
      const b = await fetchFromDind(d, 18080);
      return b.includes('web-in-dind') ? b : undefined;
    }, 20_000, 500).catch(async (err) => { throw new Error(`${String(err)}; last: ${await fetchFromDind(d, 18080)}\n${await d.logs()}`); });
    expect(body).toMatch(/^HTTP\/1\.[01] 200/);
    expect(body.trim().split('\n').pop()).toBe('web-in-dind');
    // and from the outer engine's host, as a CI job reaches its dind service's ports
    const outer = await host.exec(['timeout', '5', 'bash', '-c', `exec 3<>/dev/tcp/${await d.ip()}/18080 && printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3`], { timeoutMs: 20_000 });
    expect(outer.stdout.trim().split('\n').pop()).toBe('web-in-dind');
  };
  await check();

  await timed('inner dockerd restart', async () => {
    const r = await d.exec(['loom-dind', 'restart-dockerd'], 60_000);
    expect(r.code).toBe(0);
    await d.waitReady();
    await waitFor('plugin enabled again', async () => (await d.cli(['plugin', 'inspect', '-f', '{{.Enabled}}', PLUGIN_NAME])).stdout.trim() === 'true', 60_000, 250);
    await waitFor('c1, c2, web running again', async () => {
      const running = (await d.cli(['ps', '--format', '{{.Names}}'])).stdout.split('\n');
      return ['c1', 'c2', 'web'].every((c) => running.includes(c));
    }, 90_000, 500);
  });
  await check();
});

maybe('the loom DinD image: loom is enabled at start, two inner containers ping', async () => {
  const d = await startDind('dind-loom', { LOOM_DIND_TCP: '0.0.0.0:2375' });
  // LOOM_DIND_TCP: the inner engine also answers on TCP, as a CI job's DOCKER_HOST would reach it
  const tcp = await host.exec([host.engine.client, '-H', `tcp://${await d.ip()}:2375`, 'version', '-f', '{{.Server.Version}}'], { timeoutMs: 30_000 });
  expect(tcp.stdout.trim()).toMatch(/^20\.10\./);
  await d.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', SUBNET_LOOM, 'n2']);
  for (const c of ['c1', 'c2']) {
    await d.cliOk(['run', '-d', '--init', '--name', c, '--network', 'n2', 'local/busybox', 'sleep', '1d']);
  }
  expect(await d.ping('c1', 'c2')).toBe(true);
  // The entrypoint's kernel probe, run on a link type this kernel lacks (no dummy module here;
  // vxlan, bridge and veth are all built in): it names the module the host must load.
  const probe = await d.exec(['bash', '-c', `log() { echo "$*" >&2; }; die() { log "$*"; exit 1; }; eval "$(sed -n '/^probe_link()/,/^}/p' /usr/local/bin/loom-dind)"; probe_link dummy dummy`]);
  if (probe.code !== 0) expect(probe.stderr).toMatch(/the kernel has no dummy links .*modprobe dummy/);
  // loomctl inside the DinD container reads loomd's admin socket.
  const status = await d.exec(['loomctl', 'status']);
  expect(status.code).toBe(0);
});

maybe('without --privileged the image refuses to start and says why', async () => {
  const r = await host.cli(['run', '--rm', '--name', 'dind-unprivileged', DIND_IMAGE], { timeoutMs: 60_000 });
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/loom-dind: error: .*--privileged/);
});
