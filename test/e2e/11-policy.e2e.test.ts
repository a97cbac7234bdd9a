/**
 * Network policy on one host (issue 16, docs/policy.md), on a real engine: a policy selecting
 * tier=db with ingress from tier=api on TCP 5432 lets the api in and keeps the frontend (and
 * the api on another port) out; explain names the policy; an invalid file is refused naming the
 * field and changes nothing; an egress policy keeps the db from connecting out; enforcement
 * survives a SIGKILL of loomd and a hand-deleted table is repaired; a policy applied while
 * loomd is stopped is enforced when it starts; a removed container leaves no allow behind;
 * removing the policies restores full reach and removes the table; UDP is allowed and denied
 * like TCP, and a connection that flows while a policy is updated loses nothing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, TestHost } from '../helpers/test-host';
import { spawn } from 'node:child_process';
import { run, sleep, waitFor } from '../helpers/run';
import { unixRequest } from '../helpers/unix-http';

jest.setTimeout(600_000);

const LOOMCTL = path.join(process.env.LOOM_DIST ?? path.join(REPO, 'dist'), 'driver', 'cli', 'loomctl.js');
const NET = 'pol';

let host: TestHost;
const loomctl = async (args: string[]): Promise<{ code: number; out: string }> => {
  const r = await run(process.execPath, [LOOMCTL, 'policy', '--admin-socket', host.adminSocket, '--state-dir', host.stateDir, ...args], { timeoutMs: 120_000 });
  return { code: r.code, out: r.stdout + r.stderr };
};
const file = (name: string, text: string): string => {
  const f = path.join(host.dir, name);
  fs.writeFileSync(f, text);
  return f;
};
/** A TCP connection from `from` to ip:port gets the listener's answer. */
const reaches = async (from: string, ip: string, port: number): Promise<boolean> => {
  const r = await host.inContainer(from, ['sh', '-c', `nc -w 2 ${ip} ${port} </dev/null`], 15_000);
  return r.stdout.includes('ok');
};
/** Waits (bounded) until reach from -> ip:port is `want`; returns it. */
const settlesTo = async (from: string, ip: string, port: number, want: boolean): Promise<boolean> =>
  waitFor(`${from} -> ${ip}:${port} ${want ? 'allowed' : 'denied'}`, async () => ((await reaches(from, ip, port)) === want ? true : undefined), 20_000, 300).then(() => want);

const DB_INGRESS = `# only the api reaches the database, on 5432
name: db-ingress
network: ${NET}
selector:
  matchLabels: { tier: db }
ingress:
  - from:
      - selector: { matchLabels: { tier: api } }
    ports:
      - { protocol: TCP, port: 5432 }
`;
const DB_EGRESS = `{"name": "db-egress", "selector": {"matchLabels": {"tier": "db"}}, "egress": []}`;

let db = '';
let api = '';
let policyTable = '';

beforeAll(async () => {
  host = await TestHost.create();
  await host.startLoomd({ LOOM_RECONCILE_INTERVAL: '3600' });
  policyTable = `${(await host.loomOwner()).nftTable}-policy`;
  await host.cliOk(['network', 'create', '-d', host.driver, '--ipam-driver', host.driver, '--subnet', '198.18.130.0/24', NET]);
  const listen = 'nc -ll -p 5432 -e echo ok & nc -ll -p 6000 -e echo ok & nc -ll -p 8080 -e echo ok & wait';
  for (const [name, tier] of [['db', 'db'], ['api', 'api'], ['front', 'frontend']]) {
    await host.cliOk(['run', '-d', '--init', '--name', name as string, '--label', `tier=${tier}`, '--network', NET, 'local/busybox', 'sh', '-c', listen]);
  }
  db = await host.containerIp('db', NET);
  api = await host.containerIp('api', NET);
});
afterAll(async () => {
  await host?.destroy();
});

test('without policy every container reaches every other', async () => {
  expect(await settlesTo('api', db, 5432, true)).toBe(true);
  expect(await reaches('front', db, 5432)).toBe(true);
  expect(await reaches('api', db, 6000)).toBe(true);
  expect(await reaches('db', api, 8080)).toBe(true);
});

