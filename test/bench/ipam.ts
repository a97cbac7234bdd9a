/**
 * Benchmark 6: the IPAM.
 *   - filling a /16 through the HTTP API (one RequestAddress after another, as dockerd sends them)
 *     against a real loomd in a namespace of its own, and the same fill in-process through
 *     IpamService (LevelDB store, and an in-memory store), clearly labelled;
 *   - loomd's RSS for an empty pool of a /8's size (2^24 addresses) and per allocation;
 *   - allocation time near exhaustion (the last 1 % of a /20, and scattered holes in a full /20).
 * Every subnet is inside 198.18.0.0/15 except the /8-sized pool, which is an IPv6 /104 in a ULA
 * prefix: a real IPv4 /8 cannot be taken from the benchmarking range (it is only a /15).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '../../lib/logger';
import { LevelKv } from '../../driver/store/level-kv';
import { MemoryKv } from '../../lib/kv';
import { IpamService } from '../../ipam-driver/ipam-service';
import { IpamRepository } from '../../ipam-driver/ipam-store';
import { sleep } from '../helpers/run';
import { pluginCall } from '../helpers/unix-http';
import { BenchContext, cpuMs, msSince } from './context';
import { StandaloneLoomd, call } from './standalone';
import { fmt, median, percentile } from './stats';

const FILL_POOL = (len: number): string => `198.18.0.0/${len}`;
const V6_BIG = 'fd5c:10b:0:1::/104'; // 2^24 addresses, the size of an IPv4 /8
const EXHAUST_POOL = '198.19.0.0/20';

export async function ipamBenchmarks(ctx: BenchContext): Promise<void> {
  const r = ctx.report;
  r.begin('ipam', '6. IPAM through the HTTP API (a real loomd on a temporary socket in a namespace of its own)');
  const len = ctx.config.ipamPrefix;
  const d = new StandaloneLoomd('ipam');
  const destroy = ctx.defer('ipam loomd', () => d.destroy());
  try {
    await d.create();
    ctx.phase('ipam: starting loomd');
    d.spawn();
    await d.waitAnswering(process.hrtime.bigint());
    type Mem = { rss: number; rssGc: number; heap: number };
    const settle = async (): Promise<Mem> => {
      await sleep(1_000);
      const rss = d.rss() ?? NaN;
      const gc = await d.memAfterGc();
      return { rss, rssGc: gc?.rss ?? NaN, heap: gc?.heapUsed ?? NaN };
    };
    const rss0 = await settle();

    // ---- memory: an empty pool of a /8's size, then allocations in it ----------------------------
    ctx.phase('ipam: memory of a /8-sized pool');
    const big = await call(d.socket, 'IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: V6_BIG, SubPool: '', Options: {}, V6: true });
    const rssPool = await settle();
    const N_MEM = 10_000;
    for (let i = 0; i < N_MEM; i++) await call(d.socket, 'IpamDriver.RequestAddress', { PoolID: big.json.PoolID, Address: '', Options: null });
    const rssAlloc = await settle();
    await call(d.socket, 'IpamDriver.ReleasePool', { PoolID: big.json.PoolID });

    // ---- /16 fill through HTTP -------------------------------------------------------------------
    ctx.phase(`ipam: filling a /${len} through the HTTP API`);
    const fill = await call(d.socket, 'IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: FILL_POOL(len), SubPool: '', Options: {}, V6: false });
    const capacity = 2 ** (32 - len) - 2;
    const per: number[] = [];
    const t0 = process.hrtime.bigint();
    let exhaustedMsg = '';
    for (let i = 0; i <= capacity; i++) {
      if (i % 4096 === 0) ctx.checkTime('IPAM fill');
      const c0 = process.hrtime.bigint();
      const res = await pluginCall(d.socket, 'IpamDriver.RequestAddress', { PoolID: fill.json.PoolID, Address: '', Options: null });
      if (res.status !== 200) {
        exhaustedMsg = String(res.json?.Error ?? res.body);
        break;
      }
      per.push(msSince(c0));
    }
    const httpFillMs = msSince(t0);
    if (per.length !== capacity) throw new Error(`HTTP fill: ${per.length} of ${capacity} addresses (${exhaustedMsg})`);
    const rssFilled = await settle();
    await call(d.socket, 'IpamDriver.ReleasePool', { PoolID: fill.json.PoolID });

    // The same fill with several requests in flight (dockerd sends calls concurrently; loom serializes
    // per pool), twice with Node's http client: 8 clients each keeping its connection, as dockerd
    // keeps its plugin connections (the judged figure), and a new connection per call.
    // The client runs on the same cores as loomd: loomd's own CPU per address is reported beside.
    const INFLIGHT = 8;
    type Client = (socket: string, method: string, body: unknown) => ReturnType<typeof pluginCall>;
    const concurrentFill = async (client: Client): Promise<{ ms: number; loomdCpuUs: number; clientCpuUs: number }> => {
      const pool = await call(d.socket, 'IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: FILL_POOL(len), SubPool: '', Options: {}, V6: false });
      let got = 0;
      let stop = false;
      const pid = d.pid as number;
      const cpu0 = cpuMs(pid) ?? NaN;
      const own0 = process.cpuUsage();
      const c0 = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: INFLIGHT }, async () => {
          for (let k = 0; k <= capacity && !stop; k++) {
            if (k % 4096 === 0) ctx.checkTime('IPAM fill in flight');
            const res = await client(d.socket, 'IpamDriver.RequestAddress', { PoolID: pool.json.PoolID, Address: '', Options: null });
            if (res.status !== 200) stop = true;
            else got++;
          }
        }),
      );
      const ms = msSince(c0);
      const own = process.cpuUsage(own0);
      const loomdCpuUs = (((cpuMs(pid) ?? NaN) - cpu0) * 1000) / capacity;
      if (got !== capacity) throw new Error(`concurrent fill: ${got} of ${capacity} addresses`);
      await call(d.socket, 'IpamDriver.ReleasePool', { PoolID: pool.json.PoolID });
      return { ms, loomdCpuUs, clientCpuUs: (own.user + own.system) / capacity };
    };
    // The judged figure first (the second fill runs on a warmer loomd).
    ctx.phase(`ipam: filling a /${len} with ${INFLIGHT} requests in flight (${INFLIGHT} kept connections)`);
    const kept = new http.Agent({ keepAlive: true, maxSockets: INFLIGHT });
    const concKept = await concurrentFill((socket, method, body) => pluginCall(socket, method, body, kept)).finally(() => kept.destroy());
    ctx.phase(`ipam: filling a /${len} with ${INFLIGHT} requests in flight (a new connection per call)`);
    const concFresh = await concurrentFill(pluginCall);
    const concFillMs = concKept.ms;

    // ---- near exhaustion: the last 1 % of a /20, then scattered holes ----------------------------
    ctx.phase('ipam: near exhaustion');
    const ex = await call(d.socket, 'IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: EXHAUST_POOL, SubPool: '', Options: {}, V6: false });
    const exCap = 4094;
    const onePct = Math.ceil(exCap / 100);
    const exTimes: number[] = [];
    const exAddrs: string[] = [];
    for (let i = 0; i < exCap; i++) {
      const c = await call(d.socket, 'IpamDriver.RequestAddress', { PoolID: ex.json.PoolID, Address: '', Options: null });
      exTimes.push(c.ms);
      exAddrs.push(String(c.json.Address).split('/')[0] as string);
    }
    const e0 = process.hrtime.bigint();
    const full = await pluginCall(d.socket, 'IpamDriver.RequestAddress', { PoolID: ex.json.PoolID, Address: '', Options: null });
    const fullMs = msSince(e0);
    const fullErr = String(full.json?.Error ?? '');
    // Release 1 % scattered over the pool (a fixed stride, so runs are comparable), then take them back.
    const holes = Array.from({ length: onePct }, (_, k) => exAddrs[Math.floor((k * exCap) / onePct) + 7] as string);
    for (const a of holes) await call(d.socket, 'IpamDriver.ReleaseAddress', { PoolID: ex.json.PoolID, Address: a });
    const holeTimes: number[] = [];
    for (let k = 0; k < holes.length; k++) holeTimes.push((await call(d.socket, 'IpamDriver.RequestAddress', { PoolID: ex.json.PoolID, Address: '', Options: null })).ms);
    await call(d.socket, 'IpamDriver.ReleasePool', { PoolID: ex.json.PoolID });
    await d.kill('SIGTERM');

    // ---- the same fill in-process ----------------------------------------------------------------
    // 'level' is loomd's store (every batch synced, group commit); 'level-unsynced' the same store
    // without the sync (what loom did before writes were made durable); both in this run.
    ctx.phase(`ipam: in-process /${len} fills`);
    type Kind = 'level' | 'level-unsynced' | 'memory';
    const openKv = async (kind: Kind, dir: string): Promise<LevelKv | MemoryKv> =>
      kind === 'memory' ? new MemoryKv() : LevelKv.open(path.join(dir, 'db'), { create: true, sync: kind === 'level' });
    const inproc = async (kind: Kind, inflight = 1): Promise<number> => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-bench-ipam-'));
      const kv = await openKv(kind, dir);
      try {
        const svc = new IpamService(new IpamRepository(kv), { defaultPools: [], hostRoutes: async () => [] }, silentLogger());
        await svc.load();
        const { poolId } = await svc.requestPool({ addressSpace: 'LoomLocal', pool: FILL_POOL(len), subPool: '', options: {}, v6: false });
        const s0 = process.hrtime.bigint();
        let issued = 0;
        await Promise.all(
          Array.from({ length: inflight }, async () => {
            while (issued < capacity) {
              issued++;
              await svc.requestAddress({ poolId, address: '', options: {} });
            }
          }),
        );
        const ms = msSince(s0);
        await svc.requestAddress({ poolId, address: '', options: {} }).then(
          () => {
            throw new Error('in-process fill: pool not exhausted after its capacity');
          },
          () => undefined,
        );
        return ms;
      } finally {
        await kv.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    };
    // Concurrent calls share syncs (group commit), on different pools and on one pool alike
    // (a pool's lock covers taking the address and queueing its write, not the sync). 8 pools of a /24 filled at once.
    const POOLS = 8;
    const inprocPools = async (kind: Kind): Promise<{ ms: number; n: number; writes: number }> => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-bench-ipam-'));
      const kv = await openKv(kind, dir);
      try {
        const svc = new IpamService(new IpamRepository(kv), { defaultPools: [], hostRoutes: async () => [] }, silentLogger());
        await svc.load();
        const ids: string[] = [];
        for (let k = 0; k < POOLS; k++) ids.push((await svc.requestPool({ addressSpace: 'LoomLocal', pool: `198.19.${k}.0/24`, subPool: '', options: {}, v6: false })).poolId);
        const w0 = kv instanceof LevelKv ? kv.stats.writes : 0;
        const s0 = process.hrtime.bigint();
        await Promise.all(ids.map(async (poolId) => {
          for (let i = 0; i < 254; i++) await svc.requestAddress({ poolId, address: '', options: {} });
        }));
        return { ms: msSince(s0), n: POOLS * 254, writes: kv instanceof LevelKv ? kv.stats.writes - w0 : 0 };
      } finally {
        await kv.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    };
    const levelMs = await inproc('level');
    const levelConcMs = await inproc('level', INFLIGHT);
    // The judged in-process figure: many requests in flight, so that group commit shares each sync
    // among many allocations (each answer still waits for the synced write holding it).
    const DEEP = 1024;
    ctx.phase(`ipam: in-process /${len} fill with ${DEEP} requests in flight`);
    const levelDeepMs = await inproc('level', DEEP);
    const unsyncedMs = await inproc('level-unsynced');
    const memMs = await inproc('memory');
    const poolsDurable = await inprocPools('level');
    const poolsUnsynced = await inprocPools('level-unsynced');

    r.table(
      `Filling a /${len} (${capacity} addresses, one RequestAddress after another until the pool is exhausted)`,
      ['how', 'total', 'addresses/s', 'per address p50', 'per address p99'],
      [
        ['HTTP API: pluginCall -> loomd (Node http, zod, LevelDB group commit, info log line)', `${fmt(httpFillMs / 1000, 2)} s`, fmt(capacity / (httpFillMs / 1000), 0), `${fmt(median(per), 3)} ms`, `${fmt(percentile(per, 99), 3)} ms`],
        [`HTTP API, ${INFLIGHT} requests in flight, a new connection per call (client CPU ${fmt(concFresh.clientCpuUs, 0)} µs, loomd CPU ${fmt(concFresh.loomdCpuUs, 0)} µs per address)`, `${fmt(concFresh.ms / 1000, 2)} s`, fmt(capacity / (concFresh.ms / 1000), 0), '', ''],
        [`HTTP API, ${INFLIGHT} requests in flight, ${INFLIGHT} clients each keeping its connection as dockerd does (client CPU ${fmt(concKept.clientCpuUs, 0)} µs, loomd CPU ${fmt(concKept.loomdCpuUs, 0)} µs per address; the judged figure)`, `${fmt(concKept.ms / 1000, 2)} s`, fmt(capacity / (concKept.ms / 1000), 0), '', ''],
        ['in-process IpamService, LevelDB store as loomd runs it: every write synced (no HTTP)', `${fmt(levelMs / 1000, 2)} s`, fmt(capacity / (levelMs / 1000), 0), `${fmt((levelMs * 1000) / capacity, 0)} µs`, ''],
        [`in-process IpamService, LevelDB store as loomd runs it, ${INFLIGHT} requests in flight (they share syncs)`, `${fmt(levelConcMs / 1000, 2)} s`, fmt(capacity / (levelConcMs / 1000), 0), '', ''],
        [`in-process IpamService, LevelDB store as loomd runs it, ${DEEP} requests in flight (they share syncs)`, `${fmt(levelDeepMs / 1000, 2)} s`, fmt(capacity / (levelDeepMs / 1000), 0), `${fmt((levelDeepMs * 1000) / capacity, 1)} µs`, ''],
        [`in-process IpamService, LevelDB store without sync (${fmt(levelMs / unsyncedMs, 1)}x faster than synced)`, `${fmt(unsyncedMs / 1000, 2)} s`, fmt(capacity / (unsyncedMs / 1000), 0), `${fmt((unsyncedMs * 1000) / capacity, 0)} µs`, ''],
        ['in-process IpamService, in-memory store (allocator + service only)', `${fmt(memMs / 1000, 2)} s`, fmt(capacity / (memMs / 1000), 0), '', ''],
      ],
    );
    const memRow = (label: string, m: Mem, base?: Mem, extra = ''): string[] => [
      label,
      fmt(m.rss, 1),
      fmt(m.rssGc, 1),
      fmt(m.heap, 1),
      base ? `${fmt(m.rss - base.rss, 1)} / ${fmt(m.rssGc - base.rssGc, 1)} / ${fmt(m.heap - base.heap, 2)}${extra}` : '',
    ];
    r.table(
      'loomd memory, MiB: VmRSS 1 s after each step; VmRSS and V8 heapUsed after a forced full GC (SIGUSR2 -> gc(), benchmark preload only)',
      ['state', 'RSS', 'RSS after GC', 'heap used after GC', 'delta RSS / RSS after GC / heap'],
      [
        memRow('fresh loomd, no pools', rss0),
        memRow('+ an empty IPv6 /104 pool (2^24 addresses, the size of an IPv4 /8)', rssPool, rss0),
        memRow(`+ ${N_MEM} addresses allocated in it`, rssAlloc, rssPool, ` (heap: ${fmt(((rssAlloc.heap - rssPool.heap) * 2 ** 20) / N_MEM, 0)} bytes/address)`),
        memRow(`after the /${len} fill (${capacity} allocations; the /104 released)`, rssFilled, rss0),
      ],
    );
    r.table(
      `Group commit: ${POOLS} pools (/24) filled at once in-process, ${poolsDurable.n} allocations; calls share syncs whether on one pool or on different ones`,
      ['store', 'total', 'allocations/s', 'LevelDB writes (one sync each when synced)', 'allocations per write'],
      [
        ['LevelDB, every write synced', `${fmt(poolsDurable.ms / 1000, 2)} s`, fmt(poolsDurable.n / (poolsDurable.ms / 1000), 0), String(poolsDurable.writes), fmt(poolsDurable.n / poolsDurable.writes, 1)],
        ['LevelDB without sync', `${fmt(poolsUnsynced.ms / 1000, 2)} s`, fmt(poolsUnsynced.n / (poolsUnsynced.ms / 1000), 0), String(poolsUnsynced.writes), fmt(poolsUnsynced.n / poolsUnsynced.writes, 1)],
      ],
    );
    r.note('RSS right after a burst of calls is mostly garbage not yet collected; V8 memory reducer gives much of it back by itself after some idle time (see the scale benchmark, which watches an idle loomd). The heap-used column is the live JavaScript state.');
    r.note('A real IPv4 /8 is not used: every subnet in these benchmarks stays inside the benchmarking range 198.18.0.0/15. The pool allocator keeps used addresses as an interval set (ipam-driver/core/interval-set.ts), so an empty pool costs the same whatever its size; IPv4 and IPv6 pools share that code.');
    const firstPct = exTimes.slice(0, onePct);
    const lastPct = exTimes.slice(-onePct);
    r.table(
      `Allocation time near exhaustion, ${EXHAUST_POOL} (${exCap} addresses), HTTP round trip per RequestAddress, ms`,
      ['allocations', 'n', 'p50', 'p99'],
      [
        ['first 1 % of the pool', String(firstPct.length), fmt(median(firstPct), 3), fmt(percentile(firstPct, 99), 3)],
        ['last 1 % of the pool (next-fit walks to the end)', String(lastPct.length), fmt(median(lastPct), 3), fmt(percentile(lastPct, 99), 3)],
        [`1 % scattered holes in the full pool (${holes.length} released at a fixed stride, taken again)`, String(holeTimes.length), fmt(median(holeTimes), 3), fmt(percentile(holeTimes, 99), 3)],
        [`the request after the last address (error: ${fullErr.slice(0, 60)})`, '1', fmt(fullMs, 3), ''],
      ],
    );
    const httpS = httpFillMs / 1000;
    Object.assign(ctx.facts, {
      fillHttpP50: fmt(median(per), 3),
      fillHttpUs: fmt((httpFillMs * 1000) / capacity, 0),
      fillConcS: fmt(concFillMs / 1000, 2),
      fillConcFreshS: fmt(concFresh.ms / 1000, 2),
      fillConcFreshClientUs: fmt(concFresh.clientCpuUs, 0),
      fillConcFreshLoomdUs: fmt(concFresh.loomdCpuUs, 0),
      fillConcKeptClientUs: fmt(concKept.clientCpuUs, 0),
      fillConcKeptLoomdUs: fmt(concKept.loomdCpuUs, 0),
      fillLevelUs: fmt((levelMs * 1000) / capacity, 0),
      fillMemUs: fmt((memMs * 1000) / capacity, 1),
      fillLevelS: fmt(levelMs / 1000, 2),
      fillUnsyncedS: fmt(unsyncedMs / 1000, 2),
      fillUnsyncedUs: fmt((unsyncedMs * 1000) / capacity, 0),
      fillSyncRatio: fmt(levelMs / unsyncedMs, 1),
      fillMemS: fmt(memMs / 1000, 2),
      fillLevelConcS: fmt(levelConcMs / 1000, 2),
      fillLevelDeepS: fmt(levelDeepMs / 1000, 2),
      fillLevelDeepUs: fmt((levelDeepMs * 1000) / capacity, 1),
      fillDeep: String(DEEP),
      fillCapacity: String(capacity),
      fillLen: String(len),
    });
    ctx.report.target({
      id: 'fill',
      name: `/${len} fill`,
      target: `HTTP API with ${INFLIGHT} clients in flight, each keeping its connection <= 10 s; in-process with the durable store, ${DEEP} in flight, <= 1 s`,
      measured: `HTTP API ${fmt(concFillMs / 1000, 2)} s with ${INFLIGHT} clients in flight on kept connections (${fmt(concFresh.ms / 1000, 2)} s with a new connection per call, ${fmt(httpS, 2)} s one at a time); in-process IpamService with LevelDB synced ${fmt(levelDeepMs / 1000, 2)} s with ${DEEP} in flight (${fmt(levelConcMs / 1000, 2)} s with ${INFLIGHT}, ${fmt(levelMs / 1000, 2)} s one at a time, ${fmt(unsyncedMs / 1000, 2)} s unsynced one at a time), ${fmt(memMs / 1000, 2)} s in memory`,
      pass: concFillMs <= 10_000 && levelDeepMs <= 1_000,
    });
  } finally {
    await destroy();
  }
}
