/**
 * The normal form (nft-normal.ts) of a script renderNftScript produced: what `nft -j list`
 * must show once the script is applied. Pure.
 *
 * Rules are brought to the spelling nft lists them in, which differs from what loom writes
 * in two known ways, both handled here and proved on the real nft by
 * test/kernel/firewall-drift.kernel.test.ts for every rendered shape:
 * - dependency elimination: in an inet table `ip6 daddr ...` implies `meta nfproto ipv6`,
 *   so nft drops a `meta nfproto` written right before a match of the same family;
 * - anonymous sets and verdict maps come back in nft's element order: both sides sort them.
 * Base chains' named priorities (`priority filter`) are listed as numbers.
 */
import { NftNormalForm, PRIORITY_NAMES, chainHeader } from './nft-normal';

/** One rendered rule line, in the spelling of `ruleText`. */
export function canonicalRule(line: string): string {
  return line
    .trim()
    .replace(/\s+/g, ' ')
    .replace(/\bmeta nfproto ipv4 (?=ip )/g, '')
    .replace(/\bmeta nfproto ipv6 (?=ip6 )/g, '')
    .replace(/\{ ([^{}]*) \}/g, (_m, inner: string) => `{ ${inner.split(', ').sort().join(', ')} }`);
}

/** `type nat hook output priority -100; policy accept;` (names or numbers) in the spelling of chainHeader. */
export function canonicalHeader(line: string): string | undefined {
  const m = /^type (\S+) hook (\S+) priority ([^;]+);\s*policy (\S+);$/.exec(line.trim());
  if (!m) return undefined;
  const prio = (m[3] as string).trim();
  const value = prio in PRIORITY_NAMES ? (PRIORITY_NAMES[prio] as number) : Number(prio);
  return chainHeader(m[1] as string, m[2] as string, value, m[4] as string);
}

/** The normal form of a rendered script; undefined when the script leaves no table (no networks). */
export function expectedForm(script: string): NftNormalForm | undefined {
  const lines = script.split('\n');
  if (!lines.some((l) => /^table inet \S+ \{$/.test(l))) return undefined;
  const form: NftNormalForm = { flags: [], chains: new Map(), sets: new Map(), others: [] };
  let block: { kind: 'chain' | 'set'; name: string } | undefined;
  for (const line of lines) {
    const open = /^\t(chain|set) (\S+) \{$/.exec(line);
    if (open) {
      block = { kind: open[1] as 'chain' | 'set', name: open[2] as string };
      if (block.kind === 'chain') form.chains.set(block.name, { header: '', rules: [] });
      else form.sets.set(block.name, { decl: '', elements: [] });
      continue;
    }
    if (line === '\t}') block = undefined;
    if (!block || !line.startsWith('\t\t')) continue;
    const text = line.trim();
    if (block.kind === 'set') {
      const set = form.sets.get(block.name) as { decl: string; elements: string[] };
      const elems = /^elements = \{ (.*) \}$/.exec(text);
      if (elems) set.elements = (elems[1] as string).split(', ').map((e) => e.replace(/^"|"$/g, '')).sort();
      else set.decl = set.decl ? `${set.decl} ${text}` : text;
      continue;
    }
    const chain = form.chains.get(block.name) as { header: string; rules: string[] };
    if (text.startsWith('comment ')) continue; // chain comments: documentation, not rules
    const header = canonicalHeader(text);
    if (header) chain.header = header;
    else chain.rules.push(canonicalRule(text));
  }
  return form;
}

/** A token that is an address, a prefix, a port or a number (it holds a digit or a colon). */
const VALUE_TOKEN = /^(?=.*[\d:])\[?[0-9a-f:.]+(\/\d+)?\]?(:\d+)?$/i;

/**
 * The shapes of a normal form's chains and rules: what is left with names, addresses,
 * numbers and set contents taken out. A handful per loomd whatever its networks; used to
 * list the table after an apply only when a shape appears that this nft has not shown yet.
 */
export function ruleShapes(form: NftNormalForm): string[] {
  const shapes = new Set<string>();
  for (const [name, chain] of form.chains) {
    const c = name.replace(/^net-\S+-(in|out)$/, 'net-#-$1');
    shapes.add(`${c} | ${chain.header}`);
    for (const rule of chain.rules) {
      const tokens = rule.replace(/\{[^{}]*\}/g, '{#}').replace(/net-\S+-(in|out)\b/g, 'net-#-$1').split(' ');
      shapes.add(`${c} | ${tokens.map((t) => (t.startsWith('"') || VALUE_TOKEN.test(t) ? '#' : t)).join(' ')}`);
    }
  }
  return [...shapes].sort();
}
