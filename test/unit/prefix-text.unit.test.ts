/** The two text helpers of lib/prefix.ts: stripLength (only the "/len" goes) and canonicalIp (loom's spelling). */
import { errorOf } from './error-of';
import { canonicalIp, stripLength } from '../../lib/prefix';

describe('stripLength', () => {
  test.each([
    ['198.18.10.7/24', '198.18.10.7'],
    ['198.18.10.7', '198.18.10.7'],
    ['fd00::5/64', 'fd00::5'],
    ['FD00:0::5/64', 'FD00:0::5'], // the spelling is kept: only the length goes
    ['', ''],
  ])('%j -> %j', (text, out) => {
    expect(stripLength(text)).toBe(out);
  });
});

describe('canonicalIp', () => {
  test.each([
    ['198.18.10.7/24', '198.18.10.7'],
    ['198.18.10.7', '198.18.10.7'],
    ['FD00:0::5/64', 'fd00::5'],
    ['fd00:0000:0000:0000:0000:0000:0000:0001', 'fd00::1'],
    ['::ffff:198.18.0.1', '::ffff:c612:1'],
  ])('%j -> %j', (text, out) => {
    expect(canonicalIp(text)).toBe(out);
  });

  test.each(['', 'nope', '198.18.10.300', '198.18.10.7/33', 'fe80::1%eth0'])('%j is refused as an invalid address', (text) => {
    const e = errorOf(() => canonicalIp(text));
    expect(e.kind).toBe('invalid');
    expect(e.message).toMatch(/^invalid address /);
  });
});
