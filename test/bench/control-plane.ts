/**
 * Benchmark 10 (issue 18, point 5): loom's control plane at 100 hosts, simulated. No Docker,
 * no kernel: every simulated host is loom's real cluster code (EtcdStore, ClusterAgent with its
 * session, lease, watches and queued publication, RemoteEndpoints with the peer-grace rule,
 * OverlayEntries) with a recorder in place of the kernel's FDB and neighbour tables
 * (cp-worker.ts), several hosts per worker thread, against a real 3-member etcd on loopback
 * that this section starts and removes.
 *
 * Phases: every host registers and joins one overlay; each publishes BENCH_CP_ENDPOINTS
 * endpoints (fill); a quiet window (lease keep-alives only); churn for BENCH_CP_SECONDS (each
 * host replaces its oldest endpoint every BENCH_CP_CHURN_S seconds); then one host's worker is terminated
 * (no clean-up: its lease is not revoked) and the others' removal of its endpoints is timed.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { silentLogger } from '../../lib/logger';
import { keys } from '../../lib/cluster/store';
import { EtcdStore } from '../../driver/cluster/etcd-store';
import { killAndWait, run, statFields, waitFor } from '../helpers/run';
import { BenchContext, rssMiB } from './context';
import { Publication, Sighting, convergence, parseProm, promBy, promSum, propagation } from './cp-latency';
import type { ToWorker, WorkerCollect, WorkerInit, WorkerStatus } from './cp-worker';
import { fmt, percentile } from './stats';

/** Each host replaces one endpoint (unpublish the oldest, publish a new one) this often. */
/** Simulated hosts per worker thread (the dying host gets a worker of its own). */
const HOSTS_PER_WORKER = 10;
/** Short lease and peer grace (loomd's defaults: 10 s and 900 s) so the dead host's part ends in seconds. */
const TTL_S = 6;
const GRACE_S = 2;
const IDLE_S = 10;
/**
 * The fill: publications per second cluster-wide (each host publishes its endpoints evenly, random
 * phase). Each is delivered to every other host: at 100 hosts 40/s means 4,000 watch events/s for
 * the simulation's threads, which share 2 cores; faster fills starve their event loops for seconds
 * and sessions fail (measured), which real hosts, each with its own CPU, would not see.
 */
const FILL_PER_S = 40;
const OVERLAY = 'cpbench';
const SUBNET = '198.19.0.0/16';
/** etcd's published throughput we compare with (docs: op-guide/performance). */
const ETCD_PUBLISHED_RPS = 30_000;

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ControlPlaneConfig {
  hosts: number;
  endpoints: number;
  seconds: number;
  /** Seconds between two endpoint replacements on each host during the churn. */
  churnS: number;
}

interface Member {
  name: string;
  client: number;
  peer: number;
  dir: string;
  pid?: number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** A worker thread and a typed request/answer channel to it (one outstanding request per answer type). */
class SimWorker {
  readonly worker: Worker;
  private readonly waiting = new Map<string, Array<(m: unknown) => void>>();
  error: string | undefined;
  dead = false;

  constructor(file: string, init: WorkerInit) {
    this.worker = new Worker(file, { workerData: init });
    this.worker.on('message', (m: { type: string; error?: string }) => {
      if (m.type === 'error') this.error = m.error;
      const q = this.waiting.get(m.type);
      q?.shift()?.(m);
    });
    this.worker.on('error', (err) => (this.error = String(err)));
    this.worker.on('exit', () => (this.dead = true));
  }

  async ask<T>(msg: ToWorker, answer: string, timeoutMs = 60_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const q = this.waiting.get(answer) ?? [];
      this.waiting.set(answer, q);
      const t = setTimeout(() => {
        const i = q.indexOf(done);
        if (i >= 0) q.splice(i, 1);
        reject(new Error(`worker: no ${answer} within ${timeoutMs} ms${this.error ? ` (${this.error.split('\n')[0]})` : ''}`));
      }, timeoutMs);
      const done = (m: unknown): void => {
        clearTimeout(t);
        resolve(m as T);
      };
      q.push(done);
      this.worker.postMessage(msg);
    });
  }
}

/** etcd's own counters summed over the members. */
interface EtcdSnapshot {
  at: number;
  byMethod: Map<string, number>;
  recvBytes: number;
  sentBytes: number;
  peerSentBytes: number;
  watchers: number;
  watchStreams: number;
  keys: number;
  dbBytes: number;
  dbInUseBytes: number;
  cpuS: number;
}

