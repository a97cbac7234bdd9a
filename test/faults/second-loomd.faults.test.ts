/**
 * Two loomd on one host (a legacy plugin beside another one, an upgrade, a developer's
 * machine): drivers `loom` and `loomb`, each with its own socket, state directory and admin
 * socket, both reconciling every 2 s with a 3 s grace, both with a long-lived network and
 * containers, and containers (and now and then networks) churning on both at once, with
 * `loomctl gc` of each run now and then. Links with loom's names that neither made (no mark)
 * sit on the host all along.
 *
 * Checked: the two loomd's networks are isolated from each other; every long-lived
 * container of both keeps connectivity throughout; neither loomd
 * ever deletes an orphan link (there is none: the other's links are not its own); the
 * long-lived links of both keep their ifindex (never deleted and re-made), each loomd's nft
 * table and iptables chain are the same afterwards, the unmarked links are untouched;
 * `loomctl doctor` of each is clean and each one's invariants hold (its marked links ==
 * its records).
 *
 * CI: 2 minutes of churn. LOOM_FAULT_LONG=1: 5 and 10 minutes (docs/operations.md).
 */
import * as path from 'node:path';
import { ExtraLoomd, REPO, TestHost } from '../helpers/test-host';
import { LoomdView, settle } from '../helpers/invariants';
import { run, waitFor } from '../helpers/run';

const LONG = process.env.LOOM_FAULT_LONG === '1';
const CHURN_MS = LONG ? [300_000, 600_000] : [Number(process.env.CHURN_TMP ?? 120_000)];
jest.setTimeout(CHURN_MS.reduce((a, b) => a + b, 0) + 240_000);

const LOOMCTL = path.join(process.env.LOOM_DIST ?? path.join(REPO, 'dist'), 'driver', 'cli', 'loomctl.js');
const RECONCILE = { LOOM_RECONCILE_INTERVAL: '2', LOOM_RECONCILE_GRACE: '3', LOOM_LOG_LEVEL: 'info' };
/** Someone else's links with loom's name shapes and no mark: never to be touched by either. */
const FOREIGN = new Set(['lm-0a0a0a0a0a0a', 'lv0a0a0a0a0a0a', 'lc0a0a0a0a0a0a']);

interface Side {
  name: string;
  view: LoomdView;
  net: string;
  subnet: number;
  log: () => string;
}

let host: TestHost;
let second: ExtraLoomd;
let sides: Side[];

beforeAll(async () => {
  host = await TestHost.create();
  await host.startLoomd(RECONCILE);
  second = await host.startExtraLoomd('loomb', { ...RECONCILE, LOOM_DEFAULT_POOLS: '198.19.192.0/18:24' });
  sides = [
    { name: 'a', view: host, net: 'na', subnet: 40, log: () => host.loomdLog() },
    { name: 'b', view: { driver: second.driver, adminSocket: second.adminSocket }, net: 'nb', subnet: 41, log: () => second.log() },
  ];
  await host.execOk(['sh', '-c', 'ip link add lm-0a0a0a0a0a0a type bridge && ip link add lv0a0a0a0a0a0a type veth peer name lc0a0a0a0a0a0a']);
  for (const s of sides) {
    await host.cliOk(['network', 'create', '-d', s.view.driver, '--ipam-driver', s.view.driver, '--subnet', `198.18.${s.subnet}.0/24`, s.net]);
    for (const c of [1, 2]) await host.cliOk(['run', '-d', '--init', '--name', `${s.name}${c}`, '--network', s.net, 'local/busybox', 'sleep', '86400']);
  }
});
afterAll(async () => {
  // Containers and networks go while both loomd answer: dockerd retries a stopped plugin for long.
  await host?.removeContainers().catch(() => undefined);
  for (const s of sides ?? []) await host.cli(['network', 'rm', s.net]);
  await second?.stop();
  await host?.destroy();
});

const loomctl = async (view: LoomdView, args: string[]): Promise<{ code: number; out: string }> => {
  const r = await run(process.execPath, [LOOMCTL, '--admin-socket', view.adminSocket, ...args], { timeoutMs: 120_000, env: { ...process.env, DOCKER_HOST: `unix://${host.dockerSock}` } });
  return { code: r.code, out: r.stdout + r.stderr };
};
const ipOf = (container: string, net: string): Promise<string> => host.containerIp(container, net);

/** Name -> ifindex of every link carrying `mark`, and of the foreign links. */
async function linkIndexes(mark: string): Promise<Map<string, number>> {
  const links = await host.ipJson<Array<{ ifindex: number; ifname: string; ifalias?: string }>>(['link', 'show']);
  return new Map(links.filter((l) => l.ifalias === mark || FOREIGN.has(l.ifname)).map((l) => [l.ifname, l.ifindex]));
}

/** The firewall objects of one loomd, as text. */
async function firewallOf(view: LoomdView): Promise<string> {
  const owner = await host.loomOwner(view.adminSocket);
  const nft = await host.execOk(['nft', 'list', 'table', 'inet', owner.nftTable]);
  const ipt = await host.execOk(['iptables', '-w', '-S', owner.iptablesChain]);
  const ip6t = await host.execOk(['ip6tables', '-w', '-S', owner.iptablesChain]);
  return [nft, ipt, ip6t].join('\n');
}

