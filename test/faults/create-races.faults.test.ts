/**
 * Races on CreateNetwork, straight on the plugin socket of a real loomd (as dockerd's
 * goroutines would send them), and through Docker:
 * - parallel creates with one subnet and different ids: exactly one succeeds, one bridge
 *   holds the gateway, the others are refused with a conflict naming the overlap;
 * - parallel creates with one com.docker.network.bridge.name: exactly one succeeds;
 * - ids that differ only after 12 characters, or only in case: each network gets chains
 *   of its own, and removing one leaves the others' rules in place.
 */
import { randomBytes } from 'node:crypto';
import { TestHost } from '../helpers/test-host';
import { pluginCall, unixRequest, UnixResponse } from '../helpers/unix-http';
import { settle } from '../helpers/invariants';

jest.setTimeout(180_000);

const ROUNDS = 6;
const PARALLEL = 4;

let host: TestHost;
beforeAll(async () => {
  host = await TestHost.create();
  // Networks made on the socket are unknown to Docker: no periodic pass may call them stale meanwhile.
  await host.startLoomd({ LOOM_RECONCILE_INTERVAL: '3600' });
});
afterAll(async () => {
  await host?.destroy();
});

const randomId = (): string => randomBytes(32).toString('hex');
const create = (id: string, subnet: string, bridgeName?: string): Promise<UnixResponse> =>
  pluginCall(host.socket, 'NetworkDriver.CreateNetwork', {
    NetworkID: id,
    Options: { 'com.docker.network.generic': bridgeName ? { 'com.docker.network.bridge.name': bridgeName } : {} },
    IPv4Data: [{ AddressSpace: 'LoomLocal', Pool: subnet, Gateway: subnet.replace(/0\/24$/, '1/24'), AuxAddresses: {} }],
    IPv6Data: [],
  });
const remove = (id: string): Promise<UnixResponse> => pluginCall(host.socket, 'NetworkDriver.DeleteNetwork', { NetworkID: id });
const nftTable = async (): Promise<string> => host.execOk(['nft', 'list', 'table', 'inet', (await host.loomOwner()).nftTable]).catch(() => '');
const firewallDrift = async (): Promise<string[]> => (await unixRequest(host.adminSocket, 'GET', '/v1/doctor')).json.firewallDrift;

test(`${PARALLEL} parallel CreateNetwork calls with one subnet and different ids: exactly one succeeds (${ROUNDS} rounds)`, async () => {
  for (let r = 0; r < ROUNDS; r++) {
    const subnet = `198.18.${100 + r}.0/24`;
    const ids = Array.from({ length: PARALLEL }, randomId);
    const answers = await Promise.all(ids.map((id) => create(id, subnet)));
    const winners = ids.filter((_, i) => answers[i]?.status === 200);
    expect(winners).toHaveLength(1);
    for (const a of answers.filter((x) => x.status !== 200)) expect(a.json.Err).toMatch(/overlaps subnet/);
    const addrs = await host.ipJson<Array<{ ifname: string; addr_info: Array<{ local: string }> }>>(['addr', 'show']);
    expect(addrs.filter((l) => l.addr_info.some((a) => a.local === subnet.replace(/0\/24$/, '1'))).map((l) => l.ifname)).toEqual([`lm-${(winners[0] as string).slice(0, 12)}`]);
    const chains = [...(await nftTable()).matchAll(/chain net-([0-9a-f]+)-out/g)].map((m) => m[1]);
    expect(chains).toEqual([winners[0]]);
    expect(await firewallDrift()).toEqual([]);
    expect((await remove(winners[0] as string)).status).toBe(200);
  }
  expect(await settle(host)).toEqual([]);
});

test(`${PARALLEL} parallel CreateNetwork calls with one bridge name: exactly one succeeds`, async () => {
  const ids = Array.from({ length: PARALLEL }, randomId);
  const answers = await Promise.all(ids.map((id, i) => create(id, `198.18.${110 + i}.0/24`, 'lrace0')));
  const winners = ids.filter((_, i) => answers[i]?.status === 200);
  expect(winners).toHaveLength(1);
  for (const a of answers.filter((x) => x.status !== 200)) expect(a.json.Err).toMatch(/bridge name lrace0 is already used/);
  const br = (await host.ipJson<Array<{ ifname: string; ifalias?: string }>>(['link', 'show', 'lrace0']))[0];
  expect(br?.ifalias).toBe((await host.loomOwner()).mark); // loom made it: deleted with its network
  expect((await remove(winners[0] as string)).status).toBe(200);
  expect((await host.exec(['ip', 'link', 'show', 'lrace0'])).code).not.toBe(0);
});

test('ids that differ only after 12 characters or only in case get chains of their own', async () => {
  const base = `abcdef${randomBytes(3).toString('hex')}`; // letters, so that upper case differs
  const ids = [base + '0'.repeat(52), base + '1'.repeat(52), base.toUpperCase() + '0'.repeat(52)];
  const answers = await Promise.all(ids.map((id, i) => create(id, `198.18.${120 + i}.0/24`, `lcase${i}`)));
  expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
  const chainsOf = async (): Promise<string[]> => [...(await nftTable()).matchAll(/\tchain (net-\S+) \{/g)].map((m) => m[1] as string).sort();
  expect(await chainsOf()).toEqual(ids.flatMap((id) => [`net-${id}-in`, `net-${id}-out`]).sort());
  expect(await firewallDrift()).toEqual([]);
  expect((await remove(ids[0] as string)).status).toBe(200);
  expect(await chainsOf()).toEqual(ids.slice(1).flatMap((id) => [`net-${id}-in`, `net-${id}-out`]).sort());
  const table = await nftTable();
  for (const i of [1, 2]) expect(table).toContain(`"lcase${i}" : jump net-${ids[i]}-out`);
  expect(await firewallDrift()).toEqual([]);
  for (const id of ids.slice(1)) expect((await remove(id)).status).toBe(200);
  expect(await settle(host)).toEqual([]);
});

test('through Docker: parallel `docker network create` with one subnet: exactly one network', async () => {
  const names = Array.from({ length: PARALLEL }, (_, i) => `race${i}`);
  const results = await Promise.all(names.map((n) => host.cli(['network', 'create', '-d', host.driver, '--ipam-driver', host.driver, '--subnet', '198.18.130.0/24', n])));
  expect(results.filter((r) => r.code === 0)).toHaveLength(1);
  for (const r of results.filter((x) => x.code !== 0)) expect(r.stderr).toMatch(/already in use|overlaps/);
  await host.cliOk(['network', 'rm', names[results.findIndex((r) => r.code === 0)] as string]);
  expect(await settle(host)).toEqual([]);
});
