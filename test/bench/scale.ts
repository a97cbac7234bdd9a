/**
 * Benchmark 7: scale, driven through the plugin API without containers against a real loomd
 * in a network namespace of its own (it creates real bridges and veth pairs there), with a
 * Docker API connected: a fake one (fake-docker.ts) on a Unix socket of this process that
 * answers loomd's calls from what the benchmark made (every network, and every endpoint as a
 * running container on its network), so that the reconciler's Docker view and the label
 * lookup after each Join run as with a real dockerd (which would need 1,000 real containers:
 * too long to build in the benchmark's budget):
 *   - 1,000 endpoints on one network (RequestAddress + CreateEndpoint + Join each), then
 *     100 networks in all (RequestPool + gateway + CreateNetwork each);
 *   - per-call latency as the state grows (first and last 100), loomd's RSS;
 *   - restart: SIGKILL loomd, start it again, time until the socket answers GetCapabilities and
 *     until the first reconcile pass is done (admin API GET /v1/reconcile, passes >= 1);
 *   - then the endpoints are taken down again (Leave + DeleteEndpoint + ReleaseAddress).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { killAndWait, run, runOk, sleep } from '../helpers/run';
import { pluginCall } from '../helpers/unix-http';
import { BenchContext, CallLine, fileSize, msSince, readCalls, rssMiB, timed } from './context';
import { StandaloneLoomd, call, randomId } from './standalone';
import { FakeDocker } from './fake-docker';
import { REPO } from '../helpers/test-host';
import { fmt, fmtPaired, median, pairedRatio, percentile } from './stats';

const EP_POOL = '198.18.64.0/20'; // 4094 addresses: room for the endpoints
const netPool = (j: number): string => `198.19.${j}.0/24`;

export async function scaleBenchmarks(ctx: BenchContext): Promise<void> {
  const r = ctx.report;
  const { scaleEndpoints: N, scaleNetworks: M } = ctx.config;
  r.begin('scale', `7. Scale: ${N} endpoints on one network and ${M} networks through the plugin API (a real loomd in a namespace of its own, real veths, a fake Docker API connected)`);
  const d = new StandaloneLoomd('scale');
  const fake = new FakeDocker(path.join(d.dir, 'docker.sock'));
  const destroy = ctx.defer('scale loomd', async () => {
    await d.destroy();
    await fake.stop();
  });
  /** Spawns loomd with the fake Docker API, of LOOM_DIST's build or of `dist`'s. */
  const spawnLoomd = (dist?: string): number => d.spawn({ DOCKER_HOST: `unix://${fake.socket}` }, dist);
  try {
    await d.create();
    await fake.start();
    spawnLoomd();
    await d.waitAnswering(process.hrtime.bigint());
    await sleep(1_000);
    const rssFresh = d.rss() ?? NaN;

    const createNetwork = async (pool: string, name: string): Promise<{ id: string; poolId: string; ms: number }> => {
      const p = await call(d.socket, 'IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: pool, SubPool: '', Options: {}, V6: false });
      const gw = await call(d.socket, 'IpamDriver.RequestAddress', { PoolID: p.json.PoolID, Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } });
      const id = randomId();
      // Docker knows the network before it asks the driver to create it.
      fake.addNetwork({ id, name, driver: 'loombench', ipamDriver: 'loombench', subnet: String(p.json.Pool), gateway: String(gw.json.Address).split('/')[0] as string });
      const c = await call(d.socket, 'NetworkDriver.CreateNetwork', {
        NetworkID: id,
        Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} },
        IPv4Data: [{ AddressSpace: 'LoomLocal', Gateway: gw.json.Address, Pool: p.json.Pool }],
        IPv6Data: [],
      });
      return { id, poolId: p.json.PoolID, ms: c.ms };
    };

    // ---- 1,000 endpoints on one network ----------------------------------------------------------
    ctx.phase(`scale: ${N} endpoints`);
    const net0 = await createNetwork(EP_POOL, 'scale-0');
    const eps: Array<{ id: string; address: string }> = [];
    const client: Record<'RequestAddress' | 'CreateEndpoint' | 'Join', number[]> = { RequestAddress: [], CreateEndpoint: [], Join: [] };
    const tEp = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      if (i % 100 === 0) ctx.checkTime('scale: endpoints');
      const a = await call(d.socket, 'IpamDriver.RequestAddress', { PoolID: net0.poolId, Address: '', Options: null });
      const id = randomId();
      // Docker shows the container on the network from its connect on (before CreateEndpoint answers).
      fake.byEndpoint.set(id, { id: randomId(), name: `scale-c${i}`, networkId: net0.id, networkName: 'scale-0', endpointId: id, labels: { 'com.docker.compose.project': 'scale', 'com.docker.compose.service': `svc${i % 10}` }, address: String(a.json.Address) });
      const ce = await call(d.socket, 'NetworkDriver.CreateEndpoint', { NetworkID: net0.id, EndpointID: id, Interface: { Address: a.json.Address, AddressIPv6: '', MacAddress: '' }, Options: {} });
      const j = await call(d.socket, 'NetworkDriver.Join', { NetworkID: net0.id, EndpointID: id, SandboxKey: `/var/run/docker/netns/bench${i}`, Options: {} });
      client.RequestAddress.push(a.ms);
      client.CreateEndpoint.push(ce.ms);
      client.Join.push(j.ms);
      eps.push({ id, address: String(a.json.Address).split('/')[0] as string });
    }
    const epTotalS = Number(process.hrtime.bigint() - tEp) / 1e9;

    // ---- 100 networks in all ---------------------------------------------------------------------
    ctx.phase(`scale: ${M} networks`);
    const netMs: number[] = [];
    for (let j = 1; j < M; j++) {
      ctx.checkTime('scale: networks');
      netMs.push((await createNetwork(netPool(j), `scale-${j}`)).ms);
    }
    const { calls: built } = readCalls(d.logFile, 0);
    await sleep(1_000);
    const rssBuilt = d.rss() ?? NaN;
    // Idle: how far does V8 give the garbage of the calls back by itself (bounded)?
    ctx.phase('scale: watching the idle loomd\'s RSS');
    let rssIdleMin = rssBuilt;
    let rssIdleAt = 1;
    const IDLE_S = 45;
    for (let s = 2; s <= IDLE_S; s++) {
      await sleep(1_000);
      const v = d.rss() ?? NaN;
      if (v < rssIdleMin) {
        rssIdleMin = v;
        rssIdleAt = s;
      }
    }
    const gc = await d.memAfterGc();
    const linkCount = runOk('ip', ['-n', d.netns, '-o', 'link', 'show']).then((o) => o.split('\n').filter(Boolean).length);

    const plugin = (m: string, calls: CallLine[]): number[] => calls.filter((c) => c.method === m).map((c) => c.durationMs);
    const rows: string[][] = [];
    for (const m of ['RequestAddress', 'CreateEndpoint', 'Join'] as const) {
      const p = plugin(m, built).slice(m === 'RequestAddress' ? 1 : 0); // the first RequestAddress is network 0's gateway
      const epCalls = p.slice(0, N);
      const first = epCalls.slice(0, 100);
      const last = epCalls.slice(-100);
      const cf = client[m].slice(0, 100);
      const cl = client[m].slice(-100);
      rows.push([m, fmt(median(first), 2), fmt(percentile(first, 99), 2), fmt(median(last), 2), fmt(percentile(last, 99), 2), fmt(median(cf), 2), fmt(percentile(cf, 99), 2), fmt(median(cl), 2), fmt(percentile(cl, 99), 2)]);
    }
    const ceAll = plugin('CreateEndpoint', built).slice(0, N);
    const jAll = plugin('Join', built).slice(0, N);
    const cej = ceAll.map((x, i) => x + (jAll[i] ?? NaN));
    rows.push(['CreateEndpoint + Join', fmt(median(cej.slice(0, 100)), 2), fmt(percentile(cej.slice(0, 100), 99), 2), fmt(median(cej.slice(-100)), 2), fmt(percentile(cej.slice(-100), 99), 2), '', '', '', '']);
    r.table(
      `Per-call latency as the network fills, ms (plugin side = loomd's durationMs; client = HTTP round trip); ${N} endpoints in ${epTotalS.toFixed(1)} s`,
      ['call', 'first 100 p50', 'first 100 p99', 'last 100 p50', 'last 100 p99', 'client first p50', 'client first p99', 'client last p50', 'client last p99'],
      rows,
    );
    const cn = plugin('CreateNetwork', built);
    const tenth = Math.max(1, Math.floor(cn.length / 10));
    r.table(
      `CreateNetwork as the number of networks grows (plugin side, ms; ${cn.length} networks, the first one before the endpoints)`,
      ['networks', 'n', 'p50', 'max'],
      [
        [`first ${tenth}`, String(tenth), fmt(median(cn.slice(0, tenth)), 2), fmt(Math.max(...cn.slice(0, tenth)), 2)],
        [`last ${tenth}`, String(tenth), fmt(median(cn.slice(-tenth)), 2), fmt(Math.max(...cn.slice(-tenth)), 2)],
      ],
    );
    r.note(`All ${N} CreateEndpoint + Join pairs: p50 ${fmt(median(cej), 2)} ms, p99 ${fmt(percentile(cej, 99), 2)} ms (plugin side). The namespace held ${await linkCount} links at the end.`);

    // ---- restart ---------------------------------------------------------------------------------
    ctx.phase('scale: restarts');
    const sock: number[] = [];
    // A real call (state read, not the early socket's handshake): EndpointOperInfo of the last endpoint.
    const real: number[] = [];
    const probeEp = eps[eps.length - 1];
    const realCall = async (t0: bigint): Promise<number> => {
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        try {
          const res = await pluginCall(d.socket, 'NetworkDriver.EndpointOperInfo', { NetworkID: net0.id, EndpointID: probeEp?.id });
          if (res.status === 200) return msSince(t0);
        } catch {
          // not listening yet
        }
        await sleep(2);
      }
      throw new Error('no real call answered within 20 s of the restart');
    };
    const rec: number[] = [];
    const internal: number[] = [];
    const listening: number[] = [];
    let rssRestarted = NaN;
    let gcRestarted: { rss: number; heapUsed: number; heapTotal: number; external: number } | undefined;
    for (let i = 0; i < ctx.config.restarts; i++) {
      ctx.checkTime('scale: restarts');
      await d.kill('SIGKILL');
      const from = fileSize(d.logFile);
      const wall0 = Date.now();
      const t0 = process.hrtime.bigint();
      spawnLoomd();
      // Both probes start at spawn: the handshake (answered by the early socket) and a real call.
      const [s0, r0] = await Promise.all([d.waitAnswering(t0, 20_000, 5), realCall(t0)]);
      sock.push(s0);
      real.push(r0);
      rec.push(await d.waitReconciled(t0));
      const line = fs.readFileSync(d.logFile, 'utf8').slice(from).split('\n').find((l) => l.includes('"msg":"loomd listening"'));
      if (line) {
        const j = JSON.parse(line) as { startMs: number; time: string };
        internal.push(j.startMs);
        listening.push(Date.parse(j.time) - wall0);
      }
      await sleep(1_000);
      rssRestarted = d.rss() ?? NaN;
      if (i === ctx.config.restarts - 1) gcRestarted = await d.memAfterGc();
    }
    // Side by side with another build of loomd (BENCH_RESTART_VS=its dist directory): the same
    // restart, the two builds in turn on the same state, the order alternated between rounds.
    const vsDist = process.env.BENCH_RESTART_VS;
    if (vsDist) {
      ctx.phase('scale: restarts side by side with BENCH_RESTART_VS');
      const restartOnce = async (dist?: string): Promise<number> => {
        await d.kill('SIGKILL');
        const t0 = process.hrtime.bigint();
        spawnLoomd(dist);
        const ms = await realCall(t0);
        await d.waitReconciled(t0);
        return ms;
      };
      const pairs: Array<[number, number]> = [];
      // An even number of rounds, the last one B then A: the benchmark goes on with LOOM_DIST's loomd.
      for (let i = 0; i < 2 * ctx.config.restarts; i++) {
        ctx.checkTime('scale: restarts side by side');
        if (i % 2 === 0) {
          const a = await restartOnce();
          pairs.push([a, await restartOnce(vsDist)]);
        } else {
          const b = await restartOnce(vsDist);
          pairs.push([await restartOnce(), b]);
        }
      }
      r.table(
        `The first real call after a restart, this build (LOOM_DIST) and another (BENCH_RESTART_VS=${vsDist}) in turn, ${pairs.length} rounds, ms`,
        ['build', 'p50', 'max', 'runs'],
        [
          ['this build', fmt(median(pairs.map((p) => p[0]))), fmt(Math.max(...pairs.map((p) => p[0]))), pairs.map((p) => p[0].toFixed(0)).join(' / ')],
          ['the other build', fmt(median(pairs.map((p) => p[1]))), fmt(Math.max(...pairs.map((p) => p[1]))), pairs.map((p) => p[1].toFixed(0)).join(' / ')],
        ],
      );
      r.note(`This build / the other, per-pair ratio of the first real call after a restart: ${fmtPaired(pairedRatio(pairs))} (median, 95 % bootstrap interval).`);
    }
    const floors = await nodeFloors(ctx);
    r.table(
      `Restart with ${N} endpoints and ${M} networks: SIGKILL, start (node + loomd), ${ctx.config.restarts} times, ms`,
      ['until', 'p50', 'max', 'runs'],
      [
        ['the socket answers GetCapabilities (from spawn; the early socket answers the handshake)', fmt(median(sock)), fmt(Math.max(...sock)), sock.map((x) => x.toFixed(0)).join(' / ')],
        ['the first real call is answered (EndpointOperInfo of a stored endpoint, from spawn)', fmt(median(real)), fmt(Math.max(...real)), real.map((x) => x.toFixed(0)).join(' / ')],
        ['loomd logs "loomd listening" (its log timestamp, from spawn: node start, module loading, start-up)', fmt(median(listening)), fmt(Math.max(...listening)), listening.join(' / ')],
        ['of which loomd\'s own start-up (its startMs: from the store\'s opening, which overlaps the loading of loomd\'s modules, to the state loaded and the sockets bound)', fmt(median(internal)), fmt(Math.max(...internal)), internal.join(' / ')],
        ['the first reconcile pass is done (admin API passes >= 1; after the data-plane restore)', fmt(median(rec)), fmt(Math.max(...rec)), rec.map((x) => x.toFixed(0)).join(' / ')],
        ['for comparison: a bare node process, start to exit (`node -e 0`)', fmt(median(floors.bare)), fmt(Math.max(...floors.bare)), floors.bare.map((x) => x.toFixed(0)).join(' / ')],
        ['for comparison: node loading the modules loomd loads before its first real call (loadModules() of main.js) without starting it, start to exit', fmt(median(floors.modules)), fmt(Math.max(...floors.modules)), floors.modules.map((x) => x.toFixed(0)).join(' / ')],
      ],
    );
    const bareMs = median(floors.bare);
    r.table(
      `What loading each runtime dependency alone costs (node -e "require(dep)"): start-to-exit time minus a bare node's (${fmt(bareMs)} ms), and the RSS of an idle node that loaded it minus a bare node's (${fmt(floors.rssBare, 1)} MiB)`,
      ['dependency', 'load time ms', 'RSS MiB'],
      floors.deps.sort((a, b) => b.ms - a.ms).map((x) => [x.dep, fmt(x.ms - bareMs), fmt(x.rss - floors.rssBare, 1)]),
    );
    r.table(
      'loomd memory (VmRSS; a fake Docker API connected), MiB',
      ['state', 'RSS'],
      [
        ['for comparison: a bare node process, idle', fmt(floors.rssBare, 1)],
        ['for comparison: node with loomd\'s modules loaded, not started, idle', fmt(floors.rssModules, 1)],
        ['fresh loomd, empty state (1 s after start)', fmt(rssFresh, 1)],
        [`${N} endpoints + ${M} networks, 1 s after the last call`, fmt(rssBuilt, 1)],
        [`the same process idle for ${IDLE_S} s: lowest RSS seen (after ${rssIdleAt} s)`, fmt(rssIdleMin, 1)],
        ['the same process after a forced full GC (V8 heap used / heap committed / external, in brackets)', `${fmt(gc?.rss ?? NaN, 1)} (${memDetail(gc)})`],
        ['restarted with that state, 1 s after its first reconcile pass', fmt(rssRestarted, 1)],
        ['the restarted process after a forced full GC (V8 heap used / heap committed / external, in brackets)', `${fmt(gcRestarted?.rss ?? NaN, 1)} (${memDetail(gcRestarted)})`],
      ],
    );
    const labelsLearned = fs.readFileSync(d.logFile, 'utf8').split('\n').filter((l) => l.includes('"msg":"learned the labels of an endpoint"')).length;
    r.note(
      `Docker API: loomd ran with a fake one connected (fake-docker.ts: a Unix socket of the benchmark answering loomd's calls from what the benchmark made, every endpoint a running container on its network; a real dockerd with ${N} containers would take too long to build in the benchmark's budget). ` +
        `Calls it answered, from the first start to the end of the restarts: ${fake.callSummary()}. loomd logged ${labelsLearned} label lookups after Join (network policy's labels, learned whether or not a policy exists).`,
    );
    const rssTarget = Math.max(gc?.rss ?? NaN, gcRestarted?.rss ?? NaN);
    ctx.report.target({
      id: 'rss',
      name: `RSS with ${N} endpoints`,
      target: '<= 100 MB',
      measured: `${fmt(rssTarget, 1)} MiB = ${fmt(rssTarget * 1.048576, 1)} MB with a (fake) Docker API connected (after a full GC, the larger of: the process that made the endpoints ${fmt(gc?.rss ?? NaN, 1)} MiB, the restarted one ${fmt(gcRestarted?.rss ?? NaN, 1)} MiB; without GC ${fmt(rssBuilt, 1)} MiB right after the calls, ${fmt(rssRestarted, 1)} MiB after a restart; fresh loomd ${fmt(rssFresh, 1)} MiB)`,
      pass: rssTarget * 1.048576 <= 100,
    });
    const deps = [...floors.deps].sort((a, b) => b.ms - a.ms);
    const byName = (n: string): DepCost | undefined => floors.deps.find((x) => x.dep === n);
    Object.assign(ctx.facts, {
      cejP50: fmt(median(cej), 2),
      cejP99: fmt(percentile(cej, 99), 2),
      ceFirstP50: fmt(median(ceAll.slice(0, 100)), 2),
      ceLastP50: fmt(median(ceAll.slice(-100)), 2),
      ceGrows: median(ceAll.slice(-100)) > 1.2 * median(ceAll.slice(0, 100)) ? 'yes' : 'no',
      joinP50: fmt(median(jAll), 2),
      joinP99: fmt(percentile(jAll, 99), 2),
      raP99: fmt(percentile(plugin('RequestAddress', built).slice(1, N + 1), 99), 2),
      bareMs: fmt(bareMs),
      modulesMs: fmt(median(floors.modules)),
      loomdStartMs: fmt(median(internal)),
      listeningMs: fmt(median(listening)),
      sockMs: fmt(median(sock)),
      realMs: fmt(median(real)),
      recMs: fmt(median(rec)),
      rssBare: fmt(floors.rssBare, 1),
      rssModules: fmt(floors.rssModules, 1),
      rssFresh: fmt(rssFresh, 1),
      rssBuilt: fmt(rssBuilt, 1),
      rssIdleMin: fmt(rssIdleMin, 1),
      rssGc: fmt(gc?.rss ?? NaN, 1),
      rssRestartGc: fmt(gcRestarted?.rss ?? NaN, 1),
      heapUsed: fmt(Math.max(gc?.heapUsed ?? NaN, gcRestarted?.heapUsed ?? NaN), 1),
      heapTotalRestart: fmt(gcRestarted?.heapTotal ?? NaN, 1),
      heapUsedRestart: fmt(gcRestarted?.heapUsed ?? NaN, 1),
      heapTotalBuilt: fmt(gc?.heapTotal ?? NaN, 1),
      externalRestart: fmt(gcRestarted?.external ?? NaN, 1),
      depsSlowest: deps.slice(0, 3).map((x) => `${x.dep} ${fmt(x.ms - bareMs)} ms`).join(', '),
      depsHeaviest: [...floors.deps].sort((a, b) => b.rss - a.rss).slice(0, 3).map((x) => `${x.dep} ${fmt(x.rss - floors.rssBare, 1)} MiB`).join(', '),
      etcdMs: fmt((byName('etcd3')?.ms ?? NaN) - bareMs),
      etcdRss: fmt((byName('etcd3')?.rss ?? NaN) - floors.rssBare, 1),
      dockerodeMs: fmt((byName('dockerode')?.ms ?? NaN) - bareMs),
      dockerodeRss: fmt((byName('dockerode')?.rss ?? NaN) - floors.rssBare, 1),
      expressMs: fmt((byName('express')?.ms ?? NaN) - bareMs),
      zodMs: fmt((byName('zod')?.ms ?? NaN) - bareMs),
      labelsLearned: String(labelsLearned),
      fakeDockerCalls: fake.callSummary(),
      scaleN: String(N),
    });
    const cd = ctx.shared.cejDocker;
    const cejP99 = percentile(cej, 99);
    ctx.report.target({
      id: 'cej',
      name: 'plugin-side CreateEndpoint+Join p99',
      target: '<= 10 ms',
      measured:
        `${fmt(cejP99, 2)} ms over ${cej.length} endpoints made through the API (p50 ${fmt(median(cej), 2)} ms)` +
        (cd ? `; during ${cd.n} sequential docker starts p50 ${fmt(cd.p50, 2)} ms, max ${fmt(cd.max, 1)} ms` : ''),
      pass: cejP99 <= 10,
    });
    const realP50 = median(real);
    ctx.report.target({
      id: 'restart',
      name: `first real plugin call answered after a restart with ${N} endpoints`,
      target: '<= 200 ms p50',
      measured: `${fmt(realP50)} ms p50, ${fmt(Math.max(...real))} ms max over ${real.length} restarts (handshake ${fmt(median(sock))} ms; loomd's own start ${fmt(median(internal))} ms; first reconcile pass done after ${fmt(median(rec))} ms)`,
      pass: realP50 <= 200,
    });

    // ---- the kernel's own cost, for comparison ----------------------------------------------------
    ctx.phase('scale: the kernel floor (ip -batch veths on a bridge)');
    const k = await kernelFloor(ctx, N);
    Object.assign(ctx.facts, { kernelFirst: fmt(k.createFirst, 2), kernelLast: fmt(k.createLast, 2), kernelPorts: String(k.ports), kernelDel: fmt(k.del, 1) });
    r.table(
      'For comparison, the kernel alone (iproute2 `ip -batch` in a fresh namespace, per veth pair: create + attach to a bridge + up; delete), ms',
      ['operation', 'per pair'],
      [
        ['create 100 pairs on an empty bridge', fmt(k.createFirst, 3)],
        [`create 100 pairs on a bridge that already has ${k.ports} ports`, fmt(k.createLast, 3)],
        ['delete 100 pairs one by one', fmt(k.del, 2)],
      ],
    );

    // ---- teardown through the API ----------------------------------------------------------------
    ctx.phase('scale: taking the endpoints down');
    const before = fileSize(d.logFile);
    for (let i = 0; i < eps.length; i++) {
      if (i % 100 === 0) ctx.checkTime('scale: teardown');
      const ep = eps[i] as { id: string; address: string };
      await call(d.socket, 'NetworkDriver.Leave', { NetworkID: net0.id, EndpointID: ep.id });
      await call(d.socket, 'NetworkDriver.DeleteEndpoint', { NetworkID: net0.id, EndpointID: ep.id });
      await call(d.socket, 'IpamDriver.ReleaseAddress', { PoolID: net0.poolId, Address: ep.address });
      fake.byEndpoint.delete(ep.id);
    }
    const { calls: down } = readCalls(d.logFile, before);
    r.table(
      `Taking the ${N} endpoints down again (plugin side, ms; first 100 = the fullest network)`,
      ['call', 'first 100 p50', 'first 100 p99', 'last 100 p50', 'last 100 p99'],
      ['Leave', 'DeleteEndpoint', 'ReleaseAddress'].map((m) => {
        const p = plugin(m, down);
        return [m, fmt(median(p.slice(0, 100)), 2), fmt(percentile(p.slice(0, 100), 99), 2), fmt(median(p.slice(-100)), 2), fmt(percentile(p.slice(-100), 99), 2)];
      }),
    );
  } finally {
    ctx.phase('scale: cleaning up');
    await destroy();
  }
}