test('ingress from tier=api on TCP 5432 only; explain names the policy', async () => {
  const r = await loomctl(['apply', '-f', file('db-ingress.yaml', DB_INGRESS)]);
  expect(r).toMatchObject({ code: 0 });
  expect(r.out).toMatch(/policy db-ingress created/);
  expect(await settlesTo('front', db, 5432, false)).toBe(false);
  expect(await reaches('api', db, 5432)).toBe(true);
  expect(await reaches('api', db, 6000)).toBe(false);
  // The db itself is not restricted outbound: replies and its own connections flow.
  expect(await reaches('db', api, 8080)).toBe(true);
  // Idempotent.
  expect((await loomctl(['apply', '-f', file('db-ingress.yaml', DB_INGRESS)])).out).toMatch(/policy db-ingress unchanged/);

  const explain = await loomctl(['explain', 'db']);
  expect(explain.code).toBe(0);
  expect(explain.out).toMatch(/ingress: denied by default \(selected by db-ingress\)/);
  expect(explain.out).toMatch(/TCP 5432 from api .*\[policy db-ingress ingress\[0\]\]/);
  const json = JSON.parse((await loomctl(['explain', 'db', '--json'])).out);
  expect(json[0].ingress.selectedBy).toEqual(['db-ingress']);
  expect(JSON.parse((await loomctl(['explain', 'front', '--json'])).out)[0].ingress.restricted).toBe(false);

  const show = await loomctl(['show', 'db-ingress', '--json']);
  const s = JSON.parse(show.out);
  expect(s.selected).toEqual(['db']);
  expect(s.rules[0].counter.packets).toBeGreaterThan(0);
  expect(s.defaultDeny.ingress.packets).toBeGreaterThan(0);
  expect((await loomctl(['ls'])).out).toMatch(/db-ingress +pol +tier=db +ingress\(1 rule\(s\)\)/);
});

test('an invalid file is refused naming the field, and nothing changes', async () => {
  const bad = DB_INGRESS.replace('name: db-ingress', 'name: db-ingress').replace('port: 5432', 'port: 70000');
  const r = await loomctl(['apply', '-f', file('bad.yaml', bad)]);
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/ingress\[0\]\.ports\[0\]\.port: /);
  const unknown = await loomctl(['apply', '-f', file('bad2.yaml', `${DB_INGRESS}colour: red\n`)]);
  expect(unknown.code).toBe(1);
  expect(unknown.out).toMatch(/unknown key\(s\) colour/);
  // Through the admin API too (loomd validates what it is given).
  const api400 = await unixRequest(host.adminSocket, 'POST', '/v1/policies', bad);
  expect(api400.status).toBe(400);
  const list = JSON.parse((await loomctl(['ls', '--json'])).out);
  expect(list.map((p: { policy: { name: string; ingress: Array<{ ports: Array<{ port: number }> }> } }) => [p.policy.name, p.policy.ingress[0]?.ports[0]?.port])).toEqual([['db-ingress', 5432]]);
  expect(await reaches('api', db, 5432)).toBe(true);
  expect(await reaches('front', db, 5432)).toBe(false);
});

test('an egress policy keeps the db from connecting out', async () => {
  expect((await loomctl(['apply', '-f', file('db-egress.json', DB_EGRESS)])).code).toBe(0);
  expect(await settlesTo('db', api, 8080, false)).toBe(false);
  // Replies of connections into the db still flow.
  expect(await reaches('api', db, 5432)).toBe(true);
  expect((await loomctl(['explain', 'db'])).out).toMatch(/egress: denied by default \(selected by db-egress\); allowed:\n +nothing/);
});

