/**
 * Golden-file tests of the firewall renderer. The expected scripts live in
 * test/unit/golden/; rewrite them with `UPDATE_GOLDEN=1 npx jest --selectProjects unit`
 * and review the diff like code.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FirewallNetwork } from '../../driver/firewall/model';
import { firewallNames, renderIptablesShim, renderNftScript } from '../../driver/firewall/render';
import { legacyShimIsOurs, legacyTableIsOurs } from '../../driver/firewall/legacy';

/** One loomd's names (instance 0123456789ab). */
const NAMES = firewallNames('0123456789ab');
const NFT_TABLE = NAMES.table;
const IPT_CHAIN = NAMES.chain;

const GOLDEN = path.join(__dirname, 'golden');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

function golden(name: string, actual: string): void {
  const file = path.join(GOLDEN, name);
  if (UPDATE) {
    fs.mkdirSync(GOLDEN, { recursive: true });
    fs.writeFileSync(file, actual);
    return;
  }
  if (!fs.existsSync(file)) throw new Error(`golden file ${name} is missing; run with UPDATE_GOLDEN=1 to create it`);
  expect(actual).toBe(fs.readFileSync(file, 'utf8'));
}

const net = (over: Partial<FirewallNetwork> & Pick<FirewallNetwork, 'id' | 'bridge'>): FirewallNetwork => ({
  subnets4: [],
  subnets6: [],
  internal: false,
  icc: true,
  masquerade: true,
  published: [],
  ...over,
});

/** Ids are Docker's 64 hex characters (`a` in upper case: chain names keep it). */
const ID = {
  a: 'A1B2C3D4E5F60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90',
  b: 'bbbbbbbbbbbb0000000000000000000000000000000000000000000000000000',
  c: 'cccccccccccc1111111111111111111111111111111111111111111111111111',
  d: 'dddddddddddd2222222222222222222222222222222222222222222222222222',
  e: 'eeeeeeeeeeee3333333333333333333333333333333333333333333333333333',
};

/** One network of each flavour, given out of bridge-name order. */
const MIXED: FirewallNetwork[] = [
  net({ id: ID.c, bridge: 'lm-cccccccccccc', subnets4: ['198.18.30.0/24'], internal: true }),
  net({ id: ID.a, bridge: 'lm-a1b2c3d4e5f6', subnets4: ['198.18.10.0/24'], subnets6: ['fd00:10::/64'] }),
  net({ id: ID.d, bridge: 'corp0', subnets4: ['198.18.40.0/24'], masquerade: false }),
  net({ id: ID.b, bridge: 'lm-bbbbbbbbbbbb', subnets4: ['198.18.20.0/24', '198.18.21.0/24'], icc: false }),
  net({ id: ID.e, bridge: 'lm-eeeeeeeeeeee', subnets6: ['fd00:50::/64'], internal: true, icc: false }),
];

const SINGLE: FirewallNetwork[] = [net({ id: ID.a, bridge: 'lm-a1b2c3d4e5f6', subnets4: ['172.16.0.0/16'] })];

