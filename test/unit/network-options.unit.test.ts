/** CreateNetwork option parsing: Go-style booleans, MTU bounds, bridge names, loom.* keys. */
import { errorOf } from './error-of';
import { parseRate } from '../../driver/model/rates';
import { burstBytes } from '../../driver/kernel/tc';
import {
  DEFAULT_MTU,
  OPT_BRIDGE_NAME,
  OPT_HOST_BINDING,
  OPT_ICC,
  OPT_LOOM_GATEWAY,
  OPT_LOOM_MODE,
  OPT_MASQUERADE,
  OPT_MTU,
  checkLoomKeys,
  parseBool,
  parseMtu,
  parseNetworkSettings,
} from '../../driver/model/options';


describe('parseBool (Go strconv.ParseBool)', () => {
  test.each(['1', 't', 'T', 'TRUE', 'true', 'True'])('%j is true', (v) => {
    expect(parseBool('k', v)).toBe(true);
  });
  test.each(['0', 'f', 'F', 'FALSE', 'false', 'False'])('%j is false', (v) => {
    expect(parseBool('k', v)).toBe(false);
  });
  test.each(['', 'yes', 'no', 'on', 'off', 'tRUE', 'TrUe', 'fAlSe', ' true', 'true ', '2', '-1', 'y'])('%j is refused', (v) => {
    const err = errorOf(() => parseBool('some.key', v));
    expect(err.kind).toBe('invalid');
    expect(err.message).toBe(`option some.key: ${JSON.stringify(v)} is not a boolean`);
  });
});

describe('parseMtu', () => {
  test.each([
    ['68', 68],
    ['1500', 1500],
    ['9000', 9000],
    ['65535', 65535],
  ])('%s', (v, want) => {
    expect(parseMtu('mtu', v)).toBe(want);
  });

  test.each(['0', '67', '65536', '99999'])('%s is out of bounds', (v) => {
    const err = errorOf(() => parseMtu('mtu', v));
    expect(err.kind).toBe('invalid');
    expect(err.message).toBe(`option mtu: MTU ${Number(v)} is outside 68..65535`);
  });

  test.each(['', '1500.0', '-1500', '+1500', '1e3', ' 1500', '1500 ', '0x5dc', 'abc', '100000'])('%j is not a number', (v) => {
    const err = errorOf(() => parseMtu('mtu', v));
    expect(err.kind).toBe('invalid');
    expect(err.message).toMatch(/is not a number/);
  });
});

describe('checkLoomKeys', () => {
  test('unknown loom.* keys are errors; foreign keys are ignored', () => {
    expect(() => checkLoomKeys({ 'loom.mode': 'bridge', 'com.docker.x': '1', other: '' }, ['loom.mode'], 'network')).not.toThrow();
    const err = errorOf(() => checkLoomKeys({ 'loom.mdoe': 'bridge' }, ['loom.mode'], 'network'));
    expect(err.kind).toBe('invalid');
    expect(err.message).toBe('unknown network option loom.mdoe (loom understands: loom.mode)');
    expect(errorOf(() => checkLoomKeys({ 'loom.x': '' }, [], 'endpoint')).message).toBe('unknown endpoint option loom.x (loom understands: none)');
  });

  test('only the exact "loom." prefix is loom\'s', () => {
    expect(() => checkLoomKeys({ loom: '1', loomx: '1', 'Loom.mode': '1', 'x.loom.y': '1' }, [], 'network')).not.toThrow();
  });
});

