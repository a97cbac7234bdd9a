/**
 * Store damage against a real loomd and a real dockerd: LevelDB's CURRENT deleted, a table
 * truncated, the write-ahead log truncated after an acknowledged deletion. Each time the next
 * start refuses with an error naming the damage and the recovery commands (never a silent
 * start with less state), and an explicit offline recovery (`loomctl store restore` from the
 * snapshot loom keeps, `loomctl store rebuild` from Docker's view) brings back every network
 * and endpoint (same addresses and MACs), which the recovering start says in its log; Docker,
 * loom and the kernel then agree exactly and the containers keep talking.
 */
import * as fs from 'node:fs';
import { TestHost } from '../helpers/test-host';
import { invariantViolations, settle } from '../helpers/invariants';
import { LOOMCTL, comparableState, dbFiles, expectRefusal, loomctlStore } from './store-helpers';

jest.setTimeout(170_000);

let host: TestHost;
let before: unknown;
beforeAll(async () => {
  host = await TestHost.create();
  await host.startLoomd();
  await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', '198.18.30.0/24', '--aux-address', 'x=198.18.30.200', 'sd1']);
  await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', 'sd2']);
  for (const [c, net] of [['sd-a', 'sd1'], ['sd-b', 'sd1'], ['sd-c', 'sd2']]) await host.cliOk(['run', '-d', '--init', '--name', c as string, '--network', net as string, 'local/busybox', 'sleep', '3600']);
  before = await comparableState(host);
});
afterAll(async () => {
  await host?.destroy();
});

const ipOf = (name: string, net: string): Promise<string> => host.containerIp(name, net);

async function expectConsistent(): Promise<void> {
  expect(await invariantViolations(host)).toEqual([]);
  expect(await host.ping('sd-a', await ipOf('sd-b', 'sd1'))).toBe(true);
}

test('CURRENT deleted: the start refuses naming CURRENT (again at the next start); restore from the snapshot brings everything back and is logged', async () => {
  await host.stopLoomd('SIGTERM'); // a clean stop takes a snapshot of what changed
  const tables = dbFiles(host, '.ldb');
  fs.rmSync(`${host.stateDir}/db/CURRENT`);
  const refused = await expectRefusal(host);
  expect(refused).toMatch(/loom's state store is damaged: the store's CURRENT file is missing/);
  expect(refused).toMatch(/loomctl store restore --state-dir/);
  expect(refused).not.toMatch(/loomd listening/);
  expect(dbFiles(host, '.ldb')).toEqual(tables); // nothing was created over the old tables
  expect(await expectRefusal(host)).toMatch(/CURRENT file is missing/);

  const r = await loomctlStore(host, ['restore']);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/recovered from snapshot .* 2 network\(s\), 3 endpoint\(s\)/s);
  const logFrom = host.loomdLog().length;
  await host.startLoomd();
  const log = host.loomdLog().slice(logFrom);
  expect(log).toMatch(/"msg":"starting from a recovered store"/);
  expect(log).toMatch(/"how":"snapshot"/);
  expect(await comparableState(host)).toEqual(before);
  await expectConsistent();
});

test('a table truncated: the start refuses naming the table file; rebuild from Docker\'s view brings everything back', async () => {
  await host.stopLoomd('SIGTERM');
  // The previous start replayed the restored store's log into a table; damage the largest one.
  const table = dbFiles(host, '.ldb').sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0] as string;
  expect(table).toBeDefined();
  fs.truncateSync(table, Math.floor(fs.statSync(table).size / 2));
  const refused = await expectRefusal(host);
  expect(refused).toMatch(new RegExp(`table file ${table.split('/').pop()} is truncated or corrupt`));
  expect(refused).toMatch(/loomctl store rebuild --state-dir/);

  const r = await host.exec([process.execPath, LOOMCTL, 'store', 'rebuild', '--state-dir', host.stateDir, '--docker-host', `unix://${host.dockerSock}`, '--driver', host.driver]);
  expect(r.stdout).toMatch(/recovered from Docker's view/);
  expect(r.code).toBe(0);
  const logFrom = host.loomdLog().length;
  await host.startLoomd();
  const log = host.loomdLog().slice(logFrom);
  expect(log).toMatch(/"msg":"starting from a recovered store"/);
  expect(log).toMatch(/"how":"docker"/);
  expect(await comparableState(host)).toEqual(before);
  await expectConsistent();
});

test('the log truncated after an acknowledged deletion: the start refuses (acknowledged writes missing) instead of undoing the deletion', async () => {
  await host.cliOk(['rm', '-f', 'sd-c']); // Leave, DeleteEndpoint, ReleaseAddress: acknowledged
  const after = await comparableState(host);
  await host.stopLoomd('SIGKILL'); // the deletion is only in the write-ahead log
  const log = dbFiles(host, '.log').sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0] as string;
  expect(fs.statSync(log).size).toBeGreaterThan(0);
  fs.truncateSync(log, 0);
  const refused = await expectRefusal(host);
  expect(refused).toMatch(/acknowledged write\(s\) are missing/);
  expect(refused).not.toMatch(/loomd listening/);

  const r = await host.exec([process.execPath, LOOMCTL, 'store', 'rebuild', '--state-dir', host.stateDir, '--docker-host', `unix://${host.dockerSock}`, '--driver', host.driver]);
  expect(r.code).toBe(0);
  await host.startLoomd();
  expect(await comparableState(host)).toEqual(after);
  // DeleteEndpoint deletes the veth pair after its answer, so a SIGKILL right after `docker rm`
  // can leave it: a marked link no record names, which the reconciler removes (two sightings
  // 1 s apart) soon after the start.
  expect(await settle(host)).toEqual([]);
  await expectConsistent();
});
