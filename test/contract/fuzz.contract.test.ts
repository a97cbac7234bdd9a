/**
 * Generated hostile input against the real loomd (fast-check, fixed seed, bounded
 * runs). Every route loom serves (Plugin.Activate, NetworkDriver.* including
 * GwAllocCheck, IpamDriver.*) and paths it does not serve get:
 *   - request bodies recorded from dockerd (test/fixtures/docker-traces, 10.x subnets
 *     moved into 198.18.0.0/15), each with at least one mutation that makes it invalid
 *     whatever else it holds (wrong type, missing field, bad CIDR/MAC/id/option/port
 *     map, overlap or conflict with existing objects, out-of-order call);
 *   - garbage from scratch: malformed JSON, non-object bodies, deep nesting, huge
 *     strings, bodies just under, at and over the 256 KiB limit, invalid UTF-8, other
 *     HTTP methods;
 *   - an exhaustive catalogue of the hostile values in fuzz/hostile-values.ts.
 * A valid pool, network and joined endpoint (198.18.50.0/24) exist the whole time, so
 * mutated ids hit real objects.
 *
 * Each answer must be JSON: a 500 with Err == Error (non-empty), or a 404 for unknown
 * paths. A 200 is accepted only from the calls Docker's protocol makes idempotent on
 * unknown ids, from GwAllocCheck (validation only) and from the argument-less calls
 * (which ignore an object body and must give their usual answer). loom's state
 * (networks, pools), the kernel's links and addresses, the sockets loomd holds and the
 * nftables ruleset must equal the baseline after every creation call (CreateNetwork,
 * CreateEndpoint, Join, RequestPool, RequestAddress, ProgramExternalConnectivity) and
 * after every batch of 50; the daemon must keep answering and the test process must
 * see no unhandled rejection. Bugs found this way have a regression test each in
 * fuzz-regressions.contract.test.ts.
 *
 * The pieces, in test/contract/fuzz/: seed.ts (the seeded objects, recorded bodies),
 * hostile-values.ts, routes.ts (what each route may answer), cases.ts (a request and its
 * verdict), snapshot.ts and harness.ts (sending and checking), arbitraries.ts and the
 * *-generators.ts, garbage.ts, unknown-paths.ts (generated requests), catalogue.ts.
 */
import fc from 'fast-check';
import { pluginCall, unixRequest } from '../helpers/unix-http';
import { catalogue } from './fuzz/catalogue';
import { jsonCase } from './fuzz/cases';
import { anyCase } from './fuzz/generators';
import { FuzzHarness } from './fuzz/harness';
import { ALL_ROUTES, READONLY, VALIDATING } from './fuzz/routes';
import { DELETED_EP, DELETED_NET, EP, epBody, firstRecorded, NET, RELEASED_POOL, retarget, SANDBOX, SEED_BODIES, SEED_BRIDGE, SEED_POOL } from './fuzz/seed';

jest.setTimeout(180_000);

const SEED = 20261126;
/** Requests per generated batch (state is compared to the baseline after each batch). */
const BATCH = 50;
/** Generated batches: RUNS * BATCH requests, plus the catalogue. */
const RUNS = 80;

let fuzz: FuzzHarness;
let started = 0;

beforeAll(async () => {
  fuzz = await FuzzHarness.start();
  const ok = (method: string, body: unknown) => fuzz.ok(method, body);
  expect(fuzz.readonlyReply['Plugin.Activate']).toEqual({ Implements: ['NetworkDriver', 'IpamDriver'] });

  // The valid state: a pool with its gateway, a network, an address, a joined endpoint.
  expect((await ok('IpamDriver.RequestPool', SEED_BODIES.pool)).json.PoolID).toBe(SEED_POOL);
  expect((await ok('IpamDriver.RequestAddress', SEED_BODIES.gateway)).json.Address).toBe('198.18.50.1/24');
  await ok('NetworkDriver.CreateNetwork', SEED_BODIES.network);
  expect((await ok('IpamDriver.RequestAddress', SEED_BODIES.address)).json.Address).toBe('198.18.50.2/24');
  expect(SEED_BODIES.endpoint.Interface).toMatchObject({ Address: '198.18.50.2/24' });
  await ok('NetworkDriver.CreateEndpoint', SEED_BODIES.endpoint);
  await ok('NetworkDriver.Join', SEED_BODIES.join);
  // Objects that existed and are gone: targets of out-of-order calls.
  const released = retarget(firstRecorded('IpamDriver.RequestPool'), '198.18.51.');
  expect((await ok('IpamDriver.RequestPool', { ...released, AddressSpace: 'LoomLocal' })).json.PoolID).toBe(RELEASED_POOL);
  await ok('IpamDriver.RequestAddress', { PoolID: RELEASED_POOL, Address: '', Options: null });
  await ok('IpamDriver.ReleasePool', { PoolID: RELEASED_POOL });
  await ok('NetworkDriver.CreateNetwork', { ...retarget(firstRecorded('NetworkDriver.CreateNetwork'), '198.18.52.'), NetworkID: DELETED_NET });
  await ok('NetworkDriver.CreateEndpoint', { ...epBody('198.18.52.5/24'), NetworkID: DELETED_NET, EndpointID: DELETED_EP });
  await ok('NetworkDriver.DeleteEndpoint', { NetworkID: DELETED_NET, EndpointID: DELETED_EP });
  await ok('NetworkDriver.DeleteNetwork', { NetworkID: DELETED_NET });

  await fuzz.takeBaseline();
  started = Date.now();
});