describe('parseNetworkSettings', () => {
  test('host_binding_ipv4 must be an IPv4 address', () => {
    expect(parseNetworkSettings({ 'com.docker.network.bridge.host_binding_ipv4': '198.18.0.7' }).hostBinding).toBe('198.18.0.7');
    expect(() => parseNetworkSettings({ 'com.docker.network.bridge.host_binding_ipv4': '::1' })).toThrow(/not an IPv4 address/);
    expect(() => parseNetworkSettings({ 'com.docker.network.bridge.host_binding_ipv4': 'localhost' })).toThrow(/not an IPv4 address/);
  });

  test('defaults', () => {
    expect(parseNetworkSettings({})).toEqual({ mtu: DEFAULT_MTU, icc: true, masquerade: true, hostBinding: '0.0.0.0', rates: {}, mode: 'bridge', explicitMtu: false, gateway: 'loom' });
  });

  test("Docker's bridge keys are honoured; unrelated keys are ignored", () => {
    expect(
      parseNetworkSettings({
        [OPT_BRIDGE_NAME]: 'corp0',
        [OPT_MTU]: '9000',
        [OPT_ICC]: 'false',
        [OPT_MASQUERADE]: '0',
        [OPT_LOOM_MODE]: 'bridge',
        'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
      }),
    ).toEqual({ bridgeName: 'corp0', mtu: 9000, icc: false, masquerade: false, hostBinding: '0.0.0.0', rates: {}, mode: 'bridge', explicitMtu: true, gateway: 'loom' });
  });

  test('an unknown loom.* option is an error', () => {
    const err = errorOf(() => parseNetworkSettings({ 'loom.vni': '42' }));
    expect(err.kind).toBe('invalid');
    expect(err.message).toMatch(/unknown network option loom\.vni/);
  });

  test.each(['Bridge', '', 'vxlan'])('loom.mode=%j is not supported', (mode) => {
    expect(errorOf(() => parseNetworkSettings({ [OPT_LOOM_MODE]: mode })).message).toMatch(/is not supported \(bridge or overlay\)/);
  });

  test('overlay mode and its cluster-wide key', () => {
    expect(parseNetworkSettings({ [OPT_LOOM_MODE]: 'overlay', 'loom.overlay': 'blue-1' })).toMatchObject({ mode: 'overlay', overlayKey: 'blue-1' });
    expect(errorOf(() => parseNetworkSettings({ 'loom.overlay': 'blue' })).message).toMatch(/needs loom.mode=overlay/);
    expect(errorOf(() => parseNetworkSettings({ [OPT_LOOM_MODE]: 'overlay', 'loom.overlay': 'a/b' })).message).toMatch(/must be 1-64/);
  });

  test.each(['br0', 'a', 'my-bridge_1.2', 'x'.repeat(15), 'A.b-C_d', '..a'])('bridge name %j is valid', (name) => {
    expect(parseNetworkSettings({ [OPT_BRIDGE_NAME]: name }).bridgeName).toBe(name);
  });

  test.each(['', '.', '..', 'x'.repeat(16), 'br 0', 'br/0', 'br:0', 'brü', 'br\n0', 'br@0', 'br*'])('bridge name %j is refused', (name) => {
    const err = errorOf(() => parseNetworkSettings({ [OPT_BRIDGE_NAME]: name }));
    expect(err.kind).toBe('invalid');
    expect(err.message).toMatch(/is not a valid interface name/);
  });

  test('bad values name their option', () => {
    expect(errorOf(() => parseNetworkSettings({ [OPT_MTU]: '10' })).message).toMatch(/^option com\.docker\.network\.driver\.mtu: MTU 10/);
    expect(errorOf(() => parseNetworkSettings({ [OPT_ICC]: 'yes' })).message).toMatch(/^option com\.docker\.network\.bridge\.enable_icc:/);
    expect(errorOf(() => parseNetworkSettings({ [OPT_MASQUERADE]: 'no' })).message).toMatch(
      /^option com\.docker\.network\.bridge\.enable_ip_masquerade:/,
    );
  });
});

