/**
 * When another host's endpoint is removed from this host: at once (after a settle delay)
 * when its host unpublished it; only after the grace when the host's lease ended (it may
 * only be cut off from etcd); never when the host returns and publishes it again; and
 * after the republish window when the host returned without it.
 */
import type { RemoteEndpoint } from '../../driver/cluster/agent';
import { RemoteEndpoints } from '../../driver/cluster/remote-endpoints';

const ep = (id: string, host = 'h2'): RemoteEndpoint => ({ overlay: 'red', host, endpointId: id, mac: '02:00:00:00:00:01', ip: '198.18.210.9', vtep: '198.18.0.2' });

function setup() {
  let now = 1_000_000;
  const hosts = new Set(['h2']);
  const changes: Array<[string, boolean]> = [];
  const r = new RemoteEndpoints((h) => hosts.has(h), (e, present) => changes.push([e.endpointId, present]), { graceMs: 60_000, settleMs: 1_000, republishMs: 10_000 }, () => now);
  return { r, hosts, changes, tick: (ms: number) => { now += ms; r.sweep(); } };
}

test('an endpoint its live host unpublished goes after the settle delay', () => {
  const { r, changes, tick } = setup();
  r.put(ep('e1'));
  r.deleted('red', 'h2', 'e1');
  tick(500);
  expect(r.get('red', 'h2', 'e1')).toBeDefined();
  tick(600);
  expect(r.get('red', 'h2', 'e1')).toBeUndefined();
  expect(changes).toEqual([['e1', true], ['e1', false]]);
  expect(r.byOverlay.has('red')).toBe(false);
});

test("a host whose lease ended keeps its endpoints for the grace, then loses them", () => {
  const { r, hosts, changes, tick } = setup();
  r.put(ep('e1'));
  hosts.delete('h2'); // its host key went in the same revision
  r.deleted('red', 'h2', 'e1');
  for (let i = 0; i < 59; i++) tick(1_000);
  expect(r.get('red', 'h2', 'e1')).toBeDefined();
  expect(r.retained).toBe(1);
  tick(1_500);
  expect(r.get('red', 'h2', 'e1')).toBeUndefined();
  expect(changes).toEqual([['e1', true], ['e1', false]]);
});

test('a host that comes back and publishes again never loses its entries (etcd revoked every lease on its return)', () => {
  const { r, hosts, changes, tick } = setup();
  r.put(ep('e1'));
  hosts.delete('h2');
  r.deleted('red', 'h2', 'e1');
  tick(30_000);
  hosts.add('h2');
  tick(1_000);
  r.put(ep('e1')); // re-published under the new lease
  tick(20_000);
  expect(r.get('red', 'h2', 'e1')).toBeDefined();
  expect(changes.filter(([, p]) => !p)).toEqual([]);
});

test('a host that came back without an endpoint loses it after the republish window', () => {
  const { r, hosts, changes, tick } = setup();
  r.put(ep('e1'));
  r.put(ep('e2'));
  hosts.delete('h2');
  r.deleted('red', 'h2', 'e1');
  r.deleted('red', 'h2', 'e2');
  tick(5_000);
  hosts.add('h2');
  r.put(ep('e2'));
  for (let i = 0; i < 9; i++) tick(1_000);
  expect(r.get('red', 'h2', 'e1')).toBeDefined();
  tick(2_500); // the window counts from the first sweep that saw the host back
  expect(r.get('red', 'h2', 'e1')).toBeUndefined();
  expect(r.get('red', 'h2', 'e2')).toBeDefined();
  expect(changes.filter(([, p]) => !p)).toEqual([['e1', false]]);
});

test('a resync retires what the listing lacks and applies the rest', () => {
  const { r, hosts, tick } = setup();
  r.put(ep('e1'));
  r.put(ep('e3', 'h3'));
  r.resync([ep('e1')]); // h3 is not registered: its endpoint is retained
  tick(2_000);
  expect(r.get('red', 'h3', 'e3')).toBeDefined();
  expect(hosts.has('h3')).toBe(false);
  tick(60_000);
  expect(r.get('red', 'h3', 'e3')).toBeUndefined();
  expect(r.get('red', 'h2', 'e1')).toBeDefined();
});
