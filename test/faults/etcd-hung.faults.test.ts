/**
 * etcd hung: every member SIGSTOPped (connections stay open, nothing answers) for 60 s
 * (10 minutes with LOOM_FAULT_LONG=1). Meanwhile every Docker call on every host answers
 * within 1 s, a local bridge network is created and used on host A, the overlay
 * containers keep pinging across hosts, and loomd stays under 150 MB; after SIGCONT a
 * container started on C is reachable from A within 15 s. See test/helpers/etcd-faults.ts.
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

test('all etcd members hung: local work unaffected, overlay keeps forwarding, memory bounded; converges after SIGCONT', async () => {
  const r = await runOutage(o, 'etcd-hung', {
    inject: async () => o.c.pauseEtcd(),
    restore: async () => o.c.resumeEtcd(),
  });
  expectOutageLimits(r);
});
