/**
 * Disk full under a real loomd and dockerd: the state directory is a 4 MiB tmpfs mounted in
 * the test host's private mount namespace, filled to the last byte by a file.
 * - Calls that must write fail with a clear error ("the disk is full"), Docker's included;
 *   loomd keeps answering; nothing of a failed call stays (in memory or in the store).
 * - When space returns, loomd writes again without a restart.
 * - A start while the disk is full is refused (and not recorded as damage); after space
 *   returns it starts, and every acknowledged allocation is there, nothing else.
 */
import * as path from 'node:path';
import { TestHost } from '../helpers/test-host';
import { killAndWait } from '../helpers/run';
import { pluginCall } from '../helpers/unix-http';
import { expectRefusal } from './store-helpers';

jest.setTimeout(170_000);

let host: TestHost;
beforeAll(async () => {
  host = await TestHost.create();
  // Only loomd's view of the directory (the host's mount namespace) is the small tmpfs.
  await host.execOk(['mkdir', '-p', host.stateDir]);
  await host.execOk(['mount', '-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', host.stateDir]);
  await host.startLoomd();
  await host.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', '198.18.60.0/24', 'df1']);
  await host.cliOk(['run', '-d', '--init', '--name', 'df-a', '--network', 'df1', 'local/busybox', 'sleep', '3600']);
});
afterAll(async () => {
  await host?.destroy(); // the tmpfs goes with the host's mount namespace
});

const filler = (): string => path.join(host.stateDir, 'filler');
const fill = (): Promise<unknown> => host.exec(['sh', '-c', `dd if=/dev/zero of=${filler()} bs=4k 2>/dev/null; sync`], { timeoutMs: 30_000 });
const free = (): Promise<unknown> => host.execOk(['rm', '-f', filler()]);

const acked: string[] = [];
let poolId = '';

async function request(): Promise<{ ok: boolean; addr?: string; err?: string }> {
  const r = await pluginCall(host.socket, 'IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: null });
  if (r.status !== 200) return { ok: false, err: String(r.json?.Err ?? r.body) };
  const addr = String(r.json.Address).split('/')[0] as string;
  acked.push(addr);
  return { ok: true, addr };
}

async function allocated(): Promise<string[]> {
  return ((await host.loomState()).pools.find((p) => p.id === poolId)?.allocations as Array<{ address: string }>).map((a) => a.address).sort();
}

test('a full disk fails the calls that write with a clear error, keeps nothing of them, and loomd writes again once space returns', async () => {
  const r = await pluginCall(host.socket, 'IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: '198.18.61.0/24', SubPool: '', Options: {}, V6: false });
  poolId = r.json.PoolID;
  for (let i = 0; i < 5; i++) expect((await request()).ok).toBe(true);
  await fill();
  // The log's last page may still take a few records; then every write fails.
  let failure: string | undefined;
  for (let i = 0; i < 100 && !failure; i++) failure = (await request()).err;
  expect(failure).toMatch(/could not record this change: the disk is full .*No space left on device.*nothing was changed/);
  expect((await request()).err).toMatch(/the disk is full/);
  const run = await host.cli(['run', '-d', '--init', '--name', 'df-b', '--network', 'df1', 'local/busybox', 'sleep', '3600']);
  expect(run.code).not.toBe(0);
  expect(run.stderr).toMatch(/the disk is full/);
  expect((await pluginCall(host.socket, 'NetworkDriver.GetCapabilities', undefined)).status).toBe(200);
  expect(await allocated()).toEqual([...acked].sort()); // the failed calls left nothing in memory

  await free();
  await host.cliOk(['rm', '-f', 'df-b']).catch(() => undefined);
  const after = await request();
  expect(after.ok).toBe(true);
  await host.cliOk(['run', '-d', '--init', '--name', 'df-c', '--network', 'df1', 'local/busybox', 'sleep', '3600']);
  const c = await host.containerIp('df-c', 'df1');
  expect(await host.ping('df-a', c)).toBe(true);
});

test('a start on a full disk is refused without calling it damage; after space returns every acknowledged allocation is there, nothing else', async () => {
  await fill();
  for (let i = 0; i < 100; i++) if (!(await request()).ok) break;
  const pid = host.loomdPid as number;
  await killAndWait(pid, 'SIGKILL', 10_000);
  host.loomdPid = undefined;
  const refused = await expectRefusal(host);
  expect(refused).toMatch(/could not be opened: the disk is full/);
  expect(refused).not.toMatch(/is damaged/);
  await free();
  await host.startLoomd();
  expect(await allocated()).toEqual([...acked].sort());
  const c = await host.containerIp('df-c', 'df1');
  expect(await host.ping('df-a', c)).toBe(true);
});
