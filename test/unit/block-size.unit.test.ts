/** Block size of shared pools: the rule for new pools and the legacy length of older claims. */
import { LEGACY_BLOCK_LEN, blockLenOf, blockOf, chooseBlockLen } from '../../ipam-driver/core/block-size';
import { formatPrefix, parseIp, parsePrefix } from '../../lib/prefix';

describe('chooseBlockLen: about 16 blocks per pool, between /26 (/116) and 4 addresses', () => {
  test.each([
    ['198.18.0.0/16', 26, 1024],
    ['198.18.0.0/20', 26, 64],
    ['198.18.0.0/22', 26, 16],
    ['198.18.0.0/23', 27, 16],
    ['198.18.72.0/24', 28, 16],
    ['198.18.72.0/25', 29, 16],
    ['198.18.72.0/26', 30, 16],
    ['198.18.72.0/27', 30, 8],
    ['198.18.72.0/28', 30, 4],
    ['198.18.72.0/30', 30, 1],
    ['198.18.72.0/31', 31, 1],
    ['198.18.72.7/32', 32, 1],
    ['fd00:10::/64', 116, 2 ** 52],
    ['fd00:10::/112', 116, 16],
    ['fd00:10::/104', 116, 4096],
    ['fd00:10::/120', 124, 16],
    ['fd00:10::/124', 126, 4],
  ])('%s -> /%i (%i blocks)', (pool, len, blocks) => {
    const p = parsePrefix(pool);
    expect(chooseBlockLen(p)).toBe(len);
    expect(2 ** (len - p.len)).toBe(blocks);
  });
});

describe('blockLenOf: the recorded length, else the legacy one', () => {
  const p24 = parsePrefix('198.18.72.0/24');
  test('a valid recorded length wins', () => expect(blockLenOf(p24, 28)).toBe(28));
  test('no recorded length (a claim of an older loom): /26, /116', () => {
    expect(blockLenOf(p24, undefined)).toBe(LEGACY_BLOCK_LEN[4]);
    expect(blockLenOf(parsePrefix('fd00:10::/64'), undefined)).toBe(LEGACY_BLOCK_LEN[6]);
  });
  test('never larger than the pool', () => expect(blockLenOf(parsePrefix('198.18.72.0/28'), undefined)).toBe(28));
  test.each([12, 33, 27.5, -1])('an invalid recorded length (%p) falls back to the legacy one', (len) => expect(blockLenOf(p24, len)).toBe(26));
});

test('blockOf finds the block holding an address', () => {
  const p = parsePrefix('198.18.72.0/24');
  expect(formatPrefix(blockOf(p, 28, parseIp('198.18.72.37').value))).toBe('198.18.72.32/28');
  expect(formatPrefix(blockOf(p, 26, parseIp('198.18.72.255').value))).toBe('198.18.72.192/26');
  expect(() => blockOf(p, 28, parseIp('198.18.73.1').value)).toThrow(RangeError);
});
