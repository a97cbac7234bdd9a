/** AddressPool: reserved addresses, reservations, next-fit with wrap-around, sub-ranges and scale. */
import { errorOf } from './error-of';
import { AddressPool } from '../../ipam-driver/core/address-pool';
import { IntervalSet } from '../../ipam-driver/core/interval-set';
import { formatIp, parseIp, parsePrefix } from '../../lib/prefix';

const ip = (text: string): bigint => parseIp(text).value;
const v4 = (value: bigint): string => formatIp(4, value);
const v6 = (value: bigint): string => formatIp(6, value);
const pool = (cidr: string, range?: string, cursor?: bigint): AddressPool =>
  new AddressPool(parsePrefix(cidr), range === undefined ? undefined : parsePrefix(range), cursor);

/** Stored runs of the pool's private used set: the memory cost of the allocator. */
const runsOf = (a: AddressPool): number => (a as unknown as { used: IntervalSet }).used.runs;


describe('reserved addresses', () => {
  test('IPv4 /24: network and broadcast are reserved', () => {
    const a = pool('198.18.10.0/24');
    expect(v4(a.firstHost)).toBe('198.18.10.1');
    expect(v4(a.lastHost)).toBe('198.18.10.254');
    expect(a.stats()).toEqual({ used: 0n, capacity: 254n });
    const net = errorOf(() => a.reserve(ip('198.18.10.0')));
    expect(net.kind).toBe('invalid');
    expect(net.message).toContain('198.18.10.0 is reserved in pool 198.18.10.0/24');
    expect(errorOf(() => a.reserve(ip('198.18.10.255'))).kind).toBe('invalid');
    a.reserve(ip('198.18.10.1'));
    a.reserve(ip('198.18.10.254'));
    expect(a.stats().used).toBe(2n);
  });

  test('IPv4 /30: two hosts', () => {
    const a = pool('198.18.10.4/30');
    expect([v4(a.allocateNext()), v4(a.allocateNext())]).toEqual(['198.18.10.5', '198.18.10.6']);
    expect(errorOf(() => a.allocateNext()).kind).toBe('exhausted');
  });

  test('IPv4 /31 (RFC 3021): both addresses are usable', () => {
    const a = pool('198.18.10.6/31');
    expect(a.stats().capacity).toBe(2n);
    expect(v4(a.allocateLowest())).toBe('198.18.10.6');
    expect(v4(a.allocateNext())).toBe('198.18.10.7');
    expect(errorOf(() => a.allocateNext()).kind).toBe('exhausted');
  });

  test('IPv4 /32: the single address is usable once', () => {
    const a = pool('198.18.10.9/32');
    expect(a.stats().capacity).toBe(1n);
    expect(v4(a.allocateNext())).toBe('198.18.10.9');
    expect(errorOf(() => a.allocateNext()).kind).toBe('exhausted');
    expect(errorOf(() => a.allocateLowest()).kind).toBe('exhausted');
    expect(a.release(ip('198.18.10.9'))).toBe(true);
    a.reserve(ip('198.18.10.9'));
  });

  test('IPv6 /64: the subnet-router anycast address is reserved, the last address is not', () => {
    const a = pool('2001:db8:1::/64');
    expect(v6(a.firstHost)).toBe('2001:db8:1::1');
    expect(v6(a.lastHost)).toBe('2001:db8:1:0:ffff:ffff:ffff:ffff'); // RFC 5952: no '::' for one zero group
    expect(a.stats().capacity).toBe((1n << 64n) - 1n);
    expect(errorOf(() => a.reserve(ip('2001:db8:1::'))).kind).toBe('invalid');
    a.reserve(ip('2001:db8:1:0:ffff:ffff:ffff:ffff'));
  });

  test('IPv6 /127 and /128 use every address', () => {
    const p127 = pool('2001:db8::/127');
    expect(p127.stats().capacity).toBe(2n);
    const got = [v6(p127.allocateNext()), v6(p127.allocateNext())].sort();
    expect(got).toEqual(['2001:db8::', '2001:db8::1']);
    expect(errorOf(() => p127.allocateNext()).kind).toBe('exhausted');
    const p128 = pool('2001:db8::5/128');
    expect(v6(p128.allocateNext())).toBe('2001:db8::5');
    expect(errorOf(() => p128.allocateNext()).kind).toBe('exhausted');
  });

  // A fresh pool's cursor is -1 ("nothing handed out yet"), so base is handed out when it is assignable.
  test('a fresh /31 or /127 hands out its lowest address first, like every other pool', () => {
    expect(v4(pool('198.18.10.6/31').allocateNext())).toBe('198.18.10.6');
    expect(v6(pool('2001:db8::/127').allocateNext())).toBe('2001:db8::');
  });

  test('an address outside the pool is invalid', () => {
    const a = pool('198.18.10.0/24');
    const err = errorOf(() => a.reserve(ip('198.18.11.1')));
    expect(err.kind).toBe('invalid');
    expect(err.message).toBe('address 198.18.11.1 is outside pool 198.18.10.0/24');
  });
});

