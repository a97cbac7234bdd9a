/**
 * Applies the rendered policy (policy-render.ts) with `nft -f -`, serialized. When the rules
 * are the same as last applied and the table is there, only set elements are replaced (one
 * transaction: flush + add per set); otherwise the whole table is replaced in one transaction.
 * The family is chosen per apply: with br_netfilter (/proc/sys/net/bridge present and
 * bridge-nf-call-iptables on) the inet table sees bridged traffic; without it, a bridge-family
 * table is added for traffic inside one bridge.
 *
 * The drift check lists the tables and compares their rules (without counters and handles)
 * and set elements with the model: rule text is normalised by nft itself, so the expected side
 * is what nft listed right after the last full apply.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Mutex } from 'async-mutex';
import { CommandRunner, runChecked, runCommand } from '../kernel/command';
import type { Logger } from '../../lib/logger';
import type { PolicyModel } from '../policy/compile';
import { POLICY_FAMILIES, PolicyFamily, policySets, policyStructure, policyTableName, renderPolicyScript, renderPolicySets } from './policy-render';

/** The families to use on this host (see the header). */
export function policyFamilies(procSys = '/proc/sys'): PolicyFamily[] {
  try {
    const v = fs.readFileSync(path.join(procSys, 'net/bridge/bridge-nf-call-iptables'), 'utf8').trim();
    if (v === '1') return ['inet'];
  } catch {
    // no br_netfilter
  }
  return ['inet', 'bridge'];
}

/** Rules and set elements of one listed table, comparable. */
interface Listed {
  rules: string[];
  sets: Record<string, string[]>;
}

interface NftJsonItem {
  rule?: { chain: string; expr: unknown[] };
  set?: { name: string; elem?: unknown[] };
}

/** Normal form of `nft -j list table` output: rules by chain without counters, set elements sorted. */
export function normaliseListing(json: string): Listed {
  const items = ((JSON.parse(json) as { nftables?: NftJsonItem[] }).nftables ?? []);
  const rules: string[] = [];
  const sets: Record<string, string[]> = {};
  for (const it of items) {
    if (it.rule) rules.push(`${it.rule.chain}: ${JSON.stringify(it.rule.expr.filter((e) => !(typeof e === 'object' && e !== null && 'counter' in e)))}`);
    if (it.set) sets[it.set.name] = (it.set.elem ?? []).map((e) => (typeof e === 'string' ? e : JSON.stringify(e))).sort();
  }
  return { rules, sets };
}

/**
 * Overlay networks' own namespaces (docs/overlay.md): traffic between containers of an overlay
 * crosses only the bridge in its namespace, where br_netfilter is off, so the policy is enforced
 * there by a table of family `bridge` (the same rules), applied with `nft` inside the namespace.
 */
export interface PolicyNamespaces {
  /** The namespaces that exist now. */
  list(): string[];
  nft(netns: string, script: string): Promise<string>;
}

export class PolicyFirewall {
  private readonly mutex = new Mutex();
  private applied: { structure: string; families: PolicyFamily[]; rules: Map<PolicyFamily, string[]> } | undefined;
  /** Overlay namespace -> the structure last applied there. */
  private readonly nsApplied = new Map<string, string>();

  constructor(
    private readonly log: Logger,
    private readonly instance: string,
    private readonly families: () => PolicyFamily[] = () => policyFamilies(),
    private readonly run: CommandRunner = runCommand,
    private readonly namespaces?: PolicyNamespaces,
  ) {}

  /** The policy in every overlay namespace: the whole table where its structure changed (or `full`), else the sets. */
  private async applyNamespaces(model: PolicyModel, full: boolean): Promise<void> {
    if (!this.namespaces) return;
    const families: PolicyFamily[] = ['bridge'];
    const structure = policyStructure(model, families);
    const present = new Set(this.namespaces.list());
    for (const ns of [...this.nsApplied.keys()]) if (!present.has(ns)) this.nsApplied.delete(ns);
    for (const ns of present) {
      const before = this.nsApplied.get(ns);
      if (!full && before === structure && structure === '') continue;
      try {
        if (!full && before === structure) await this.namespaces.nft(ns, renderPolicySets(model, this.instance, families));
        else await this.namespaces.nft(ns, renderPolicyScript(model, this.instance, families));
        this.nsApplied.set(ns, structure);
      } catch (err) {
        this.nsApplied.delete(ns);
        this.log.warn({ netns: ns, err: String(err) }, 'could not apply the policy table in an overlay namespace (retried on the next change and reconcile pass)');
      }
    }
  }