afterAll(async () => {
  await fuzz?.stop();
});

test('every served route answers an empty body (the route list is complete)', async () => {
  for (const m of ALL_ROUTES) {
    const res = await unixRequest(fuzz.daemon.socket, 'POST', `/${m}`, '');
    expect([m, res.status]).toEqual([m, READONLY.includes(m) || VALIDATING.includes(m) ? 200 : 500]);
  }
  expect(await fuzz.coreSnapshot()).toBe(fuzz.baseline.core);
});

test('the checks notice a 200 that changes state, and the state comes back after cleanup', async () => {
  const id = 'c4ec4' + '0'.repeat(59);
  const body = { ...retarget(firstRecorded('NetworkDriver.CreateNetwork'), '198.18.90.'), NetworkID: id };
  await expect(fuzz.runBatch([jsonCase('NetworkDriver.CreateNetwork', body, 'error', 'self-test: a valid body')], false)).rejects.toThrow(
    /expected 500, got HTTP 200[\s\S]*changed state[\s\S]*lm-c4ec40000000/,
  );
  await fuzz.ok('NetworkDriver.DeleteNetwork', { NetworkID: id });
  expect(await fuzz.fullSnapshot()).toEqual(fuzz.baseline);
});

test('catalogue: every listed hostile value, in every field it can reach', async () => {
  const cases = catalogue();
  for (let i = 0; i < cases.length; i += BATCH) await fuzz.runBatch(cases.slice(i, i + BATCH));
  expect(cases.length).toBeGreaterThan(900);
});

test('generated: mutated recordings and garbage from scratch on every route and unknown paths', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(anyCase, { minLength: BATCH, maxLength: BATCH }), (cases) => fuzz.runBatch(cases)),
    { seed: SEED, numRuns: RUNS, endOnFailure: true },
  );
});

test('the seeded state is intact and still works', async () => {
  const { daemon, kernel } = fuzz;
  expect(await fuzz.fullSnapshot()).toEqual(fuzz.baseline);
  const { networks, pools } = await daemon.state();
  expect(networks.map((n) => n.id)).toEqual([NET]);
  expect(networks[0]?.endpoints).toEqual([expect.objectContaining({ id: EP, address: '198.18.50.2/24', sandboxKey: SANDBOX })]);
  expect(pools.map((p) => [p.id, p.allocations.map((a: { address: string }) => a.address).sort()])).toEqual([[SEED_POOL, ['198.18.50.1', '198.18.50.2']]]);
  const links = (await kernel.listLinks()).map((l) => l.name);
  expect(links).toEqual(expect.arrayContaining([SEED_BRIDGE, `lv${EP.slice(0, 12)}`, `lc${EP.slice(0, 12)}`]));

  // The seeded objects still behave: Join answers as before, then a clean teardown.
  const again = await pluginCall(daemon.socket, 'NetworkDriver.Join', SEED_BODIES.join);
  expect(again.json).toMatchObject({ InterfaceName: { SrcName: `lc${EP.slice(0, 12)}` }, Gateway: '198.18.50.1' });
  for (const [m, body] of [
    ['NetworkDriver.Leave', { NetworkID: NET, EndpointID: EP }],
    ['NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: EP }],
    ['IpamDriver.ReleaseAddress', { PoolID: SEED_POOL, Address: '198.18.50.2' }],
    ['NetworkDriver.DeleteNetwork', { NetworkID: NET }],
    ['IpamDriver.ReleaseAddress', { PoolID: SEED_POOL, Address: '198.18.50.1' }],
    ['IpamDriver.ReleasePool', { PoolID: SEED_POOL }],
  ] as const) {
    expect([m, (await pluginCall(daemon.socket, m, body)).status]).toEqual([m, 200]);
  }
  expect(await daemon.state()).toEqual({ networks: [], pools: [] });
  const left = (await kernel.listLinks()).map((l) => l.name).filter((n) => n.startsWith('lm-') || n.startsWith('lv') || n.startsWith('lc'));
  expect(left).toEqual([]);
  expect(fuzz.rejections).toEqual([]);

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`fuzz: ${fuzz.sent} hostile requests in ${seconds} s (seed ${SEED}); HTTP status per route:\n${fuzz.summary()}`);
  expect(fuzz.sent).toBeGreaterThanOrEqual(3000);
});
