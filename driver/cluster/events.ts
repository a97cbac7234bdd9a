/** What the cluster agent tells the rest of loomd (the coordinator listens). */
import type { OverlayRecord, RemoteEndpoint } from './records';

export interface AgentCallbacks {
  onRemoteEndpoint?(ep: RemoteEndpoint, present: boolean): void;
  onOverlay?(rec: OverlayRecord | undefined, key: string): void;
  onReservation?(subnet: string, ip: string, value: { host: string; state: string } | undefined): void;
  /** A borrow request appeared (or is still there after a resync): `key` under /loom/v1/loans/. */
  onLoanRequest?(key: string): void;
}

/**
 * The agent's events, handed to it at construction; whoever reacts to them (the coordinator)
 * subscribes with `listen` when it is constructed. Listeners run in subscription order.
 */
export class ClusterEvents implements Required<AgentCallbacks> {
  private readonly listeners: AgentCallbacks[] = [];

  listen(l: AgentCallbacks): void {
    this.listeners.push(l);
  }

  onRemoteEndpoint(ep: RemoteEndpoint, present: boolean): void {
    for (const l of this.listeners) l.onRemoteEndpoint?.(ep, present);
  }
  onOverlay(rec: OverlayRecord | undefined, key: string): void {
    for (const l of this.listeners) l.onOverlay?.(rec, key);
  }
  onReservation(subnet: string, ip: string, value: { host: string; state: string } | undefined): void {
    for (const l of this.listeners) l.onReservation?.(subnet, ip, value);
  }
  onLoanRequest(key: string): void {
    for (const l of this.listeners) l.onLoanRequest?.(key);
  }
}
