/**
 * The parts of the `netlink` package loomd uses, imported from the package's own modules
 * rather than from its index: the index also loads the package's nl80211 (Wi-Fi), WireGuard
 * and generic-netlink definitions, which loomd never uses and which were about half of the
 * package's load time, paid on every start before the first real call. A unit test checks
 * that these are the very objects the index exports, so a netlink upgrade that moves them
 * fails there, not in production.
 */
export { FlagsNew } from 'netlink/dist/constants';
export { AttrStream } from 'netlink/dist/structs';
export type { StreamData } from 'netlink/dist/structs';
export { createRtNetlink, RtNetlinkSocket } from 'netlink/dist/rt/rt';
export * as rt from 'netlink/dist/rt/structs';
export * as ifla from 'netlink/dist/rt/ifla';