async function etcdSnapshot(members: Member[]): Promise<EtcdSnapshot> {
  const snap: EtcdSnapshot = { at: now(), byMethod: new Map(), recvBytes: 0, sentBytes: 0, peerSentBytes: 0, watchers: 0, watchStreams: 0, keys: 0, dbBytes: 0, dbInUseBytes: 0, cpuS: 0 };
  const ticks = 100; // USER_HZ
  for (const m of members) {
    const res = await fetch(`http://127.0.0.1:${m.client}/metrics`, { signal: AbortSignal.timeout(10_000) });
    const s = parseProm(await res.text());
    for (const [k, v] of promBy(s, 'grpc_server_started_total', 'grpc_method')) snap.byMethod.set(k, (snap.byMethod.get(k) ?? 0) + v);
    snap.recvBytes += promSum(s, 'etcd_network_client_grpc_received_bytes_total');
    snap.sentBytes += promSum(s, 'etcd_network_client_grpc_sent_bytes_total');
    snap.peerSentBytes += promSum(s, 'etcd_network_peer_sent_bytes_total');
    snap.watchers += promSum(s, 'etcd_debugging_mvcc_watcher_total');
    snap.watchStreams += promSum(s, 'etcd_debugging_mvcc_watch_stream_total');
    snap.keys = Math.max(snap.keys, promSum(s, 'etcd_debugging_mvcc_keys_total'));
    snap.dbBytes = Math.max(snap.dbBytes, promSum(s, 'etcd_mvcc_db_total_size_in_bytes'));
    snap.dbInUseBytes = Math.max(snap.dbInUseBytes, promSum(s, 'etcd_mvcc_db_total_size_in_use_in_bytes'));
    const f = m.pid ? statFields(m.pid) : undefined;
    if (f) snap.cpuS += (Number(f[11]) + Number(f[12])) / ticks;
  }
  return snap;
}

interface Rates {
  seconds: number;
  requestsPerS: number;
  byMethodPerS: Map<string, number>;
  recvBytesPerS: number;
  sentBytesPerS: number;
  peerBytesPerS: number;
  etcdCpuPct: number;
}

function rates(a: EtcdSnapshot, b: EtcdSnapshot): Rates {
  const seconds = (b.at - a.at) / 1000;
  const byMethodPerS = new Map<string, number>();
  let total = 0;
  for (const [k, v] of b.byMethod) {
    const d = v - (a.byMethod.get(k) ?? 0);
    if (d > 0) byMethodPerS.set(k, d / seconds);
    total += d;
  }
  return {
    seconds,
    requestsPerS: total / seconds,
    byMethodPerS,
    recvBytesPerS: (b.recvBytes - a.recvBytes) / seconds,
    sentBytesPerS: (b.sentBytes - a.sentBytes) / seconds,
    peerBytesPerS: (b.peerSentBytes - a.peerSentBytes) / seconds,
    etcdCpuPct: ((b.cpuS - a.cpuS) / seconds) * 100,
  };
}

const kib = (x: number): string => `${fmt(x / 1024)} KiB`;

/** Everything the workers reported, merged. */
class Collected {
  puts: Publication[] = [];
  readonly putAck: Map<number, number> = new Map();
  dels: Publication[] = [];
  delAck: Map<number, number> = new Map();
  adds: Sighting[] = [];
  removes: Sighting[] = [];
  /** Endpoint keys written again (a new lease after a lost one re-writes every key of the host). */
  rewrites = 0;

  add(c: WorkerCollect): void {
    for (let i = 0; i < c.puts.length; i += 4) {
      const [ep, host, sent, ack] = c.puts.slice(i, i + 4) as [number, number, number, number];
      // The publication is the first write; later ones are the same endpoint written again after a lease loss.
      if (this.putAck.has(ep)) {
        this.rewrites++;
        continue;
      }
      this.puts.push({ ep, host, t: sent });
      this.putAck.set(ep, ack);
    }
    for (let i = 0; i < c.dels.length; i += 4) {
      const [ep, host, sent, ack] = c.dels.slice(i, i + 4) as [number, number, number, number];
      this.dels.push({ ep, host, t: sent });
      this.delAck.set(ep, ack);
    }
    for (let i = 0; i < c.adds.length; i += 3) this.adds.push({ ep: c.adds[i] as number, receiver: c.adds[i + 1] as number, t: c.adds[i + 2] as number });
    for (let i = 0; i < c.removes.length; i += 3) this.removes.push({ ep: c.removes[i] as number, receiver: c.removes[i + 1] as number, t: c.removes[i + 2] as number });
  }
}

