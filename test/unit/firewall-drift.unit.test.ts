/**
 * The firewall drift check compares normalised rules, not counts. The listings are what the
 * real nft printed for the golden scripts (test/unit/golden/*.nft.json, written and checked
 * by test/kernel/firewall-drift.kernel.test.ts); here they are changed the ways a hand or
 * another tool would, and each change must be named.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nftDrift, shimDrift } from '../../driver/firewall/drift';
import type { FirewallNetwork } from '../../driver/firewall/model';
import { NftFirewall } from '../../driver/firewall/nft-firewall';
import { canonicalRule, expectedForm, ruleShapes } from '../../driver/firewall/nft-expected';
import { NftNormalForm, normaliseListing, parseListing, ruleText } from '../../driver/firewall/nft-normal';
import { firewallNames, renderNftScript } from '../../driver/firewall/render';
import type { CommandRunner } from '../../driver/kernel/command';
import { silentLogger } from '../../lib/logger';
import { capturingLogger } from './step-recorder';

const GOLDEN = path.join(__dirname, 'golden');
const NAMES = firewallNames('0123456789ab');
const T = NAMES.table;
const CHAIN = NAMES.chain;

type Item = Record<string, Record<string, unknown>>;
type Listing = { nftables: Item[] };

const script = (name: string): string => fs.readFileSync(path.join(GOLDEN, name), 'utf8');
const listing = (name: string): Listing => JSON.parse(fs.readFileSync(path.join(GOLDEN, `${name}.json`), 'utf8'));
/** The rules of `chain` in a listing, as objects one can change in place. */
const rules = (l: Listing, chain: string): Array<{ expr: unknown[] }> => l.nftables.filter((i) => i.rule?.chain === chain).map((i) => i.rule as unknown as { expr: unknown[] });
const drift = (name: string, l: Listing): string[] => nftDrift(expectedForm(script(name)), normaliseListing(l), NAMES);

describe('the golden listings are what loom expects from its scripts', () => {
  test.each(['single.nft', 'mixed.nft', 'published.nft'])('%s: no drift', (name) => {
    expect(normaliseListing(listing(name))).toEqual(expectedForm(script(name)));
    expect(drift(name, listing(name))).toEqual([]);
  });

  test('nft\'s own spellings are loom\'s: implicit ==, flag tests, vmaps, dnat, fib', () => {
    const mixed = normaliseListing(listing('mixed.nft'));
    expect(mixed?.chains.get('input')?.rules).toEqual(['iifname @bridges ip daddr 127.0.0.0/8 ct direction original drop']);
    expect(mixed?.chains.get('forward')?.header).toBe('type filter hook forward priority 0; policy accept;');
    const pub = normaliseListing(listing('published.nft'));
    expect(pub?.chains.get('published-local')?.rules).toEqual([
      'meta nfproto ipv4 tcp dport 8080 dnat ip to 198.18.10.2:80',
      'ip6 daddr != ::1 tcp dport 8080 dnat ip6 to [fd00:10::2]:80', // nft drops the `meta nfproto ipv6` loom writes
      'ip daddr 127.0.0.1 udp dport 8081 dnat ip to 198.18.10.3:53',
    ]);
  });
});

