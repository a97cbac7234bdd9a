/**
 * Bandwidth limits per endpoint, measured with iperf3 between two containers:
 * `driver-opt=loom.egress_rate` (what the container sends), `loom.ingress_rate`
 * (what it receives), and a network-wide default from `-o loom.egress_rate`.
 * The measured rate must be within 15 % of the limit.
 */
import { TestHost } from '../helpers/test-host';
import { settle } from '../helpers/invariants';
import { waitFor } from '../helpers/run';

jest.setTimeout(300_000);

let host: TestHost;
beforeAll(async () => {
  host = await TestHost.create();
  await host.importTools();
  await host.startLoomd();
  await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', '198.18.110.0/24', 'bw']);
  await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', '198.18.111.0/24', '-o', 'loom.egress_rate=10mbit', 'bwdef']);
});
afterAll(async () => {
  await host?.destroy();
});

const ipOf = (c: string, net: string): Promise<string> => host.containerIp(c, net);

/** Mbit/s received by the server in a 5 s TCP test from `client` to `server` (reverse: server sends). */
async function iperf(client: string, server: string, net: string, reverse = false): Promise<number> {
  const ip = await ipOf(server, net);
  const out = await host.cliOk(['exec', client, 'iperf3', '-c', ip, '-t', '5', '-O', '1', '-J', ...(reverse ? ['-R'] : [])], { timeoutMs: 60_000 });
  const json = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
  return json.end.sum_received.bits_per_second / 1e6;
}

async function server(name: string, net: string, opts: string[] = []): Promise<void> {
  await host.cliOk(['run', '-d', '--init', '--name', name, '--network', [`name=${net}`, ...opts].join(','), 'local/tools', 'iperf3', '-s']);
}

test('egress_rate=20mbit on the sender: 17 to 23 Mbit/s', async () => {
  await server('bw-srv', 'bw');
  await server('bw-tx', 'bw', ['driver-opt=loom.egress_rate=20mbit']);
  const mbit = await iperf('bw-tx', 'bw-srv', 'bw');
  console.log(`egress limit 20mbit: measured ${mbit.toFixed(2)} Mbit/s`);
  expect(mbit).toBeGreaterThanOrEqual(17);
  expect(mbit).toBeLessThanOrEqual(23);
});

test('ingress_rate=30mbit on the receiver: 25.5 to 34.5 Mbit/s, and the unlimited direction is much faster', async () => {
  await server('bw-rx', 'bw', ['driver-opt=loom.ingress_rate=30mbit']);
  const limited = await iperf('bw-srv', 'bw-rx', 'bw');
  const free = await iperf('bw-rx', 'bw-srv', 'bw');
  console.log(`ingress limit 30mbit: measured ${limited.toFixed(2)} Mbit/s; other direction ${free.toFixed(0)} Mbit/s`);
  expect(limited).toBeGreaterThanOrEqual(25.5);
  expect(limited).toBeLessThanOrEqual(34.5);
  expect(free).toBeGreaterThan(100);
});

test('a network-wide default applies to every endpoint; an endpoint option overrides it', async () => {
  await server('def-srv', 'bwdef', ['driver-opt=loom.egress_rate=1gbit']);
  await server('def-tx', 'bwdef');
  const mbit = await iperf('def-tx', 'def-srv', 'bwdef');
  console.log(`network default egress 10mbit: measured ${mbit.toFixed(2)} Mbit/s`);
  expect(mbit).toBeGreaterThanOrEqual(8.5);
  expect(mbit).toBeLessThanOrEqual(11.5);
});

test('bad rates are refused with a clear error; removal leaves no IFB behind', async () => {
  const r = await host.cli(['run', '-d', '--name', 'bad', '--network', 'name=bw,driver-opt=loom.egress_rate=fast', 'local/tools', 'true']);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/not a rate like 10mbit/);
  const n = await host.cli(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '-o', 'loom.ingress_rate=1bit', 'badnet']);
  expect(n.stderr).toMatch(/outside 8kbit\.\.100gbit/);
  await host.cliOk(['rm', '-f', 'bw-srv', 'bw-tx', 'bw-rx', 'def-srv', 'def-tx', 'bad']);
  // DeleteEndpoint answers before the kernel has deleted the endpoint's links (veth pair, IFB:
  // ~20 ms each, on loomd's netlink worker), so `docker rm` may return a little before they go.
  const t0 = Date.now();
  let left: string[] = [];
  await waitFor('the IFBs to go', async () => {
    const links = await host.ipJson<Array<{ ifname: string }>>(['link', 'show']);
    left = links.map((l) => l.ifname).filter((x) => x.startsWith('lb') || x.startsWith('lv'));
    return left.length === 0;
  }, 5_000, 20).catch(() => undefined);
  console.log(`IFBs and veth pairs gone ${Date.now() - t0} ms after docker rm returned`);
  expect(left).toEqual([]);
  expect(await settle(host)).toEqual([]);
});