describe('renderNftScript', () => {
  test('traffic between a network\'s own containers is untracked; the gateway, other subnets and ICC-off networks are not', () => {
    const chain = renderNftScript(MIXED, NAMES).split('\tchain intra-network {\n')[1]?.split('\t}')[0] ?? '';
    const rules = chain.split('\n').filter((l) => l.includes('notrack'));
    expect(chain).toContain('type filter hook prerouting priority raw;');
    // every rule: one bridge, the same subnet on both sides, nothing addressed to the host itself
    for (const r of rules) expect(r).toMatch(/^\t\tiifname "\S+" ip6? saddr (\S+) ip6? daddr \1 fib daddr type != local notrack$/);
    expect(rules.map((r) => r.split(' ')[1])).toEqual(['"corp0"', '"lm-a1b2c3d4e5f6"', '"lm-a1b2c3d4e5f6"', '"lm-cccccccccccc"']);
    expect(chain).not.toContain('lm-bbbbbbbbbbbb'); // ICC off
    expect(renderNftScript([net({ id: ID.b, bridge: 'lm-bbbbbbbbbbbb', subnets4: ['198.18.20.0/24'], icc: false })], NAMES)).not.toContain('intra-network');
  });

  test('no networks: the table is deleted and not recreated', () => {
    golden('empty.nft', renderNftScript([], NAMES));
  });

  test('one network', () => {
    golden('single.nft', renderNftScript(SINGLE, NAMES));
  });

  test('mixed networks: ICC off, internal, no masquerade, IPv6', () => {
    golden('mixed.nft', renderNftScript(MIXED, NAMES));
  });

  test('published ports: DNAT from every or one host address, IPv6, hairpin and loopback masquerade', () => {
    const published: FirewallNetwork[] = [
      net({
        id: ID.a,
        bridge: 'lm-a1b2c3d4e5f6',
        subnets4: ['198.18.10.0/24'],
        subnets6: ['fd00:10::/64'],
        published: [
          { proto: 'tcp', family: 4, hostIp: '0.0.0.0', hostPort: 8080, containerIp: '198.18.10.2', containerPort: 80 },
          { proto: 'tcp', family: 6, hostIp: '::', hostPort: 8080, containerIp: 'fd00:10::2', containerPort: 80 },
          { proto: 'udp', family: 4, hostIp: '127.0.0.1', hostPort: 8081, containerIp: '198.18.10.3', containerPort: 53 },
        ],
      }),
      // Internal networks never publish, whatever their endpoints hold.
      net({ id: ID.c, bridge: 'lm-cccccccccccc', subnets4: ['198.18.30.0/24'], internal: true, published: [
        { proto: 'tcp', family: 4, hostIp: '0.0.0.0', hostPort: 9090, containerIp: '198.18.30.2', containerPort: 80 },
      ] }),
    ];
    golden('published.nft', renderNftScript(published, NAMES));
  });

  test('the output does not depend on the order of the input', () => {
    expect(renderNftScript([...MIXED].reverse(), NAMES)).toBe(renderNftScript(MIXED, NAMES));
  });

  test('structure: atomic replace, one pair of chains per network, bridges set', () => {
    const s = renderNftScript(MIXED, NAMES);
    expect(s.startsWith(`table inet ${NFT_TABLE}\ndelete table inet ${NFT_TABLE}\ntable inet ${NFT_TABLE} {\n`)).toBe(true);
    for (const n of MIXED) {
      const id = n.id; // the whole id, case kept
      expect(s).toContain(`\tchain net-${id}-out {`);
      expect(s).toContain(`\tchain net-${id}-in {`);
      expect(s).toContain(`"${n.bridge}" : jump net-${id}-out`);
    }
    expect(s).toContain('elements = { "corp0", "lm-a1b2c3d4e5f6", "lm-bbbbbbbbbbbb", "lm-cccccccccccc", "lm-eeeeeeeeeeee" }');
    // Balanced braces: the script is one well-formed table.
    expect(s.split('{').length).toBe(s.split('}').length);
  });

  test('semantics: ICC, isolation, internal networks and NAT', () => {
    const s = renderNftScript(MIXED, NAMES);
    const chain = (name: string): string => {
      const m = new RegExp(`\\tchain ${name} \\{\\n([\\s\\S]*?)\\n\\t\\}`).exec(s);
      if (!m) throw new Error(`chain ${name} not found`);
      return m[1] as string;
    };
    expect(chain(`net-${ID.a}-out`)).toContain('oifname "lm-a1b2c3d4e5f6" accept');
    expect(chain(`net-${ID.b}-out`)).toContain('oifname "lm-bbbbbbbbbbbb" drop');
    // Every out chain drops traffic towards other loom bridges before anything else can accept it.
    for (const n of MIXED) {
      const out = chain(`net-${n.id}-out`).split('\n').map((l) => l.trim());
      expect(out.indexOf('oifname @bridges drop')).toBe(2);
      expect(out[out.length - 1]).toBe(n.internal ? 'drop' : 'accept');
    }
    // Internal: no way out, nothing in (not even replies or published ports), no NAT.
    const internalOut = chain(`net-${ID.c}-out`).split('\n').map((l) => l.trim());
    expect(internalOut.filter((l) => l.endsWith('accept'))).toEqual(['oifname "lm-cccccccccccc" accept']);
    expect(chain(`net-${ID.c}-in`).trim().split('\n').map((l) => l.trim())).toEqual([
      'comment "into network cccccccccccc (lm-cccccccccccc)"',
      'drop',
    ]);
    expect(chain(`net-${ID.a}-in`)).toContain('ct state established,related accept');
    const nat = chain('postrouting');
    expect(nat).toContain('ip saddr 198.18.10.0/24 oifname != "lm-a1b2c3d4e5f6" masquerade');
    expect(nat).toContain('ip6 saddr fd00:10::/64 oifname != "lm-a1b2c3d4e5f6" masquerade');
    expect(nat).toContain('ip saddr 198.18.21.0/24 oifname != "lm-bbbbbbbbbbbb" masquerade');
    expect(nat).not.toContain('198.18.30.0/24');
    expect(nat).not.toContain('198.18.40.0/24');
    expect(nat).not.toContain('fd00:50::/64');
    // Internal and ICC off: nothing is accepted at all.
    expect(chain(`net-${ID.e}-out`).split('\n').map((l) => l.trim()).slice(1)).toEqual([
      'oifname "lm-eeeeeeeeeeee" drop',
      'oifname @bridges drop',
      'drop',
    ]);
  });
});

