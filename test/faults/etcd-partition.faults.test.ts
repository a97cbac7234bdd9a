/**
 * One host cut off from etcd: in host C's namespace an nftables rule drops traffic to and
 * from etcd's client port for 60 s (10 minutes with LOOM_FAULT_LONG=1); etcd itself stays
 * healthy and the other hosts keep using it. C's lease expires meanwhile: A and B must keep
 * C's endpoints (the data plane between the hosts still works). Same requirements as
 * etcd-hung.faults.test.ts; after the rule is removed, a container started on C is
 * reachable from A within 15 s.
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

test("host C partitioned from etcd: local work unaffected everywhere, C's containers stay reachable; converges after the rule goes", async () => {
  const C = o.hosts[2];
  const r = await runOutage(o, 'etcd-partition', {
    inject: () => o.c.partitionFromEtcd(C),
    restore: () => o.c.healPartition(C),
  });
  expectOutageLimits(r);
});
