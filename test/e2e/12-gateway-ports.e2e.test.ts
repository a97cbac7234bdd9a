/**
 * `-o loom.gateway=docker` with a real dockerd: loom's network carries the traffic between its
 * containers, Docker's docker_gwbridge (created by dockerd on demand) carries the default route
 * and the published ports, so `docker port` and `docker ps` show `-p` and `-P` mappings and they
 * answer on the host. Without the option nothing changes (loom's own NAT and DNAT, which Docker
 * cannot show). Also: bad values and --internal refused, isolation between loom networks over
 * docker_gwbridge, dual stack, bandwidth limits on the loom interface, loomd killed and
 * restarted (the reconciler adds no NAT), dockerd restarted (a restart-policy container comes
 * back with its port), clean removal.
 *
 * dockerd gets a default address pool inside 198.18.0.0/15 so that docker0 and docker_gwbridge
 * stay in the test range.
 */
import { OUTSIDE_IP, TestHost, UPLINK_IP } from '../helpers/test-host';
import { httpGet } from '../helpers/http-get';
import { unixRequest } from '../helpers/unix-http';
import { settle } from '../helpers/invariants';
import { waitFor } from '../helpers/run';

jest.setTimeout(600_000);

/** docker0 takes the first /24 of it, docker_gwbridge the next. */
const DOCKER_POOL = '198.18.96.0/20';
const GW_SUBNET = '198.18.120.0/24';
const GW2_SUBNET = '198.18.121.0/24';
const PLAIN_SUBNET = '198.18.122.0/24';
const GW6_SUBNETS = ['198.18.123.0/24', 'fd5c:12::/64'];
const WEB6_PORT = 18082;
const KEEP_PORT = 18083;
const WEB_PORT = 18080;
const PLAIN_PORT = 18081;

let host: TestHost;
beforeAll(async () => {
  host = await TestHost.create({ dockerdArgs: ['--default-address-pool', `base=${DOCKER_POOL},size=24`] });
  await host.startLoomd();
});
afterAll(async () => {
  await host?.destroy();
});


const loomNet = (name: string, subnet: string, opts: string[] = []): Promise<string> =>
  host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', subnet, ...opts, name]);

/** A busybox httpd answering `body` on port 80. */
const webServer = (name: string, network: string, body: string, publish: string[]): Promise<string> =>
  host.cliOk(['run', '-d', '--init', '--name', name, '--network', network, ...publish, 'local/busybox', 'sh', '-c', `echo ${body} > /tmp/index.html; exec httpd -f -p 80 -h /tmp`]);

const sleeper = (name: string, network: string, extra: string[] = []): Promise<string> =>
  host.cliOk(['run', '-d', '--init', '--name', name, '--network', network, ...extra, 'local/busybox', 'sleep', '3600']);

/** `docker port NAME 80/tcp`: the IPv4 host port, or undefined when Docker shows none. */
async function shownPort(name: string): Promise<number | undefined> {
  const r = await host.cli(['port', name, '80/tcp']);
  const m = /0\.0\.0\.0:(\d+)/.exec(r.stdout);
  return m ? Number(m[1]) : undefined;
}

async function loomNetwork(name: string): Promise<Record<string, any>> {
  const id = await host.cliOk(['network', 'inspect', '-f', '{{.Id}}', name]);
  const n = (await host.loomState()).networks.find((x) => x.id === id);
  if (!n) throw new Error(`loomd does not know network ${name}`);
  return n;
}

async function loomTable(): Promise<string> {
  const owner = await host.loomOwner();
  return host.execOk(['nft', 'list', 'table', 'inet', owner.nftTable]);
}