describe('a change by hand with the same count is named', () => {
  test('a prefix narrowed', () => {
    const l = listing('single.nft');
    const match = (rules(l, 'postrouting')[0]?.expr[0] as { match: { right: { prefix: { len: number } } } }).match;
    match.right.prefix.len = 17;
    expect(drift('single.nft', l)).toEqual([`chain postrouting rule 1 is 'ip saddr 172.16.0.0/17 oifname != "lm-a1b2c3d4e5f6" masquerade', expected 'ip saddr 172.16.0.0/16 oifname != "lm-a1b2c3d4e5f6" masquerade'`]);
  });

  test('a verdict turned, an interface renamed, a counter added', () => {
    const l = listing('single.nft');
    const out = rules(l, `net-${'A1B2C3D4E5F60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90'}-out`);
    (out[1] as { expr: unknown[] }).expr[1] = { accept: null };
    ((out[2]?.expr[0] as { match: { right: string } }).match).right = 'docker1';
    (out[5] as { expr: unknown[] }).expr.unshift({ counter: { packets: 0, bytes: 0 } });
    expect(drift('single.nft', l)).toEqual([
      expect.stringMatching(/-out rule 2 is 'oifname @bridges accept', expected 'oifname @bridges drop'$/),
      expect.stringMatching(/-out rule 3 is 'oifname "docker1" drop', expected 'oifname "docker0" drop'$/),
      expect.stringMatching(/-out rule 6 is '\{"counter":\{"bytes":0,"packets":0\}\} accept', expected 'accept'$/),
    ]);
  });

  test('a flag test made an exact match is not the same rule', () => {
    const l = listing('single.nft');
    const into = rules(l, `net-${'A1B2C3D4E5F60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90'}-in`);
    ((into[1]?.expr[0] as { match: { op: string } }).match).op = '==';
    expect(drift('single.nft', l)).toEqual([expect.stringMatching(/rule 2 is 'ct status == dnat accept', expected 'ct status dnat accept'$/)]);
  });

  test('a base chain\'s policy or priority', () => {
    const l = listing('single.nft');
    const fwd = l.nftables.find((i) => i.chain?.name === 'forward')?.chain as Record<string, unknown>;
    fwd.policy = 'drop';
    const post = l.nftables.find((i) => i.chain?.name === 'postrouting')?.chain as Record<string, unknown>;
    post.prio = 99;
    expect(drift('single.nft', l)).toEqual([
      `chain forward is 'type filter hook forward priority 0; policy drop;', expected 'type filter hook forward priority 0; policy accept;'`,
      `chain postrouting is 'type nat hook postrouting priority 99; policy accept;', expected 'type nat hook postrouting priority 100; policy accept;'`,
    ]);
  });

  test('a rule\'s order within its chain', () => {
    const l = listing('published.nft');
    const idx = l.nftables.map((i, n) => (i.rule?.chain === 'published-in' ? n : -1)).filter((n) => n >= 0);
    const [a, b] = idx as [number, number];
    [l.nftables[a], l.nftables[b]] = [l.nftables[b] as Item, l.nftables[a] as Item];
    expect(drift('published.nft', l)).toHaveLength(2);
  });

  test('set elements, a set or chain added or removed, another object, the table dormant', () => {
    const l = listing('single.nft');
    const set = l.nftables.find((i) => i.set?.name === 'bridges')?.set as { elem: string[] };
    set.elem = ['lm-a1b2c3d4e5f6', 'eth0'];
    l.nftables.push({ chain: { family: 'inet', table: T, name: 'extra' } }, { counter: { family: 'inet', table: T, name: 'c1', packets: 0, bytes: 0 } });
    l.nftables = l.nftables.filter((i) => i.chain?.name !== 'input' && i.rule?.chain !== 'input');
    (l.nftables.find((i) => i.table)?.table as Record<string, unknown>).flags = 'Lester Gooch #5'; // nft 1.0.6's dormant, in JSON
    expect(drift('single.nft', l)).toEqual([
      `table inet ${T} has flags [unreadable], expected []`,
      'chain input is missing',
      'unexpected chain extra',
      'set bridges holds [eth0, lm-a1b2c3d4e5f6], expected [lm-a1b2c3d4e5f6]',
      'unexpected counter c1',
    ]);
  });
});

