/**
 * Firewall drift: where the kernel's rules differ from what the renderer produced for the
 * same networks, rule by rule (not by counts: a rule changed by hand with the same count
 * is a difference). Pure; NftFirewall.check lists the kernel's side and calls these.
 * Every difference is one line for `loomctl doctor`; the repair is a sync (`loomctl gc`).
 */
import type { FirewallNames } from './render';
import type { NftChain, NftNormalForm } from './nft-normal';

const q = (rule: string): string => `'${rule}'`;

/** Differences between two rule lists of one chain (or one iptables chain), `what` naming it. */
export function ruleDrift(what: string, want: readonly string[], got: readonly string[]): string[] {
  if (want.length !== got.length) {
    const lacks = want.filter((r) => !got.includes(r)).map((r) => `lacks ${q(r)}`);
    const extra = got.filter((r) => !want.includes(r)).map((r) => `has ${q(r)}`);
    const detail = [...lacks, ...extra];
    return [`${what} has ${got.length} rules, expected ${want.length}${detail.length ? `: ${detail.join(', ')}` : ''}`];
  }
  return want.flatMap((r, i) => (r === got[i] ? [] : [`${what} rule ${i + 1} is ${q(got[i] as string)}, expected ${q(r)}`]));
}

function chainDrift(name: string, want: NftChain, got: NftChain | undefined): string[] {
  if (!got) return [`chain ${name} is missing`];
  const drift: string[] = [];
  if (got.header !== want.header) drift.push(`chain ${name} is ${got.header ? q(got.header) : 'a regular chain'}, expected ${want.header ? q(want.header) : 'a regular chain'}`);
  return drift.concat(ruleDrift(`chain ${name}`, want.rules, got.rules));
}

/** Differences between the expected normal form and the listed one (undefined: no table). */
export function nftDrift(expected: NftNormalForm | undefined, actual: NftNormalForm | undefined, names: FirewallNames): string[] {
  const table = `table inet ${names.table}`;
  if (!actual) return expected ? [`${table} is missing`] : [];
  if (!expected) return [`${table} exists without loom networks`];
  if (actual.unreadable) return [`${table} could not be read: ${actual.unreadable}`];
  const drift: string[] = [];
  if (actual.flags.join(',') !== expected.flags.join(',')) drift.push(`${table} has flags [${actual.flags.join(', ')}], expected [${expected.flags.join(', ')}]`);
  for (const [name, want] of expected.chains) drift.push(...chainDrift(name, want, actual.chains.get(name)));
  for (const name of actual.chains.keys()) if (!expected.chains.has(name)) drift.push(`unexpected chain ${name}`);
  for (const [name, want] of expected.sets) {
    const got = actual.sets.get(name);
    if (!got) drift.push(`set ${name} is missing`);
    else if (got.decl !== want.decl) drift.push(`set ${name} is declared ${q(got.decl)}, expected ${q(want.decl)}`);
    else if (got.elements.join(',') !== want.elements.join(',')) drift.push(`set ${name} holds [${got.elements.join(', ')}], expected [${want.elements.join(', ')}]`);
  }
  for (const name of actual.sets.keys()) if (!expected.sets.has(name)) drift.push(`unexpected set ${name}`);
  for (const other of actual.others) drift.push(`unexpected ${other}`);
  return drift;
}

/** The rules of `chain` in iptables-restore / `iptables -S` text, one spelling for both (quotes dropped, blanks collapsed). */
export function shimRules(text: string, chain: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`-A ${chain} `))
    .map((l) => l.trim().replace(/"/g, '').replace(/\s+/g, ' '));
}

/**
 * Differences in the iptables shim: `rendered` is renderIptablesShim's output for the
 * networks (empty when there are none), `chainListing` the `iptables -S <chain>` output
 * (undefined: no chain), `jumpPresent` whether FORWARD jumps to it.
 */
export function shimDrift(tool: string, rendered: string | undefined, chainListing: string | undefined, jumpPresent: boolean, names: FirewallNames): string[] {
  const chain = names.chain;
  if (rendered === undefined) return chainListing !== undefined || jumpPresent ? [`${tool} chain ${chain} exists without loom networks`] : [];
  const drift: string[] = [];
  if (chainListing === undefined) drift.push(`${tool} chain ${chain} is missing`);
  else drift.push(...ruleDrift(`${tool} chain ${chain}`, shimRules(rendered, chain), shimRules(chainListing, chain)));
  if (!jumpPresent) drift.push(`${tool} FORWARD does not jump to ${chain}`);
  return drift;
}