function memDetail(m: { heapUsed: number; heapTotal: number; external: number } | undefined): string {
  return m ? `${fmt(m.heapUsed, 1)} / ${fmt(m.heapTotal, 1)} / ${fmt(m.external, 1)}` : 'n/a';
}

/** Node's own start-up and memory, without and with loomd's modules (same binary, same dist). */
interface DepCost {
  dep: string;
  ms: number;
  rss: number;
}

async function nodeFloors(ctx: BenchContext): Promise<{ bare: number[]; modules: number[]; rssBare: number; rssModules: number; deps: DepCost[] }> {
  // What loomd loads before its first real call (main.js does not start loomd when it is not the main module).
  const main = path.join(process.env.LOOM_DIST ?? '', 'driver', 'main.js');
  const load = `require(${JSON.stringify(main)}).loadModules()`;
  const bare: number[] = [];
  const modules: number[] = [];
  for (let i = 0; i < ctx.config.restarts; i++) {
    bare.push((await timed(process.execPath, ['-e', '0'])).ms);
    modules.push((await timed(process.execPath, ['-e', load])).ms);
  }
  const idleRss = async (code: string): Promise<number> => {
    const child = spawn(process.execPath, ['-e', `${code}; setTimeout(() => {}, 10000)`], { stdio: 'ignore' });
    try {
      await sleep(1_500);
      return child.pid ? rssMiB(child.pid) ?? NaN : NaN;
    } finally {
      if (child.pid) await killAndWait(child.pid, 'SIGKILL', 5_000);
    }
  };
  // Each runtime dependency alone: its load time (median of 3) and the RSS of an idle node that loaded it.
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const deps: DepCost[] = [];
  for (const dep of Object.keys(pkg.dependencies ?? {})) {
    const req = `require(require.resolve(${JSON.stringify(dep)}, { paths: [${JSON.stringify(REPO)}] }))`;
    const ms: number[] = [];
    for (let i = 0; i < 3; i++) ms.push((await timed(process.execPath, ['-e', req])).ms);
    deps.push({ dep, ms: median(ms), rss: await idleRss(req) });
  }
  return { bare, modules, rssBare: await idleRss('0'), rssModules: await idleRss(load), deps };
}

