/**
 * The network namespaces of overlay networks (docs/overlay.md, "The data plane on each host"):
 * named files under /run/netns made and removed with `ip netns`, so operators see them with
 * `ip netns` and `ip -n`. Only names from this loomd's records (`loom-<instance>-<id>`) get here.
 *
 * What rtnetlink cannot do from loomd's namespace (netns-links.ts) is done by a process inside
 * the namespace: the small helper overlay-ns-helper.ts (bridge, sysctls, port attachment) and,
 * for single changes, `ip -n`, `tc -n` and `nsenter ... nft`. None of them runs per container
 * start unless the network has ICC off (port isolation) or bandwidth limits.
 */
import * as fs from 'node:fs';
import { invalid } from '../../lib/errors';
import { CommandRunner, runChecked, runCommand } from './command';
import { isNetnsFile, openNetnsFile } from './netns-file';
import { helperScript } from './helper-scripts';

export const NETNS_RUN_DIR = '/run/netns';
const NAME = /^loom-[0-9a-z]{4,16}-[0-9a-z]{1,12}$/;

/** What the helper makes right inside an overlay namespace. */
export interface NsSetupRequest {
  /** This loomd's owner mark, put on the bridge it creates. */
  mark: string;
  bridge: string;
  mtu: number;
  /** Where the kernel's parameters are mounted (--proc-sys), as seen inside the namespace. */
  procSys: string;
  /** net.bridge.bridge-nf-call-{iptables,ip6tables,arptables} inside the namespace. */
  bridgeNf: '0' | '1';
  /**
   * Ports (already in the namespace) that must be on the bridge and up; `'*'`: every veth in the
   * namespace (after the bridge was lost, all its ports are).
   */
  attach: string[] | '*';
  /** ICC off: ports attached by this request are isolated, except `open` (the gateway's port). */
  isolate?: boolean;
  open?: string[];
}

export interface NsSetupResult {
  createdBridge: boolean;
}

const helperPath = (): string => helperScript('overlay-ns-helper.js');

export class OverlayNetns {
  constructor(private readonly run: CommandRunner = runCommand) {}

  pathOf(name: string): string {
    if (!NAME.test(name)) throw invalid(`not an overlay namespace name of loom: ${JSON.stringify(name)}`);
    return `${NETNS_RUN_DIR}/${name}`;
  }

  exists(name: string): boolean {
    return isNetnsFile(this.pathOf(name));
  }

  /** Creates the namespace unless it exists; true when it was created. */
  async ensure(name: string): Promise<boolean> {
    if (this.exists(name)) return false;
    // A file without a namespace mounted on it (left by a mount namespace that is gone) blocks `ip netns add`.
    fs.rmSync(this.pathOf(name), { force: true });
    await runChecked(this.run, 'ip', ['netns', 'add', name]);
    return true;
  }

  /** Deletes the namespace (and everything still in it); false when it did not exist. */
  async remove(name: string): Promise<boolean> {
    const p = this.pathOf(name);
    if (!fs.existsSync(p)) return false;
    if (!isNetnsFile(p)) {
      fs.rmSync(p, { force: true });
      return false;
    }
    await runChecked(this.run, 'ip', ['netns', 'del', name]);
    return true;
  }

  /** Opens the namespace (non-blocking, checked to be on nsfs); the caller closes the descriptor. */
  open(name: string): number {
    return openNetnsFile(this.pathOf(name));
  }

  /** Runs the helper inside the namespace. */
  async setup(name: string, req: NsSetupRequest): Promise<NsSetupResult> {
    const out = await runChecked(this.run, 'nsenter', [`--net=${this.pathOf(name)}`, '--', process.execPath, helperPath(), JSON.stringify(req)]);
    return JSON.parse(out) as NsSetupResult;
  }

  /** Bridge port isolation of `port` inside the namespace (ICC off). */
  async isolatePort(name: string, port: string): Promise<void> {
    this.pathOf(name);
    await runChecked(this.run, 'ip', ['-n', name, 'link', 'set', 'dev', port, 'type', 'bridge_slave', 'isolated', 'on']);
  }

  /** `nft -f -` inside the namespace. */
  async nft(name: string, script: string): Promise<string> {
    return runChecked(this.run, 'nsenter', [`--net=${this.pathOf(name)}`, '--', 'nft', '-f', '-'], script);
  }

  /** `nft ARGS` inside the namespace, with its exit code (listing a table that may be absent). */
  async nftQuery(name: string, args: string[]): Promise<{ code: number; stdout: string }> {
    const r = await this.run('nsenter', [`--net=${this.pathOf(name)}`, '--', 'nft', ...args]);
    return { code: r.code, stdout: r.stdout };
  }
}
