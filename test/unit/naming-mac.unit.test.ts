/** Interface names derived from Docker ids, and MAC addresses. */
import {
  BRIDGE_PREFIX,
  HOST_VETH_PREFIX,
  ID_PATTERN,
  IFNAME_MAX,
  PEER_VETH_PREFIX,
  bridgeNameFor,
  hostVethFor,
  isValidIfname,
  peerVethFor,
} from '../../driver/model/naming';
import { macFor, normaliseMac, randomMac } from '../../driver/model/mac';

const HEX64 = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';
const SWARM = 'qm1k5xj6m1n4o2v7h3p0r8s9t'; // 25 base-36 characters

describe('interface names', () => {
  test('names are the prefix plus the first 12 lower-case characters of the id', () => {
    expect(bridgeNameFor(HEX64)).toBe('lm-9f86d081884c');
    expect(hostVethFor(HEX64)).toBe('lv9f86d081884c');
    expect(peerVethFor(HEX64)).toBe('lc9f86d081884c');
    expect(bridgeNameFor(HEX64.toUpperCase())).toBe('lm-9f86d081884c');
    expect(bridgeNameFor(SWARM)).toBe('lm-qm1k5xj6m1n4');
    expect([BRIDGE_PREFIX, HOST_VETH_PREFIX, PEER_VETH_PREFIX]).toEqual(['lm-', 'lv', 'lc']);
  });

  test('every derived name fits in IFNAMSIZ (15 characters) and is a valid interface name', () => {
    for (const id of [HEX64, SWARM, 'a', 'Z'.repeat(128)]) {
      for (const name of [bridgeNameFor(id), hostVethFor(id), peerVethFor(id)]) {
        expect(name.length).toBeLessThanOrEqual(IFNAME_MAX);
        expect(isValidIfname(name)).toBe(true);
      }
    }
    expect(IFNAME_MAX).toBe(15);
  });

  test('names are deterministic', () => {
    expect(hostVethFor(HEX64)).toBe(hostVethFor(HEX64));
    expect(hostVethFor(HEX64)).not.toBe(hostVethFor(SWARM));
  });

  test('ID_PATTERN accepts Docker and swarm ids, refuses anything that could escape a name or a rule', () => {
    expect(ID_PATTERN.test(HEX64)).toBe(true);
    expect(ID_PATTERN.test(SWARM)).toBe(true);
    for (const bad of ['', 'a'.repeat(129), 'abc-def', 'abc def', 'abc"', 'abc/..', 'abc\n']) expect(ID_PATTERN.test(bad)).toBe(false);
  });

  test('isValidIfname', () => {
    for (const ok of ['a', 'eth0', 'br-1.2_3', 'x'.repeat(15)]) expect(isValidIfname(ok)).toBe(true);
    for (const bad of ['', '.', '..', 'x'.repeat(16), 'a b', 'a/b', 'a:b', 'a%b', 'é']) expect(isValidIfname(bad)).toBe(false);
  });
});

describe('MAC addresses', () => {
  test('randomMac: locally administered unicast, lower-case readable form, different every time', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const mac = randomMac();
      expect(mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      const first = parseInt(mac.slice(0, 2), 16);
      expect(first & 0x02).toBe(0x02); // locally administered
      expect(first & 0x01).toBe(0); // unicast
      expect(normaliseMac(mac)).toBe(mac);
      seen.add(mac);
    }
    expect(seen.size).toBe(200);
  });

  test('macFor: derived from the IPv4 address (as Docker 20.10), else from the last 32 bits of the IPv6 one', () => {
    expect(macFor('198.18.10.7/24', undefined)).toBe('02:42:c6:12:0a:07');
    expect(macFor('198.18.10.7', 'fd00:1::5/64')).toBe('02:42:c6:12:0a:07');
    expect(macFor(undefined, 'fd5c:10a::a:b0c/64')).toBe('02:42:00:0a:0b:0c');
    expect(macFor(undefined, undefined)).toBeUndefined();
    const mac = macFor('255.255.255.254', undefined) as string;
    expect(normaliseMac(mac)).toBe(mac); // always locally administered unicast
  });

  test('normaliseMac lower-cases valid unicast addresses', () => {
    expect(normaliseMac('02:42:AC:11:00:02')).toBe('02:42:ac:11:00:02');
    expect(normaliseMac('de:ad:be:ef:00:01')).toBe('de:ad:be:ef:00:01');
    expect(normaliseMac('00:00:00:00:00:01')).toBe('00:00:00:00:00:01');
  });

  test.each([
    '',
    '02:42:ac:11:00',
    '02:42:ac:11:00:02:03',
    '02-42-ac-11-00-02',
    '0242.ac11.0002',
    '024:2a:c1:10:00:2',
    '02:42:ac:11:00:0g',
    ' 02:42:ac:11:00:02',
    '01:00:5e:00:00:01', // multicast
    'ff:ff:ff:ff:ff:ff', // broadcast
    '03:00:00:00:00:00', // multicast bit with local bit
    '00:00:00:00:00:00',
  ])('normaliseMac refuses %j', (text) => {
    expect(normaliseMac(text)).toBeUndefined();
  });
});
