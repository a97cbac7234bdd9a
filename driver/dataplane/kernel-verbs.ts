/**
 * What the data plane needs of the kernel layer, as narrow types: the netlink verbs, the
 * sysctls and the traffic shaper its steps use. The daemon hands it the real ones
 * (NetlinkKernel, a Sysctl rooted at --proc-sys, TrafficControl); unit tests an in-memory
 * fake (test/unit/fake-kernel.ts).
 */
import type { Logger } from '../../lib/logger';
import type { LinkInfo } from '../kernel/netlink-codec';
import type { NetlinkKernel } from '../kernel/netlink-kernel';
import { LinkOwner, ownerOf } from '../kernel/link-owner';
import type { Sysctl } from '../kernel/sysctl';
import type { TrafficControl } from '../kernel/tc';

export type DataPlaneKernel = Pick<
  NetlinkKernel,
  | 'mark'
  | 'findLink'
  | 'listAddresses'
  | 'vxlanInfo'
  | 'createBridge'
  | 'createVethPair'
  | 'createVxlan'
  | 'createIfb'
  | 'setOwnerMark'
  | 'deleteOwnedLink'
  | 'setMtu'
  | 'setUp'
  | 'setDown'
  | 'setMaster'
  | 'setPortIsolated'
  | 'addAddress'
  | 'delAddress'
  | 'moveToNetns'
>;

export type DataPlaneSysctl = Pick<Sysctl, 'read' | 'write' | 'readIface' | 'writeIface'>;

export type Shaper = Pick<TrafficControl, 'shapeEgress' | 'shapeIngressVia'>;

/** Everything a step may use. */
export interface DataPlaneDeps {
  kernel: DataPlaneKernel;
  sysctl: DataPlaneSysctl;
  tc: Shaper;
  log: Logger;
}

/** Whose `link` is, seen from this loomd. */
export function ownerOfLink(kernel: Pick<DataPlaneKernel, 'mark'>, link: LinkInfo): LinkOwner {
  return ownerOf(link.alias, kernel.mark ?? '');
}
