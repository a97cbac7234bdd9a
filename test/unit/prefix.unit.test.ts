/** Prefix and address maths: strict parsing, canonical formatting, containment and splitting. */
import { errorOf } from './error-of';
import {
  Prefix,
  bitsOf,
  contains,
  containsPrefix,
  formatCidr,
  formatIp,
  formatPrefix,
  lastOf,
  maskOf,
  overlaps,
  parseIp,
  parseIpMaybeCidr,
  parsePrefix,
  samePrefix,
  sizeOf,
  subnetAt,
  subnetCount,
} from '../../lib/prefix';

const p = (text: string): Prefix => parsePrefix(text);


describe('parsePrefix', () => {
  test.each([
    ['198.18.10.0/24', 4, 0xc6120a00n, 24],
    ['0.0.0.0/0', 4, 0n, 0],
    ['10.1.2.3/32', 4, 0x0a010203n, 32],
    ['255.255.255.255/32', 4, 0xffffffffn, 32],
    ['2001:db8::/32', 6, 0x20010db8n << 96n, 32],
    ['::/0', 6, 0n, 0],
    ['::1/128', 6, 1n, 128],
    ['fd00:1:2:3::/64', 6, 0xfd000001000200030000000000000000n, 64],
  ])('%s parses', (text, family, base, len) => {
    expect(parsePrefix(text)).toEqual({ family, base, len });
  });

  test('IPv6 input is accepted in any valid spelling and formatted canonically', () => {
    expect(formatPrefix(p('2001:DB8::/32'))).toBe('2001:db8::/32');
    expect(formatPrefix(p('2001:0db8:0000::/48'))).toBe('2001:db8::/48');
    expect(formatPrefix(p('2001:db8:0:0:0:0:0:0/64'))).toBe('2001:db8::/64');
  });

  test.each([
    ['198.18.10.5/24', '198.18.10.0/24'],
    ['10.0.0.1/8', '10.0.0.0/8'],
    ['1.2.3.4/0', '0.0.0.0/0'],
    ['2001:db8::1/64', '2001:db8::/64'],
    ['2001:db8:1::/32', '2001:db8::/32'],
  ])('host bits in %s are refused and the message names %s', (text, canonical) => {
    const err = errorOf(() => parsePrefix(text));
    expect(err.kind).toBe('invalid');
    expect(err.message).toContain(`it should be ${canonical}`);
    expect(err.message).toContain(text);
  });

  test.each([
    '010.0.0.0/8', // leading zero in an octet (octal ambiguity)
    '10.0.0.00/24',
    '10.01.0.0/16',
    'fe80::/64%eth0', // zone ids have no place in a subnet
    'fe80::%eth0/64',
    '10.0.0.0/33',
    '2001:db8::/129',
    '10.0.0.0/',
    '10.0.0.0/-1',
    '10.0.0.0/ 8',
    ' 10.0.0.0/8',
    '10.0.0.0/8 ',
    '10.0.0.0/8/8',
    '1.2.3/24',
    '256.0.0.0/8',
    '0x0a.0.0.0/8',
    '10.0/8',
    '10.0.0.0/+8',
    '[2001:db8::]/64',
    '2001:db8:::/64',
    '2001:db8::g/64',
    '1:2:3:4:5:6:7:8:9/64',
    '2001:db8::/64\n',
    '::ffff:010.0.0.0/104',
    '',
    'not-a-prefix',
    'x'.repeat(65),
  ])('%j is refused as invalid', (text) => {
    const err = errorOf(() => parsePrefix(text));
    expect(err.kind).toBe('invalid');
  });

  test('a prefix length is required', () => {
    expect(errorOf(() => parsePrefix('10.0.0.0')).message).toMatch(/prefix length is required/);
    expect(errorOf(() => parsePrefix('2001:db8::')).message).toMatch(/prefix length is required/);
  });

  test('the "what" label appears in the message', () => {
    expect(errorOf(() => parsePrefix('nope', 'ip-range')).message).toBe('invalid ip-range "nope"');
  });
});

