/**
 * Shared state of one benchmark run: configuration from the environment, the
 * report, a stack of clean-up actions (run on success, failure and SIGINT/SIGTERM),
 * the overall deadline, and small measurement helpers.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { Report } from './report';
import { run, RunResult } from '../helpers/run';

const int = (name: string, def: number, min = 1, max = 1_000_000): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name} must be an integer in ${min}..${max}, got ${raw}`);
  return v;
};

/** loomd as a user runs it: default log level and reconcile interval (the harness defaults are test settings). */
export const LOOMD_DEFAULTS = { LOOM_LOG_LEVEL: 'info', LOOM_RECONCILE_INTERVAL: '30', LOOM_RECONCILE_GRACE: '10' };

export const SECTIONS = ['host', 'cross-host', 'ipam', 'scale', 'names', 'policy', 'control-plane'] as const;
export type SectionId = (typeof SECTIONS)[number];

export interface BenchConfig {
  startRuns: number;
  warmup: number;
  parallel: number;
  parallelReps: number;
  netCreateRuns: number;
  iperfReps: number;
  iperfSeconds: number;
  pingCount: number;
  reachRuns: number;
  dnsQueries: number;
  ipamPrefix: number;
  scaleEndpoints: number;
  scaleNetworks: number;
  restarts: number;
  policyEndpoints: number;
  policyCount: number;
  policyApplies: number;
  policyStarts: number;
  policyIperfRounds: number;
  cpHosts: number;
  cpEndpoints: number;
  cpSeconds: number;
  cpChurnS: number;
  only: Set<SectionId>;
  out: string;
  maxMinutes: number;
}

export function configFromEnv(): BenchConfig {
  const onlyRaw = (process.env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of onlyRaw) if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`BENCH_ONLY: unknown section ${s} (known: ${SECTIONS.join(', ')})`);
  return {
    startRuns: int('BENCH_START_RUNS', 30),
    warmup: int('BENCH_WARMUP', 2, 0, 100),
    parallel: int('BENCH_PARALLEL', 20, 2, 100),
    parallelReps: int('BENCH_PARALLEL_REPS', 3),
    netCreateRuns: int('BENCH_NETCREATE_RUNS', 15),
    iperfReps: int('BENCH_IPERF_REPS', 5, 1, 50),
    iperfSeconds: int('BENCH_IPERF_SECONDS', 5, 1, 60),
    pingCount: int('BENCH_PING_COUNT', 20, 2, 1000),
    reachRuns: int('BENCH_REACH_RUNS', 50, 1, 1000),
    dnsQueries: int('BENCH_DNS_QUERIES', 500, 10, 5000),
    ipamPrefix: int('BENCH_IPAM_PREFIX', 16, 16, 24),
    scaleEndpoints: int('BENCH_SCALE_ENDPOINTS', 1000, 10, 4000),
    scaleNetworks: int('BENCH_SCALE_NETWORKS', 100, 1, 250),
    restarts: int('BENCH_RESTARTS', 5, 1, 50),
    policyEndpoints: int('BENCH_POLICY_ENDPOINTS', 1000, 10, 4000),
    policyCount: int('BENCH_POLICY_COUNT', 100, 1, 1000),
    policyApplies: int('BENCH_POLICY_APPLIES', 10, 1, 100),
    policyStarts: int('BENCH_POLICY_STARTS', 40, 1, 500),
    policyIperfRounds: int('BENCH_POLICY_IPERF_ROUNDS', 8, 1, 50),
    cpHosts: int('BENCH_CP_HOSTS', 100, 3, 250),
    cpEndpoints: int('BENCH_CP_ENDPOINTS', 50, 1, 500),
    cpSeconds: int('BENCH_CP_SECONDS', 60, 10, 600),
    cpChurnS: int('BENCH_CP_CHURN_S', 10, 1, 600),
    only: new Set((onlyRaw.length ? onlyRaw : [...SECTIONS]) as SectionId[]),
    out: process.env.BENCH_OUT ?? '',
    maxMinutes: int('BENCH_MAX_MINUTES', 30, 1, 240),
  };
}

export class BenchContext {
  readonly report = new Report();
  /** Figures one section leaves for another (e.g. the docker-run CreateEndpoint+Join latency for the scale section's target line). */
  readonly shared: { cejDocker?: { p50: number; p99: number; max: number; n: number } } = {};
  /** Figures of this run quoted by the explanations of missed targets (explanations.ts), already formatted. */
  readonly facts: Record<string, string> = {};
  readonly startedAt = Date.now();
  private readonly cleanups: Array<{ what: string; fn: () => Promise<unknown> }> = [];