describe('reservations', () => {
  test('reserving an address twice is a conflict; release makes it reservable again', () => {
    const a = pool('198.18.10.0/24');
    a.reserve(ip('198.18.10.50'));
    expect(a.isUsed(ip('198.18.10.50'))).toBe(true);
    const err = errorOf(() => a.reserve(ip('198.18.10.50')));
    expect(err.kind).toBe('conflict');
    expect(err.message).toContain('198.18.10.50 is already in use');
    expect(a.release(ip('198.18.10.50'))).toBe(true);
    expect(a.release(ip('198.18.10.50'))).toBe(false);
    a.reserve(ip('198.18.10.50'));
  });

  test('next-fit skips reserved addresses', () => {
    const a = pool('198.18.10.0/24');
    a.reserve(ip('198.18.10.1'));
    a.reserve(ip('198.18.10.2'));
    a.reserve(ip('198.18.10.4'));
    expect(v4(a.allocateNext())).toBe('198.18.10.3');
    expect(v4(a.allocateNext())).toBe('198.18.10.5');
  });

  test('reserve does not move the cursor', () => {
    const a = pool('198.18.10.0/24');
    a.reserve(ip('198.18.10.100'));
    expect(a.cursor).toBe(-1n);
    expect(v4(a.allocateNext())).toBe('198.18.10.1');
  });
});

describe('next-fit', () => {
  test('a just-released address is not handed out again first', () => {
    const a = pool('198.18.10.0/24');
    const first = [a.allocateNext(), a.allocateNext(), a.allocateNext()].map(v4);
    expect(first).toEqual(['198.18.10.1', '198.18.10.2', '198.18.10.3']);
    a.release(ip('198.18.10.2'));
    expect(v4(a.allocateNext())).toBe('198.18.10.4');
    a.release(ip('198.18.10.4'));
    expect(v4(a.allocateNext())).toBe('198.18.10.5');
    expect(v4(a.cursor)).toBe('198.18.10.5');
  });

  test('wraps around to the start once the end of the range is reached', () => {
    const a = pool('198.18.10.0/29'); // hosts .1 - .6
    const got = Array.from({ length: 6 }, () => v4(a.allocateNext()));
    expect(got).toEqual(['198.18.10.1', '198.18.10.2', '198.18.10.3', '198.18.10.4', '198.18.10.5', '198.18.10.6']);
    a.release(ip('198.18.10.3'));
    a.release(ip('198.18.10.5'));
    expect(v4(a.allocateNext())).toBe('198.18.10.3');
    expect(v4(a.allocateNext())).toBe('198.18.10.5');
    const err = errorOf(() => a.allocateNext());
    expect(err.kind).toBe('exhausted');
    expect(err.message).toBe('no free address left in 198.18.10.0/29');
  });

  test('wraps when the cursor sits on the last address', () => {
    const a = pool('198.18.10.0/29', undefined, ip('198.18.10.6'));
    expect(v4(a.allocateNext())).toBe('198.18.10.1');
  });

  test('the last address released is the only free one: it is handed out after wrapping', () => {
    const a = pool('198.18.10.0/29');
    for (let i = 0; i < 6; i++) a.allocateNext();
    a.release(ip('198.18.10.6'));
    expect(v4(a.allocateNext())).toBe('198.18.10.6');
  });

  test('a restored cursor continues after itself', () => {
    const a = pool('198.18.10.0/24', undefined, ip('198.18.10.41'));
    expect(v4(a.allocateNext())).toBe('198.18.10.42');
  });

  test('a cursor outside the range restarts at the start of the range', () => {
    const a = pool('198.18.10.0/24', '198.18.10.128/25', ip('198.18.10.7'));
    expect(v4(a.allocateNext())).toBe('198.18.10.128');
  });
});