test('after a SIGKILL of loomd the kernel keeps enforcing; a deleted table is repaired', async () => {
  await host.stopLoomd('SIGKILL');
  expect(await reaches('front', db, 5432)).toBe(false);
  expect(await reaches('db', api, 8080)).toBe(false);
  expect(await reaches('api', db, 5432)).toBe(true);
  await host.startLoomd({ LOOM_RECONCILE_INTERVAL: '3600', LOOM_METRICS: path.join(host.dir, 'metrics.sock') });
  await waitFor('loomd answers', async () => (await loomctl(['ls'])).code === 0 || undefined, 20_000, 200);
  expect(await reaches('front', db, 5432)).toBe(false);
  expect(await reaches('api', db, 5432)).toBe(true);
  const metrics = (await unixRequest(path.join(host.dir, 'metrics.sock'), 'GET', '/metrics')).body.toString();
  expect(metrics).toMatch(/loom_policy_rule_packets\{policy="db-ingress",rule="ingress\[0\]"\} [1-9]/);
  expect(metrics).toMatch(/loom_policy_rule_packets\{policy="",rule="ingress default deny"\} [1-9]/);

  await host.execOk(['nft', 'delete', 'table', 'inet', policyTable]);
  expect(await reaches('front', db, 5432)).toBe(true);
  const doctor = JSON.parse((await run(process.execPath, [LOOMCTL, '--admin-socket', host.adminSocket, 'doctor', '--json'], { timeoutMs: 60_000 })).stdout);
  expect(doctor.problems.map((p: { problem: string }) => p.problem)).toContain(`network policy: table inet ${policyTable} is missing`);
  const gc = await unixRequest(host.adminSocket, 'POST', '/v1/reconcile?force=1');
  expect(gc.json.extra).toMatchObject({ 'policy-table': 1 });
  expect(await reaches('front', db, 5432)).toBe(false);
  expect(await reaches('api', db, 5432)).toBe(true);
});

test('removing the policies restores full reach', async () => {
  expect((await loomctl(['rm', 'db-ingress'])).out).toMatch(/policy db-ingress removed/);
  expect(await settlesTo('front', db, 5432, true)).toBe(true);
  expect(await reaches('api', db, 6000)).toBe(true);
  expect((await loomctl(['rm', 'db-egress'])).code).toBe(0);
  expect(await settlesTo('db', api, 8080, true)).toBe(true);
  expect((await loomctl(['rm', 'db-egress'])).out).toMatch(/nothing to remove/);
  expect(await host.execOk(['nft', 'list', 'tables'])).not.toContain(policyTable);
});

/** Runs `args` in container `ctr`'s network namespace with the host's tools (socat). */
const inNetns = async (ctr: string, args: string[], timeoutMs = 10_000): Promise<{ code: number; out: string }> => {
  const pid = await host.cliOk(['inspect', '-f', '{{.State.Pid}}', ctr]);
  const r = await run('nsenter', ['-t', pid, '-n', ...args], { timeoutMs });
  return { code: r.code, out: r.stdout };
};
/** A UDP datagram from `from` to ip:port gets the echo server's answer. */
const udpReaches = async (from: string, ip: string, port: number): Promise<boolean> =>
  (await inNetns(from, ['sh', '-c', `echo ping | socat -T 2 - UDP:${ip}:${port}`])).out.includes('pong');

test('UDP, and a policy change while a connection flows', async () => {
  const dbPid = await host.cliOk(['inspect', '-f', '{{.State.Pid}}', 'db']);
  // Servers in the db's namespace (host tools): a UDP answerer on 5353 and a TCP echo on 7000.
  const servers = [
    spawn('nsenter', ['-t', dbPid, '-n', 'socat', 'UDP-RECVFROM:5353,fork', 'SYSTEM:echo pong'], { stdio: 'ignore' }),
    spawn('nsenter', ['-t', dbPid, '-n', 'socat', 'TCP-LISTEN:7000,fork,reuseaddr', 'EXEC:cat'], { stdio: 'ignore' }),
  ];
  const apiPid = await host.cliOk(['inspect', '-f', '{{.State.Pid}}', 'api']);
  let client: ReturnType<typeof spawn> | undefined;
  try {
    await waitFor('UDP answer from db', async () => udpReaches('api', db, 5353), 10_000, 200);
    const udp = `name: db-udp
network: ${NET}
selector: { matchLabels: { tier: db } }
ingress:
  - from: [ { selector: { matchLabels: { tier: api } } } ]
    ports: [ { protocol: UDP, port: 5353 }, { protocol: TCP, port: 7000 } ]
`;
    expect((await loomctl(['apply', '-f', file('db-udp.yaml', udp)])).code).toBe(0);
    await waitFor('frontend denied on UDP', async () => !(await udpReaches('front', db, 5353)), 20_000, 300);
    expect(await udpReaches('api', db, 5353)).toBe(true);
    expect(await reaches('api', db, 5432)).toBe(false); // only UDP 5353 and TCP 7000 now

    // A connection that flows while the policy changes (another rule added): not one line lost.
    client = spawn('nsenter', ['-t', apiPid, '-n', 'socat', '-', `TCP:${db}:7000`], { stdio: ['pipe', 'pipe', 'ignore'] });
    let echoed = '';
    client.stdout?.on('data', (b: Buffer) => (echoed += b.toString()));
    const sent: string[] = [];
    const send = (n: number): void => {
      const line = `line-${n}`;
      sent.push(line);
      client?.stdin?.write(`${line}\n`);
    };
    for (let i = 0; i < 5; i++) {
      send(i);
      await sleep(100);
    }
    const widened = udp.replace('{ protocol: TCP, port: 7000 } ]', '{ protocol: TCP, port: 7000 }, { protocol: TCP, port: 6000 } ]');
    expect((await loomctl(['apply', '-f', file('db-udp.yaml', widened)])).out).toMatch(/policy db-udp updated/);
    for (let i = 5; i < 15; i++) {
      send(i);
      await sleep(100);
    }
    await waitFor('every line echoed', async () => sent.every((l) => echoed.includes(l)), 10_000, 100);
    expect(await reaches('api', db, 6000)).toBe(true); // the new rule holds for new connections
    expect(await reaches('front', db, 6000)).toBe(false);
  } finally {
    client?.kill('SIGKILL');
    for (const s of servers) s.kill('SIGKILL');
    await loomctl(['rm', 'db-udp']);
  }
  expect(await settlesTo('front', db, 5432, true)).toBe(true);
});

