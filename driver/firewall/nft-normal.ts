/**
 * The normal form of one loomd's nftables table: what decides traffic, in a shape that two
 * sources can both be brought to and then compared exactly.
 *
 * - from the kernel: `nft -j list table inet <table>` (nft's stable machine interface),
 *   each rule printed back to nftables syntax by `ruleText` below;
 * - from the renderer: the script renderNftScript produced (nft-expected.ts), each rule
 *   line brought to the same syntax.
 *
 * The printer knows exactly the expressions loom renders and prints them as loom writes them;
 * anything else (a counter, a log statement, an expression with an unexpected field) is
 * printed as its JSON, which no rendered rule can equal: a rule changed by hand is always
 * a difference. test/kernel/firewall-drift.kernel.test.ts loads every golden script into a
 * throwaway namespace and proves that both sources give the same normal form there.
 */

/** One chain: its hook line ('' for a regular chain) and its rules, in order. */
export interface NftChain {
  header: string;
  rules: string[];
}

/** One set: its declaration and its elements (unquoted), sorted. */
export interface NftSet {
  decl: string;
  elements: string[];
}

export interface NftNormalForm {
  /**
   * Table flags (a table set dormant by hand applies nothing). nft 1.0.6 prints the value of
   * a table's flags from uninitialised memory in JSON (any string, or invalid JSON): only
   * their presence is trusted; a value that is not a known flag reads as 'unreadable'.
   */
  flags: string[];
  chains: Map<string, NftChain>;
  sets: Map<string, NftSet>;
  /** Any other object in the table ("map x", "counter y"): never rendered by loom. */
  others: string[];
  /** Set when the listing could not be parsed (then nothing else is known). */
  unreadable?: string;
}

const TABLE_FLAGS = new Set(['dormant', 'owner', 'persist']);

/** Base-chain priorities by name, for family inet (nft(8), "PRIORITY"). */
export const PRIORITY_NAMES: Readonly<Record<string, number>> = { raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 };

