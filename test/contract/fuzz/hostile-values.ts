/**
 * The hostile value catalogue: every value here is wrong for the field it is aimed at, whatever
 * else the body holds (some hostile strings match ID_PATTERN and are then merely unknown ids).
 * The generators draw from these lists and catalogue.ts sends each of them in every field it
 * can reach.
 */
import { ID_PATTERN } from '../../../driver/model/naming';
import { DELETED_EP, DELETED_NET, EP, NET, RELEASED_POOL, SEED_BRIDGE, SEED_POOL } from './seed';

/** Strings no id, address space or address may be (some match ID_PATTERN and are only unknown ids). */
export const HOSTILE = [
  '', ' ', '\t', '\n', '\u0000', '/', '.', '..', '../../etc/passwd', 'a/b', 'a\\b', '$(reboot)', '`reboot`', ';reboot', 'a;b', 'a|b',
  'a&&b', '$IFS', '${PATH}', '>x', '<x', "'", '"', '%00', '%2e%2e%2f', '*', '?', '#', '~root', '-rf', '--help', 'ünïcødé', '网络', '😀',
  '\u202eevil', 'a\u200bb', 'ＡＢＣ１２３', '٣٤٥', 'a b', 'abc\n', 'abc ', ' abc', '\ud800', 'null', 'undefined', '__proto__',
  'constructor', 'NaN', '-1', '0x1f', '1e9',
];
/** Hostile strings that are not even well-formed network/endpoint ids. */
export const BAD_IDS = [...HOSTILE, 'a'.repeat(129), `${NET}/`, `${NET} `, `${NET}\n`, `../${NET}`, `${NET};reboot`, `$(${NET})`, `ä${NET.slice(1)}`].filter(
  (s) => !ID_PATTERN.test(s),
);
/** Ids that are well-formed but name nothing loom holds. */
export const UNKNOWN_NET_IDS = [DELETED_NET, NET.toUpperCase(), NET.slice(0, 12), NET + '0', NET.slice(0, 63), 'laifa924kffa6oqzhr05ob9nm', 'null', 'constructor'];
export const UNKNOWN_EP_IDS = [DELETED_EP, EP.toUpperCase(), EP.slice(0, 12), EP + '0', EP.slice(0, 63), 'NaN', 'undefined'];
export const UNKNOWN_POOL_IDS = [
  RELEASED_POOL,
  `${SEED_POOL} `,
  ` ${SEED_POOL}`,
  `${SEED_POOL}/`,
  SEED_POOL.toLowerCase(),
  'LoomGlobal/198.18.50.0/24',
  'LoomLocal/198.18.50.0/25',
  'LoomLocal/198.18.50.0',
  'LoomLocal/198.018.50.0/24',
  'LoomLocal/../../198.18.50.0/24',
  'tracerlocal/10.99.0.0/24',
  `${SEED_POOL}$(reboot)`,
  `${SEED_POOL};reboot`,
  `${SEED_POOL}\u0000`,
  ...HOSTILE.filter((s) => s.length > 0),
  'p'.repeat(256),
];

