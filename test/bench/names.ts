/**
 * Benchmark 8, service discovery across hosts (issue 15: "resolution latency p95 for a remote
 * name under 5 ms"), on three Docker hosts (TestCluster: underlay bridge, 3-member etcd, loomd
 * in cluster mode on each). Every host's resolv.conf names only the "outside" DNS server the
 * benchmark runs in host A's outside namespace (test/helpers/outside-dns.ts, 198.18.254.1):
 * nothing goes to a real resolver.
 *
 * From a container on host A on a loom overlay, DNS queries to 127.0.0.11 (what every
 * container's libc does), interleaved one query per kind per round, the order rotating each round:
 *   remote   - a container on host B on the overlay, answered by loom's resolver in the container;
 *   local    - a container on host A on the overlay: loom relays it to Docker's embedded resolver;
 *   external - *.outside.test: loom relays it to Docker, which forwards it to the outside server;
 *   docker   - baseline without loom: from a container on a built-in bridge network on host A, a
 *              container on that bridge, answered by Docker's embedded resolver directly.
 * The clients are node processes (dns-packet) in the containers' network namespaces (nsenter -t
 * PID -n), driven one query at a time over stdin; the time is taken in the client around
 * send/receive only.
 */
import { TestCluster } from '../helpers/cluster';
import { DnsClient, dnsClientIn, QUERY_TIMEOUT_MS, Reply } from '../helpers/dns-client';
import { OUTSIDE_NAME_IP, OutsideDns, startOutsideDns } from '../helpers/outside-dns';
import { waitFor } from '../helpers/run';
import { OUTSIDE_IP, TestHost } from '../helpers/test-host';
import { BenchContext, LOOMD_DEFAULTS } from './context';
import type { EngineInfo } from './host';
import { fmt, median, percentile, ratio, rotation } from './stats';

const OV = 'bench-names';
const OV_SUBNET = '198.18.40.0/24';
const BR = 'bench-names-br';
const BR_SUBNET = '198.18.41.0/24';
const EXTERNAL = 'www.outside.test';

type Kind = 'remote' | 'local' | 'external' | 'docker';
const KINDS: Kind[] = ['remote', 'local', 'external', 'docker'];
const LABEL: Record<Kind, string> = {
  remote: 'remote name (container on host B), answered by loom',
  local: 'local name (container on host A), loom relays to Docker\'s resolver',
  external: `external name (${EXTERNAL}), loom relays to Docker, Docker forwards to the outside server`,
  docker: 'baseline without loom: local name on a built-in bridge, Docker\'s resolver directly',
};