test('a policy applied while loomd is stopped is enforced when it starts', async () => {
  await host.stopLoomd();
  const r = await loomctl(['apply', '-f', file('db-ingress.yaml', DB_INGRESS)]);
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/policy db-ingress created/);
  expect(r.out).toMatch(/loomd is not running/);
  expect(await reaches('front', db, 5432)).toBe(true); // not enforced yet: loomd is down
  await host.startLoomd({ LOOM_RECONCILE_INTERVAL: '3600' });
  expect(await settlesTo('front', db, 5432, false)).toBe(false);
  expect(await reaches('api', db, 5432)).toBe(true);
});

test('a container that is gone leaves no allow behind', async () => {
  const listed = async (): Promise<string> => host.execOk(['nft', 'list', 'table', 'inet', policyTable]);
  expect(await listed()).toContain(api);
  await host.cliOk(['rm', '-f', 'api']);
  await waitFor('the api address out of the policy sets', async () => (!(await listed()).includes(api) ? true : undefined), 20_000, 200);
  // A new container on the old api address, labelled frontend: denied.
  await host.cliOk(['run', '-d', '--init', '--name', 'impostor', '--label', 'tier=frontend', '--network', NET, '--ip', api, 'local/busybox', 'sleep', '3600']);
  await waitFor('the impostor labels learned', async () => ((await loomctl(['explain', 'impostor', '--json'])).code === 0 ? true : undefined), 20_000, 300);
  expect(await reaches('impostor', db, 5432)).toBe(false);
  expect((await loomctl(['rm', 'db-ingress'])).code).toBe(0);
  expect(await settlesTo('impostor', db, 5432, true)).toBe(true);
});

test('the three tiers of docs/policy.md', async () => {
  const doc = fs.readFileSync(path.join(REPO, 'docs', 'policy.md'), 'utf8');
  const example = /## The three-tier example[\s\S]*?```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
  expect(example).toBeDefined();
  const listen = 'nc -ll -p 5432 -e echo ok & nc -ll -p 6000 -e echo ok & nc -ll -p 8080 -e echo ok & wait';
  await host.cliOk(['run', '-d', '--init', '--name', 'api3', '--label', 'tier=api', '--network', NET, 'local/busybox', 'sh', '-c', listen]);
  const api3 = await host.containerIp('api3', NET);
  const r = await loomctl(['apply', '-f', file('three-tier.yaml', (example as string).replace(/network: shop/g, `network: ${NET}`))]);
  expect(r.out).toMatch(/policy api-ingress created\npolicy db-ingress created\npolicy db-no-egress created/);
  expect(await settlesTo('front', db, 5432, false)).toBe(false);
  expect(await settlesTo('api3', db, 5432, true)).toBe(true);
  expect(await reaches('front', api3, 8080)).toBe(true);
  expect(await reaches('front', api3, 6000)).toBe(false);
  expect(await reaches('db', api3, 8080)).toBe(false);
  expect(await reaches('api3', db, 6000)).toBe(false);
  for (const name of ['api-ingress', 'db-ingress', 'db-no-egress']) expect((await loomctl(['rm', name])).code).toBe(0);
  expect(await settlesTo('front', db, 5432, true)).toBe(true);
  await host.cliOk(['rm', '-f', 'api3']);
});

