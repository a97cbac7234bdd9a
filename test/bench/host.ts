/**
 * Benchmarks 1-4 on one private Docker host (TestHost: own namespaces, dockerd, loomd as legacy plugin):
 *   1. container start (`docker run --rm`), sequential and 20 in parallel, loom vs built-in bridge;
 *   2. plugin-side latency per call from loomd's own "call" log lines, share of `docker run` spent in loom;
 *   3. network create/remove latency, loom vs built-in bridge;
 *   4. same-host throughput (iperf3) and latency (ping): loom vs built-in bridge vs a bare veth pair.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { TestHost } from '../helpers/test-host';
import type { Engine } from '../helpers/engines';
import { killAndWait, run, runOk, waitFor } from '../helpers/run';
import { BenchContext, CallLine, LOOMD_DEFAULTS, fileSize, iperfGbits, msSince, mustOk, pingRtts, readCalls, timed } from './context';
import { fmt, fmtPaired, gbitRange, median, pairedRatio, percentile, rangesOverlap, ratio, rotation, summarize, vsMeasured } from './stats';

const LOOM_NET = 'bench-loom';
const BRIDGE_NET = 'bench-bridge';
const METHODS = ['RequestAddress', 'CreateEndpoint', 'Join', 'Leave', 'DeleteEndpoint', 'ReleaseAddress'];

export interface EngineInfo {
  engine: string;
  server: string;
  client: string;
}

/**
 * `primary`: the engine the whole run is about (all of 1-4, the targets); otherwise a second engine
 * for which only 1-3 run (the data path of 4 is the kernel's, whatever the engine) with its own start target.
 */