describe('refused options', () => {
  test('a bad loom.gateway value, and loom.gateway=docker with --internal, fail docker network create with a clear error and leave nothing', async () => {
    const bad = await host.cli(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', GW_SUBNET, '-o', 'loom.gateway=gwbridge', 'bad1']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/option loom\.gateway: "gwbridge" is not supported \(loom: .*; docker: Docker's docker_gwbridge\)/);
    const internal = await host.cli(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--internal', '--subnet', GW_SUBNET, '-o', 'loom.gateway=docker', 'bad2']);
    expect(internal.code).not.toBe(0);
    expect(internal.stderr).toMatch(/loom\.gateway=docker cannot be used with --internal/);
    const nets = await host.cliOk(['network', 'ls', '--format', '{{.Name}}']);
    expect(nets).not.toMatch(/bad1|bad2/);
    const state = await host.loomState();
    expect(state.networks).toEqual([]);
    expect(state.pools).toEqual([]);
  });
});

describe('loom.gateway=docker', () => {
  let webIp: string;

  test('docker port and docker ps show -p and -P mappings, and they answer on the host', async () => {
    await loomNet('gw', GW_SUBNET, ['-o', 'loom.gateway=docker']);
    await webServer('web', 'gw', 'gw-web-ok', ['-p', `${WEB_PORT}:80`]);
    await webServer('auto', 'gw', 'gw-auto-ok', ['--expose', '80', '-P']);
    await sleeper('peer', 'gw');

    // dockerd made docker_gwbridge by itself, from its default pool.
    const gwSubnet = await host.cliOk(['network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}}{{end}}', 'docker_gwbridge']);
    expect(gwSubnet).toMatch(/^198\.18\.(9[6-9]|10[0-9]|11[01])\.0\/24$/);

    // -p: Docker shows it.
    expect(await shownPort('web')).toBe(WEB_PORT);
    const ps = await host.cliOk(['ps', '--filter', 'name=^web$', '--format', '{{.Ports}}']);
    expect(ps).toContain(`0.0.0.0:${WEB_PORT}->80/tcp`);
    // -P: Docker picked a port, and says which.
    const autoPort = await shownPort('auto');
    expect(autoPort).toBeGreaterThan(1024);
    expect(await host.cliOk(['ps', '--filter', 'name=^auto$', '--format', '{{.Ports}}'])).toContain(`0.0.0.0:${autoPort}->80/tcp`);
    // What testcontainers-style libraries (and docker compose port) read: the API's NetworkSettings.Ports.
    const ports = (await host.docker.getContainer('auto').inspect()).NetworkSettings.Ports as Record<string, Array<{ HostIp: string; HostPort: string }> | null>;
    expect(ports['80/tcp']).toContainEqual({ HostIp: '0.0.0.0', HostPort: String(autoPort) });

    // They answer from the host namespace (its own address and loopback) and from outside.
    expect(await waitFor('the published port', () => httpGet(host, 'host', `http://${UPLINK_IP}:${WEB_PORT}/`), 15_000, 300)).toBe('gw-web-ok\n');
    expect(await httpGet(host, 'host', `http://127.0.0.1:${WEB_PORT}/`)).toBe('gw-web-ok\n');
    expect(await httpGet(host, 'outside', `http://${UPLINK_IP}:${WEB_PORT}/`)).toBe('gw-web-ok\n');
    expect(await waitFor('the -P port', () => httpGet(host, 'host', `http://${UPLINK_IP}:${autoPort}/`), 15_000, 300)).toBe('gw-auto-ok\n');
    expect(await httpGet(host, 'host', `http://127.0.0.1:${autoPort}/`)).toBe('gw-auto-ok\n');

    // loomd publishes nothing itself: no ports held, no DNAT, no NAT for the network.
    const n = await loomNetwork('gw');
    expect(n.gatewayService).toBe('docker');
    expect(n.endpoints.flatMap((e: Record<string, unknown>) => (e.ports as unknown[] | undefined) ?? [])).toEqual([]);
    const table = await loomTable();
    expect(table).not.toContain('dnat');
    expect(table).not.toContain('masquerade');
  });

  test('containers have the loom interface and docker_gwbridge\'s, with the default route through docker_gwbridge', async () => {
    webIp = await host.containerIp('web', 'gw');
    expect(webIp.startsWith('198.18.120.')).toBe(true);
    const routes = (await host.inContainer('web', ['ip', 'route'])).stdout;
    expect(routes).toMatch(/^default via 198\.18\.\d+\.1 dev eth1/m);
    expect(routes).not.toContain('default via 198.18.120.1');
    expect(routes).toMatch(/^198\.18\.120\.0\/24 dev eth0/m);
  });

  test('containers on the loom network still reach each other (and the outside, through docker_gwbridge)', async () => {
    expect(await host.ping('peer', webIp)).toBe(true);
    expect(await httpGet(host, { container: 'peer' }, `http://${webIp}/`)).toBe('gw-web-ok\n');
    expect(await host.ping('web', await host.containerIp('peer', 'gw'))).toBe(true);
    expect(await host.ping('peer', OUTSIDE_IP)).toBe(true);
  });

  test('isolation holds over docker_gwbridge: another loom network\'s container reaches neither the loom address nor the gwbridge address', async () => {
    await loomNet('gw2', GW2_SUBNET, ['-o', 'loom.gateway=docker']);
    await sleeper('other', 'gw2');
    expect(await host.ping('other', webIp, 2)).toBe(false);
    const webGwIp = (await host.inContainer('web', ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth1'])).stdout.match(/inet (\S+)\//)?.[1];
    expect(webGwIp).toMatch(/^198\.18\./);
    expect(await host.ping('other', webGwIp as string, 2)).toBe(false); // docker_gwbridge has ICC off
    // Its published port is for everyone, as with Docker's own drivers.
    expect(await httpGet(host, { container: 'other' }, `http://${UPLINK_IP}:${WEB_PORT}/`)).toBe('gw-web-ok\n');
  });

  test('dual stack: IPv6 between the network\'s containers, no IPv6 default route (docker_gwbridge is IPv4-only), docker_gwbridge still attached', async () => {
    await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--ipv6', '--subnet', GW6_SUBNETS[0], '--subnet', GW6_SUBNETS[1], '-o', 'loom.gateway=docker', 'gw6']);
    await webServer('web6', 'gw6', 'gw6-ok', ['-p', `${WEB6_PORT}:80`]);
    await sleeper('peer6', 'gw6');
    const web6 = await host.containerIp('web6', 'gw6', 6);
    expect(web6).toMatch(/^fd5c:12::/);
    expect(await host.ping('peer6', web6)).toBe(true);
    expect((await host.inContainer('web6', ['ip', '-6', 'route'])).stdout).not.toMatch(/^default/m);
    expect((await host.inContainer('web6', ['ip', 'route'])).stdout).toMatch(/^default via 198\.18\.\d+\.1 dev eth1/m);
    expect(await shownPort('web6')).toBe(WEB6_PORT);
    expect(await waitFor('the published port', () => httpGet(host, 'host', `http://${UPLINK_IP}:${WEB6_PORT}/`), 15_000, 300)).toBe('gw6-ok\n');
    await host.cliOk(['rm', '-f', 'web6', 'peer6']);
    await host.cliOk(['network', 'rm', 'gw6']);
  });

  test('a bandwidth limit applies to the loom interface', async () => {
    await host.cliOk(['run', '-d', '--init', '--name', 'slow', '--network', 'name=gw,driver-opt=loom.ingress_rate=10mbit', 'local/busybox', 'sleep', '3600']);
    const ep = await host.cliOk(['inspect', '-f', '{{(index .NetworkSettings.Networks "gw").EndpointID}}', 'slow']);
    const qdisc = await host.execOk(['tc', 'qdisc', 'show', 'dev', `lv${ep.slice(0, 12)}`]);
    expect(qdisc).toMatch(/tbf .*rate 10Mbit/);
    expect(await host.ping('slow', webIp)).toBe(true);
  });

  test('loomd killed and restarted: ports still shown and answering, and the reconciler adds no NAT or DNAT', async () => {
    await host.stopLoomd('SIGKILL');
    await host.startLoomd();
    await waitFor('loomd answering', async () => (await unixRequest(host.adminSocket, 'GET', '/v1/status').catch(() => undefined))?.status === 200, 20_000, 200);
    const pass = await unixRequest(host.adminSocket, 'POST', '/v1/reconcile?force=1');
    expect(pass.status).toBe(200);
    const doctor = (await unixRequest(host.adminSocket, 'GET', '/v1/doctor')).json;
    expect(doctor.firewallDrift).toEqual([]);
    expect(doctor.actions).toEqual([]);
    const table = await loomTable();
    expect(table).not.toContain('dnat');
    expect(table).not.toContain('masquerade');
    expect(await shownPort('web')).toBe(WEB_PORT);
    expect(await httpGet(host, 'host', `http://${UPLINK_IP}:${WEB_PORT}/`)).toBe('gw-web-ok\n');
    expect(await host.ping('peer', webIp)).toBe(true);
  });
});

describe('dockerd restarted', () => {
  test('a restart-policy container comes back on docker_gwbridge, its port shown and answering; Docker, loom and the kernel agree', async () => {
    await webServer('keep', 'gw', 'gw-keep-ok', ['--restart', 'always', '-p', `${KEEP_PORT}:80`]);
    expect(await shownPort('keep')).toBe(KEEP_PORT);
    await host.stopDockerd('SIGTERM');
    await host.startDockerd();
    await host.waitRunning(['keep'], 60_000);
    expect(await waitFor('the port shown again', () => shownPort('keep'), 30_000, 300)).toBe(KEEP_PORT);
    expect(await waitFor('the port answering', () => httpGet(host, 'host', `http://${UPLINK_IP}:${KEEP_PORT}/`), 20_000, 300)).toBe('gw-keep-ok\n');
    expect((await host.inContainer('keep', ['ip', 'route'])).stdout).toMatch(/^default via 198\.18\.\d+\.1 dev eth1/m);
    expect(await settle(host)).toEqual([]);
    const table = await loomTable();
    expect(table).not.toContain('dnat');
    expect(table).not.toContain('masquerade');
  });
});

describe('without the option, nothing changes', () => {
  test('loom\'s own gateway, NAT and DNAT; Docker shows no port (a remote driver cannot report one)', async () => {
    await loomNet('plain', PLAIN_SUBNET);
    await webServer('pweb', 'plain', 'plain-ok', ['-p', `${PLAIN_PORT}:80`]);
    expect(await waitFor('the published port', () => httpGet(host, 'host', `http://${UPLINK_IP}:${PLAIN_PORT}/`), 15_000, 300)).toBe('plain-ok\n');
    expect(await httpGet(host, 'outside', `http://${UPLINK_IP}:${PLAIN_PORT}/`)).toBe('plain-ok\n');
    expect(await shownPort('pweb')).toBeUndefined();
    const routes = (await host.inContainer('pweb', ['ip', 'route'])).stdout;
    expect(routes).toMatch(/^default via 198\.18\.122\.1 dev eth0/m);
    expect((await host.inContainer('pweb', ['ip', 'link', 'show', 'eth1'])).code).not.toBe(0);
    const n = await loomNetwork('plain');
    expect(n.gatewayService).toBeUndefined();
    expect(n.endpoints.flatMap((e: Record<string, unknown>) => (e.ports as unknown[] | undefined) ?? [])).toHaveLength(1);
    expect(await loomTable()).toContain(`dport ${PLAIN_PORT} dnat`);
  });
});

describe('clean-up', () => {
  test('containers and networks removed: nothing of loom left; docker_gwbridge is Docker\'s and stays', async () => {
    await host.removeContainers();
    await host.cliOk(['network', 'rm', 'gw', 'gw2', 'plain']);
    const state = await host.loomState();
    expect(state.networks).toEqual([]);
    expect(state.pools).toEqual([]);
    const links = await host.ipJson<Array<{ ifname: string }>>(['link', 'show']);
    expect(links.filter((l) => /^l[mvc]/.test(l.ifname))).toEqual([]);
    expect(links.some((l) => l.ifname === 'docker_gwbridge')).toBe(true);
  });
});
