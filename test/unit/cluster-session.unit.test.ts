/**
 * The cluster session on the in-memory store: one reconnect loop whatever fires (single
 * flight), bounded attempts while etcd is down (no spin), the lease granted once when
 * etcd returns, watches re-created with a full resync after etcd cancels them, and a
 * hung etcd found by the keep-alive heartbeat, after which calls fail at once.
 */
import { ClusterHealth } from '../../lib/cluster/health';
import { GuardedStore } from '../../lib/cluster/guarded-store';
import { MemoryCluster } from '../../driver/cluster/memory-store';
import { ClusterSession } from '../../driver/cluster/session';
import type { KeyValue, WatchEvent } from '../../lib/cluster/store';
import { silentLogger } from '../../lib/logger';

const log = silentLogger();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const until = async (what: string, fn: () => boolean, ms = 3_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(5);
  }
};

function session(c: MemoryCluster, opts: { ttlS?: number; onLeaseGranted?: () => void } = {}) {
  const health = new ClusterHealth(log);
  const raw = c.view();
  const s = new ClusterSession(raw, health, log, { ttlS: opts.ttlS ?? 3, onLeaseGranted: opts.onLeaseGranted ?? (() => undefined), backoff: { initialMs: 20, maxMs: 100 } });
  const seen = new Map<string, unknown>();
  let resyncs = 0;
  s.addWatch<unknown>({
    prefix: '/loom/v1/t/',
    onResync: (all: Array<KeyValue<unknown>>) => {
      resyncs++;
      seen.clear();
      for (const kv of all) seen.set(kv.key, kv.value);
    },
    onEvent: (ev: WatchEvent<unknown>) => (ev.type === 'put' ? seen.set(ev.key, ev.value) : seen.delete(ev.key)),
  });
  return { s, health, raw, seen, resyncs: () => resyncs };
}

test('one loop whatever fires: a thousand kicks while etcd is down make a bounded number of attempts', async () => {
  const c = new MemoryCluster();
  c.down = true;
  const { s, health } = session(c);
  s.start();
  for (let i = 0; i < 1_000; i++) s.kick(i % 2 ? 'lease lost' : 'watch error', i % 3 === 0);
  await sleep(600);
  // Backoff 20..100 ms (±20 %): ~10 attempts in 600 ms, each one grant call (kicks that say
  // "recovery" may cut a sleep short once each, not start loops).
  expect(s.stats.attempts).toBeLessThan(40);
  expect(c.calls).toBeLessThan(60);
  expect(health.state).toBe('down');
  expect(s.reconnecting).toBe(true);
  await s.stop(false);
});

test('when etcd returns the lease is granted once and the watch resynced', async () => {
  const c = new MemoryCluster();
  c.down = true;
  let grants = 0;
  const { s, health, seen } = session(c, { onLeaseGranted: () => grants++ });
  s.start();
  await sleep(200);
  c.down = false;
  c.write('/loom/v1/t/a', 1, undefined);
  await until('up', () => health.state === 'up' && !s.reconnecting);
  expect(grants).toBe(1);
  expect(s.leaseId).toBeDefined();
  expect(seen.get('/loom/v1/t/a')).toBe(1);
  c.write('/loom/v1/t/b', 2, undefined);
  expect(seen.get('/loom/v1/t/b')).toBe(2);
  await s.stop(false);
});

test('a watch etcd cancels (compaction) is re-created with a full resync; nothing is missed', async () => {
  const c = new MemoryCluster();
  const { s, seen, resyncs } = session(c);
  s.start();
  await until('watching', () => resyncs() === 1 && !s.reconnecting);
  c.write('/loom/v1/t/a', 1, undefined);
  c.compact();
  c.cancelWatches();
  // Written while no watch runs: only a new listing can show it.
  c.write('/loom/v1/t/b', 2, undefined);
  c.remove('/loom/v1/t/a');
  await until('resynced', () => resyncs() === 2 && !s.reconnecting);
  expect([...seen.keys()]).toEqual(['/loom/v1/t/b']);
  c.write('/loom/v1/t/c', 3, undefined);
  expect(seen.get('/loom/v1/t/c')).toBe(3);
  await s.stop(false);
});

test('a lease etcd dropped is granted again and reported once', async () => {
  const c = new MemoryCluster();
  let grants = 0;
  const { s } = session(c, { ttlS: 1, onLeaseGranted: () => grants++ });
  s.start();
  await until('first lease', () => grants === 1 && !s.reconnecting);
  const first = s.leaseId as string;
  c.expire(first);
  await until('second lease', () => grants === 2, 3_000);
  expect(s.leaseId).not.toBe(first);
  await sleep(800); // several keep-alive ticks: no more grants
  expect(grants).toBe(2);
  await s.stop(false);
});

test('a hung etcd is found by the keep-alive heartbeat; calls then fail at once, naming etcd', async () => {
  const c = new MemoryCluster();
  const { s, health, raw } = session(c, { ttlS: 1 });
  s.start();
  await until('up', () => health.state === 'up' && !s.reconnecting);
  c.hung = true;
  await until('down', () => health.state === 'down', 3_000);
  const store = new GuardedStore(raw, health, () => s.leaseId);
  const get = jest.spyOn(raw, 'get');
  const t0 = Date.now();
  await expect(store.get('/loom/v1/t/x')).rejects.toThrow(/cluster store \(etcd\) is unreachable/);
  expect(get).not.toHaveBeenCalled(); // failed before any call went out, not by a deadline (1 s)
  expect(Date.now() - t0).toBeLessThan(500);
  get.mockRestore();
  c.hung = false;
  // An attempt in flight ends by its deadline (2 s); the next one, on a fresh client, succeeds.
  await until('up again', () => health.state === 'up', 5_000);
  await expect(store.get('/loom/v1/t/x')).resolves.toBeUndefined();
  await s.stop(false);
}, 15_000);

test('stop ends the loop and the heartbeat, and gives the lease back', async () => {
  const c = new MemoryCluster();
  const { s } = session(c);
  s.start();
  await until('lease', () => s.leaseId !== undefined && !s.reconnecting);
  const lease = s.leaseId as string;
  await s.stop();
  expect(c.leases.has(lease)).toBe(false);
  const calls = c.calls;
  await sleep(1_200);
  expect(c.calls).toBe(calls);
});