/** The hook line of a base chain, in one spelling for both sources. */
export function chainHeader(type: string, hook: string, prio: number, policy: string): string {
  return `type ${type} hook ${hook} priority ${prio}; policy ${policy};`;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

/** JSON with sorted keys: the fallback spelling of anything the printer does not know. */
export function stableJson(v: Json | undefined): string {
  if (v === undefined) return 'undefined';
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stableJson(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const isObj = (v: Json | undefined): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
/** The single key of `{ key: body }` (nft's JSON wraps every expression so), with its body. */
const only = (v: Json | undefined): [string, Json] | undefined => {
  if (!isObj(v)) return undefined;
  const keys = Object.keys(v);
  return keys.length === 1 ? [keys[0] as string, v[keys[0] as string] as Json] : undefined;
};
/** Whether `o` has exactly these keys (those in `optional` may be missing). */
const shaped = (o: Json, keys: string[], optional: string[] = []): o is Obj =>
  isObj(o) && Object.keys(o).every((k) => keys.includes(k) || optional.includes(k)) && keys.every((k) => k in o);

/** Interface-name values are quoted, as loom renders them ("lm-x", "br-*"); set references are not. */
const IFNAME_KEYS = new Set(['iifname', 'oifname']);
/** Meta keys nft writes without `meta`. */
const BARE_META = new Set(['iifname', 'oifname', 'iif', 'oif']);
/** Keys whose plain match is a flag test (JSON op "in"); for those, "==" is spelled out. */
const FLAG_KEYS = new Set(['ct state', 'ct status']);

/** A left-hand expression: its text and whether its values are interface names. */
function lhs(e: Json): { text: string; ifname: boolean } {
  const [kind, body] = only(e) ?? ['', null];
  if (kind === 'meta' && shaped(body, ['key']) && typeof body.key === 'string') {
    return { text: BARE_META.has(body.key) ? body.key : `meta ${body.key}`, ifname: IFNAME_KEYS.has(body.key) };
  }
  if (kind === 'payload' && shaped(body, ['protocol', 'field'])) return { text: `${body.protocol} ${body.field}`, ifname: false };
  if (kind === 'ct' && shaped(body, ['key'])) return { text: `ct ${body.key}`, ifname: false };
  if (kind === 'fib' && shaped(body, ['result', 'flags']) && Array.isArray(body.flags)) return { text: `fib ${body.flags.join(' . ')} ${body.result}`, ifname: false };
  return { text: stableJson(e), ifname: false };
}

/** A value (right-hand side, set element, verdict). */
function value(v: Json, ifname: boolean): string {
  if (typeof v === 'string') return ifname && !v.startsWith('@') ? `"${v}"` : v;
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return v.every((x) => typeof x === 'string') ? v.join(',') : stableJson(v);
  const [kind, body] = only(v) ?? ['', null];
  if (kind === 'prefix' && shaped(body, ['addr', 'len'])) return `${body.addr}/${body.len}`;
  if (kind === 'range' && Array.isArray(body) && body.length === 2) return `${value(body[0] as Json, ifname)}-${value(body[1] as Json, ifname)}`;
  if (kind === 'set' && Array.isArray(body)) {
    const elems = body.map((el) => (Array.isArray(el) && el.length === 2 ? `${value(el[0] as Json, ifname)} : ${statement(el[1] as Json)}` : value(el, ifname)));
    return `{ ${elems.sort().join(', ')} }`;
  }
  return statement(v);
}

/** One statement of a rule's `expr` list. */
function statement(s: Json): string {
  const [kind, body] = only(s) ?? ['', null];
  if (['accept', 'drop', 'return', 'continue', 'notrack', 'masquerade'].includes(kind) && body === null) return kind;
  if ((kind === 'jump' || kind === 'goto') && shaped(body, ['target'])) return `${kind} ${body.target}`;
  if (kind === 'match' && shaped(body, ['op', 'left', 'right'])) {
    const left = lhs(body.left);
    const implicit = FLAG_KEYS.has(left.text) ? 'in' : '==';
    const op = body.op === implicit ? '' : `${body.op} `;
    return `${left.text} ${op}${value(body.right, left.ifname)}`;
  }
  if (kind === 'vmap' && shaped(body, ['key', 'data'])) {
    const key = lhs(body.key);
    return `${key.text} vmap ${value(body.data, key.ifname)}`;
  }
  if (kind === 'dnat' && shaped(body, ['addr'], ['family', 'port']) && typeof body.addr === 'string') {
    const addr = body.port !== undefined && body.addr.includes(':') ? `[${body.addr}]` : body.addr;
    return `dnat ${body.family ? `${body.family} ` : ''}to ${addr}${body.port !== undefined ? `:${body.port}` : ''}`;
  }
  return stableJson(s);
}

/** A rule's statements as one line of nftables syntax. */
export function ruleText(expr: Json[], comment?: string): string {
  return expr.map(statement).join(' ') + (comment !== undefined ? ` comment "${comment}"` : '');
}

/** `nft -j list table inet <table>` output (text), normalised. */
export function parseListing(stdout: string): NftNormalForm {
  try {
    const form = normaliseListing(JSON.parse(stdout));
    if (form) return form;
  } catch {
    // below
  }
  return { flags: [], chains: new Map(), sets: new Map(), others: [], unreadable: `nft -j printed no valid listing (${stdout.trim().slice(0, 80)}...)` };
}

/** A parsed `nft -j list table inet <table>` listing, normalised (undefined: not a listing). */
export function normaliseListing(listing: unknown): NftNormalForm | undefined {
  if (!isObj(listing as Json) || !Array.isArray((listing as Obj).nftables)) return undefined;
  const form: NftNormalForm = { flags: [], chains: new Map(), sets: new Map(), others: [] };
  const chain = (name: string): NftChain => {
    const c = form.chains.get(name) ?? { header: '', rules: [] };
    form.chains.set(name, c);
    return c;
  };
  for (const item of (listing as Obj).nftables as Json[]) {
    const [kind, body] = only(item) ?? ['', null];
    if (!isObj(body) || kind === 'metainfo') continue;
    if (kind === 'table') {
      const flags = body.flags === undefined ? [] : ([] as Json[]).concat(body.flags).map(String);
      form.flags = flags.map((f) => (TABLE_FLAGS.has(f) ? f : 'unreadable')).sort();
    } else if (kind === 'chain' && typeof body.name === 'string') {
      chain(body.name).header = body.hook === undefined ? '' : chainHeader(String(body.type), String(body.hook), Number(body.prio), String(body.policy ?? 'accept'));
    } else if (kind === 'rule' && typeof body.chain === 'string' && Array.isArray(body.expr)) {
      chain(body.chain).rules.push(ruleText(body.expr, typeof body.comment === 'string' ? body.comment : undefined));
    } else if (kind === 'set' && typeof body.name === 'string') {
      const flags = body.flags === undefined ? '' : ` flags ${([] as Json[]).concat(body.flags).join(',')}`;
      const elements = ((body.elem ?? []) as Json[]).map((e) => value(e, false)).sort();
      form.sets.set(body.name, { decl: `type ${stableJson(body.type).replace(/^"|"$/g, '')}${flags}`, elements });
    } else {
      form.others.push(`${kind} ${typeof body.name === 'string' ? body.name : stableJson(body)}`);
    }
  }
  return form;
}