  constructor(readonly config: BenchConfig) {}

  get deadline(): number {
    return this.startedAt + this.config.maxMinutes * 60_000;
  }

  /** Throws when the overall time budget is used up (every loop checks it). */
  checkTime(what: string): void {
    if (Date.now() > this.deadline) throw new Error(`time budget of ${this.config.maxMinutes} min exceeded during ${what} (BENCH_MAX_MINUTES)`);
  }

  /** Progress line with the elapsed time (stderr, so the tables on stdout stay readable). */
  phase(what: string): void {
    console.error(`[${((Date.now() - this.startedAt) / 1000).toFixed(1).padStart(6)} s] ${what}`);
  }

  /** Registers a clean-up action; returns a function that runs it now (and unregisters it). */
  defer(what: string, fn: () => Promise<unknown>): () => Promise<void> {
    const entry = { what, fn };
    this.cleanups.push(entry);
    return async () => {
      const i = this.cleanups.indexOf(entry);
      if (i < 0) return;
      this.cleanups.splice(i, 1);
      await runCleanup(entry);
    };
  }

  /** Runs every registered clean-up, newest first. */
  async cleanupAll(): Promise<void> {
    while (this.cleanups.length) await runCleanup(this.cleanups.pop() as { what: string; fn: () => Promise<unknown> });
  }
}

async function runCleanup(entry: { what: string; fn: () => Promise<unknown> }): Promise<void> {
  try {
    await entry.fn();
  } catch (err) {
    console.warn(`clean-up "${entry.what}" failed: ${String(err)}`);
  }
}

/** Milliseconds since `t0` (from process.hrtime.bigint()). */
export function msSince(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Runs a command and returns its result with the wall time in ms. */
export async function timed(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult & { ms: number }> {
  const t0 = process.hrtime.bigint();
  const r = await run(cmd, args, opts);
  return { ...r, ms: msSince(t0) };
}

export function mustOk(r: RunResult, what: string): string {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
  return r.stdout;
}

/** Bits per second received, from `iperf3 -J` output. */
export function iperfGbits(json: string): number {
  const j = JSON.parse(json) as { end?: { sum_received?: { bits_per_second: number } }; error?: string };
  if (j.error || !j.end?.sum_received) throw new Error(`iperf3 failed: ${j.error ?? 'no summary'}`);
  return j.end.sum_received.bits_per_second / 1e9;
}

/** RTTs in ms from busybox ping output. */
export function pingRtts(out: string): number[] {
  return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

export interface CallLine {
  method: string;
  durationMs: number;
  outcome: string;
  time: string;
}

/** loomd's "call" log lines (one per plugin call) in `file` from byte `from` on; returns them and the end offset. */
export function readCalls(file: string, from: number): { calls: CallLine[]; end: number } {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    if (size <= from) return { calls: [], end: from };
    const buf = Buffer.alloc(size - from);
    fs.readSync(fd, buf, 0, buf.length, from);
    const text = buf.toString('utf8');
    // Only whole lines; a partial last line is read next time.
    const lastNl = text.lastIndexOf('\n');
    const whole = lastNl >= 0 ? text.slice(0, lastNl + 1) : '';
    const calls: CallLine[] = [];
    for (const line of whole.split('\n')) {
      if (!line.includes('"msg":"call"')) continue;
      try {
        const j = JSON.parse(line) as CallLine & { msg: string };
        if (typeof j.durationMs === 'number') calls.push({ method: String(j.method).replace(/^(NetworkDriver|IpamDriver|Plugin)\./, ''), durationMs: j.durationMs, outcome: j.outcome, time: j.time });
      } catch {
        // not JSON: ignore
      }
    }
    return { calls, end: from + Buffer.byteLength(whole) };
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** The kernel's clock ticks per second in /proc's CPU times (USER_HZ; `getconf CLK_TCK`), read once. */
let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const out = execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim();
    const hz = Number(out);
    if (!Number.isInteger(hz) || hz <= 0) throw new Error(`getconf CLK_TCK printed ${JSON.stringify(out)}`);
    clockTicks = hz;
  }
  return clockTicks;
}

/** CPU time (user + system, all threads) a process has used so far, in ms, from /proc; undefined when it is gone. */
export function cpuMs(pid: number): number | undefined {
  const hz = ticksPerSecond();
  try {
    // The fields after the command name, which is in parentheses and may hold spaces.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / hz;
  } catch {
    return undefined;
  }
}

/** VmRSS of a process in MiB (undefined when it is gone). */
export function rssMiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}
