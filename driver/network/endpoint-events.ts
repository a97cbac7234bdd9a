/**
 * What the endpoint service tells others about containers joining and leaving (service
 * discovery listens: driver/dns/). Listeners run synchronously inside the plugin call, under
 * the network's lock, after the change is stored: they must only note the change and do
 * their work later (never call Docker or enter a namespace there).
 */
import type { EndpointRecord, NetworkRecord } from '../model/types';

export interface EndpointListener {
  /** `ep` was joined to the sandbox `sandboxKey` (Join). */
  joined?(net: NetworkRecord, ep: EndpointRecord, sandboxKey: string): void;
  /** `ep` left the sandbox `sandboxKey` (Leave); the sandbox may be about to go. */
  left?(net: NetworkRecord, ep: EndpointRecord, sandboxKey: string): void;
}

/** The endpoint service's events; listeners subscribe with `listen` when they are built. */
export class EndpointEvents implements Required<EndpointListener> {
  private readonly listeners: EndpointListener[] = [];

  listen(l: EndpointListener): void {
    this.listeners.push(l);
  }

  joined(net: NetworkRecord, ep: EndpointRecord, sandboxKey: string): void {
    for (const l of this.listeners) l.joined?.(net, ep, sandboxKey);
  }

  left(net: NetworkRecord, ep: EndpointRecord, sandboxKey: string): void {
    for (const l of this.listeners) l.left?.(net, ep, sandboxKey);
  }
}