  get table(): string {
    return policyTableName(this.instance);
  }

  /** Makes the kernel enforce `model`; `full` forces a whole-table replace. Returns what was done. */
  async apply(model: PolicyModel, full = false): Promise<'table' | 'sets' | 'none'> {
    return this.mutex.runExclusive(async () => {
      const families = this.families();
      const structure = policyStructure(model, families);
      const same = !full && this.applied && this.applied.structure === structure && this.applied.families.join() === families.join();
      await this.applyNamespaces(model, full);
      if (same && structure === '') return 'none';
      if (same) {
        await runChecked(this.run, 'nft', ['-f', '-'], renderPolicySets(model, this.instance, families));
        return 'sets';
      }
      const script = renderPolicyScript(model, this.instance, families);
      this.log.debug({ script }, 'applying the policy table');
      await runChecked(this.run, 'nft', ['-f', '-'], script);
      const rules = new Map<PolicyFamily, string[]>();
      if (structure) for (const f of families) rules.set(f, (await this.list(f))?.rules ?? []);
      this.applied = { structure, families, rules };
      return 'table';
    });
  }

  /** Where the kernel's policy tables differ from `model` (empty: in sync). */
  async check(model: PolicyModel): Promise<string[]> {
    return this.mutex.runExclusive(async () => {
      const families = this.families();
      const drift: string[] = [];
      const wanted = model.policies.length ? families : [];
      for (const f of POLICY_FAMILIES) {
        const listed = await this.list(f);
        if (!wanted.includes(f)) {
          if (listed) drift.push(`table ${f} ${this.table} is present but no policy needs it`);
          continue;
        }
        if (!listed) {
          drift.push(`table ${f} ${this.table} is missing`);
          continue;
        }
        const expectedRules = this.applied?.structure === policyStructure(model, families) ? this.applied.rules.get(f) : undefined;
        if (!expectedRules) drift.push(`table ${f} ${this.table} was not applied by this loomd for the current policies`);
        else if (expectedRules.join('\n') !== listed.rules.join('\n')) drift.push(`table ${f} ${this.table}: rules differ from the policies`);
        for (const s of policySets(model)) {
          const have = listed.sets[s.name];
          if (!have) drift.push(`table ${f} ${this.table}: set ${s.name} is missing`);
          else if (have.join() !== [...s.elements].sort().join()) drift.push(`table ${f} ${this.table}: set ${s.name} holds ${have.length} element(s), ${s.elements.length} expected`);
        }
      }
      if (this.namespaces && model.policies.length) {
        const structure = policyStructure(model, ['bridge']);
        for (const ns of this.namespaces.list()) if (this.nsApplied.get(ns) !== structure) drift.push(`table bridge ${this.table} in namespace ${ns} was not applied for the current policies`);
      }
      return drift;
    });
  }

  /** Rule counters by comment (`<policy> <rule>` or the default denies), summed over families. */
  async counters(): Promise<Record<string, { packets: number; bytes: number }>> {
    const out: Record<string, { packets: number; bytes: number }> = {};
    for (const f of POLICY_FAMILIES) {
      const r = await this.run('nft', ['-j', 'list', 'table', f, this.table]);
      if (r.code !== 0) continue;
      for (const it of (JSON.parse(r.stdout) as { nftables?: Array<{ rule?: { comment?: string; expr: unknown[] } }> }).nftables ?? []) {
        if (!it.rule?.comment) continue;
        const c = it.rule.expr.find((e): e is { counter: { packets: number; bytes: number } } => typeof e === 'object' && e !== null && 'counter' in e);
        if (!c) continue;
        const o = (out[it.rule.comment] ??= { packets: 0, bytes: 0 });
        o.packets += c.counter.packets;
        o.bytes += c.counter.bytes;
      }
    }
    return out;
  }

  private async list(f: PolicyFamily): Promise<Listed | undefined> {
    const r = await this.run('nft', ['-j', 'list', 'table', f, this.table]);
    return r.code === 0 ? normaliseListing(r.stdout) : undefined;
  }
}
