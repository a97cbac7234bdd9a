/**
 * Shared scenario of the etcd fault tests (test/faults/etcd-*.faults.test.ts): three
 * hosts with an overlay and a container on each, a fault injected from outside for
 * FAULT_MS (60 s; 10 minutes with LOOM_FAULT_LONG=1), probes in rounds while it lasts,
 * and the convergence check once etcd is back.
 *
 * A probe round, on every host: plugin calls straight to loomd's socket, a local bridge
 * network created, a container run on it and both removed (each Docker call timed); on
 * host A a second container on its network and a ping between the two; the overlay
 * containers ping each other across hosts; loomd's VmRSS is read. Every loop is bounded.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TestCluster } from './cluster';
import { RunResult, run, sleep, waitFor } from './run';
import { REPO, TestHost } from './test-host';
import { pluginCall, unixRequest } from './unix-http';

export const LONG = process.env.LOOM_FAULT_LONG === '1';
/** LOOM_FAULT_SECONDS shortens or lengthens it while working on the tests (CI uses the default). */
export const FAULT_MS = process.env.LOOM_FAULT_SECONDS ? Number(process.env.LOOM_FAULT_SECONDS) * 1000 : LONG ? 600_000 : 60_000;
/**
 * What the tests require of every call during the fault: loom's own handling (its log) and
 * plugin calls straight to its socket within 1 s. Docker CLI calls include dockerd's,
 * containerd's and runc's own work (see expectOutageLimits).
 */
export const CALL_LIMIT_MS = 1_000;
export const CONVERGE_LIMIT_MS = 15_000;
export const RSS_LIMIT_MB = 150;

export interface Sample {
  host: string;
  what: string;
  ms: number;
  ok: boolean;
  detail?: string;
}

export interface Outage {
  c: TestCluster;
  hosts: [TestHost, TestHost, TestHost];
  overlayIps: Map<string, string>;
}

const OVERLAY = 'red';
const CONTAINERS = ['ra', 'rb', 'rc'];

export async function overlayCluster(): Promise<Outage> {
  // Peers kept for the whole fault (a partitioned host's containers must stay reachable).
  const c = await TestCluster.create(3, { loomEnv: { LOOM_PEER_GRACE: String(Math.ceil(FAULT_MS / 1000) + 300) } });
  try {
    const hosts = c.hosts as [TestHost, TestHost, TestHost];
    const [A] = hosts;
    await A.cliOk(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '-o', 'loom.mode=overlay', '--subnet', '198.18.210.0/24', OVERLAY]);
    for (const h of hosts.slice(1)) await waitFor(`${OVERLAY} on ${h.name}`, async () => (await h.cli(['network', 'inspect', OVERLAY])).code === 0, 30_000, 250);
    const overlayIps = new Map<string, string>();
    for (const [i, h] of hosts.entries()) {
      const name = CONTAINERS[i] as string;
      await h.cliOk(['run', '-d', '--init', '--name', name, '--network', OVERLAY, 'local/busybox', 'sleep', '86400']);
      overlayIps.set(name, await h.containerIp(name, OVERLAY));
    }
    const o = { c, hosts, overlayIps };
    for (const [i, h] of hosts.entries()) {
      const target = overlayIps.get(CONTAINERS[(i + 1) % 3] as string) as string;
      await waitFor(`${CONTAINERS[i]} reaches ${target}`, async () => h.ping(CONTAINERS[i] as string, target, 1), 30_000, 250);
    }
    return o;
  } catch (err) {
    await c.destroy();
    throw err;
  }
}

