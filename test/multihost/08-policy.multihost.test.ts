/**
 * Network policy across hosts (issue 16 phase 2, docs/policy.md "Across hosts"): on a loom
 * overlay over 3 hosts, the db on B (tier=db, listening on 5432 and 6000), the api on A
 * (tier=api) and the frontend on C (tier=frontend). A policy applied with loomctl on A alone
 * (it goes to etcd, every loomd follows) lets the api reach db:5432 and keeps the frontend
 * and the api on another port out; explain on B names the policy; with B cut off from etcd
 * and its loomd killed and restarted, B keeps enforcing (kernel, then its stored copy) and
 * refuses changes; rm restores reach. One cluster for every check (CI time).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TestCluster } from '../helpers/cluster';
import { run, waitFor } from '../helpers/run';
import { REPO, TestHost } from '../helpers/test-host';

jest.setTimeout(600_000);

const LOOMCTL = path.join(process.env.LOOM_DIST ?? path.join(REPO, 'dist'), 'driver', 'cli', 'loomctl.js');
const NET = 'shop';

let c: TestCluster;
let A: TestHost;
let B: TestHost;
let C: TestHost;
beforeAll(async () => {
  c = await TestCluster.create(3);
  [A, B, C] = c.hosts as [TestHost, TestHost, TestHost];
});
afterAll(async () => {
  await c?.destroy();
});

const loomctl = async (h: TestHost, args: string[]): Promise<{ code: number; out: string }> => {
  const r = await run(process.execPath, [LOOMCTL, 'policy', '--admin-socket', h.adminSocket, '--state-dir', h.stateDir, ...args], { timeoutMs: 120_000 });
  return { code: r.code, out: r.stdout + r.stderr };
};
/** A TCP connection from `from` (on h) to ip:port gets the listener's answer. */
const reaches = async (h: TestHost, from: string, ip: string, port: number): Promise<boolean> =>
  (await h.inContainer(from, ['sh', '-c', `nc -w 2 ${ip} ${port} </dev/null`], 15_000)).stdout.includes('ok');
const settlesTo = async (h: TestHost, from: string, ip: string, port: number, want: boolean): Promise<boolean> =>
  waitFor(`${from} -> ${ip}:${port} ${want ? 'allowed' : 'denied'}`, async () => ((await reaches(h, from, ip, port)) === want ? true : undefined), 30_000, 300).then(() => want);

const DB_INGRESS = `name: db-ingress
network: ${NET}
selector: { matchLabels: { tier: db } }
ingress:
  - from: [ { selector: { matchLabels: { tier: api } } } ]
    ports: [ { protocol: TCP, port: 5432 } ]
`;

test('a policy applied on one host: api (A) reaches db (B) on 5432 only, frontend (C) not; explain on B; rm restores reach', async () => {
  await A.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '-o', 'loom.mode=overlay', '--subnet', '198.18.212.0/24', NET]);
  for (const h of [B, C]) await waitFor(`${NET} on ${h.name}`, async () => (await h.cli(['network', 'inspect', NET])).code === 0, 30_000, 250);
  const listen = 'nc -ll -p 5432 -e echo ok & nc -ll -p 6000 -e echo ok & wait';
  for (const [h, name, tier] of [[B, 'db', 'db'], [A, 'api', 'api'], [C, 'front', 'frontend']] as Array<[TestHost, string, string]>) {
    await h.cliOk(['run', '-d', '--init', '--name', name, '--label', `tier=${tier}`, '--network', NET, 'local/busybox', 'sh', '-c', listen]);
  }
  const db = await B.containerIp('db', NET);

  // Without policy: everyone reaches the db.
  expect(await settlesTo(A, 'api', db, 5432, true)).toBe(true);
  expect(await settlesTo(C, 'front', db, 5432, true)).toBe(true);
  expect(await reaches(A, 'api', db, 6000)).toBe(true);

  const f = path.join(A.dir, 'db-ingress.yaml');
  fs.writeFileSync(f, DB_INGRESS);
  const applied = await loomctl(A, ['apply', '-f', f]);
  expect(applied).toMatchObject({ code: 0 });
  expect(applied.out).toMatch(/db-ingress created/);

  // Every host follows etcd: B and C list it too.
  for (const h of [B, C]) await waitFor(`policy on ${h.name}`, async () => ((await loomctl(h, ['ls'])).out.includes('db-ingress') ? true : undefined), 15_000, 250);
  expect(await settlesTo(C, 'front', db, 5432, false)).toBe(false);
  expect(await settlesTo(A, 'api', db, 6000, false)).toBe(false);
  expect(await settlesTo(A, 'api', db, 5432, true)).toBe(true);

  const explained = await loomctl(B, ['explain', 'db']);
  expect(explained).toMatchObject({ code: 0 });
  expect(explained.out).toMatch(/db-ingress/);
  expect(explained.out).toMatch(/on another host/);

  // etcd unreachable from B, and B's loomd killed and restarted meanwhile: the kernel keeps
  // enforcing, then the restarted loomd enforces its stored copy; changes are refused.
  const table = `${(await B.loomOwner()).nftTable}-policy`;
  await c.partitionFromEtcd(B);
  try {
    await B.stopLoomd('SIGKILL');
    expect(await reaches(C, 'front', db, 5432)).toBe(false);
    await B.startLoomd({ LOOM_ETCD_ENDPOINTS: c.endpoints, LOOM_ADVERTISE_ADDRESS: '198.18.0.2', LOOM_LEASE_TTL: '4', LOOM_PEER_GRACE: '5' });
    await waitFor('B enforcing its stored copy', async () => ((await B.exec(['nft', 'list', 'table', 'inet', table])).stdout.includes('db-ingress ingress[0]') ? true : undefined), 15_000, 250);
    expect((await B.exec(['nft', 'list', 'set', 'inet', table, 'p0-sel4'])).stdout).toContain(db);
    const refused = await loomctl(B, ['rm', 'db-ingress']);
    expect(refused.code).not.toBe(0);
    expect(refused.out).toMatch(/unreachable/);
  } finally {
    await c.healPartition(B);
  }
  // etcd back: B learns the remote peers again.
  expect(await settlesTo(A, 'api', db, 5432, true)).toBe(true);
  expect(await settlesTo(C, 'front', db, 5432, false)).toBe(false);

  // Removed from another host: reach comes back everywhere.
  expect(await loomctl(C, ['rm', 'db-ingress'])).toMatchObject({ code: 0 });
  expect(await settlesTo(C, 'front', db, 5432, true)).toBe(true);
  expect(await settlesTo(A, 'api', db, 6000, true)).toBe(true);

  for (const [h, name] of [[B, 'db'], [A, 'api'], [C, 'front']] as Array<[TestHost, string]>) await h.cliOk(['rm', '-f', name]);
  await A.cliOk(['network', 'rm', NET]);
});