export async function hostBenchmarks(ctx: BenchContext, engines: EngineInfo[], engine: Engine, primary: boolean): Promise<void> {
  const r = ctx.report;
  const tag = primary ? '' : ` (Docker ${engine.id})`;
  ctx.phase(`host: creating a test host with Docker ${engine.id}`);
  const host = await TestHost.create({ engine });
  const destroy = ctx.defer('destroy test host', () => host.destroy());
  try {
    await host.importTools();
    await host.startLoomd(LOOMD_DEFAULTS);
    engines.push({ engine: host.engine.id, server: await host.cliOk(['version', '-f', '{{.Server.Version}}']), client: await host.cliOk(['version', '-f', '{{.Client.Version}}']) });
    const drv = host.driver;
    await host.cliOk(['network', 'create', '-d', drv, '--ipam-driver', drv, '--subnet', '198.18.20.0/24', LOOM_NET]);
    await host.cliOk(['network', 'create', '--subnet', '198.18.21.0/24', BRIDGE_NET]);
    const logFile = path.join(host.dir, 'loomd.log');

    ctx.phase('host: sequential starts');
    // ---- 1 + 2: sequential container starts ------------------------------------------------------
    r.begin(`start${tag}`, `1. Container start${tag}: \`docker run --rm --network X local/busybox true\``);
    const runOnce = (net: string): Promise<{ code: number; ms: number; stderr: string }> =>
      timed(host.engine.client, ['-H', `unix://${host.dockerSock}`, 'run', '--rm', '--network', net, 'local/busybox', 'true'], { timeoutMs: 120_000, env: host.engine.env });
    for (let i = 0; i < ctx.config.warmup; i++) for (const net of rotation([LOOM_NET, BRIDGE_NET], i)) await runOnce(net);

    const seq: Record<string, number[]> = { [LOOM_NET]: [], [BRIDGE_NET]: [] };
    const failures: Record<string, number> = { [LOOM_NET]: 0, [BRIDGE_NET]: 0 };
    const perStart: Array<{ wallMs: number; calls: CallLine[] }> = [];
    // One pair per round (loom, built-in); the order alternates between rounds.
    const pairs: Array<[number | undefined, number | undefined]> = [];
    for (let i = 0; i < ctx.config.startRuns; i++) {
      ctx.checkTime('sequential container starts');
      const round: Record<string, number> = {};
      for (const net of rotation([LOOM_NET, BRIDGE_NET], i)) {
        const from = fileSize(logFile);
        const res = await runOnce(net);
        if (res.code !== 0) {
          failures[net] = (failures[net] ?? 0) + 1;
          console.warn(`docker run on ${net} failed: ${res.stderr.trim().slice(0, 300)}`);
          continue;
        }
        seq[net]?.push(res.ms);
        round[net] = res.ms;
        if (net === LOOM_NET) perStart.push({ wallMs: res.ms, calls: readCalls(logFile, from).calls });
      }
      pairs.push([round[LOOM_NET], round[BRIDGE_NET]]);
    }
    const paired = pairedRatio(pairs);
    const failTotal = (failures[LOOM_NET] ?? 0) + (failures[BRIDGE_NET] ?? 0);
    if (failTotal > ctx.config.startRuns / 5) throw new Error(`${failTotal} of ${2 * ctx.config.startRuns} container starts failed`);
    const L = summarize(seq[LOOM_NET] as number[]);
    const B = summarize(seq[BRIDGE_NET] as number[]);

    ctx.phase('host: parallel starts');
    // ---- parallel batches ------------------------------------------------------------------------
    const par: Record<string, number[]> = { [LOOM_NET]: [], [BRIDGE_NET]: [] };
    const parCalls: CallLine[] = [];
    const parFailures: Record<string, number> = { [LOOM_NET]: 0, [BRIDGE_NET]: 0 };
    for (let rep = 0; rep < ctx.config.parallelReps; rep++) {
      ctx.checkTime('parallel container starts');
      for (const net of rotation([LOOM_NET, BRIDGE_NET], rep)) {
        const from = fileSize(logFile);
        const t0 = process.hrtime.bigint();
        const results = await Promise.all(Array.from({ length: ctx.config.parallel }, () => runOnce(net)));
        const wall = msSince(t0);
        const failed = results.filter((x) => x.code !== 0);
        parFailures[net] = (parFailures[net] ?? 0) + failed.length;
        if (failed.length) console.warn(`${failed.length} parallel starts on ${net} failed: ${failed[0]?.stderr.trim().slice(0, 300)}`);
        par[net]?.push(wall);
        if (net === LOOM_NET) parCalls.push(...readCalls(logFile, from).calls);
      }
    }
    const PL = par[LOOM_NET] as number[];
    const PB = par[BRIDGE_NET] as number[];
    r.table(
      `Sequential starts (${ctx.config.startRuns} per network, alternating, after ${ctx.config.warmup} warm-up runs each), wall time of the docker CLI in ms`,
      ['network', 'n', 'median', 'p95', 'min', 'max', 'failed'],
      [
        ['loom bridge', String(L.n), fmt(L.median), fmt(L.p95), fmt(L.min), fmt(L.max), String(failures[LOOM_NET])],
        ['built-in bridge (user-defined)', String(B.n), fmt(B.median), fmt(B.p95), fmt(B.min), fmt(B.max), String(failures[BRIDGE_NET])],
        ['ratio loom / built-in', '', ratio(L.median, B.median), ratio(L.p95, B.p95), '', '', ''],
        ['per-pair ratio: median [95 % bootstrap interval]', String(paired.n), fmtPaired(paired), '', '', '', ''],
      ],
    );
    r.table(
      `${ctx.config.parallel} parallel starts (${ctx.config.parallelReps} batches per network, alternating), wall time of the whole batch in ms`,
      ['network', 'batches', 'median', 'p95 (= max here)', 'min', 'failed starts'],
      [
        ['loom bridge', String(PL.length), fmt(median(PL)), fmt(percentile(PL, 95)), fmt(Math.min(...PL)), String(parFailures[LOOM_NET])],
        ['built-in bridge', String(PB.length), fmt(median(PB)), fmt(percentile(PB, 95)), fmt(Math.min(...PB)), String(parFailures[BRIDGE_NET])],
        ['ratio loom / built-in', '', ratio(median(PL), median(PB)), ratio(percentile(PL, 95), percentile(PB, 95)), '', ''],
      ],
    );
    // Facts for the explanations; a second engine's carry its id (start-28.5 reads startLoom@28.5, ...).
    const put = (o: Record<string, string>): void => {
      Object.assign(ctx.facts, primary ? o : Object.fromEntries(Object.entries(o).map(([k, v]) => [`${k}@${engine.id}`, v])));
    };
    put({
      startLoom: fmt(L.median),
      startBridge: fmt(B.median),
      startDiff: fmt(L.median - B.median),
      startP95Ratio: ratio(L.p95, B.p95),
      parRatio: ratio(median(PL), median(PB)),
      startLoomRange: `${fmt(L.min)}-${fmt(L.max)} ms`,
      startBridgeRange: `${fmt(B.min)}-${fmt(B.max)} ms`,
      engine: engine.id,
    });
    ctx.report.target({
      id: primary ? 'start' : `start-${engine.id}`,
      name: `container start median vs built-in bridge${tag}`,
      // Judged on the per-pair median; passes only when the whole interval is within the target.
      target: '<= 1.00x (per-pair median, whole 95 % interval)',
      measured: `${fmtPaired(paired)} (medians ${fmt(L.median)} ms vs ${fmt(B.median)} ms)`,
      pass: paired.n > 0 && paired.hi <= 1.0,
    });

    // ---- 2: plugin-side latency ------------------------------------------------------------------
    r.begin(`plugin${tag}`, `2. Plugin-side latency${tag} (loomd's own "call" log lines: durationMs, from the route handler's start to the reply)`);
    const seqCalls = perStart.flatMap((p) => p.calls);
    const rows: string[][] = [];
    for (const m of METHODS) {
      const a = seqCalls.filter((c) => c.method === m).map((c) => c.durationMs);
      const b = parCalls.filter((c) => c.method === m).map((c) => c.durationMs);
      rows.push([m, String(a.length), fmt(median(a)), fmt(percentile(a, 99)), String(b.length), fmt(median(b)), fmt(percentile(b, 99))]);
    }
    const cej = perStart.map((p) => p.calls.filter((c) => c.method === 'CreateEndpoint' || c.method === 'Join').reduce((s, c) => s + c.durationMs, 0));
    const parCej = pairSums(parCalls);
    rows.push(['CreateEndpoint + Join (per start)', String(cej.length), fmt(median(cej)), fmt(percentile(cej, 99)), '', '', '']);
    r.table(
      'Per call, ms: during the sequential starts | during the parallel batches (calls queue behind the per-network lock)',
      ['call', 'n (seq)', 'p50', 'p99', 'n (parallel)', 'p50', 'p99'],
      rows,
    );
    if (parCej.length) r.note(`CreateEndpoint + Join summed per endpoint in the parallel batches: p50 ${fmt(median(parCej))} ms, p99 ${fmt(percentile(parCej, 99))} ms (n=${parCej.length}).`);
    const shares = perStart.map((p) => p.calls.reduce((s, c) => s + c.durationMs, 0) / p.wallMs);
    const perStartCalls = perStart.map((p) => p.calls.length);
    const allMethods = [...new Set(seqCalls.map((c) => c.method))].sort();
    r.table(
      'Share of `docker run --rm` wall time spent inside loom (sum of all of loom\'s call durations during one sequential start / its wall time)',
      ['starts', 'calls per start (median)', 'loom ms per start (median)', 'share median', 'share p95'],
      [[String(perStart.length), fmt(median(perStartCalls), 0), fmt(median(perStart.map((p) => p.calls.reduce((s, c) => s + c.durationMs, 0)))), `${(median(shares) * 100).toFixed(1)} %`, `${(percentile(shares, 95) * 100).toFixed(1)} %`]],
    );
    r.note(`Calls seen per start: ${allMethods.join(', ')}.`);
    const deMed = median(seqCalls.filter((c) => c.method === 'DeleteEndpoint').map((c) => c.durationMs));
    put({
      shareMedian: `${(median(shares) * 100).toFixed(1)} %`,
      loomMsPerStart: fmt(median(perStart.map((p) => p.calls.reduce((s, c) => s + c.durationMs, 0)))),
      callsPerStart: fmt(median(perStartCalls), 0),
      deleteEndpointDocker: fmt(deMed),
    });
    const perStartMs = perStart.map((p) => p.calls.reduce((s, c) => s + c.durationMs, 0));
    ctx.report.target({
      id: primary ? 'plugin-per-start' : `plugin-per-start-${engine.id}`,
      name: `plugin time per container start${tag} (sum of loom's calls during one \`docker run --rm\`)`,
      target: '<= 10 ms p50',
      measured: `${fmt(median(perStartMs))} ms p50, ${fmt(percentile(perStartMs, 95))} ms p95 (${perStart.length} sequential starts, ${fmt(median(perStartCalls), 0)} calls each)`,
      pass: perStart.length > 0 && median(perStartMs) <= 10,
    });
    const cejP99 = percentile(cej, 99);
    if (primary) ctx.shared.cejDocker = { p50: median(cej), p99: cejP99, max: Math.max(...cej), n: cej.length };
    // The scale benchmark (1,000 endpoints) replaces this line with a p99 over enough samples to mean something.
    if (primary) ctx.report.target({
      id: 'cej',
      name: 'plugin-side CreateEndpoint+Join p99',
      target: '<= 10 ms',
      measured: `${fmt(cejP99)} ms (n=${cej.length} sequential docker starts; p99 of n<100 is the maximum)`,
      pass: cejP99 <= 10,
    });

    ctx.phase('host: network create/remove');
    // ---- 3: network create / remove --------------------------------------------------------------
    r.begin(`netcreate${tag}`, `3. Network create / remove latency${tag} (docker CLI wall time)`);
    const nc: Record<string, { create: number[]; remove: number[] }> = { loom: { create: [], remove: [] }, bridge: { create: [], remove: [] } };
    const createArgs = (kind: string): string[] =>
      kind === 'loom' ? ['network', 'create', '-d', drv, '--ipam-driver', drv, '--subnet', '198.18.22.0/24', 'bench-nc-loom'] : ['network', 'create', '--subnet', '198.18.23.0/24', 'bench-nc-bridge'];
    const cli = (args: string[]): Promise<{ code: number; ms: number; stdout: string; stderr: string }> =>
      timed(host.engine.client, ['-H', `unix://${host.dockerSock}`, ...args], { timeoutMs: 60_000, env: host.engine.env });
    for (let i = 0; i < ctx.config.netCreateRuns + 1; i++) {
      ctx.checkTime('network create/remove');
      for (const kind of rotation(['loom', 'bridge'], i)) {
        const c = await cli(createArgs(kind));
        mustOk(c, `docker network create (${kind})`);
        const d = await cli(['network', 'rm', `bench-nc-${kind}`]);
        mustOk(d, `docker network rm (${kind})`);
        if (i === 0) continue; // warm-up
        nc[kind]?.create.push(c.ms);
        nc[kind]?.remove.push(d.ms);
      }
    }
    const ncL = nc.loom as { create: number[]; remove: number[] };
    const ncB = nc.bridge as { create: number[]; remove: number[] };
    r.table(
      `${ctx.config.netCreateRuns} create + remove cycles per driver (alternating, after one warm-up cycle), ms`,
      ['operation', 'loom median', 'loom p95', 'built-in median', 'built-in p95', 'ratio of medians', 'ratio of p95s'],
      [
        ['network create', fmt(median(ncL.create)), fmt(percentile(ncL.create, 95)), fmt(median(ncB.create)), fmt(percentile(ncB.create, 95)), ratio(median(ncL.create), median(ncB.create)), ratio(percentile(ncL.create, 95), percentile(ncB.create, 95))],
        ['network rm', fmt(median(ncL.remove)), fmt(percentile(ncL.remove, 95)), fmt(median(ncB.remove)), fmt(percentile(ncB.remove, 95)), ratio(median(ncL.remove), median(ncB.remove)), ratio(percentile(ncL.remove, 95), percentile(ncB.remove, 95))],
      ],
    );

    if (!primary) return;
    ctx.phase('host: same-host throughput');
    // ---- 4: same-host throughput and latency -----------------------------------------------------
    r.begin('samehost', '4. Same-host throughput (iperf3, one TCP stream) and latency (ping RTT)');
    await sameHost(ctx, host);
  } finally {
    ctx.phase('host: cleaning up');
    await destroy();
  }
}

