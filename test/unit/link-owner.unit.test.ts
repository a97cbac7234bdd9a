/** Owner marks and temporary link names (pure). */
import { INSTANCE_PATTERN, isOwnTempName, ownerMark, ownerOf, tempLinkName } from '../../driver/kernel/link-owner';

const ME = ownerMark('3fa2b4c5d6e7');

test('a link is this loomd\'s only with exactly its mark; another loomd\'s mark is foreign; anything else is nobody\'s', () => {
  expect(ME).toBe('loom:3fa2b4c5d6e7');
  expect(ownerOf(ME, ME)).toBe('self');
  expect(ownerOf('loom:0123456789ab', ME)).toBe('foreign');
  for (const other of [undefined, '', 'uplink to rack 3', 'loom:', 'loom:3FA2B4C5D6E7', 'loom:3fa2b4c5d6e7 ', 'xloom:3fa2b4c5d6e7']) {
    expect([other, ownerOf(other, ME)]).toEqual([other, 'none']);
  }
});

test('instance ids are short and plain', () => {
  expect(INSTANCE_PATTERN.test('3fa2b4c5d6e7')).toBe(true);
  for (const bad of ['', 'abc', 'ABCDEF', 'a b c d', 'a'.repeat(17), 'abc-def']) expect(() => ownerMark(bad)).toThrow(/invalid loom instance id/);
});

test('temporary names: valid interface names, derived from the mark and the final name', () => {
  const t = tempLinkName(ME, 'lm-0123456789ab');
  expect(t).toMatch(/^lt[0-9a-f]{13}$/);
  expect(t.length).toBeLessThanOrEqual(15);
  expect(tempLinkName(ME, 'lm-0123456789ab')).toBe(t);
  expect(tempLinkName(ownerMark('0123456789ab'), 'lm-0123456789ab')).not.toBe(t);
  expect(tempLinkName(ME, 'lv0123456789ab')).not.toBe(t);
});

test('a loomd recognises its own temporary names, not another instance\'s nor final names', () => {
  const other = ownerMark('0123456789ab');
  for (const final of ['lm-0123456789ab', 'lv0123456789ab', 'lc0123456789ab', 'lx0123456789ab']) {
    expect(isOwnTempName(ME, tempLinkName(ME, final))).toBe(true);
    expect(isOwnTempName(other, tempLinkName(ME, final))).toBe(false);
    expect(isOwnTempName(ME, final)).toBe(false);
  }
  // The check is not the stem's: flipping one digit of either part fails it.
  const t = tempLinkName(ME, 'lm-0123456789ab');
  const flip = (s: string, i: number): string => s.slice(0, i) + (s[i] === '0' ? '1' : '0') + s.slice(i + 1);
  expect(isOwnTempName(ME, flip(t, 3))).toBe(false);
  expect(isOwnTempName(ME, flip(t, 14))).toBe(false);
});
