/**
 * The fuzz harness: the real loomd (in-process, on a temporary socket and state directory), a
 * netlink view of this namespace, the baseline snapshot of the seeded state, and runBatch,
 * which sends hostile requests and checks every answer, the state after each creation call
 * and after the batch, and that the daemon still answers.
 */
import { isDeepStrictEqual } from 'node:util';
import { startTestDaemon, TestDaemon } from '../../helpers/daemon';
import { waitFor } from '../../helpers/run';
import { pluginCall, unixRequest, UnixResponse } from '../../helpers/unix-http';
import { NetlinkKernel } from '../../../driver/kernel/netlink-kernel';
import { describeCase, FuzzCase, show, verdict } from './cases';
import { CHECK_EACH, READONLY } from './routes';
import { boundSockets, coreSnapshot, describeDiff, fullSnapshot, Snapshot } from './snapshot';

export class FuzzHarness {
  /** The fixed answer of each argument-less call, learnt from an empty call at start. */
  readonly readonlyReply: Record<string, unknown> = {};
  /** Counted requests sent by runBatch. */
  sent = 0;
  private readonly stats = new Map<string, Map<string, number>>();
  private base: Snapshot | undefined;

  private constructor(
    readonly daemon: TestDaemon,
    readonly kernel: NetlinkKernel,
    /** Unhandled rejections this test process saw from start() on. */
    readonly rejections: unknown[],
    private readonly onRejection: (reason: unknown) => void,
  ) {}

  /** Starts loomd, opens the netlink view and learns the argument-less calls' answers. */
  static async start(): Promise<FuzzHarness> {
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown): void => {
      rejections.push(reason);
    };
    process.on('unhandledRejection', onRejection);
    let h: FuzzHarness | undefined;
    try {
      h = new FuzzHarness(await startTestDaemon(), new NetlinkKernel(), rejections, onRejection);
      for (const m of READONLY) h.readonlyReply[m] = (await h.ok(m, undefined)).json;
    } catch (err) {
      process.off('unhandledRejection', onRejection);
      await h?.stop();
      throw err;
    }
    return h;
  }

  async stop(): Promise<void> {
    process.off('unhandledRejection', this.onRejection);
    this.kernel.close();
    await this.daemon.stop();
  }

  /** A call that must succeed (seeding, clean-up). */
  async ok(method: string, body: unknown): Promise<UnixResponse> {
    const res = await pluginCall(this.daemon.socket, method, body);
    if (res.status !== 200) throw new Error(`seeding ${method}: HTTP ${res.status} ${res.body}`);
    if (method === 'NetworkDriver.CreateEndpoint') {
      // loomd makes the veth pair after the answer (Join waits for it): a seed is in place once its host end is on the bridge and up.
      const hostEnd = `lv${String((body as { EndpointID?: unknown }).EndpointID).slice(0, 12)}`;
      await waitFor(`veth ${hostEnd} made`, async () => {
        const link = await this.kernel.findLink(hostEnd);
        return Boolean(link?.up && link.master !== undefined);
      }, 5_000, 10);
    }
    return res;
  }

  coreSnapshot(): Promise<string> {
    return coreSnapshot(this.daemon.adminSocket, this.kernel);
  }

  fullSnapshot(): Promise<Snapshot> {
    return fullSnapshot(this.daemon.adminSocket, this.kernel);
  }

  /** The state every batch must leave as it found it (takeBaseline). */
  get baseline(): Snapshot {
    if (!this.base) throw new Error('no baseline taken');
    return this.base;
  }

  /** Lets the start-up reconcile pass and IPv6 autoconfiguration settle (bounded), then takes the baseline. */
  async takeBaseline(): Promise<void> {
    let prev = '';
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 150));
      const now = JSON.stringify(await this.fullSnapshot());
      if (now === prev) break;
      prev = now;
    }
    this.base = await this.fullSnapshot();
  }

  /** Sends a batch; checks every answer, state after each creation call and after the batch, and liveness. */
  async runBatch(cases: FuzzCase[], counted = true): Promise<void> {
    const baseline = this.baseline;
    const problems: string[] = [];
    for (const c of cases) {
      let res: UnixResponse;
      try {
        res = await unixRequest(this.daemon.socket, c.verb, c.path, c.body, 15_000);
      } catch (err) {
        problems.push(`${describeCase(c)}\n  request failed: ${(err as Error).message}`);
        break;
      }
      if (counted) {
        this.sent++;
        this.count(c.method, String(res.status));
        this.count('(all)', String(res.status));
        this.count(`(expected ${c.expect})`, String(res.status));
      }
      const bad = verdict(c, res, this.readonlyReply);
      if (bad) problems.push(`${describeCase(c)}\n  ${bad}`);
      if (CHECK_EACH.includes(c.method)) {
        const now = await this.coreSnapshot();
        const sockets = c.method === 'NetworkDriver.ProgramExternalConnectivity' ? (await boundSockets()).join('\n') : baseline.sockets;
        if (now !== baseline.core || sockets !== baseline.sockets) {
          const diff = now !== baseline.core ? describeDiff(baseline.core, now) : `bound sockets: ${baseline.sockets} -> ${sockets}`;
          problems.push(`${describeCase(c)}\n  answered HTTP ${res.status} ${show(res.body)} and changed state:\n  ${diff}`);
          break;
        }
      }
    }
    const after = await this.fullSnapshot();
    const batch = `  batch:\n  ${cases.map(describeCase).join('\n  ')}`;
    if (after.core !== baseline.core) problems.push(`state changed during this batch:\n  ${describeDiff(baseline.core, after.core)}\n${batch}`);
    if (after.sockets !== baseline.sockets) problems.push(`bound sockets changed during this batch:\n${baseline.sockets}\n->\n${after.sockets}\n${batch}`);
    if (after.nft !== baseline.nft) problems.push(`nftables ruleset changed during this batch:\n${baseline.nft}\n->\n${after.nft}\n${batch}`);
    const alive = await pluginCall(this.daemon.socket, 'NetworkDriver.GetCapabilities');
    if (alive.status !== 200 || !isDeepStrictEqual(alive.json, this.readonlyReply['NetworkDriver.GetCapabilities'])) {
      problems.push(`daemon stopped answering GetCapabilities: HTTP ${alive.status} ${alive.body}`);
    }
    if (this.rejections.length > 0) problems.push(`unhandled rejections: ${this.rejections.map(String).join('; ')}`);
    if (problems.length > 0) throw new Error(problems.join('\n'));
  }

  /** HTTP status counts per route (and per expectation) of the counted requests, one route a line. */
  summary(): string {
    return [...this.stats.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([m, outcomes]) => `  ${m.padEnd(44)} ${[...outcomes.entries()].sort().map(([o, n]) => `${o}=${n}`).join(' ')}`)
      .join('\n');
  }

  private count(method: string, outcome: string): void {
    const m = this.stats.get(method) ?? new Map<string, number>();
    m.set(outcome, (m.get(outcome) ?? 0) + 1);
    this.stats.set(method, m);
  }
}