/** CreateEndpoint+Join per endpoint is not attributable in a parallel batch by order; sum matching pairs by position. */
function pairSums(calls: CallLine[]): number[] {
  const ce = calls.filter((c) => c.method === 'CreateEndpoint').map((c) => c.durationMs);
  const j = calls.filter((c) => c.method === 'Join').map((c) => c.durationMs);
  const n = Math.min(ce.length, j.length);
  return Array.from({ length: n }, (_, i) => (ce[i] as number) + (j[i] as number));
}

async function sameHost(ctx: BenchContext, host: TestHost): Promise<void> {
  const r = ctx.report;
  const tag = host.name;
  const nsA = `loomb-${tag}-va`;
  const nsB = `loomb-${tag}-vb`;
  const pids: number[] = [];
  const undo = ctx.defer('same-host veth namespaces', async () => {
    for (const pid of pids) await killAndWait(pid, 'SIGTERM', 5_000);
    await run('ip', ['netns', 'del', nsA]);
    await run('ip', ['netns', 'del', nsB]);
  });
  try {
    // Containers: an iperf3 server and a client on each network.
    for (const [net, p] of [[LOOM_NET, 'l'], [BRIDGE_NET, 'b']] as const) {
      await host.cliOk(['run', '-d', '--init', '--name', `bench-${p}-srv`, '--network', net, 'local/tools', 'iperf3', '-s']);
      await host.cliOk(['run', '-d', '--init', '--name', `bench-${p}-cli`, '--network', net, 'local/tools', 'sleep', '3600']);
    }
    const ipOf = (c: string, net: string): Promise<string> => host.containerIp(c, net);
    const loomSrv = await ipOf('bench-l-srv', LOOM_NET);
    const bridgeSrv = await ipOf('bench-b-srv', BRIDGE_NET);
    // A bare veth pair between two namespaces we create (MTU 1500 like both networks).
    await runOk('ip', ['netns', 'add', nsA]);
    await runOk('ip', ['netns', 'add', nsB]);
    await runOk('ip', ['-n', nsA, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', nsB]);
    for (const [ns, ip] of [[nsA, '198.18.24.1/30'], [nsB, '198.18.24.2/30']] as const) {
      await runOk('ip', ['-n', ns, 'addr', 'add', ip, 'dev', 'eth0']);
      await runOk('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      await runOk('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    }
    const srv = spawn('nsenter', [`--net=/run/netns/${nsB}`, 'iperf3', '-s', '-B', '198.18.24.2'], { stdio: 'ignore', detached: true });
    if (srv.pid) pids.push(srv.pid);
    srv.unref();
    type Path = 'loom' | 'bridge' | 'veth';
    const iperfCmd = (p: Path): [string, string[]] => {
      const args = ['iperf3', '-c', '', '-t', String(ctx.config.iperfSeconds), '-O', '1', '-J'];
      if (p === 'veth') return ['nsenter', [`--net=/run/netns/${nsA}`, ...args.map((a) => (a === '' ? '198.18.24.2' : a))]];
      const [c, ip] = p === 'loom' ? ['bench-l-cli', loomSrv] : ['bench-b-cli', bridgeSrv];
      return [host.engine.client, ['-H', `unix://${host.dockerSock}`, 'exec', c, ...args.map((a) => (a === '' ? ip : a))]];
    };
    const pingCmd = (p: Path): [string, string[]] => {
      const args = ['ping', '-c', String(ctx.config.pingCount), '-i', '0.2', ''];
      if (p === 'veth') return ['nsenter', [`--net=/run/netns/${nsA}`, 'busybox', ...args.map((a) => (a === '' ? '198.18.24.2' : a))]];
      const [c, ip] = p === 'loom' ? ['bench-l-cli', loomSrv] : ['bench-b-cli', bridgeSrv];
      return [host.engine.client, ['-H', `unix://${host.dockerSock}`, 'exec', c, ...args.map((a) => (a === '' ? ip : a))]];
    };
    const paths: Path[] = ['loom', 'bridge', 'veth'];
    // Readiness and warm-up: a 1 s run per path until it succeeds (servers may still be starting).
    for (const p of paths) {
      await waitFor(`iperf3 server reachable (${p})`, async () => {
        const [cmd, args] = iperfCmd(p);
        const a = [...args];
        a[a.indexOf('-t') + 1] = '1';
        return (await run(cmd, a, { timeoutMs: 20_000, env: host.engine.env })).code === 0;
      }, 30_000, 200);
    }
    const gbit: Record<Path, number[]> = { loom: [], bridge: [], veth: [] };
    const rtt: Record<Path, number[]> = { loom: [], bridge: [], veth: [] };
    for (let rep = 0; rep < ctx.config.iperfReps; rep++) {
      ctx.checkTime('same-host iperf3');
      for (const p of rotation(paths, rep)) {
        const [cmd, args] = iperfCmd(p);
        const out = mustOk(await run(cmd, args, { timeoutMs: (ctx.config.iperfSeconds + 30) * 1000, env: host.engine.env }), `iperf3 (${p})`);
        gbit[p].push(iperfGbits(out));
      }
      for (const p of rotation(paths, rep)) {
        const [cmd, args] = pingCmd(p);
        const res = await run(cmd, args, { timeoutMs: (ctx.config.pingCount * 0.2 + 30) * 1000, env: host.engine.env });
        rtt[p].push(...pingRtts(res.stdout));
      }
    }
    const rows = paths.map((p) => [
      { loom: 'loom bridge (two containers)', bridge: 'built-in bridge (two containers)', veth: 'bare veth pair (two namespaces)' }[p],
      gbit[p].map((x) => x.toFixed(2)).join(' / '),
      fmt(median(gbit[p]), 2),
      ratio(median(gbit[p]), median(gbit.bridge)),
      ratio(median(gbit[p]), median(gbit.veth)),
      String(rtt[p].length),
      fmt(median(rtt[p]), 3),
      fmt(percentile(rtt[p], 95), 3),
      ratio(median(rtt[p]), median(rtt.bridge)),
    ]);
    r.table(
      `iperf3 -t ${ctx.config.iperfSeconds} -O 1 (one TCP stream), ${ctx.config.iperfReps} runs per path in rotating order; busybox ping -c ${ctx.config.pingCount} -i 0.2 per run`,
      ['path', 'Gbit/s per run', 'median Gbit/s', 'vs built-in', 'vs veth', 'pings', 'RTT median ms', 'RTT p95 ms', 'RTT vs built-in'],
      rows as string[][],
    );
    const tp = median(gbit.loom) / median(gbit.bridge);
    Object.assign(ctx.facts, {
      sameGap: `${((1 - tp) * 100).toFixed(0)} %`,
      sameLoomRuns: gbitRange(gbit.loom),
      sameBridgeRuns: gbitRange(gbit.bridge),
      sameVethRuns: gbitRange(gbit.veth),
      sameReps: String(ctx.config.iperfReps),
      sameRttRatio: ratio(median(rtt.loom), median(rtt.bridge)),
      sameOverlap: rangesOverlap(gbit.loom, gbit.bridge) ? 'yes' : 'no',
    });
    ctx.report.target({
      id: 'samehost',
      name: 'same-host throughput vs built-in bridge',
      target: '>= 0.97x',
      measured: vsMeasured(gbit.loom, gbit.bridge),
      pass: tp >= 0.97,
    });
  } finally {
    await undo();
  }
}
