/**
 * Applies the rendered firewall: `nft -f -` replaces `table inet loom` in one
 * transaction; the iptables FORWARD shim is written with iptables-restore
 * --noflush (IPv4 and IPv6) and its jump is inserted once. Applies are
 * serialized and coalesced: a sync asked for while one runs renders the state
 * current when it starts, so the last writer always wins with the latest state.
 */
import { Mutex } from 'async-mutex';
import { CommandRunner, runChecked, runCommand } from '../kernel/command';
import type { Logger } from '../observability/logger';
import type { Firewall, FirewallNetwork } from './model';

import { IPT_CHAIN, NFT_TABLE as NFT_TABLE_NAME, expectedNftShape, nftDrift, renderIptablesShim, renderNftScript, shimDrift } from './render';

export class NftFirewall implements Firewall {
  private readonly mutex = new Mutex();
  private iptables: Record<'iptables' | 'ip6tables', boolean | undefined> = { iptables: undefined, ip6tables: undefined };

  constructor(
    private readonly log: Logger,
    private readonly run: CommandRunner = runCommand,
  ) {}

  async sync(networks: FirewallNetwork[]): Promise<void> {
    await this.mutex.runExclusive(async () => {
      const script = renderNftScript(networks);
      this.log.debug({ script }, 'applying nft table');
      await runChecked(this.run, 'nft', ['-f', '-'], script);
      for (const tool of ['iptables', 'ip6tables'] as const) await this.syncShim(tool, networks);
    });
  }

  /** Where the kernel's firewall differs from what these networks need (empty: in sync). */
  async check(networks: FirewallNetwork[]): Promise<string[]> {
    return this.mutex.runExclusive(async () => {
      const listing = await this.run('nft', ['-j', 'list', 'table', 'inet', NFT_TABLE_NAME]);
      const drift = nftDrift(expectedNftShape(networks), listing.code === 0 ? JSON.parse(listing.stdout) : undefined);
      for (const tool of ['iptables', 'ip6tables'] as const) {
        if (!(await this.hasTool(tool))) continue;
        const chain = await this.run(tool, ['-w', '-S', IPT_CHAIN]);
        const jump = await this.run(tool, ['-w', '-C', 'FORWARD', '-j', IPT_CHAIN]);
        drift.push(...shimDrift(tool, networks, chain.code === 0 ? chain.stdout : undefined, jump.code === 0));
      }
      return drift;
    });
  }

  private async hasTool(tool: 'iptables' | 'ip6tables'): Promise<boolean> {
    if (this.iptables[tool] === undefined) {
      try {
        const r = await this.run(tool, ['-w', '-S', 'FORWARD']);
        this.iptables[tool] = r.code === 0;
      } catch {
        this.iptables[tool] = false;
      }
      if (!this.iptables[tool]) this.log.info({ tool }, 'no usable iptables FORWARD chain: the forward shim is skipped');
    }
    return this.iptables[tool] === true;
  }

  private async syncShim(tool: 'iptables' | 'ip6tables', networks: FirewallNetwork[]): Promise<void> {
    if (!(await this.hasTool(tool))) return;
    if (networks.length === 0) {
      // Nothing of loom's left: remove the jump and the chain.
      await this.run(tool, ['-w', '-D', 'FORWARD', '-j', IPT_CHAIN]);
      await this.run(tool, ['-w', '-F', IPT_CHAIN]);
      await this.run(tool, ['-w', '-X', IPT_CHAIN]);
      return;
    }
    await runChecked(this.run, `${tool}-restore`, ['-w', '--noflush'], renderIptablesShim(networks));
    const present = await this.run(tool, ['-w', '-C', 'FORWARD', '-j', IPT_CHAIN]);
    if (present.code !== 0) await runChecked(this.run, tool, ['-w', '-I', 'FORWARD', '1', '-j', IPT_CHAIN]);
  }
}
