/**
 * Applies the rendered firewall: `nft -f -` replaces this loomd's table in one
 * transaction; its iptables FORWARD shim chain is written with iptables-restore
 * --noflush (IPv4 and IPv6) and its jump is inserted once. Applies are
 * serialized and coalesced: a sync asked for while one runs renders the state
 * current when it starts, so the last writer always wins with the latest state.
 * Only objects named after this loomd (FirewallNames) are written or removed, plus the
 * shared objects of an older loom when they hold nothing but this loomd's networks
 * (legacy.ts): those go in the first sync, the table in the same nft transaction.
 *
 * The drift check (drift.ts) compares rules, not counts: the table as `nft -j` lists it,
 * normalised (nft-normal.ts), against the normal form of the script the renderer produces
 * for the same networks (nft-expected.ts); the shim's rule text against the rendered one.
 * After an apply that holds a rule shape this nft has not listed yet (ruleShapes: a handful
 * per loomd, so the extra `nft -j list` is rare), the table is listed and compared the same
 * way: if this nft spells something differently from what loom expects (another nft
 * version), a warning says so, that listing serves as the expected form for that script, and
 * every later apply is listed too: the check never reports drift that a sync cannot repair.
 */
import { Mutex } from 'async-mutex';
import { CommandRunner, runChecked, runCommand } from '../kernel/command';
import type { Logger } from '../../lib/logger';
import type { Firewall, FirewallNetwork } from './model';

import { FirewallNames, renderIptablesShim, renderNftScript } from './render';
import { nftDrift, shimDrift } from './drift';
import { expectedForm, ruleShapes } from './nft-expected';
import { NftNormalForm, parseListing } from './nft-normal';
import { LEGACY_IPT_CHAIN, LEGACY_NFT_TABLE, legacyShimIsOurs, legacyTableIsOurs } from './legacy';

type Tool = 'iptables' | 'ip6tables';

/** An older loom's shared objects that hold only this loomd's networks. */
interface Legacy {
  table: boolean;
  shims: Tool[];
}

export class NftFirewall implements Firewall {
  private readonly mutex = new Mutex();
  private iptables: Record<Tool, boolean | undefined> = { iptables: undefined, ip6tables: undefined };
  /**
   * Until the first successful sync, an older loom's objects of this loomd may exist. Later
   * ones cannot be this loomd's (its store is its own), so they are never looked for again.
   */
  private legacyPossible = true;
  /** Set when nft listed the last applied script differently from its expected form: that listing, for that script. */
  private listedAfterApply: { script: string; form: NftNormalForm | undefined } | undefined;
  /** Rule shapes nft has listed exactly as expected; `spellingDiffers`: it once did not. */
  private readonly verifiedShapes = new Set<string>();
  private spellingDiffers = false;

  constructor(
    private readonly log: Logger,
    private readonly names: FirewallNames,
    private readonly run: CommandRunner = runCommand,
  ) {}

  async sync(networks: FirewallNetwork[]): Promise<void> {
    await this.mutex.runExclusive(async () => {
      const legacy = this.legacyPossible ? await this.findLegacy(networks) : { table: false, shims: [] };
      const rendered = renderNftScript(networks, this.names);
      const script = rendered + (legacy.table ? `delete table inet ${LEGACY_NFT_TABLE}\n` : '');
      this.log.debug({ script }, 'applying nft table');
      await runChecked(this.run, 'nft', ['-f', '-'], script);
      await this.verifyApplied(rendered);
      for (const tool of ['iptables', 'ip6tables'] as const) await this.syncShim(tool, networks);
      for (const tool of legacy.shims) await this.removeChain(tool, LEGACY_IPT_CHAIN);
      if (legacy.table || legacy.shims.length) this.log.info({ table: legacy.table, shims: legacy.shims }, 'removed the firewall objects an older loom made for this loomd\'s networks');
      this.legacyPossible = false;
    });
  }

