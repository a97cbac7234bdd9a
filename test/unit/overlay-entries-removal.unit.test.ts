/**
 * OverlayEntries' removal path skips the full computation when no other remote endpoint shares
 * the removed one's MAC or addresses. It must program exactly what the full computation did.
 */
import { silentLogger } from '../../lib/logger';
import { KeyedMutex } from '../../lib/keyed-mutex';
import type { ClusterAgent } from '../../driver/cluster/agent';
import { OverlayEntries, VxlanEntriesKernel } from '../../driver/cluster/overlay-entries';
import { preferLive } from '../../driver/cluster/overlay-plan';
import type { RemoteEndpoint } from '../../driver/cluster/records';
import type { NetworkRecord } from '../../driver/model/types';
import type { NetworkLookup } from '../../driver/network/network-table';
import { seeded } from '../helpers/random';

type Op = string;

function recorder(ops: Op[]): VxlanEntriesKernel {
  return {
    listFdb: async () => [],
    listNeigh: async () => [],
    addFdb: async (_d, e) => void ops.push(`addFdb ${e.mac} ${e.dst}`),
    delFdb: async (_d, e) => void ops.push(`delFdb ${e.mac} ${e.dst}`),
    addNeigh: async (_d, e) => void ops.push(`addNeigh ${e.ip} ${e.mac}`),
    delNeigh: async (_d, ip) => void ops.push(`delNeigh ${ip}`),
  };
}

/** The removal as computed before the shortcut (every remote endpoint through preferLive). */
function reference(remote: RemoteEndpoint[], retiring: Set<RemoteEndpoint>, ep: RemoteEndpoint): Op[] {
  const ops: Op[] = [];
  const others = preferLive(remote, (o) => retiring.has(o)).filter((o) => o.host !== ep.host || o.endpointId !== ep.endpointId);
  if (!others.some((o) => o.mac === ep.mac && o.vtep === ep.vtep)) ops.push(`delFdb ${ep.mac} ${ep.vtep}`);
  for (const ip of [ep.ip, ep.ip6]) {
    if (!ip) continue;
    const holder = others.find((o) => o.ip === ip || o.ip6 === ip);
    ops.push(holder ? `addNeigh ${ip} ${holder.mac}` : `delNeigh ${ip}`);
  }
  return ops;
}

test('removal: the same entries as the full computation, with and without endpoints sharing a MAC or address', async () => {
  const rand = seeded(18);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const net = { id: 'n1', overlay: { key: 'ov', vni: 1, vxlan: 'lxov', local: '198.18.0.1', origin: 'h1' } } as unknown as NetworkRecord;
  const locks = new KeyedMutex();
  const lookup: NetworkLookup = { list: () => [{ record: net, endpoints: [] }], get: () => net, byOverlay: () => net, withNetworkLock: (id, fn) => locks.run(id, fn) };
  let shortcuts = 0;
  for (let round = 0; round < 300; round++) {
    const n = 1 + Math.floor(rand() * 8);
    const remote: RemoteEndpoint[] = [];
    for (let i = 0; i < n; i++) {
      remote.push({
        overlay: 'ov',
        host: pick(['h2', 'h3', 'h4']),
        endpointId: `e${i}`,
        mac: pick(['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03', `02:00:00:00:01:${String(i).padStart(2, '0')}`]),
        ...(rand() < 0.9 ? { ip: pick(['198.18.5.1', '198.18.5.2', `198.18.6.${i + 1}`]) } : {}),
        ...(rand() < 0.3 ? { ip6: pick(['fd00:18::1', `fd00:18::${i + 10}`]) } : {}),
        vtep: pick(['198.18.0.2', '198.18.0.3']),
      });
    }
    const retiring = new Set(remote.filter(() => rand() < 0.3));
    // The removed endpoint is already gone from the map when the agent calls back (RemoteEndpoints.remove).
    const gone = remote.splice(Math.floor(rand() * remote.length), 1)[0] as RemoteEndpoint;
    const agent = {
      remote: new Map([['ov', new Map(remote.map((e) => [`${e.host}/${e.endpointId}`, e]))]]),
      endpoints: { isRetiring: (e: RemoteEndpoint) => retiring.has(e) },
    } as unknown as ClusterAgent;
    const ops: Op[] = [];
    await new OverlayEntries(agent, lookup, recorder(ops), silentLogger()).program(net, gone, false);
    expect(ops).toEqual(reference(remote, retiring, gone));
    const related = remote.some((o) => o.mac === gone.mac || [gone.ip, gone.ip6].some((ip) => ip && (o.ip === ip || o.ip6 === ip)));
    if (!related) shortcuts++;
  }
  // Both paths were exercised.
  expect(shortcuts).toBeGreaterThan(20);
  expect(shortcuts).toBeLessThan(280);
});