/** Per-pair cost of veth pairs on a bridge, done by iproute2 in a throwaway namespace. */
async function kernelFloor(ctx: BenchContext, n: number): Promise<{ createFirst: number; createLast: number; del: number; ports: number }> {
  const ns = `loomb-${process.pid}-kf`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-bench-kf-'));
  const undo = ctx.defer('kernel floor namespace', async () => {
    await run('ip', ['netns', 'del', ns]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const batch = async (name: string, lines: string[]): Promise<number> => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, lines.join('\n') + '\n');
    const t = await timed('ip', ['-n', ns, '-batch', f], { timeoutMs: 300_000 });
    if (t.code !== 0) throw new Error(`ip -batch ${name}: ${t.stderr.trim().slice(0, 300)}`);
    return t.ms;
  };
  const mk = (from: number, to: number): string[] => {
    const out: string[] = [];
    for (let i = from; i < to; i++) out.push(`link add kv${i} type veth peer name kp${i}`, `link set kv${i} master kbr up`);
    return out;
  };
  try {
    await runOk('ip', ['netns', 'add', ns]);
    await runOk('ip', ['-n', ns, 'link', 'add', 'kbr', 'type', 'bridge']);
    await runOk('ip', ['-n', ns, 'link', 'set', 'kbr', 'up']);
    const ports = Math.max(100, Math.min(n, 1000) - 100); // a Linux bridge takes at most 1024 ports
    const createFirst = (await batch('first', mk(0, 100))) / 100;
    if (ports > 100) await batch('fill', mk(100, ports));
    const createLast = (await batch('last', mk(ports, ports + 100))) / 100;
    const del = (await batch('del', Array.from({ length: 100 }, (_, i) => `link del kv${ports + i}`))) / 100;
    return { createFirst, createLast, del, ports };
  } finally {
    await undo();
  }
}