  /** Where the kernel's firewall differs from what these networks need (empty: in sync). */
  async check(networks: FirewallNetwork[]): Promise<string[]> {
    return this.mutex.runExclusive(async () => {
      const script = renderNftScript(networks, this.names);
      const expected = this.listedAfterApply?.script === script ? this.listedAfterApply.form : expectedForm(script);
      const drift = nftDrift(expected, await this.listTable(), this.names);
      const shim = networks.length ? renderIptablesShim(networks, this.names) : undefined;
      for (const tool of ['iptables', 'ip6tables'] as const) {
        if (!(await this.hasTool(tool))) continue;
        const chain = await this.run(tool, ['-w', '-S', this.names.chain]);
        const jump = await this.run(tool, ['-w', '-C', 'FORWARD', '-j', this.names.chain]);
        drift.push(...shimDrift(tool, shim, chain.code === 0 ? chain.stdout : undefined, jump.code === 0, this.names));
      }
      if (this.legacyPossible) {
        const legacy = await this.findLegacy(networks);
        if (legacy.table) drift.push(`table inet ${LEGACY_NFT_TABLE} of an older loom holds this loomd's networks`);
        for (const tool of legacy.shims) drift.push(`${tool} chain ${LEGACY_IPT_CHAIN} of an older loom holds this loomd's networks`);
      }
      return drift;
    });
  }

  /** This loomd's table as `nft -j` lists it, normalised; undefined when there is none. */
  private async listTable(): Promise<NftNormalForm | undefined> {
    const listing = await this.run('nft', ['-j', 'list', 'table', 'inet', this.names.table]);
    return listing.code === 0 ? parseListing(listing.stdout) : undefined;
  }

  /** Compares the table just applied from `script` with the script's expected form (see the header). */
  private async verifyApplied(script: string): Promise<void> {
    this.listedAfterApply = undefined;
    const expected = expectedForm(script);
    if (!expected) return;
    const shapes = ruleShapes(expected);
    if (!this.spellingDiffers && shapes.every((s) => this.verifiedShapes.has(s))) return;
    try {
      const listed = await this.listTable();
      const differences = nftDrift(expected, listed, this.names);
      if (differences.length === 0) {
        for (const s of shapes) this.verifiedShapes.add(s);
        return;
      }
      this.spellingDiffers = true;
      this.listedAfterApply = { script, form: listed };
      this.log.warn({ differences }, 'nft lists the table loom just applied differently from what loom expects (another nft version?): the drift check compares with this listing until the next apply');
    } catch (err) {
      // The table is applied; only the check's reference is unknown (it falls back to the expected form).
      this.log.warn({ err: String(err) }, 'could not list the nft table just applied');
    }
  }

  private async findLegacy(networks: FirewallNetwork[]): Promise<Legacy> {
    const legacy: Legacy = { table: false, shims: [] };
    if (networks.length === 0) return legacy;
    const table = await this.run('nft', ['-j', 'list', 'table', 'inet', LEGACY_NFT_TABLE]);
    legacy.table = table.code === 0 && legacyTableIsOurs(JSON.parse(table.stdout), networks);
    for (const tool of ['iptables', 'ip6tables'] as const) {
      if (!(await this.hasTool(tool))) continue;
      const chain = await this.run(tool, ['-w', '-S', LEGACY_IPT_CHAIN]);
      if (chain.code === 0 && legacyShimIsOurs(chain.stdout, networks)) legacy.shims.push(tool);
    }
    return legacy;
  }

  private async hasTool(tool: Tool): Promise<boolean> {
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

  /** Removes the FORWARD jump to `chain`, then the chain. */
  private async removeChain(tool: Tool, chain: string): Promise<void> {
    await this.run(tool, ['-w', '-D', 'FORWARD', '-j', chain]);
    await this.run(tool, ['-w', '-F', chain]);
    await this.run(tool, ['-w', '-X', chain]);
  }

  private async syncShim(tool: Tool, networks: FirewallNetwork[]): Promise<void> {
    if (!(await this.hasTool(tool))) return;
    const chain = this.names.chain;
    if (networks.length === 0) {
      // Nothing of this loomd's left: remove its jump and its chain.
      await this.removeChain(tool, chain);
      return;
    }
    await runChecked(this.run, `${tool}-restore`, ['-w', '--noflush'], renderIptablesShim(networks, this.names));
    const present = await this.run(tool, ['-w', '-C', 'FORWARD', '-j', chain]);
    if (present.code !== 0) await runChecked(this.run, tool, ['-w', '-I', 'FORWARD', '1', '-j', chain]);
  }
}