describe('parseIp / parseIpMaybeCidr', () => {
  test('plain addresses', () => {
    expect(parseIp('198.18.10.7')).toEqual({ family: 4, value: 0xc6120a07n });
    expect(parseIp('2001:db8::7')).toEqual({ family: 6, value: (0x20010db8n << 96n) + 7n });
  });

  test.each(['198.18.10.7/24', '01.2.3.4', 'fe80::1%eth0', '1.2.3.256', ''])('parseIp refuses %j', (text) => {
    expect(errorOf(() => parseIp(text)).kind).toBe('invalid');
  });

  test('parseIpMaybeCidr keeps the length when present and allows host bits', () => {
    expect(parseIpMaybeCidr('198.18.10.1/24')).toEqual({ family: 4, value: 0xc6120a01n, len: 24 });
    expect(parseIpMaybeCidr('198.18.10.1')).toEqual({ family: 4, value: 0xc6120a01n, len: undefined });
    expect(parseIpMaybeCidr('2001:db8::1/64')).toEqual({ family: 6, value: (0x20010db8n << 96n) + 1n, len: 64 });
  });
});

describe('formatting', () => {
  test('formatIp / formatCidr / formatPrefix', () => {
    expect(formatIp(4, 0xc6120a07n)).toBe('198.18.10.7');
    expect(formatIp(4, 0n)).toBe('0.0.0.0');
    expect(formatIp(6, 0n)).toBe('::');
    expect(formatIp(6, (0x20010db8n << 96n) + 0x10n)).toBe('2001:db8::10');
    expect(formatCidr(4, 0xc6120a07n, 24)).toBe('198.18.10.7/24');
    expect(formatCidr(6, (0xfd00n << 112n) + 1n, 64)).toBe('fd00::1/64');
    expect(formatPrefix(p('198.18.0.0/15'))).toBe('198.18.0.0/15');
  });

  test('round trip of canonical forms', () => {
    for (const t of ['0.0.0.0/0', '172.16.0.0/12', '192.168.255.252/30', '::/0', 'fd12:3456:789a::/48', 'ffff::/16', '::1/128']) {
      expect(formatPrefix(p(t))).toBe(t);
    }
  });
});

describe('sizes and masks', () => {
  test('bitsOf, maskOf, sizeOf, lastOf', () => {
    expect(bitsOf(4)).toBe(32);
    expect(bitsOf(6)).toBe(128);
    expect(maskOf(4, 24)).toBe(0xffffff00n);
    expect(maskOf(4, 0)).toBe(0n);
    expect(maskOf(4, 32)).toBe(0xffffffffn);
    expect(maskOf(6, 128)).toBe((1n << 128n) - 1n);
    expect(sizeOf(p('10.0.0.0/8'))).toBe(1n << 24n);
    expect(sizeOf(p('0.0.0.0/0'))).toBe(1n << 32n);
    expect(sizeOf(p('10.0.0.1/32'))).toBe(1n);
    expect(sizeOf(p('::/0'))).toBe(1n << 128n);
    expect(lastOf(p('198.18.10.0/24'))).toBe(0xc6120affn);
    expect(lastOf(p('::/0'))).toBe((1n << 128n) - 1n);
  });
});