describe('counts and whole tables', () => {
  test('a deleted rule reads as before (count), naming the rule', () => {
    const l = listing('single.nft');
    l.nftables = l.nftables.filter((i) => i.rule?.chain !== 'postrouting');
    expect(drift('single.nft', l)).toEqual([`chain postrouting has 0 rules, expected 1: lacks 'ip saddr 172.16.0.0/16 oifname != "lm-a1b2c3d4e5f6" masquerade'`]);
  });

  test('an added rule', () => {
    const l = listing('single.nft');
    l.nftables.push({ rule: { family: 'inet', table: T, chain: 'input', expr: [{ accept: null }] } });
    expect(drift('single.nft', l)).toEqual([`chain input has 2 rules, expected 1: has 'accept'`]);
  });

  test('a missing table, a table without networks, a listing nft could not print', () => {
    expect(nftDrift(expectedForm(script('single.nft')), undefined, NAMES)).toEqual([`table inet ${T} is missing`]);
    expect(nftDrift(expectedForm(script('empty.nft')), normaliseListing(listing('single.nft')), NAMES)).toEqual([`table inet ${T} exists without loom networks`]);
    expect(nftDrift(expectedForm(script('empty.nft')), undefined, NAMES)).toEqual([]);
    const broken = parseListing('{"nftables": [{"table": {"family": "inet", "name": "x", "flags": ');
    expect(nftDrift(expectedForm(script('single.nft')), broken, NAMES)).toEqual([expect.stringMatching(new RegExp(`^table inet ${T} could not be read: nft -j printed no valid listing`))]);
  });
});