test('IPv6 and ICMP: the same rules in both families', async () => {
  await host.cliOk(['network', 'create', '-d', host.driver, '--ipam-driver', host.driver, '--ipv6', '--subnet', '198.18.131.0/24', '--subnet', 'fd5c:131::/64', 'pol6']);
  const listen = 'nc -ll -p 5432 -e echo ok & wait';
  for (const [name, tier] of [['db6', 'db6'], ['api6', 'api6'], ['front6', 'front6']]) {
    await host.cliOk(['run', '-d', '--init', '--name', name as string, '--label', `tier=${tier}`, '--network', 'pol6', 'local/busybox', 'sh', '-c', listen]);
  }
  const db6 = await host.containerIp('db6', 'pol6', 6);
  const db4 = await host.containerIp('db6', 'pol6');
  expect(db6).toMatch(/^fd5c:131::/);
  expect(await settlesTo('front6', db6, 5432, true)).toBe(true);
  expect(await host.ping('front6', db6)).toBe(true);
  const policy = `name: db6-ingress\nnetwork: pol6\nselector: { matchLabels: { tier: db6 } }\ningress:\n  - from: [ { selector: { matchLabels: { tier: api6 } } } ]\n    ports: [ { protocol: TCP, port: 5432 }, { protocol: ICMP } ]\n`;
  expect((await loomctl(['apply', '-f', file('db6.yaml', policy)])).code).toBe(0);
  expect(await settlesTo('front6', db6, 5432, false)).toBe(false);
  expect(await reaches('api6', db6, 5432)).toBe(true);
  expect(await host.ping('api6', db6)).toBe(true);
  expect(await host.ping('api6', db4)).toBe(true);
  expect(await host.ping('front6', db6, 2)).toBe(false);
  expect(await host.ping('front6', db4, 2)).toBe(false);
  expect(await reaches('front6', db4, 5432)).toBe(false);
  expect((await loomctl(['rm', 'db6-ingress'])).code).toBe(0);
  expect(await settlesTo('front6', db6, 5432, true)).toBe(true);
  await host.cliOk(['rm', '-f', 'db6', 'api6', 'front6']);
  await host.cliOk(['network', 'rm', 'pol6']);
});

test('without br_netfilter the bridge-family table enforces inside the bridge', async () => {
  const sysctl = (v: string): Promise<string> => host.execOk(['sysctl', '-w', `net.bridge.bridge-nf-call-iptables=${v}`, `net.bridge.bridge-nf-call-ip6tables=${v}`]);
  await sysctl('0');
  try {
    expect((await loomctl(['apply', '-f', file('db-ingress.yaml', DB_INGRESS)])).code).toBe(0);
    await waitFor('the bridge-family policy table', async () => ((await host.exec(['nft', 'list', 'table', 'bridge', policyTable])).code === 0 ? true : undefined), 20_000, 200);
    expect(await settlesTo('front', db, 5432, false)).toBe(false);
    expect(await reaches('impostor', db, 5432)).toBe(false);
    await host.cliOk(['run', '-d', '--init', '--name', 'api-b', '--label', 'tier=api', '--network', NET, 'local/busybox', 'sleep', '3600']);
    expect(await settlesTo('api-b', db, 5432, true)).toBe(true);
    expect(await reaches('api-b', db, 6000)).toBe(false);
    expect((await loomctl(['rm', 'db-ingress'])).code).toBe(0);
    expect(await settlesTo('front', db, 5432, true)).toBe(true);
    expect((await host.exec(['nft', 'list', 'table', 'bridge', policyTable])).code).not.toBe(0);
  } finally {
    await sysctl('1');
  }
});