export async function controlPlaneBenchmarks(ctx: BenchContext, cfg: ControlPlaneConfig): Promise<void> {
  const r = ctx.report;
  r.begin('control-plane', `10. Control plane at ${cfg.hosts} hosts, simulated: loom's cluster agents against a real 3-member etcd (no Docker, no kernel)`);
  const H = cfg.hosts;
  const E = cfg.endpoints;
  const churnEveryMs = cfg.churnS * 1000;
  const victim = H - 1;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-cp-'));
  const members: Member[] = [];
  const workers: SimWorker[] = [];
  let observer: EtcdStore | undefined;
  const cleanup = ctx.defer('control-plane: workers, etcd, data', async () => {
    for (const w of workers) await w.worker.terminate().catch(() => undefined);
    await observer?.close().catch(() => undefined);
    for (const m of members) if (m.pid) await killAndWait(m.pid, 'SIGTERM', 10_000);
    fs.rmSync(root, { recursive: true, force: true });
  });
  try {
    // ---- a 3-member etcd on loopback ------------------------------------------------------------
    ctx.phase('control-plane: starting a 3-member etcd on 127.0.0.1');
    for (let i = 1; i <= 3; i++) members.push({ name: `cp${i}`, client: await freePort(), peer: await freePort(), dir: path.join(root, `cp${i}`) });
    const initial = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
    for (const m of members) {
      fs.mkdirSync(m.dir, { recursive: true, mode: 0o700 });
      const out = fs.openSync(path.join(root, `${m.name}.log`), 'a');
      const child = spawn(
        'etcd',
        [
          '--name', m.name, '--data-dir', path.join(m.dir, 'data'),
          '--listen-client-urls', `http://127.0.0.1:${m.client}`, '--advertise-client-urls', `http://127.0.0.1:${m.client}`,
          '--listen-peer-urls', `http://127.0.0.1:${m.peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peer}`,
          '--initial-cluster', initial, '--initial-cluster-token', `loom-cp-${process.pid}`, '--initial-cluster-state', 'new',
          '--heartbeat-interval', '100', '--election-timeout', '1000',
        ],
        { stdio: ['ignore', out, out], detached: true },
      );
      fs.closeSync(out);
      child.unref();
      m.pid = child.pid;
    }
    const endpoints = members.map((m) => `http://127.0.0.1:${m.client}`);
    await waitFor('etcd quorum', async () => (await run('etcdctl', [`--endpoints=${endpoints.join(',')}`, 'endpoint', 'health'], { timeoutMs: 10_000, env: { ...process.env, ETCDCTL_API: '3' } })).code === 0, 30_000, 300);
    const fsType = (await run('stat', ['-f', '-c', '%T', root])).stdout.trim();

    // The benchmark's own view: the victim's host key going away (its lease expiring).
    observer = new EtcdStore({ endpoints }, silentLogger());
    const hostGone = new Map<string, number>();
    const snapHosts = await observer.snapshot(keys.hosts);
    await observer.watch(keys.hosts, String(BigInt(snapHosts.revision) + 1n), {
      onEvent: (ev) => {
        if (ev.type === 'delete') hostGone.set(ev.key.slice(keys.hosts.length), now());
      },
      onCancelled: () => undefined,
    });

    // ---- workers ------------------------------------------------------------------------------
    const rssBefore = rssMiB(process.pid) ?? NaN;
    const file = path.join(__dirname, 'cp-worker.js');
    const base = { etcd: endpoints, overlay: OVERLAY, subnet: SUBNET, ttlS: TTL_S, graceS: GRACE_S, endpointsPerHost: E, origin: 0 };
    const normal = Array.from({ length: H - 1 }, (_, i) => i);
    for (let i = 0; i < normal.length; i += HOSTS_PER_WORKER) workers.push(new SimWorker(file, { ...base, hosts: normal.slice(i, i + HOSTS_PER_WORKER) }));
    const victimWorker = new SimWorker(file, { ...base, hosts: [victim] });
    workers.push(victimWorker);
    ctx.phase(`control-plane: ${H} simulated hosts in ${workers.length} worker threads (${HOSTS_PER_WORKER} per worker, the host that dies alone in its own)`);
    const t0 = now();
    // One worker after the other (the origin first: it registers the overlay), as hosts boot over
    // some seconds; 100 agents listing 7 prefixes at one instant starve the threads on 2 shared cores.
    for (const w of workers) await w.ask({ type: 'start' }, 'started', 120_000);
    await waitFor('every host registered in etcd', async () => (await observer?.list(keys.hosts))?.length === H, 60_000, 250);
    const startS = (now() - t0) / 1000;
    /** The workers' cumulative counters (a terminated worker counts with its last report); samples go to `pending`. */
    const lastOf = new Map<SimWorker, WorkerCollect>();
    const callTotals = async (): Promise<{ calls: Record<string, number>; watchEvents: number; bytesOut: number; endpointPutBytes: number; sessionFailures: number }> => {
      const out = { calls: {} as Record<string, number>, watchEvents: 0, bytesOut: 0, endpointPutBytes: 0, sessionFailures: 0 };
      for (const w of workers) {
        let st = lastOf.get(w);
        if (!w.dead) {
          st = await w.ask<WorkerCollect>({ type: 'collect' }, 'collect');
          pending.add(st);
          lastOf.set(w, st);
        }
        if (!st) continue;
        for (const [k, v] of Object.entries(st.calls)) out.calls[k] = (out.calls[k] ?? 0) + v;
        out.watchEvents += st.watchEvents;
        out.bytesOut += st.bytesOut;
        out.endpointPutBytes += st.endpointPutBytes;
        out.sessionFailures += st.sessionFailures;
      }
      return out;
    };
    let pending = new Collected();
    const statuses = async (): Promise<WorkerStatus[]> => Promise.all(workers.filter((w) => !w.dead).map((w) => w.ask<WorkerStatus>({ type: 'status' }, 'status')));
    // Settle: every thread's event loop quiet (p99 delay under 100 ms over a second) before the fill.
    const settleEnd = Date.now() + 30_000;
    await statuses();
    for (;;) {
      await sleep(1_000);
      const st = await statuses();
      if (st.every((x) => x.loopDelayP99 < 100 && x.backlog === 0) || Date.now() > settleEnd) break;
    }

    // ---- fill ---------------------------------------------------------------------------------
    ctx.phase(`control-plane: fill, ${H} x ${E} endpoints`);
    await callTotals();
    pending = new Collected();
    const expected = (H - 1) * E;
    const fillSpreadMs = Math.max(5_000, ((H * E) / FILL_PER_S) * 1000);
    const tFill = now();
    await Promise.all(workers.map((w) => w.ask({ type: 'fill', spreadMs: fillSpreadMs }, 'filling')));
    let fillS = NaN;
    let lastProgress = Date.now();
    const fillDeadline = Date.now() + fillSpreadMs + 120_000;
    for (;;) {
      ctx.checkTime('control-plane fill');
      const st = await statuses();
      if (st.every((s) => s.backlog === 0 && s.programmed.every((n) => n === expected))) {
        fillS = (now() - tFill) / 1000;
        break;
      }
      if (Date.now() - lastProgress >= 5_000) {
        lastProgress = Date.now();
        const prog = st.flatMap((s) => s.programmed);
        ctx.phase(`control-plane: fill: programmed min ${Math.min(...prog)} / max ${Math.max(...prog)} of ${expected}; backlog ${st.reduce((a, s) => a + s.backlog, 0)}; hosts seeing etcd down ${st.reduce((a, s) => a + s.down, 0)}; failed session attempts ${st.reduce((a, s) => a + s.sessionFailures, 0)}; worst event-loop delay ${fmt(Math.max(...st.map((s) => s.loopDelayMax)))} ms`);
      }
      if (Date.now() > fillDeadline) throw new Error(`fill did not converge within ${fmt(fillSpreadMs / 1000 + 120)} s: programmed min ${Math.min(...st.flatMap((s) => s.programmed))} of ${expected}, backlog ${st.reduce((a, s) => a + s.backlog, 0)}`);
      await sleep(250);
    }
    await callTotals();
    const fill = pending;
    pending = new Collected();
    const fillProp = propagation(fill.puts, fill.adds, [...Array(H).keys()]);

    // ---- quiet window: keep-alives only ------------------------------------------------------
    ctx.phase(`control-plane: ${IDLE_S} s quiet window`);
    await sleep(2_000);
    const callsIdle0 = await callTotals();
    const mIdle0 = await etcdSnapshot(members);
    await sleep(IDLE_S * 1000);
    const mIdle1 = await etcdSnapshot(members);
    const callsIdle1 = await callTotals();
    pending = new Collected();
    // Keys of the fill written again during the churn (after a lost lease) are no publications either.
    for (const [ep, ack] of fill.putAck) pending.putAck.set(ep, ack);
    const idle = rates(mIdle0, mIdle1);

    // ---- churn --------------------------------------------------------------------------------
    ctx.phase(`control-plane: churn for ${cfg.seconds} s (each host replaces one endpoint every ${churnEveryMs / 1000} s)`);
    const callsChurn0 = callsIdle1;
    const mChurn0 = await etcdSnapshot(members);
    const cpu0 = process.cpuUsage();
    await Promise.all(workers.map((w) => w.ask({ type: 'churn', everyMs: churnEveryMs, forMs: cfg.seconds * 1000 }, 'churning')));
    const memSamples: Array<{ rss: number; heaps: number[]; loopP99: number; loopMax: number }> = [];
    const churnEnd = Date.now() + cfg.seconds * 1000;
    while (Date.now() < churnEnd) {
      ctx.checkTime('control-plane churn');
      await sleep(Math.min(5_000, Math.max(0, churnEnd - Date.now())));
      const st = await statuses();
      memSamples.push({ rss: rssMiB(process.pid) ?? NaN, heaps: st.map((s) => s.heapUsed), loopP99: Math.max(...st.map((s) => s.loopDelayP99)), loopMax: Math.max(...st.map((s) => s.loopDelayMax)) });
    }
    const mChurn1 = await etcdSnapshot(members);
    const cpu1 = process.cpuUsage(cpu0);
    const callsChurn1 = await callTotals();
    const churnRates = rates(mChurn0, mChurn1);
    // Drain: every publication programmed everywhere (nothing queued, every host holds (H-1) x E).
    const drainDeadline = Date.now() + 60_000;
    for (;;) {
      const st = await statuses();
      if (st.every((s) => !s.churning && s.backlog === 0 && s.programmed.every((n) => n === expected))) break;
      if (Date.now() > drainDeadline) break;
      await sleep(250);
    }
    await sleep(1_500);
    await callTotals();
    const churn = pending;
    pending = new Collected();
    const receivers = [...Array(H).keys()];
    fs.writeFileSync(path.resolve(__dirname, '..', '..', 'control-plane-samples.json'), JSON.stringify({ puts: churn.puts, putAck: [...churn.putAck], dels: churn.dels, adds: churn.adds, removes: churn.removes }));
    const prop = propagation(churn.puts, churn.adds, receivers);
    const propAck = propagation(churn.puts.map((p) => ({ ...p, t: churn.putAck.get(p.ep) ?? p.t })), churn.adds, receivers);
    const putRtt = churn.puts.map((p) => (churn.putAck.get(p.ep) ?? NaN) - p.t).filter((x) => Number.isFinite(x));
    const removal = propagation(churn.dels, churn.removes, receivers);

    // ---- one host dies --------------------------------------------------------------------------
    ctx.phase(`control-plane: host ${victim} dies (worker terminated, lease not revoked)`);
    const victimId = `sim${String(victim).padStart(3, '0')}`;
    // Its endpoints now: every one it published minus every one it unpublished.
    const victimEps = new Set<number>();
    const stNow = await statuses();
    for (const s of stNow) {
      s.heldOf.forEach((held, i) => {
        if (s.hosts[i] !== victim && (held[victim] ?? 0) !== E) throw new Error(`before the kill host ${s.hosts[i]} holds ${held[victim] ?? 0} of host ${victim}'s ${E} endpoints`);
      });
    }
    for (const p of [...fill.puts, ...churn.puts]) if (p.host === victim) victimEps.add(p.ep);
    for (const p of churn.dels) if (p.host === victim) victimEps.delete(p.ep);
    const callsBeforeKill = await callTotals();
    pending = new Collected();
    const tKill = now();
    await victimWorker.worker.terminate();
    const survivors = receivers.filter((h) => h !== victim);
    let convergedS = NaN;
    const convDeadline = Date.now() + (TTL_S + GRACE_S + 60) * 1000;
    for (;;) {
      ctx.checkTime('control-plane convergence');
      const st = await statuses();
      if (st.every((s) => s.heldOf.every((h) => !h[victim]))) {
        convergedS = (now() - tKill) / 1000;
        break;
      }
      if (Date.now() > convDeadline) break;
      await sleep(200);
    }
    const tExpired = hostGone.get(victimId);
    await callTotals();
    const gone = pending;
    const conv = convergence([...victimEps], gone.removes, survivors, tExpired ?? tKill);
    const mEnd = await etcdSnapshot(members);

    // ---- memory ---------------------------------------------------------------------------------
    const rssDuring = percentile(memSamples.map((m) => m.rss), 50);
    const heapPerAgent = memSamples.length ? percentile(memSamples.map((m) => m.heaps.reduce((a, b) => a + b, 0) / H), 50) / 2 ** 20 : NaN;
    const etcdRss = members.map((m) => (m.pid ? rssMiB(m.pid) : undefined) ?? NaN);

    // ---- report ---------------------------------------------------------------------------------
    const ms = (x: number): string => fmt(x, x < 10 ? 1 : 0);
    const row = (what: string, xs: number[], extra = ''): string[] => {
      // Not stats.summarize: Math.min(...xs) overflows the stack for 100,000+ samples.
      const sorted = Float64Array.from(xs).sort();
      const at = (p: number): number => (sorted.length ? (sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1] as number) : NaN);
      return [what, String(sorted.length), ms(at(50)), ms(at(95)), ms(at(99)), ms(sorted.length ? (sorted[sorted.length - 1] as number) : NaN), extra];
    };
    const churnPubs = churn.puts.length;
    r.table(
      `Propagation during churn: ${churnPubs} endpoint publications in ${cfg.seconds} s (${fmt(churnPubs / cfg.seconds)}/s cluster-wide, plus as many unpublications), each to the ${H - 1} other hosts; ms`,
      ['measured from the put request sent to etcd until', 'n', 'p50', 'p95', 'p99', 'max', 'not programmed'],
      [
        row('programmed on one receiver (per receiver)', prop.perReceiver, `${prop.missingPairs} pairs${churn.rewrites ? `; ${churn.rewrites} endpoint keys written again after lost leases (not counted as publications)` : ''}`),
        row(`programmed on all ${H - 1} receivers`, prop.allDone, `${prop.incomplete} publications`),
        row(`programmed on all ${H - 1}, from the put's answer instead`, propAck.allDone, ''),
        row('the put answered (etcd round trip of the write)', putRtt, ''),
        row(`an unpublished endpoint removed on all ${H - 1} (by design after 1-2 s: settle 1 s, sweep every 1 s)`, removal.allDone, `${removal.incomplete} unpublications`),
      ],
    );
    r.note(
      `"Programmed" is the moment OverlayEntries, called from the agent's endpoint watch exactly as in loomd (the coordinator's onRemoteEndpoint), wrote the endpoint's neighbour entry, the last of its two entries, into the recording kernel. ` +
        `The publication moment is when the publishing host's put request left its EtcdStore (the key is committed between that and the answer; the put's own round trip is in the table). ` +
        `Clocks: all hosts are threads of one process, so publication and programming times come from one clock. ` +
        `Fill (before the churn): ${H} hosts published ${E} endpoints each (${H * E} keys), each host one every ${fmt(fillSpreadMs / E / 1000, 2)} s (${fmt((H * E) / (fillSpreadMs / 1000))} publications/s cluster-wide); every host held all ${expected} remote endpoints ${fmt(fillS)} s after the fill began (per-receiver latency p50 ${ms(percentile(fillProp.perReceiver, 50))} ms, p99 ${ms(percentile(fillProp.perReceiver, 99))} ms). ` +
        `Start-up of the ${H} agents (lease, 7 watches each, registration): ${fmt(startS)} s.`,
    );

    const endpointBytes = (callsChurn1.endpointPutBytes - callsChurn0.endpointPutBytes) / Math.max(1, churnPubs);
    const perHostWrites = (callsChurn1.calls.put ?? 0) - (callsChurn0.calls.put ?? 0) + ((callsChurn1.calls.delete ?? 0) - (callsChurn0.calls.delete ?? 0));
    const churnS = churnRates.seconds;
    const idleCalls = (k: string): number => ((callsIdle1.calls[k] ?? 0) - (callsIdle0.calls[k] ?? 0)) / idle.seconds;
    const churnCalls = (k: string): number => ((callsChurn1.calls[k] ?? 0) - (callsChurn0.calls[k] ?? 0)) / churnS;
    const watchEvPerS = (callsChurn1.watchEvents - callsChurn0.watchEvents) / churnS;
    const simCpuS = (cpu1.user + cpu1.system) / 1e6;
    const cpuPerEventUs = (simCpuS * 1e6) / Math.max(1, callsChurn1.watchEvents - callsChurn0.watchEvents);
    const methods = (m: Map<string, number>): string =>
      [...m].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, v]) => `${k} ${fmt(v)}`).join(', ');
    r.table(
      `etcd load (3 members on 127.0.0.1, data on ${fsType}), from etcd's /metrics summed over the members, and from the agents' store wrappers`,
      ['window', 'seconds', 'gRPC requests/s (all members)', 'by method /s', 'client bytes/s in / out', 'raft peer bytes/s', 'etcd CPU (% of one core, 3 members)', 'agents: watch events received/s'],
      [
        ['quiet (keep-alives only)', fmt(idle.seconds), fmt(idle.requestsPerS), methods(idle.byMethodPerS), `${kib(idle.recvBytesPerS)} / ${kib(idle.sentBytesPerS)}`, kib(idle.peerBytesPerS), fmt(idle.etcdCpuPct), fmt((callsIdle1.watchEvents - callsIdle0.watchEvents) / idle.seconds)],
        [`churn (${fmt(churnPubs / cfg.seconds)} publications/s)`, fmt(churnS), fmt(churnRates.requestsPerS), methods(churnRates.byMethodPerS), `${kib(churnRates.recvBytesPerS)} / ${kib(churnRates.sentBytesPerS)}`, kib(churnRates.peerBytesPerS), fmt(churnRates.etcdCpuPct), fmt(watchEvPerS)],
      ],
    );
    r.table(
      'Per simulated host (from the store wrappers: what one loomd sends)',
      ['window', 'keep-alives/s', 'puts + deletes/s', 'all requests/s', 'bytes written/s (keys + values)'],
      [
        ['quiet', fmt(idleCalls('keepAlive') / H, 3), fmt((idleCalls('put') + idleCalls('delete')) / H, 3), fmt(Object.keys(callsIdle1.calls).reduce((a, k) => a + idleCalls(k), 0) / H, 3), fmt((callsIdle1.bytesOut - callsIdle0.bytesOut) / idle.seconds / H)],
        ['churn', fmt(churnCalls('keepAlive') / H, 3), fmt(perHostWrites / churnS / H, 3), fmt(Object.keys(callsChurn1.calls).reduce((a, k) => a + churnCalls(k), 0) / H, 3), fmt((callsChurn1.bytesOut - callsChurn0.bytesOut) / churnS / H)],
      ],
    );
    r.table(
      'etcd state',
      ['', 'value'],
      [
        ['watchers (etcd_debugging_mvcc_watcher_total, all members)', `${fmt(mIdle1.watchers, 0)} (${fmt((mIdle1.watchers - 1) / H, 1)} per host besides the benchmark's own one; loomd opens 7: hosts, overlays, endpoints, reservations, pools, loans, policies)`],
        ['watch streams (etcd_debugging_mvcc_watch_stream_total)', fmt(mIdle1.watchStreams, 0)],
        ['keys (etcd_debugging_mvcc_keys_total) after the churn', fmt(mChurn1.keys, 0)],
        ['an endpoint record as written (key + JSON value, mean over the churn)', `${fmt(endpointBytes, 0)} bytes`],
        ['db size (etcd_mvcc_db_total_size_in_bytes), largest member: after the fill / after the churn / at the end', `${fmt(mIdle0.dbBytes / 2 ** 20, 2)} / ${fmt(mChurn1.dbBytes / 2 ** 20, 2)} / ${fmt(mEnd.dbBytes / 2 ** 20, 2)} MiB (in use at the end ${fmt(mEnd.dbInUseBytes / 2 ** 20, 2)} MiB; no compaction ran: every revision is kept)`],
        ['etcd RSS per member at the end', etcdRss.map((x) => `${fmt(x)} MiB`).join(', ')],
      ],
    );
    r.table(
      'Memory of the simulation (one Node.js process: the benchmark and its worker threads)',
      ['', 'value'],
      [
        ['process RSS before the workers / during churn (median of samples)', `${fmt(rssBefore)} / ${fmt(rssDuring)} MiB`],
        [`RSS added per simulated host ((during - before) / ${H})`, `${fmt((rssDuring - rssBefore) / H, 2)} MiB`],
        ['V8 heap used per simulated host (workers\' heaps / hosts, median of samples)', `${fmt(heapPerAgent, 2)} MiB`],
        ['hosts per worker thread', `${HOSTS_PER_WORKER} (${workers.length} workers; the dying host alone in one)`],
        ['CPU of the simulation process during churn (all threads) / per watch event received', `${fmt((100 * simCpuS) / churnS)} % of one core / ${fmt(cpuPerEventUs)} µs (receiving, decoding, bookkeeping and programming an event, plus keep-alives and publishing)`],
        ['event-loop delay of the worker threads during churn: p99 of the worst thread (median of the 5 s samples) / largest', `${fmt(percentile(memSamples.map((m) => m.loopP99), 50))} / ${fmt(Math.max(...memSamples.map((m) => m.loopMax)))} ms`],
      ],
    );
    const convFromKill = tExpired !== undefined ? (tExpired - tKill) / 1000 : NaN;
    r.table(
      `One host dies: its worker terminated (no clean-up, lease not revoked); lease TTL ${TTL_S} s, peer grace ${GRACE_S} s (loomd's defaults: 10 s and 900 s)`,
      ['', 'seconds'],
      [
        ['kill -> its lease expired (its host key deleted in etcd, seen by a watch)', fmt(convFromKill, 2)],
        [`lease expired -> all ${H - 1} hosts removed its ${victimEps.size} endpoints (p50 / max over hosts)`, conv.allDone !== undefined ? `${fmt(percentile(conv.perReceiver, 50) / 1000, 2)} / ${fmt(conv.allDone / 1000, 2)}` : `not converged: ${conv.pending.length} hosts still hold some`],
        ['kill -> all removed', fmt(convergedS, 2)],
      ],
    );
    r.note(
      `Expected: the lease ends at most ${TTL_S} s after the last keep-alive; each host keeps a departed host's endpoints for the peer grace (${GRACE_S} s) and its sweep runs every second, so removal follows expiry by ${GRACE_S}-${GRACE_S + 1} s plus the watch delay. With loomd's default --peer-grace 900 a dead host's entries stay 15 minutes (on purpose: a host cut off from etcd may still forward).`,
    );
    r.note(
      `Set-up: ${H} simulated hosts, each loom's own cluster code as loomd wires it (EtcdStore with its own etcd3 client, ClusterAgent with session, lease, the 6 agent watches plus loomd's policies watch, queued publication, RemoteEndpoints, OverlayEntries under a per-network lock), with the kernel replaced by a recorder (the VxlanEntriesKernel seam of driver/cluster/overlay-entries.ts); ${HOSTS_PER_WORKER} hosts per worker thread. ` +
        `One overlay (${SUBNET}) all hosts are members of; ${E} endpoints per host; churn: every host replaces its oldest endpoint every ${churnEveryMs / 1000} s (random phase), i.e. ${fmt(H / (churnEveryMs / 1000))} container starts and as many stops per second cluster-wide. ` +
        `Lease TTL ${TTL_S} s (keep-alive every ${fmt(TTL_S / 3, 2)} s; loomd's default 10 s gives 0.3 keep-alives/s per host), peer grace ${GRACE_S} s. ` +
        `The ${H} agents, the benchmark and 3 etcd members share this 2-core machine, which other jobs also use: latencies include CPU contention that separate hosts would not have. ` +
        `Failed session attempts (etcd unreachable or too slow for a host's session) before the kill: ${callsBeforeKill.sessionFailures}.`,
    );

    // ---- targets --------------------------------------------------------------------------------
    const p95 = percentile(prop.allDone, 95);
    const p99 = percentile(prop.allDone, 99);
    const complete = prop.incomplete === 0;
    const n = prop.allDone.length;
    ctx.report.target({
      id: 'cp-propagation-p95',
      name: `endpoint publication -> programmed on all ${H - 1} other hosts, p95 (${H} simulated hosts, churn)`,
      target: '<= 1 s',
      measured: `${ms(p95)} ms (n ${n}${complete ? '' : `, ${prop.incomplete} publications not programmed everywhere`}; per receiver p95 ${ms(percentile(prop.perReceiver, 95))} ms)`,
      pass: n > 0 && complete && p95 <= 1000,
    });
    ctx.report.target({
      id: 'cp-propagation-p99',
      name: `endpoint publication -> programmed on all ${H - 1} other hosts, p99 (${H} simulated hosts, churn)`,
      target: '<= 2 s',
      measured: `${ms(p99)} ms (n ${n}; per receiver p99 ${ms(percentile(prop.perReceiver, 99))} ms)`,
      pass: n > 0 && complete && p99 <= 2000,
    });
    const headroom = ETCD_PUBLISHED_RPS / churnRates.requestsPerS;
    ctx.report.target({
      id: 'cp-etcd-load',
      name: `etcd load at ${H} hosts with churn: a 3-member etcd sustains it with headroom`,
      target: `<= 10 % of etcd's published ${ETCD_PUBLISHED_RPS.toLocaleString('en')} requests/s (3 members, etcd.io op-guide "Performance")`,
      measured: `${fmt(churnRates.requestsPerS)} requests/s = ${fmt((100 * churnRates.requestsPerS) / ETCD_PUBLISHED_RPS, 2)} % (${fmt(headroom, 0)}x headroom); ${kib(churnRates.sentBytesPerS)}/s sent to clients; the 3 members used ${fmt(churnRates.etcdCpuPct)} % of one core here`,
      pass: churnRates.requestsPerS <= ETCD_PUBLISHED_RPS / 10,
    });
    Object.assign(ctx.facts, {
      cpHosts: String(H),
      cpP95: ms(p95),
      cpP99: ms(p99),
      cpPutP95: ms(percentile(putRtt, 95)),
      cpRps: fmt(churnRates.requestsPerS),
      cpEtcdCpu: fmt(churnRates.etcdCpuPct),
      cpLoopMax: fmt(Math.max(...memSamples.map((m) => m.loopMax))),
    });
  } finally {
    ctx.phase('control-plane: stopping the workers and etcd');
    await Promise.all(workers.filter((w) => !w.dead).map((w) => w.ask({ type: 'stop' }, 'stopped', 10_000).catch(() => undefined)));
    await cleanup();
  }
}