describe('contains / containsPrefix / overlaps / samePrefix', () => {
  const net = p('198.18.10.0/24');

  test('contains is inclusive of both ends and checks the family', () => {
    expect(contains(net, parseIp('198.18.10.0'))).toBe(true);
    expect(contains(net, parseIp('198.18.10.255'))).toBe(true);
    expect(contains(net, parseIp('198.18.9.255'))).toBe(false);
    expect(contains(net, parseIp('198.18.11.0'))).toBe(false);
    expect(contains(p('0.0.0.0/0'), parseIp('255.255.255.255'))).toBe(true);
    // ::c612:a07 has the same integer value as 198.18.10.7 but another family.
    expect(contains(net, { family: 6, value: 0xc6120a07n })).toBe(false);
    expect(contains(p('::/0'), parseIp('198.18.10.7'))).toBe(false);
  });

  test('containsPrefix', () => {
    expect(containsPrefix(net, p('198.18.10.128/25'))).toBe(true);
    expect(containsPrefix(net, net)).toBe(true);
    expect(containsPrefix(net, p('198.18.10.255/32'))).toBe(true);
    expect(containsPrefix(net, p('198.18.0.0/16'))).toBe(false);
    expect(containsPrefix(net, p('198.18.11.0/25'))).toBe(false);
    expect(containsPrefix(p('::/0'), p('2001:db8::/32'))).toBe(true);
    expect(containsPrefix(p('0.0.0.0/0'), p('::/128'))).toBe(false);
  });

  test('overlaps is symmetric, inclusive and family aware', () => {
    const cases: Array<[string, string, boolean]> = [
      ['198.18.10.0/24', '198.18.0.0/16', true],
      ['198.18.10.0/24', '198.18.10.255/32', true],
      ['198.18.10.0/24', '198.18.11.0/24', false],
      ['198.18.10.0/25', '198.18.10.128/25', false],
      ['0.0.0.0/0', '203.0.113.0/24', true],
      ['2001:db8::/64', '2001:db8::/48', true],
      ['2001:db8::/64', '2001:db8:0:1::/64', false],
      ['0.0.0.0/0', '::/0', false],
    ];
    for (const [a, b, want] of cases) {
      expect([a, b, overlaps(p(a), p(b))]).toEqual([a, b, want]);
      expect([b, a, overlaps(p(b), p(a))]).toEqual([b, a, want]);
    }
  });

  test('samePrefix', () => {
    expect(samePrefix(p('10.0.0.0/8'), p('10.0.0.0/8'))).toBe(true);
    expect(samePrefix(p('10.0.0.0/8'), p('10.0.0.0/9'))).toBe(false);
    expect(samePrefix(p('::/0'), p('0.0.0.0/0'))).toBe(false);
  });
});

describe('subnetAt / subnetCount', () => {
  test('splitting IPv4', () => {
    const base = p('172.16.0.0/12');
    expect(subnetCount(base, 16)).toBe(16n);
    expect(subnetCount(base, 12)).toBe(1n);
    expect(formatPrefix(subnetAt(base, 16, 0n))).toBe('172.16.0.0/16');
    expect(formatPrefix(subnetAt(base, 16, 1n))).toBe('172.17.0.0/16');
    expect(formatPrefix(subnetAt(base, 16, 15n))).toBe('172.31.0.0/16');
    expect(formatPrefix(subnetAt(base, 12, 0n))).toBe('172.16.0.0/12');
    expect(formatPrefix(subnetAt(p('192.168.0.0/16'), 20, 3n))).toBe('192.168.48.0/20');
    expect(formatPrefix(subnetAt(p('10.0.0.0/24'), 32, 255n))).toBe('10.0.0.255/32');
  });

  test('splitting IPv6 uses bigint maths (2^64 subnets of a /0 at /64)', () => {
    const ula = p('fd00:1:2::/48');
    expect(subnetCount(ula, 64)).toBe(65536n);
    expect(formatPrefix(subnetAt(ula, 64, 0n))).toBe('fd00:1:2::/64');
    expect(formatPrefix(subnetAt(ula, 64, 65535n))).toBe('fd00:1:2:ffff::/64');
    expect(subnetCount(p('::/0'), 64)).toBe(1n << 64n);
    expect(subnetCount(p('::/0'), 128)).toBe(1n << 128n);
  });

  test('an impossible split is refused', () => {
    expect(errorOf(() => subnetAt(p('10.0.0.0/16'), 8, 0n)).message).toBe('cannot split 10.0.0.0/16 into /8');
    expect(errorOf(() => subnetAt(p('10.0.0.0/16'), 33, 0n)).kind).toBe('invalid');
    expect(errorOf(() => subnetAt(p('2001:db8::/32'), 129, 0n)).kind).toBe('invalid');
  });
});