describe('spellings', () => {
  test('canonicalRule: nft\'s dependency elimination only before a match of the same family; element order', () => {
    expect(canonicalRule('meta nfproto ipv6 ip6 daddr != ::1 tcp dport 1 dnat ip6 to [fd00::2]:80')).toBe('ip6 daddr != ::1 tcp dport 1 dnat ip6 to [fd00::2]:80');
    expect(canonicalRule('meta nfproto ipv4 ip daddr 1.2.3.4 accept')).toBe('ip daddr 1.2.3.4 accept');
    expect(canonicalRule('meta nfproto ipv4 tcp dport 1 accept')).toBe('meta nfproto ipv4 tcp dport 1 accept');
    expect(canonicalRule('meta nfproto ipv6 ip daddr 1.2.3.4 accept')).toBe('meta nfproto ipv6 ip daddr 1.2.3.4 accept');
    expect(canonicalRule('iifname  vmap { "b" : jump y, "a" : jump x }')).toBe('iifname vmap { "a" : jump x, "b" : jump y }');
  });

  test('ruleText: an expression with an unknown field is its JSON, never a rendered rule', () => {
    expect(ruleText([{ match: { op: '==', left: { meta: { key: 'oifname' } }, right: 'x' } }, { drop: null }])).toBe('oifname "x" drop');
    expect(ruleText([{ masquerade: { flags: ['random'] } }])).toBe('{"masquerade":{"flags":["random"]}}');
    expect(ruleText([{ dnat: { family: 'ip', addr: '1.2.3.4', port: 80, flags: 'persistent' } }])).toMatch(/^\{"dnat":/);
    expect(ruleText([{ match: { op: '==', left: { ct: { key: 'state', dir: 'original' } }, right: 'new' } }, { accept: null }])).toMatch(/^\{"ct":.*\} new accept$/);
    expect(ruleText([{ accept: null }], 'by hand')).toBe('accept comment "by hand"');
  });
});

describe('the iptables shim: rule text', () => {
  const rendered = script('mixed.iptables');
  /** What `iptables -S <chain>` prints for the rendered chain. */
  const listed = `-N ${CHAIN}\n${rendered.split('\n').filter((l) => l.startsWith('-A')).join('\n')}\n`;

  test('as rendered: no drift', () => {
    expect(shimDrift('iptables', rendered, listed, true, NAMES)).toEqual([]);
  });

  test('a rule changed with the same count, a rule gone, the jump gone', () => {
    const changed = listed.replace('-o lm-bbbbbbbbbbbb', '-o eth0');
    expect(shimDrift('iptables', rendered, changed, true, NAMES)).toEqual([
      `iptables chain ${CHAIN} rule 6 is '-A ${CHAIN} -o eth0 -m comment --comment loom:0123456789ab bbbbbbbbbbbb -j ACCEPT', expected '-A ${CHAIN} -o lm-bbbbbbbbbbbb -m comment --comment loom:0123456789ab bbbbbbbbbbbb -j ACCEPT'`,
    ]);
    const fewer = listed.split('\n').filter((l) => !l.includes('-i corp0')).join('\n');
    expect(shimDrift('ip6tables', rendered, fewer, false, NAMES)).toEqual([
      `ip6tables chain ${CHAIN} has 9 rules, expected 10: lacks '-A ${CHAIN} -i corp0 -m comment --comment loom:0123456789ab dddddddddddd -j ACCEPT'`,
      `ip6tables FORWARD does not jump to ${CHAIN}`,
    ]);
  });

  test('no chain, or a chain without networks', () => {
    expect(shimDrift('iptables', rendered, undefined, true, NAMES)).toEqual([`iptables chain ${CHAIN} is missing`]);
    expect(shimDrift('iptables', undefined, listed, false, NAMES)).toEqual([`iptables chain ${CHAIN} exists without loom networks`]);
    expect(shimDrift('iptables', undefined, undefined, false, NAMES)).toEqual([]);
  });
});

describe('the guard after an apply (NftFirewall with a scripted nft)', () => {
  const ID_A = 'A1B2C3D4E5F60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';
  const single: FirewallNetwork[] = [{ id: ID_A, bridge: 'lm-a1b2c3d4e5f6', subnets4: ['172.16.0.0/16'], subnets6: [], internal: false, icc: true, masquerade: true, published: [] }];
  /** An nft whose listing is `listed()`; no iptables; no older loom. */
  const scripted = (listed: () => Listing): { run: CommandRunner; lists: () => number } => {
    let lists = 0;
    const run: CommandRunner = async (cmd, args) => {
      if (cmd === 'nft' && args[0] === '-f') return { code: 0, stdout: '', stderr: '' };
      if (cmd === 'nft' && args.join(' ') === `-j list table inet ${T}`) {
        lists++;
        return { code: 0, stdout: JSON.stringify(listed()), stderr: '' };
      }
      return { code: 1, stdout: '', stderr: 'no such object' };
    };
    return { run, lists: () => lists };
  };

  test('shapes leave out names, addresses and set contents: more networks of one flavour add none', () => {
    const shapes = (nets: FirewallNetwork[]): string[] => ruleShapes(expectedForm(renderNftScript(nets, NAMES)) as NftNormalForm);
    const other = { ...single[0] as FirewallNetwork, id: 'f'.repeat(64), bridge: 'lm-ffffffffffff', subnets4: ['198.18.3.0/24'] };
    expect(shapes([...single, other])).toEqual(shapes(single));
    expect(shapes([{ ...other, subnets6: ['fd5c:3::/64'] }])).not.toEqual(shapes(single));
  });

  test('nft listing as expected: listed once per new shape, then applies are not listed again', async () => {
    const nft = scripted(() => listing('single.nft'));
    const fw = new NftFirewall(silentLogger(), NAMES, nft.run);
    await fw.sync(single);
    await fw.sync(single);
    expect(nft.lists()).toBe(1);
    expect(await fw.check(single)).toEqual([]);
  });

  test('an nft that spells a rule its own way: a warning, that listing is the reference, every apply is listed', async () => {
    const respelled = (): Listing => {
      const l = listing('single.nft');
      (rules(l, 'input')[0] as { expr: unknown[] }).expr.splice(2, 1); // as if this nft left out `ct direction original`
      return l;
    };
    const nft = scripted(respelled);
    const { log, lines } = capturingLogger();
    const fw = new NftFirewall(log, NAMES, nft.run);
    await fw.sync(single);
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual([expect.stringMatching(/differently from what loom expects/)]);
    expect(await fw.check(single)).toEqual([]);
    await fw.sync(single);
    expect(nft.lists()).toBe(3); // two applies listed, one check
  });
});