export function rssMb(h: TestHost): number {
  const status = fs.readFileSync(`/proc/${h.loomdPid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

async function timed(samples: Sample[], host: TestHost, what: string, fn: () => Promise<RunResult | boolean>): Promise<boolean> {
  const t0 = Date.now();
  let ok = false;
  let detail: string | undefined;
  try {
    const r = await fn();
    ok = typeof r === 'boolean' ? r : r.code === 0;
    if (typeof r !== 'boolean' && r.code !== 0) detail = r.stderr.trim().slice(0, 300);
  } catch (err) {
    detail = String(err).slice(0, 300);
  }
  samples.push({ host: host.name, what, ms: Date.now() - t0, ok, ...(detail ? { detail } : {}) });
  return ok;
}

/** One round of probes (see the header). `round` keeps names and subnets apart. */
export async function probeRound(o: Outage, round: number, samples: Sample[]): Promise<{ rss: number[] }> {
  for (const [i, h] of o.hosts.entries()) {
    await timed(samples, h, 'plugin GetCapabilities', async () => (await pluginCall(h.socket, 'NetworkDriver.GetCapabilities', {})).status === 200);
    await timed(samples, h, 'plugin GetDefaultAddressSpaces', async () => (await pluginCall(h.socket, 'IpamDriver.GetDefaultAddressSpaces', {})).status === 200);
    const net = `lb${round}`;
    const subnet = `198.19.${(round % 80) * 3 + i}.0/24`;
    const created = await timed(samples, h, 'docker network create', () => h.cli(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '--subnet', subnet, net], { timeoutMs: 60_000 }));
    if (created) {
      await timed(samples, h, 'docker run', () => h.cli(['run', '-d', '--init', '--name', `${net}a`, '--network', net, 'local/busybox', 'sleep', '600'], { timeoutMs: 60_000 }));
      if (i === 0) {
        // Host A uses its network: a second container, and the two ping each other.
        await timed(samples, h, 'docker run', () => h.cli(['run', '-d', '--init', '--name', `${net}b`, '--network', net, 'local/busybox', 'sleep', '600'], { timeoutMs: 60_000 }));
        const ip = await h.cli(['inspect', '-f', `{{.NetworkSettings.Networks.${net}.IPAddress}}`, `${net}b`]);
        await timed(samples, h, 'local ping', async () => h.ping(`${net}a`, ip.stdout.trim(), 3));
      }
      await timed(samples, h, 'docker rm', () => h.cli(['rm', '-f', `${net}a`, ...(i === 0 ? [`${net}b`] : [])], { timeoutMs: 60_000 }));
      await timed(samples, h, 'docker network rm', () => h.cli(['network', 'rm', net], { timeoutMs: 60_000 }));
    }
  }
  for (const [i, h] of o.hosts.entries()) {
    const target = o.overlayIps.get(CONTAINERS[(i + 1) % 3] as string) as string;
    await timed(samples, h, 'overlay ping', async () => h.ping(CONTAINERS[i] as string, target, 3));
  }
  return { rss: o.hosts.map(rssMb) };
}

/** Probes in rounds for `ms` (bounded by time); returns the samples and the RSS peak per host. */
export async function probeFor(o: Outage, ms: number, firstRound: number): Promise<{ samples: Sample[]; rssPeak: number[]; rounds: number }> {
  const samples: Sample[] = [];
  const rssPeak = [0, 0, 0];
  const end = Date.now() + ms;
  let round = firstRound;
  while (Date.now() < end) {
    const { rss } = await probeRound(o, round++, samples);
    rss.forEach((v, i) => (rssPeak[i] = Math.max(rssPeak[i] as number, v)));
    await sleep(Math.min(1_000, Math.max(0, end - Date.now())));
  }
  return { samples, rssPeak, rounds: round - firstRound };
}

const LOOMCTL = path.join(process.env.LOOM_DIST ?? path.join(REPO, 'dist'), 'driver', 'cli', 'loomctl.js');

/** `loomctl CMD` against a host's loomd (its admin socket). */
export async function loomctl(h: TestHost, args: string[]): Promise<{ code: number; out: string }> {
  const r = await run(process.execPath, [LOOMCTL, '--admin-socket', h.adminSocket, ...args], { timeoutMs: 20_000, env: { ...process.env, DOCKER_HOST: `unix://${h.dockerSock}` } });
  return { code: r.code, out: r.stdout + r.stderr };
}

/** What the operator sees on host C once it knows etcd is gone: status and doctor name etcd. */
async function operatorView(o: Outage): Promise<{ status: string; doctor: { code: number; out: string } }> {
  const C = o.hosts[2];
  await waitFor('C knows etcd is unreachable', async () => (await unixRequest(C.adminSocket, 'GET', '/v1/status', undefined, 2_000)).json?.cluster?.healthy === false, 20_000, 250);
  return { status: (await loomctl(C, ['status'])).out, doctor: await loomctl(C, ['doctor']) };
}

/** Durations loomd itself logged for plugin calls between two instants (ms since the epoch). */
export interface LoomCall {
  host: string;
  method: string;
  ms: number;
  /** Time the call waited on etcd (loomd logs it when > 0). */
  etcdMs: number;
  outcome: string;
}

export function loomCallDurations(h: TestHost, from: number, to: number): LoomCall[] {
  const out: LoomCall[] = [];
  for (const line of h.loomdLog().split('\n')) {
    if (!line.includes('"msg":"call"')) continue;
    try {
      const e = JSON.parse(line) as { time: string; method: string; durationMs: number; etcdMs?: number; outcome: string };
      const t = Date.parse(e.time);
      if (t >= from && t <= to) out.push({ host: h.name, method: e.method, ms: e.durationMs, etcdMs: e.etcdMs ?? 0, outcome: e.outcome });
    } catch {
      // a line cut by the copy
    }
  }
  return out;
}

/**
 * After etcd is back (at `returnedAt`): a container started on C must be reachable from
 * A within CONVERGE_LIMIT_MS of it. Returns how long it took (ms after returnedAt).
 */
export async function newContainerReachable(o: Outage, returnedAt: number, name: string): Promise<number> {
  const [A, , C] = o.hosts;
  await C.cliOk(['run', '-d', '--init', '--name', name, '--network', OVERLAY, 'local/busybox', 'sleep', '86400']);
  const ip = await C.containerIp(name, OVERLAY);
  const limit = returnedAt + CONVERGE_LIMIT_MS + 10_000; // wait a little longer, so a miss is measured, not guessed
  await waitFor(`${name} (${ip}) reachable from A`, async () => A.ping('ra', ip, 1), Math.max(1_000, limit - Date.now()), 100);
  return Date.now() - returnedAt;
}

/** Waits (bounded) until every loomd says etcd answers and nothing waits to be written. */
export async function clusterSettled(o: Outage, timeoutMs: number): Promise<void> {
  await waitFor('every loomd healthy with an empty backlog', async () => {
    for (const h of o.hosts) {
      const s = (await unixRequest(h.adminSocket, 'GET', '/v1/status', undefined, 2_000)).json;
      if (!s?.cluster?.healthy || s.cluster.backlog !== 0 || s.cluster.reconnecting) return false;
    }
    return true;
  }, timeoutMs, 250);
}

/** A short table for the test log: worst and median time per kind of probe, failures. */
export function summary(samples: Sample[]): string {
  const by = new Map<string, Sample[]>();
  for (const s of samples) by.set(s.what, [...(by.get(s.what) ?? []), s]);
  return [...by].map(([what, ss]) => {
    const ms = ss.map((s) => s.ms).sort((a, b) => a - b);
    return `${what.padEnd(32)} n=${String(ss.length).padStart(3)} median=${ms[Math.floor(ms.length / 2)]}ms max=${ms[ms.length - 1]}ms failed=${ss.filter((s) => !s.ok).length}`;
  }).join('\n');
}

/** Writes the fault's figures next to the host logs (kept with LOOM_KEEP_TEST_LOGS). */
export function record(o: Outage, name: string, text: string): void {
  try {
    fs.writeFileSync(path.join(o.hosts[0].dir, `${name}.txt`), text);
  } catch {
    // the host directory may be gone already
  }
  console.log(`${name}\n${text}`);
}

export interface OutageResult {
  baseline: Sample[];
  during: Sample[];
  rounds: number;
  rssPeak: number[];
  loomCalls: LoomCall[];
  /** loomd's calls before the fault (set-up and baseline rounds), for the same machine load. */
  loomBaseline: LoomCall[];
  /** ms from etcd's return until a container started on C answered A's ping. */
  convergeMs: number;
  /** `loomctl status` and `doctor` on host C during the fault. */
  operator: { status: string; doctor: { code: number; out: string } };
}

/**
 * Runs one fault: a baseline round, `inject`, probes for FAULT_MS, `restore` (always),
 * then the convergence check; writes the figures. The caller asserts (expectOutageLimits).
 */
export async function runOutage(o: Outage, name: string, fault: { inject(): Promise<void>; restore(): Promise<void> }): Promise<OutageResult> {
  const baseline = (await probeFor(o, 1, 100)).samples.concat((await probeFor(o, 1, 101)).samples);
  const start = Date.now();
  await fault.inject();
  let during: Awaited<ReturnType<typeof probeFor>>;
  let operator: OutageResult['operator'];
  try {
    operator = await operatorView(o);
    during = await probeFor(o, Math.max(0, FAULT_MS - (Date.now() - start)), 1);
  } finally {
    await fault.restore();
  }
  const returnedAt = Date.now();
  const loomCalls = o.hosts.flatMap((h) => loomCallDurations(h, start, returnedAt));
  const loomBaseline = o.hosts.flatMap((h) => loomCallDurations(h, 0, start));
  const convergeMs = await newContainerReachable(o, returnedAt, `${CONTAINERS[2]}${name.length}`);
  await clusterSettled(o, CONVERGE_LIMIT_MS);
  const worstLoom = loomCalls.reduce((m, c) => Math.max(m, c.ms), 0);
  record(
    o,
    name,
    [
      `fault ${FAULT_MS / 1000} s, ${during.rounds} probe rounds`,
      `baseline:\n${summary(baseline)}`,
      `during the fault:\n${summary(during.samples)}`,
      `loomd plugin calls before the fault: ${loomBaseline.length}, slowest ${Math.round(loomBaseline.reduce((m, c) => Math.max(m, c.ms), 0))} ms`,
      `loomd plugin calls during the fault: ${loomCalls.length}, slowest ${Math.round(worstLoom)} ms, longest wait on etcd ${Math.round(loomCalls.reduce((m, c) => Math.max(m, c.etcdMs), 0))} ms`,
      `load average at the end: ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
      `loomd VmRSS peak per host: ${during.rssPeak.map((r) => `${r.toFixed(0)} MB`).join(', ')}`,
      `a container started on C after etcd's return answered A's ping after ${convergeMs} ms`,
      `loomctl status on C during the fault:\n${operator.status.trim()}`,
      `loomctl doctor on C during the fault (exit ${operator.doctor.code}):\n${operator.doctor.out.trim()}`,
    ].join('\n'),
  );
  return { operator, baseline, during: during.samples, rounds: during.rounds, rssPeak: during.rssPeak, loomCalls, loomBaseline, convergeMs };
}

/**
 * The limits every etcd fault is held to (issue 12). The sharp one is loomd's own account
 * of how long each call waited on etcd: under 1 s, whatever the machine's load. Wall-clock
 * times also include the kernel, nftables, dockerd, containerd and runc, which on this
 * shared 2-core machine vary with other test runs (docker run: 0.5 s idle, 7 s at a load
 * average of 27): they must stay within 1 s or three times the slowest call of the same
 * kind before the fault, whichever is more (the old failure was a 30 s hang). Plugin calls
 * straight to loomd's socket: within 1 s.
 */
export function expectOutageLimits(r: OutageResult): void {
  // A round takes 10-30 s on this machine; at least two run inside the fault.
  expect(r.rounds).toBeGreaterThanOrEqual(2);
  expect(r.during.filter((s) => !s.ok)).toEqual([]);
  const limit = (base: number[]): number => Math.max(CALL_LIMIT_MS, 3 * Math.max(0, ...base));
  const dockerLimit = (what: string): number => (what.startsWith('plugin') ? CALL_LIMIT_MS : limit(r.baseline.filter((s) => s.what === what).map((s) => s.ms)));
  expect(r.during.filter((s) => (s.what.startsWith('docker') || s.what.startsWith('plugin')) && s.ms >= dockerLimit(s.what))).toEqual([]);
  expect(r.loomCalls.length).toBeGreaterThan(0);
  expect(r.loomCalls.filter((c) => c.etcdMs >= CALL_LIMIT_MS)).toEqual([]);
  const loomLimit = (m: string): number => limit(r.loomBaseline.filter((c) => c.method === m).map((c) => c.ms));
  expect(r.loomCalls.filter((c) => c.ms >= loomLimit(c.method))).toEqual([]);
  for (const peak of r.rssPeak) expect(peak).toBeLessThan(RSS_LIMIT_MB);
  expect(r.convergeMs).toBeLessThan(CONVERGE_LIMIT_MS);
  // The operator is told, on the host that lost etcd.
  expect(r.operator.status).toMatch(/etcd: +UNREACHABLE since/);
  expect(r.operator.doctor.code).toBe(1);
  expect(r.operator.doctor.out).toMatch(/the cluster store \(etcd\) is unreachable since/);
}
