/** Owner marks and temporary link names (pure). */
import { INSTANCE_PATTERN, ownerMark, ownerOf, tempLinkName } from '../../driver/kernel/link-owner';

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
