/**
 * etcd down: every member stopped (SIGTERM, SIGKILL for one of them) for 60 s (10 minutes
 * with LOOM_FAULT_LONG=1), then restarted on the same data directories with
 * --initial-cluster-state existing. Same requirements as etcd-hung.faults.test.ts.
 */
import { FAULT_MS, Outage, expectOutageLimits, overlayCluster, runOutage } from '../helpers/etcd-faults';

jest.setTimeout(FAULT_MS + 300_000);

let o: Outage;
beforeAll(async () => {
  o = await overlayCluster();
});
afterAll(async () => {
  await o?.c.destroy();
});

test('all etcd members stopped: local work unaffected, overlay keeps forwarding, memory bounded; converges after the restart', async () => {
  const r = await runOutage(o, 'etcd-down', {
    inject: async () => {
      for (const [i, m] of o.c.etcd.entries()) await o.c.stopEtcd(m, i === 0 ? 'SIGKILL' : 'SIGTERM');
    },
    restore: async () => {
      for (const m of o.c.etcd) o.c.startEtcd(m, { existing: true });
    },
  });
  expectOutageLimits(r);
});
