/**
 * The policy applier on the real nft (throwaway namespace): a full apply, then set-only
 * applies when containers come and go, the drift check clean after each (no false drift from
 * nft's spelling), drift found when a chain is flushed or a set emptied by hand and repaired by
 * a full apply, both families, and the tables gone when the last policy is.
 */
import { runCommand } from '../../driver/kernel/command';
import { PolicyFirewall } from '../../driver/firewall/policy-firewall';
import { compilePolicies } from '../../driver/policy/compile';
import { silentLogger } from '../../lib/logger';
import { ENDPOINTS, NETWORKS, THREE_TIER, ep } from '../unit/policy-fixture';

const INSTANCE = 'kt0000000011';
const TABLE = `loom-${INSTANCE}-policy`;

afterAll(async () => {
  for (const f of ['inet', 'bridge']) await runCommand('nft', ['delete', 'table', f, TABLE]);
});

test.each([[['inet'] as const], [['inet', 'bridge'] as const]])('apply, sets only, drift and repair (%j)', async (families) => {
  const fw = new PolicyFirewall(silentLogger(), INSTANCE, () => [...families]);
  const model = compilePolicies(THREE_TIER, NETWORKS, ENDPOINTS);
  expect(await fw.apply(model)).toBe('table');
  expect(await fw.check(model)).toEqual([]);

  const more = compilePolicies(THREE_TIER, NETWORKS, [...ENDPOINTS, ep('api2', { tier: 'api' }, '198.18.10.9', undefined, 'fd00:1::9')]);
  expect(await fw.apply(more)).toBe('sets');
  expect(await fw.check(more)).toEqual([]);
  expect((await fw.check(model)).join('\n')).toMatch(/set p1-in0-4 holds 2 element\(s\), 1 expected/);
  expect((await runCommand('nft', ['list', 'set', 'inet', TABLE, 'p1-in0-4'])).stdout).toContain('198.18.10.9');

  await runCommand('nft', ['flush', 'chain', 'inet', TABLE, 'ingress-rules']);
  await runCommand('nft', ['flush', 'set', families.at(-1) as string, TABLE, 'in-sel4']);
  const drift = await fw.check(more);
  expect(drift.join('\n')).toMatch(/table inet \S+: rules differ/);
  expect(drift.join('\n')).toMatch(new RegExp(`table ${families.at(-1)} \\S+: set in-sel4 holds 0`));
  expect(await fw.apply(more, true)).toBe('table');
  expect(await fw.check(more)).toEqual([]);

  const counters = await fw.counters();
  expect(Object.keys(counters)).toEqual(expect.arrayContaining(['db-ingress ingress[0]', 'ingress default deny', 'egress default deny']));

  const none = compilePolicies([], NETWORKS, ENDPOINTS);
  expect(await fw.apply(none)).toBe('table');
  expect(await fw.check(none)).toEqual([]);
  for (const f of ['inet', 'bridge']) expect((await runCommand('nft', ['list', 'table', f, TABLE])).code).not.toBe(0);
  expect(await fw.apply(none)).toBe('none');
});
