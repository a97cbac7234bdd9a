/**
 * Traffic control for per-endpoint bandwidth limits, through the `tc` tool
 * (iproute2; the netlink package has no encoders for tbf or u32/mirred). Argument
 * vectors only: interface names and rates are validated before they get here.
 *
 * - what a container receives is shaped by a tbf root qdisc on the host end of its veth;
 * - what it sends arrives on the host end's ingress, which has no queue: a u32 filter
 *   redirects it (mirred) to an IFB device whose tbf root qdisc shapes it.
 */
import { CommandRunner, runChecked, runCommand } from './command';

/** tbf burst: 10 ms worth of traffic, at least 16 KiB (tbf needs burst >= rate/HZ). */
export function burstBytes(bps: number): number {
  return Math.max(Math.ceil(bps / 8 / 100), 16 * 1024);
}

export class TrafficControl {
  constructor(private readonly run: CommandRunner = runCommand) {}

  private tc(args: string[]): Promise<string> {
    return runChecked(this.run, 'tc', args);
  }

  private tbfArgs(bps: number): string[] {
    return ['tbf', 'rate', `${bps}bit`, 'burst', String(burstBytes(bps)), 'latency', '50ms'];
  }

  /** Shapes traffic leaving `dev` (towards the container when `dev` is the host end). */
  async shapeEgress(dev: string, bps: number): Promise<void> {
    await this.tc(['qdisc', 'replace', 'dev', dev, 'root', ...this.tbfArgs(bps)]);
  }

  /** Redirects everything arriving on `dev` to `ifb` and shapes it there. `ifb` must exist and be up. */
  async shapeIngressVia(dev: string, ifb: string, bps: number): Promise<void> {
    await this.tc(['qdisc', 'replace', 'dev', ifb, 'root', ...this.tbfArgs(bps)]);
    await this.tc(['qdisc', 'replace', 'dev', dev, 'handle', 'ffff:', 'ingress']);
    await this.tc(['filter', 'replace', 'dev', dev, 'parent', 'ffff:', 'protocol', 'all', 'prio', '1', 'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', ifb]);
  }

  /**
   * Ties two devices of this namespace together (an overlay's tunnel veth and its VXLAN device):
   * what arrives on either leaves by the other (clsact ingress, u32 match-all, mirred egress
   * redirect). Replaces whatever clsact filters they had.
   */
  async redirectBothWays(a: string, b: string): Promise<void> {
    for (const [from, to] of [[a, b], [b, a]] as const) {
      await this.run('tc', ['qdisc', 'del', 'dev', from, 'clsact']);
      await this.tc(['qdisc', 'add', 'dev', from, 'clsact']);
      await this.tc(['filter', 'add', 'dev', from, 'ingress', 'protocol', 'all', 'prio', '1', 'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', to]);
    }
  }

  /** Whether what arrives on `from` is redirected to `to` (redirectBothWays). */
  async redirects(from: string, to: string): Promise<boolean> {
    const r = await this.run('tc', ['filter', 'show', 'dev', from, 'ingress']);
    return r.code === 0 && r.stdout.includes(`Redirect to device ${to})`);
  }

  /** The root qdisc kind and rate of `dev` ("tbf", bits/s), for checks and doctor. */
  async rootQdisc(dev: string): Promise<{ kind: string; bps?: number } | undefined> {
    const out = JSON.parse(await this.tc(['-j', 'qdisc', 'show', 'dev', dev, 'root'])) as Array<{ kind: string; options?: { rate?: number } }>;
    const q = out[0];
    return q ? { kind: q.kind, ...(q.options?.rate ? { bps: q.options.rate * 8 } : {}) } : undefined;
  }
}