describe('names: one loomd\'s objects, one network\'s chains', () => {
  test('table and shim chain are named after the instance; another instance\'s names differ', () => {
    expect(NAMES).toEqual({ table: 'loom-0123456789ab', chain: 'LOOM-FWD-0123456789ab', mark: 'loom:0123456789ab' });
    const other = firewallNames('fedcba987654');
    expect(renderNftScript(SINGLE, other)).toContain('table inet loom-fedcba987654 {');
    expect(renderNftScript(SINGLE, other)).not.toContain(NAMES.table);
    expect(renderIptablesShim(SINGLE, other)).not.toContain(NAMES.chain);
    expect(NAMES.chain.length).toBeLessThanOrEqual(28); // iptables' limit
  });

  test('ids that differ only after 12 characters or only in case get chains of their own', () => {
    const base = 'abcdef012345';
    const ids = [base + '0'.repeat(52), base + '1'.repeat(52), base.toUpperCase() + '0'.repeat(52)];
    const nets = ids.map((id, i) => net({ id, bridge: `kt-race${i}`, subnets4: [`198.18.${90 + i}.0/24`] }));
    const s = renderNftScript(nets, NAMES);
    for (const id of ids) {
      expect(s.split('\n').filter((l) => l === `\tchain net-${id}-out {`)).toHaveLength(1);
      expect(s.split('\n').filter((l) => l === `\tchain net-${id}-in {`)).toHaveLength(1);
    }
    expect(new Set([...s.matchAll(/\tchain (net-\S+) \{/g)].map((m) => m[1])).size).toBe(6);
    expect(`net-${'a'.repeat(128)}-out`.length).toBeLessThanOrEqual(256); // nft's name limit, for the longest id loom accepts
  });
});

describe('legacy objects (one shared table inet loom / chain LOOM-FORWARD before per-instance names)', () => {
  const listing = (bridges: string[], chainIds: string[]) => ({
    nftables: [
      { table: { family: 'inet', name: 'loom' } },
      { set: { family: 'inet', table: 'loom', name: 'bridges', type: 'ifname', elem: bridges } },
      ...chainIds.flatMap((id) => [{ chain: { name: `net-${id}-out` } }, { chain: { name: `net-${id}-in` } }]),
      { chain: { name: 'forward' } },
      { chain: { name: 'postrouting' } },
    ],
  });
  const legacyShim = (rules: Array<[string, string]>) =>
    ['-N LOOM-FORWARD', ...rules.flatMap(([br, id]) => [`-A LOOM-FORWARD -i ${br} -m comment --comment "loom ${id}" -j ACCEPT`, `-A LOOM-FORWARD -o ${br} -m comment --comment "loom ${id}" -j ACCEPT`])].join('\n') + '\n';

  test('a legacy table is this loomd\'s only when every bridge and network it names is one of its networks', () => {
    expect(legacyTableIsOurs(listing(['lm-a1b2c3d4e5f6', 'corp0'], ['a1b2c3d4e5f6', 'dddddddddddd']), MIXED)).toBe(true);
    expect(legacyTableIsOurs(listing(['lm-a1b2c3d4e5f6', 'lm-999999999999'], ['a1b2c3d4e5f6']), MIXED)).toBe(false);
    expect(legacyTableIsOurs(listing(['lm-a1b2c3d4e5f6'], ['a1b2c3d4e5f6', '999999999999']), MIXED)).toBe(false);
    expect(legacyTableIsOurs(listing([], []), MIXED)).toBe(false);
    expect(legacyTableIsOurs(listing(['lm-a1b2c3d4e5f6'], ['a1b2c3d4e5f6']), [])).toBe(false);
    expect(legacyTableIsOurs(undefined, MIXED)).toBe(false);
  });

  test('a legacy shim chain is this loomd\'s only when all its rules are for its networks', () => {
    expect(legacyShimIsOurs(legacyShim([['corp0', 'dddddddddddd'], ['lm-a1b2c3d4e5f6', 'A1B2C3D4E5F6']]), MIXED)).toBe(true);
    expect(legacyShimIsOurs(legacyShim([['lm-a1b2c3d4e5f6', 'A1B2C3D4E5F6'], ['lm-999999999999', '999999999999']]), MIXED)).toBe(false);
    expect(legacyShimIsOurs(legacyShim([]), MIXED)).toBe(false);
    expect(legacyShimIsOurs(legacyShim([['corp0', 'dddddddddddd']]) + '-A LOOM-FORWARD -j DROP\n', MIXED)).toBe(false);
  });
});

describe('renderIptablesShim', () => {
  test('no networks: the chain is declared (and so flushed) with no rules', () => {
    golden('empty.iptables', renderIptablesShim([], NAMES));
  });

  test('mixed networks', () => {
    golden('mixed.iptables', renderIptablesShim(MIXED, NAMES));
  });

  test('one accept rule per direction and bridge, sorted, then COMMIT', () => {
    const lines = renderIptablesShim(MIXED, NAMES).trimEnd().split('\n');
    expect(lines[0]).toBe('*filter');
    expect(lines[1]).toBe(`:${IPT_CHAIN} - [0:0]`);
    expect(lines[lines.length - 1]).toBe('COMMIT');
    expect(lines.filter((l) => l.startsWith(`-A ${IPT_CHAIN} `))).toHaveLength(2 * MIXED.length);
    expect(renderIptablesShim([...MIXED].reverse(), NAMES)).toBe(renderIptablesShim(MIXED, NAMES));
  });
});