describe('sub-range (ip-range)', () => {
  test('dynamic addresses stay inside the range; the broadcast stays reserved', () => {
    const a = pool('198.18.10.0/24', '198.18.10.248/29');
    const got: string[] = [];
    for (let i = 0; i < 7; i++) got.push(v4(a.allocateNext()));
    expect(got).toEqual(['198.18.10.248', '198.18.10.249', '198.18.10.250', '198.18.10.251', '198.18.10.252', '198.18.10.253', '198.18.10.254']);
    const err = errorOf(() => a.allocateNext());
    expect(err.kind).toBe('exhausted');
    expect(err.message).toBe('no free address left in 198.18.10.248/29 (pool 198.18.10.0/24)');
  });

  test('a range at the start of the pool skips the network address', () => {
    const a = pool('198.18.10.0/24', '198.18.10.0/30');
    expect([v4(a.allocateNext()), v4(a.allocateNext()), v4(a.allocateNext())]).toEqual(['198.18.10.1', '198.18.10.2', '198.18.10.3']);
    expect(errorOf(() => a.allocateNext()).kind).toBe('exhausted');
  });

  test('explicit addresses and the gateway may lie outside the range', () => {
    const a = pool('198.18.10.0/24', '198.18.10.128/25');
    expect(v4(a.allocateLowest())).toBe('198.18.10.1');
    a.reserve(ip('198.18.10.5'));
    expect(v4(a.allocateNext())).toBe('198.18.10.128');
    expect(a.stats()).toEqual({ used: 3n, capacity: 254n });
  });
});

describe('allocateLowest (gateways)', () => {
  test('takes the lowest free host address of the whole pool and leaves the cursor alone', () => {
    const a = pool('198.18.10.0/24');
    expect(v4(a.allocateLowest())).toBe('198.18.10.1');
    expect(a.cursor).toBe(-1n);
    expect(v4(a.allocateNext())).toBe('198.18.10.2');
    expect(v4(a.allocateLowest())).toBe('198.18.10.3');
    a.release(ip('198.18.10.1'));
    expect(v4(a.allocateLowest())).toBe('198.18.10.1');
  });

  test('IPv6: the lowest is ::1 of the subnet', () => {
    expect(v6(pool('fd00:aa::/64').allocateLowest())).toBe('fd00:aa::1');
  });

  test('exhaustion', () => {
    const a = pool('198.18.10.0/30');
    a.allocateLowest();
    a.allocateLowest();
    const err = errorOf(() => a.allocateLowest());
    expect(err.kind).toBe('exhausted');
    expect(err.message).toBe('no free address left in pool 198.18.10.0/30');
  });
});

describe('scale', () => {
  test('a /8 IPv4 pool: sequential allocations are one run, wrap-around is instant', () => {
    const a = pool('10.0.0.0/8');
    expect(a.stats().capacity).toBe((1n << 24n) - 2n);
    for (let i = 0; i < 5000; i++) a.allocateNext();
    expect(v4(a.cursor)).toBe('10.0.19.136');
    expect([...a.usedAddresses()].length).toBe(5000);
    expect(runsOf(a)).toBe(1);
    // Jump to the end of the pool, then wrap past 5000 used addresses in one step.
    a.reserve(ip('10.255.255.253'));
    a.cursor = ip('10.255.255.253');
    expect(v4(a.allocateNext())).toBe('10.255.255.254');
    expect(v4(a.allocateNext())).toBe('10.0.19.137');
    expect(a.stats().used).toBe(5003n);
    expect(runsOf(a)).toBe(2);
  });

  test('a /64 IPv6 pool: allocations near the end and the start take few runs', () => {
    const a = pool('fd00:1:2:3::/64');
    const last = a.lastHost;
    a.cursor = last - 1000n;
    for (let i = 0; i < 1000; i++) a.allocateNext();
    expect(a.cursor).toBe(last);
    expect(v6(a.allocateNext())).toBe('fd00:1:2:3::1');
    for (let i = 0; i < 999; i++) a.allocateNext();
    expect(v6(a.cursor)).toBe('fd00:1:2:3::3e8');
    expect(a.stats().used).toBe(2000n);
    expect(runsOf(a)).toBe(2);
    const used = [...a.usedAddresses()];
    expect(used[0]).toBe(a.firstHost);
    expect(used[used.length - 1]).toBe(last);
  });
});