test.each(CHURN_MS)('two loomd side by side, %i ms of churn on both: neither touches the other\'s objects', async (churnMs) => {
  const marks = await Promise.all(sides.map(async (s) => (await host.loomOwner(s.view.adminSocket)).mark));
  expect(new Set(marks).size).toBe(2);
  const stable = await Promise.all(marks.map(linkIndexes)); // long-lived bridges and veths, and the foreign links
  const firewalls = await Promise.all(sides.map((s) => firewallOf(s.view)));
  const targets = await Promise.all(sides.map(async (s) => ({ from: `${s.name}1`, to: await ipOf(`${s.name}2`, s.net) })));
  // Isolation holds between the two loomd's networks as between one loomd's.
  expect(await host.ping('a1', await ipOf('b1', 'nb'), 2)).toBe(false);
  expect(await host.ping('b1', await ipOf('a1', 'na'), 2)).toBe(false);

  const stats = { started: [0, 0], failed: [0, 0], networks: [0, 0], gc: 0, pings: 0 };
  const lost: string[] = [];
  const live: string[][] = [[], []];
  const started = Date.now();
  let counter = 0;
  const MAX_ITERATIONS = Math.ceil(churnMs / 250);
  for (let i = 0; i < MAX_ITERATIONS && Date.now() - started < churnMs; i++) {
    await Promise.all(
      sides.map(async (s, k) => {
        const name = `${s.name}c${counter++}`;
        const r = await host.cli(['run', '-d', '--init', '--name', name, '--network', s.net, 'local/busybox', 'sleep', '86400'], { timeoutMs: 90_000 });
        if (r.code === 0) {
          stats.started[k]++;
          live[k]?.push(name);
        } else {
          stats.failed[k]++;
          await host.cli(['rm', '-f', name]);
        }
        if ((live[k]?.length ?? 0) > 3) await host.cli(['rm', '-f', live[k]?.shift() as string], { timeoutMs: 90_000 });
        if (i % 6 === 5) {
          // A short-lived network with a container on each side, then gone again.
          const net = `${s.name}t${i}`;
          await host.cliOk(['network', 'create', '-d', s.view.driver, '--ipam-driver', s.view.driver, '--subnet', `198.18.${50 + k}.0/24`, net]);
          await host.cliOk(['run', '-d', '--init', '--name', `${net}x`, '--network', net, 'local/busybox', 'sleep', '86400']);
          if (!(await host.ping(`${net}x`, `198.18.${50 + k}.1`))) lost.push(`${net}x -> its gateway`);
          await host.cliOk(['rm', '-f', `${net}x`]);
          await host.cliOk(['network', 'rm', net]);
          stats.networks[k]++;
        }
      }),
    );
    for (const t of targets) {
      stats.pings++;
      if (!(await host.ping(t.from, t.to))) lost.push(`${t.from} -> ${t.to} at ${Math.round((Date.now() - started) / 1000)} s`);
    }
    if (i % 10 === 9) {
      for (const s of sides) expect((await loomctl(s.view, ['gc'])).code).toBe(0);
      stats.gc++;
    }
  }
  for (const k of [0, 1]) if (live[k]?.length) await host.cli(['rm', '-f', ...(live[k] as string[])], { timeoutMs: 120_000 });
  console.log(`two loomd, ${Math.round((Date.now() - started) / 1000)} s: containers started ${stats.started.join('/')} (failed ${stats.failed.join('/')}), short-lived networks ${stats.networks.join('/')}, gc rounds ${stats.gc}, pings ${stats.pings}, lost ${lost.length}`);

  expect(lost).toEqual([]);
  for (const k of [0, 1]) expect(stats.started[k]).toBeGreaterThanOrEqual(Math.floor(churnMs / 10_000));
  // Each loomd's doctor is clean and its invariants hold, the other loomd's objects beside them.
  for (const s of sides) {
    await waitFor(`loomctl doctor of ${s.view.driver} clean`, async () => (await loomctl(s.view, ['doctor'])).code === 0, 60_000, 1_000);
    expect(await settle(host, 60_000, s.view, { foreign: FOREIGN })).toEqual([]);
    expect(s.log()).not.toMatch(/"repair":"delete-orphan-link"/);
    expect(s.log()).not.toMatch(/reconciler repair failed/);
  }
  // Nothing of either was deleted and re-made, nothing foreign touched, firewalls as before.
  for (const [k, mark] of marks.entries()) {
    const now = await linkIndexes(mark);
    for (const [name, index] of stable[k] as Map<string, number>) expect([name, now.get(name)]).toEqual([name, index]);
    expect(await firewallOf((sides[k] as Side).view)).toBe(firewalls[k]);
  }
  const links = await host.ipJson<Array<{ ifname: string; ifalias?: string }>>(['link', 'show']);
  for (const f of FOREIGN) expect(links.filter((l) => l.ifname === f).map((l) => l.ifalias ?? 'no mark')).toEqual(['no mark']);
});