/** Never a valid subnet (also never a valid address inside 198.18.50.0/24). */
export const BAD_CIDR_V4 = [
  '300.1.1.0/24', '198.18.60.5/24', '198.18.60.0/33', '198.18.60.0/-1', '198.18.60.0/', '198.18.60.0', '198.018.60.0/24', '0198.18.60.0/24',
  '198.18.060.0/24', '198.18.60.0/024', '198.18.60.0/+24', ' 198.18.60.0/24', '198.18.60.0/24 ', '198.18.60.0 /24', '198.18.60.0/ 24',
  '198.18.60.0/24\n', '\t198.18.60.0/24', '198.18.60/24', '198.18.60.0.0/24', '0x7f.0.0.0/8', '198.18.60.0/24/24', '198.18.60.0/1e1',
  '198.18.60.0/0x18', '198.18.60.0/٢٤', '１98.18.60.0/24', '198.18.60.0／24', '198.18.60.0/24\u0000', '198.18.60.0/24;', '198.18.60.0/24$(reboot)',
  '198.18.60.0/24`id`', '198.18.60.0/24|x', 'banana', '/24', '198.18.60.0/24,198.18.61.0/24', '198.18.60.0/24\u200b', '256.256.256.256/32',
  '198.18.60.0/24.0', '198.18.60.0/24a', '-198.18.60.0/24', '198.18.60.0/8',
];
export const BAD_CIDR_V6 = [
  'fd00:60::/129', 'fd00:60::1/64', 'fd00:60::%eth0/64', 'fd00:60::/64%eth0', 'fe80::1%1/64', 'fe80::%lo/64', 'fd00:60:::/64', 'fd00::60::/64',
  '[fd00:60::]/64', 'fd00:60::/64/', 'fd00:60::/0064', 'fd00:00060::/64', 'fd00:60::/ 64', ' fd00:60::/64', 'fd00:60::/64\n', 'fd00:60::/64 ',
  'gd00::/64', 'fd00:60::/-64', 'fd00:60::', ':::/64', 'fd00:60::/64;reboot', 'fd00:60::/1e2', 'fd00:60::/+64', 'fd00:60::/６４',
];
/** Bad subnets that still parse as an address inside 198.18.60.0/24 or fd00:60::/64: valid gateways there. */
const ADDRESS_INSIDE_60 = new Set(['198.18.60.5/24', '198.18.60.0', '198.18.60.0/8', 'fd00:60::1/64', 'fd00:60::']);
/** Never a gateway or aux address of 198.18.60.0/24 (nor of fd00:60::/64). */
export const BAD_GATEWAYS = [...BAD_CIDR_V4, ...BAD_CIDR_V6].filter((c) => !ADDRESS_INSIDE_60.has(c));
export const BAD_MACS = [
  '01:00:5e:00:00:01', 'ff:ff:ff:ff:ff:ff', '03:00:00:00:00:01', '00:00:00:00:00:00', '02:42:ac:11:00', '02:42:ac:11:00:02:03',
  '02-42-ac-11-00-02', '0242.ac11.0002', '0242ac110002', '02:42:ac:11:00:0g', '02:42:ac:11:00:2', ' 02:42:ac:11:00:02', '02:42:ac:11:00:02\n',
  '０2:42:ac:11:00:02', '02:42:ac:11:00:02$(reboot)', 'banana', ':::::', '02:42:ac:11:00:02 ', '02:42:ac:11:00:02;', 'AkIKYQCZ',
];
export const BAD_MTUS = ['0', '67', '65536', '99999', '100000', '-1', '1e3', '0x5dc', ' 1500', '1500 ', '1500\n', '', '1,500', '1500.0', '١٥٠٠', 'NaN', 'Infinity', '1500$(reboot)', 'big'];
/** Not interface names at all. */
export const BAD_BRIDGE_SYNTAX = [
  'a-very-long-bridge-name', 'x'.repeat(16), 'br/0', '../br', '/', '.', '..', 'br 0', 'br\t0', 'br:0', 'brü', '$(reboot)', 'br;reboot', '`id`',
  'br|x', '', 'br\n',
];
/** Names of interfaces that exist (not bridges, or another network's), or that the kernel refuses. */
export const BAD_BRIDGE_TAKEN = ['lo', 'all', 'default', SEED_BRIDGE];
export const BAD_BRIDGES = [...BAD_BRIDGE_SYNTAX, ...BAD_BRIDGE_TAKEN];
export const BAD_HOST_BINDINGS = ['', 'fd00::1', '::', '0.0.0.0/0', '127.0.0.1/8', '300.1.1.1', '127.0.0.1 ', 'localhost', '127.1', '0177.0.0.1', '$(reboot)'];
export const BAD_BOOLS = ['maybe', 'yes', 'no', 'TRUE ', ' 1', '2', '', 'tRuE', 'on', 'off', '1$(reboot)'];
export const BAD_FLAGS: unknown[] = ['yes', 'True', 'TRUE', '1', '0', 1, 0, {}, [], 'on'];
export const BAD_LOOM_KEYS = ['loom.frobnicate', 'loom.', 'loom.MODE', 'loom.mode.x', 'loom.mode ', 'loom.vni', 'loom.mtu', 'loom.$(reboot)', 'loom./etc'];
export const BAD_MODES = ['overlay', 'vxlan', 'Bridge', '', ' bridge', 'bridge\n', 'macvlan'];
/** Port maps ProgramExternalConnectivity must refuse on the seeded (IPv4-only) endpoint. */
export const BAD_PORTMAPS: unknown[] = [
  'x', 80, true, {}, { Proto: 6, Port: 80 }, [null], ['80/tcp'], [80], [[6, 80]],
  ...[0, 1, 7, -6, 6.5, 'tcp', 'TCP', null, {}].map((Proto) => [{ Proto, Port: 80 }]),
  ...[0, -1, 65536, 1.5, '80', null, 1e9].map((Port) => [{ Proto: 6, Port }]),
  ...[-1, 65536, 1.5, '8080', 1e9].map((HostPort) => [{ Proto: 6, Port: 80, HostPort }]),
  [{ Proto: 6, Port: 80, HostPort: 8080, HostPortEnd: 8079 }],
  [{ Proto: 17, Port: 80, HostPort: 8080, HostPortEnd: 65536 }],
  ...['300.1.1.1', '0.0.0.0/0', '127.0.0.1 ', 'localhost', '$(reboot)', 'fd00::1', '::', '::1', 'fe80::1%lo', 5, true].map((HostIP) => [
    { Proto: 6, Port: 80, HostIP, HostPort: 8080 },
  ]),
  [{ Proto: 6, Port: 80, HostPort: 8081 }, { Proto: 6, Port: 81, HostPort: 8081 }],
  Array.from({ length: 4097 }, () => ({ Proto: 6, Port: 80 })),
];

/** Addresses the seeded pool must refuse: malformed, outside, reserved, in use, other family. */
export const BAD_POOL_ADDRESSES = [
  ...BAD_CIDR_V4, '198.18.51.1', '198.19.50.1', '8.8.8.8', '198.18.50.0', '198.18.50.255', '198.18.50.1', '198.18.50.2', '198.18.50.1/24',
  'fd00::1', '::ffff:198.18.50.9', 'fe80::1%eth0', '198.18.50.256', '198.18.50.-1', '198.18.50.09', '198.18.50.9 ', '198.18.50.9\n',
];
/** Endpoint addresses the seeded network must refuse (bad, outside its subnet, or the wrong family). */
export const BAD_EP_ADDRESSES = [...BAD_CIDR_V4, '198.19.1.5/24', '198.18.51.5/24', '198.18.49.255/24', 'fd00::5/64', '::ffff:198.18.50.9/120', '198.18.50.9/24 '];
