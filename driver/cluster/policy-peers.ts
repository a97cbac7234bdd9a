/**
 * Other hosts' overlay endpoints as the policy compiler sees them (network policy across
 * hosts, docs/policy.md): each remote endpoint of an overlay this host has, under the local
 * network id of that overlay, with the labels its host published. An endpoint whose labels
 * were not published (not learned yet, or an older loomd) has `labels` undefined: it is in no
 * peer set (fail closed); its own host holds it pending.
 */
import { stripLength } from '../../lib/prefix';
import type { PolicyEndpoint } from '../policy/compile';
import type { RemoteEndpoint } from './records';

/** `overlays`: local network id by overlay key (the overlays this host has). */
export function remotePolicyEndpoints(overlays: ReadonlyMap<string, string>, remote: ReadonlyMap<string, ReadonlyMap<string, RemoteEndpoint>>): PolicyEndpoint[] {
  const out: PolicyEndpoint[] = [];
  for (const [key, networkId] of overlays) {
    for (const ep of remote.get(key)?.values() ?? []) {
      out.push({
        id: `${ep.host}/${ep.endpointId}`,
        networkId,
        ...(ep.labels ? { labels: { ...ep.labels } } : {}),
        container: ep.names?.[0] ? `${ep.names[0]}@${ep.host}` : `${ep.endpointId.slice(0, 12)}@${ep.host}`,
        addresses4: ep.ip ? [stripLength(ep.ip)] : [],
        addresses6: ep.ip6 ? [stripLength(ep.ip6)] : [],
        remote: true,
      });
    }
  }
  return out;
}