describe('loom.gateway', () => {
  test('loom (the default) or docker, on bridges and overlays', () => {
    expect(parseNetworkSettings({}).gateway).toBe('loom');
    expect(parseNetworkSettings({ [OPT_LOOM_GATEWAY]: 'loom' }).gateway).toBe('loom');
    expect(parseNetworkSettings({ [OPT_LOOM_GATEWAY]: 'docker' }).gateway).toBe('docker');
    expect(parseNetworkSettings({ [OPT_LOOM_GATEWAY]: 'docker', [OPT_LOOM_MODE]: 'overlay' })).toMatchObject({ gateway: 'docker', mode: 'overlay' });
    // Compatible settings: ICC, MTU, bandwidth limits, masquerade left on.
    expect(parseNetworkSettings({ [OPT_LOOM_GATEWAY]: 'docker', [OPT_ICC]: 'false', [OPT_MTU]: '1400', [OPT_MASQUERADE]: 'true', 'loom.egress_rate': '10mbit' })).toMatchObject({
      gateway: 'docker', icc: false, mtu: 1400, rates: { egressBps: 10e6 },
    });
  });

  test.each(['Docker', 'DOCKER', '', 'bridge', 'gwbridge', 'none', 'true', ' docker'])('loom.gateway=%j is refused, naming both values', (v) => {
    const err = errorOf(() => parseNetworkSettings({ [OPT_LOOM_GATEWAY]: v }));
    expect(err.kind).toBe('invalid');
    expect(err.message).toBe(
      `option loom.gateway: ${JSON.stringify(v)} is not supported (loom: loom's own gateway, NAT and published ports; docker: Docker's docker_gwbridge)`,
    );
  });

  test('docker on an --internal network is refused (an internal network has no gateway); loom is fine there', () => {
    const err = errorOf(() => parseNetworkSettings({ [OPT_LOOM_GATEWAY]: 'docker' }, { internal: true }));
    expect(err.kind).toBe('invalid');
    expect(err.message).toMatch(/^option loom\.gateway=docker cannot be used with --internal/);
    expect(parseNetworkSettings({ [OPT_LOOM_GATEWAY]: 'loom' }, { internal: true }).gateway).toBe('loom');
    expect(parseNetworkSettings({}, { internal: true }).gateway).toBe('loom');
  });

  test('options that only loom\'s own NAT and ports honour are refused with docker, not ignored', () => {
    expect(errorOf(() => parseNetworkSettings({ [OPT_LOOM_GATEWAY]: 'docker', [OPT_HOST_BINDING]: '198.18.0.7' })).message).toMatch(
      /^option com\.docker\.network\.bridge\.host_binding_ipv4 has no effect with loom\.gateway=docker/,
    );
    expect(errorOf(() => parseNetworkSettings({ [OPT_LOOM_GATEWAY]: 'docker', [OPT_MASQUERADE]: 'false' })).message).toMatch(
      /^option com\.docker\.network\.bridge\.enable_ip_masquerade=false has no effect with loom\.gateway=docker/,
    );
  });

  test('is a known loom.* key (the unknown-key message lists it)', () => {
    expect(errorOf(() => parseNetworkSettings({ 'loom.gw': 'docker' })).message).toMatch(/loom understands: .*loom\.gateway/);
  });
});

describe('bandwidth options', () => {
  test('rates in tc units, as bits per second', () => {
    expect(parseRate('k', '20mbit')).toBe(20e6);
    expect(parseRate('k', '1.5gbit')).toBe(1.5e9);
    expect(parseRate('k', '100kbps')).toBe(800e3);
    expect(parseNetworkSettings({ 'loom.egress_rate': '10mbit', 'loom.ingress_rate': '2mbit' }).rates).toEqual({ egressBps: 10e6, ingressBps: 2e6 });
  });
  test.each(['fast', '10', '-5mbit', '10 mbit', '1bit', '200gbit', '1e9bit'])('refuses %s', (v) => {
    expect(() => parseRate('loom.egress_rate', v)).toThrow(/loom.egress_rate/);
  });
  test('tbf burst: 10 ms of traffic, at least 16 KiB', () => {
    expect(burstBytes(1e6)).toBe(16 * 1024);
    expect(burstBytes(1e9)).toBe(1_250_000);
  });
});
