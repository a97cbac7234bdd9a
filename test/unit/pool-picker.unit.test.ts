/** Default pools: parsing "BASE/LEN:SIZE" and picking the first free subnet. */
import { errorOf } from './error-of';
import { DefaultPool, parseDefaultPool, pickSubnet } from '../../ipam-driver/core/pool-picker';
import { Prefix, formatPrefix, parsePrefix } from '../../lib/prefix';

const p = (text: string): Prefix => parsePrefix(text);
const pools = (...texts: string[]): DefaultPool[] => texts.map(parseDefaultPool);
const pick = (defaults: DefaultPool[], family: 4 | 6, taken: string[]): string | undefined => {
  const r = pickSubnet(defaults, family, taken.map(p));
  return r && formatPrefix(r);
};


describe('parseDefaultPool', () => {
  test.each([
    ['172.16.0.0/12:16', '172.16.0.0/12', 16],
    ['192.168.0.0/16:20', '192.168.0.0/16', 20],
    ['  10.0.0.0/8:24  ', '10.0.0.0/8', 24],
    ['10.0.0.0/8:8', '10.0.0.0/8', 8],
    ['10.0.0.0/8:32', '10.0.0.0/8', 32],
    ['fd00::/8:64', 'fd00::/8', 64],
    ['fd12:3456:789a::/48:64', 'fd12:3456:789a::/48', 64],
    ['2001:db8::/32:128', '2001:db8::/32', 128],
  ])('%j', (text, base, size) => {
    const d = parseDefaultPool(text);
    expect(formatPrefix(d.base)).toBe(base);
    expect(d.size).toBe(size);
  });

  test.each([
    ['172.16.0.0/12', /expected BASE\/LEN:SIZE/],
    ['fd00::/8', /expected BASE\/LEN:SIZE/],
    ['172.16.0.0/12:', /expected BASE\/LEN:SIZE/],
    ['172.16.0.0/12:1000', /expected BASE\/LEN:SIZE/],
    ['172.16.0.0/12:x', /expected BASE\/LEN:SIZE/],
    ['', /expected BASE\/LEN:SIZE/],
    ['172.16.0.0/12:8', /size \/8 must be between \/12 and \/32/],
    ['172.16.0.0/12:33', /size \/33 must be between \/12 and \/32/],
    ['fd00::/8:129', /size \/129 must be between \/8 and \/128/],
    ['172.16.0.1/12:16', /it should be 172\.16\.0\.0\/12/],
    ['172.16.0.0:16', /prefix length is required/],
    ['nonsense:16', /invalid default pool "nonsense"/],
  ])('%j is refused (%s)', (text, message) => {
    const err = errorOf(() => parseDefaultPool(text));
    expect(err.kind).toBe('invalid');
    expect(err.message).toMatch(message);
  });
});

describe('pickSubnet', () => {
  const docker = pools('172.16.0.0/12:16', '192.168.0.0/16:20');

  test('the first subnet when nothing is taken', () => {
    expect(pick(docker, 4, [])).toBe('172.16.0.0/16');
  });

  test('skips subnets in use, whatever the order of the taken list', () => {
    expect(pick(docker, 4, ['172.16.0.0/16'])).toBe('172.17.0.0/16');
    expect(pick(docker, 4, ['172.17.0.0/16', '172.16.0.0/16'])).toBe('172.18.0.0/16');
    expect(pick(docker, 4, ['172.17.0.0/16'])).toBe('172.16.0.0/16');
  });

  test('a small routed prefix blocks the whole candidate around it', () => {
    expect(pick(docker, 4, ['172.16.5.0/24'])).toBe('172.17.0.0/16');
    expect(pick(docker, 4, ['172.16.255.255/32', '172.17.0.0/32'])).toBe('172.18.0.0/16');
  });

  test('a large blocker is jumped over at once', () => {
    expect(pick(docker, 4, ['172.16.0.0/13'])).toBe('172.24.0.0/16');
    expect(pick(docker, 4, ['172.16.0.0/13', '172.24.0.0/14'])).toBe('172.28.0.0/16');
  });

  test('a blocker covering a whole default pool moves on to the next pool', () => {
    expect(pick(docker, 4, ['172.16.0.0/12'])).toBe('192.168.0.0/20');
    expect(pick(docker, 4, ['172.0.0.0/8', '192.168.0.0/20'])).toBe('192.168.16.0/20');
    expect(pick(docker, 4, ['128.0.0.0/1'])).toBeUndefined();
  });

  test('undefined when every subnet is taken', () => {
    const all = Array.from({ length: 16 }, (_, i) => `172.${16 + i}.0.0/16`);
    expect(pick(pools('172.16.0.0/12:16'), 4, all)).toBeUndefined();
    expect(pick(pools('172.16.0.0/12:16'), 4, all.slice(0, 15))).toBe('172.31.0.0/16');
    expect(pick([], 4, [])).toBeUndefined();
  });

  test('a pool whose size equals its length offers exactly one subnet', () => {
    expect(pick(pools('10.10.0.0/16:16'), 4, [])).toBe('10.10.0.0/16');
    expect(pick(pools('10.10.0.0/16:16'), 4, ['10.10.200.0/24'])).toBeUndefined();
  });

  test('family filtering: pools and blockers of the other family are ignored', () => {
    const mixed = pools('fd00:1::/48:64', '172.16.0.0/12:16');
    expect(pick(mixed, 4, [])).toBe('172.16.0.0/16');
    expect(pick(mixed, 6, [])).toBe('fd00:1::/64');
    expect(pick(mixed, 6, ['172.16.0.0/12', '::/1'])).toBe('fd00:1::/64');
    expect(pick(mixed, 4, ['fd00:1::/48', '::/0'])).toBe('172.16.0.0/16');
    expect(pick(pools('172.16.0.0/12:16'), 6, [])).toBeUndefined();
    expect(pick(pools('fd00::/8:64'), 4, [])).toBeUndefined();
  });

  test('IPv6 with 2^56 candidates: huge blockers are skipped without iterating', () => {
    const ula = pools('fd00::/8:64');
    const started = Date.now();
    expect(pick(ula, 6, ['fd00::/9'])).toBe('fd80::/64');
    expect(pick(ula, 6, ['fd00::/9', 'fd80::/10', 'fdc0::/11', 'fde0::/64'])).toBe('fde0:0:0:1::/64');
    expect(pick(ula, 6, ['fd00::/8'])).toBeUndefined();
    expect(pick(ula, 6, ['fd00::/9', 'fd80::/9'])).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(500);
  });
});