export async function namesBenchmarks(ctx: BenchContext, engines: EngineInfo[]): Promise<void> {
  const r = ctx.report;
  const n = ctx.config.dnsQueries;
  r.begin('names', '8. Service discovery: name resolution latency from a container on a loom overlay (remote, local, external names; Docker\'s resolver without loom as a baseline)');
  ctx.phase('names: creating a 3-host cluster (dockerd, etcd, loomd per host)');
  const cluster = await TestCluster.create(3, { host: { resolvConf: `nameserver ${OUTSIDE_IP}\n` }, loomEnv: LOOMD_DEFAULTS });
  const destroy = ctx.defer('destroy test cluster (names)', () => cluster.destroy());
  const [A, B, C] = cluster.hosts as [TestHost, TestHost, TestHost];
  const clients: DnsClient[] = [];
  let outside: OutsideDns | undefined;
  const stopClients = ctx.defer('DNS clients and outside DNS server', async () => {
    for (const c of clients) await c.stop().catch(() => undefined);
    await outside?.stop().catch(() => undefined);
  });
  try {
    outside = await startOutsideDns(A);
    if (!engines.some((e) => e.engine === A.engine.id)) {
      engines.push({ engine: A.engine.id, server: await A.cliOk(['version', '-f', '{{.Server.Version}}']), client: await A.cliOk(['version', '-f', '{{.Client.Version}}']) });
    }
    const drv = A.driver;
    await A.cliOk(['network', 'create', '-d', drv, '--ipam-driver', drv, '-o', 'loom.mode=overlay', '--subnet', OV_SUBNET, OV]);
    for (const h of [B, C]) await waitFor(`${OV} on another host`, async () => (await h.cli(['network', 'inspect', OV])).code === 0, 30_000, 200);
    await A.cliOk(['network', 'create', '--subnet', BR_SUBNET, BR]);
    const start = (h: TestHost, name: string, net: string): Promise<string> =>
      h.cliOk(['run', '-d', '--init', '--name', name, '--network', net, 'local/busybox', 'sleep', '3600'], { timeoutMs: 60_000 });
    await start(A, 'names-q', OV); // the querier
    await start(A, 'names-a', OV); // local name
    await start(B, 'names-b', OV); // remote name
    await start(C, 'names-c', OV); // a third host's name in the table (not queried)
    await start(A, 'names-bq', BR); // querier on the built-in bridge
    await start(A, 'names-bt', BR); // its local name
    const ips = {
      remote: await B.containerIp('names-b', OV),
      local: await A.containerIp('names-a', OV),
      external: OUTSIDE_NAME_IP,
      docker: await A.containerIp('names-bt', BR),
    } satisfies Record<Kind, string>;
    const q = await dnsClientIn(A, 'names-q');
    clients.push(q);
    const bq = await dnsClientIn(A, 'names-bq');
    clients.push(bq);
    await Promise.all(clients.map((c) => Promise.race([c.ready, new Promise((_, rej) => setTimeout(() => rej(new Error('DNS client did not start in 20 s')), 20_000))])));
    const ask: Record<Kind, () => Promise<Reply>> = {
      remote: () => q.query('names-b'),
      local: () => q.query('names-a'),
      external: () => q.query(EXTERNAL),
      docker: () => bq.query('names-bt'),
    };

    ctx.phase('names: waiting until every name resolves (loom\'s resolver attached, names published)');
    const t0 = Date.now();
    for (const k of KINDS) {
      await waitFor(`${k} name resolves to ${ips[k]}`, async () => (await ask[k]()).a?.join() === ips[k], 30_000, 100);
    }
    const readyMs = Date.now() - t0;
    // The querier's queries reach loomd only through loom's steering table; the bridge querier must have none.
    const key = await A.cliOk(['inspect', '-f', '{{.NetworkSettings.SandboxKey}}', 'names-q']);
    const tables = await A.execOk(['nsenter', `--net=${key}`, 'nft', 'list', 'tables']);
    if (!tables.includes('table ip loom_dns')) throw new Error('no loom_dns steering table in the querier\'s namespace');
    const bkey = await A.cliOk(['inspect', '-f', '{{.NetworkSettings.SandboxKey}}', 'names-bq']);
    if ((await A.execOk(['nsenter', `--net=${bkey}`, 'nft', 'list', 'tables'])).includes('loom_dns')) throw new Error('a loom_dns table in the bridge querier\'s namespace');

    ctx.phase(`names: ${n} queries per kind, interleaved`);
    const WARMUP = 20;
    const ms: Record<Kind, number[]> = { remote: [], local: [], external: [], docker: [] };
    const bad: Record<Kind, number> = { remote: 0, local: 0, external: 0, docker: 0 };
    const lost: Record<Kind, number> = { remote: 0, local: 0, external: 0, docker: 0 };
    const tRun = Date.now();
    for (let round = 0; round < WARMUP + n; round++) {
      if (round % 50 === 0) ctx.checkTime('name resolution latency');
      if (Date.now() - tRun > 10 * 60_000) throw new Error('name resolution latency: more than 10 min for the queries');
      for (const k of rotation(KINDS, round)) {
        const res = await ask[k]();
        if (round < WARMUP) continue;
        if (res.timeout || res.ms === undefined) lost[k]++;
        else if (res.a?.join() !== ips[k]) bad[k]++;
        else ms[k].push(res.ms);
      }
    }
    const loopS = (Date.now() - tRun) / 1000;
    const p95 = (k: Kind): number => percentile(ms[k], 95);
    r.table(
      `From a container on host A, A queries to 127.0.0.11 (UDP), one per kind per round in rotating order, ${n} rounds after ${WARMUP} warm-up rounds (${loopS.toFixed(1)} s); time from send to reply inside the client, ms`,
      ['name', 'answered', 'wrong or no answer', `no reply within ${QUERY_TIMEOUT_MS / 1000} s`, 'p50', 'p95', 'p99', 'max', 'p50 vs local', 'p95 vs local', 'p50 vs Docker without loom', 'p95 vs Docker without loom'],
      KINDS.map((k) => [
        LABEL[k],
        String(ms[k].length),
        String(bad[k]),
        String(lost[k]),
        fmt(median(ms[k]), 3),
        fmt(p95(k), 3),
        fmt(percentile(ms[k], 99), 3),
        fmt(Math.max(...ms[k]), 3),
        ratio(median(ms[k]), median(ms.local)),
        ratio(p95(k), p95('local')),
        ratio(median(ms[k]), median(ms.docker)),
        ratio(p95(k), p95('docker')),
      ]),
    );
    r.note(
      `Three hosts on one underlay with a 3-member etcd; overlay ${OV} (${OV_SUBNET}) with a container on each host; on host A also a built-in bridge network ${BR} (${BR_SUBNET}) with two containers. ` +
      `The clients are node processes with dns-packet in the querying containers' network namespaces (nsenter -n), driven one query at a time, so queries never overlap. ` +
      `Before the measurement every name was checked to resolve to the right address (all did ${(readyMs / 1000).toFixed(1)} s after the last container had started and its address was read). ` +
      'Each host\'s resolv.conf names only the benchmark\'s own DNS server in host A\'s "outside" namespace (198.18.254.1, answers *.outside.test): no query leaves the machine. ' +
      'The "local" and "external" rows go through loom\'s relay (container -> loom\'s socket in the container -> Docker\'s resolver), so "local vs docker" is the cost of the relay. ' +
      'Absolute figures move with the machine\'s load (other jobs share it); compare the ratios, measured side by side in this run.',
    );
    Object.assign(ctx.facts, {
      dnsRemoteP50: fmt(median(ms.remote), 3),
      dnsRemoteP95: fmt(p95('remote'), 3),
      dnsLocalP95: fmt(p95('local'), 3),
      dnsDockerP95: fmt(p95('docker'), 3),
      dnsRemoteVsLocal: ratio(p95('remote'), p95('local')),
      dnsRemoteVsDocker: ratio(p95('remote'), p95('docker')),
      dnsN: String(n),
    });
    const failed = bad.remote + lost.remote;
    ctx.report.target({
      id: 'dns-remote',
      name: 'remote name resolution p95',
      target: '< 5 ms',
      measured: `${fmt(p95('remote'), 3)} ms (p50 ${fmt(median(ms.remote), 3)} ms, n=${ms.remote.length}, ${failed} failed; p95 remote / local ${ratio(p95('remote'), p95('local'))}, remote / Docker's resolver without loom ${ratio(p95('remote'), p95('docker'))})`,
      pass: failed === 0 && p95('remote') < 5,
    });
    if (failed > n / 100) throw new Error(`${failed} of ${n} remote queries failed`);
  } finally {
    ctx.phase('names: cleaning up');
    await stopClients();
    for (const h of [A, B, C]) await h.removeContainers().catch(() => undefined);
    await destroy();
    ctx.phase('names: done');
  }
}
