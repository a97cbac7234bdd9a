/**
 * driver/kernel/netlink-lib.ts imports the parts of `netlink` loomd uses from the package's
 * own modules (not its index, which also loads Wi-Fi and WireGuard definitions): they must be
 * the very objects the package's index exports, or a netlink upgrade moved them.
 */
import * as index from 'netlink';
import * as lib from '../../driver/kernel/netlink-lib';

test('every export of netlink-lib is the object the netlink index exports under that name', () => {
  const names = Object.keys(lib);
  expect(names.sort()).toEqual(['AttrStream', 'FlagsNew', 'RtNetlinkSocket', 'createRtNetlink', 'ifla', 'rt']);
  for (const name of ['AttrStream', 'FlagsNew', 'RtNetlinkSocket', 'createRtNetlink'] as const) expect(lib[name]).toBe(index[name]);
  // The namespaces: the same members, each the same object.
  for (const ns of ['ifla', 'rt'] as const) {
    expect(Object.keys(lib[ns]).sort()).toEqual(Object.keys(index[ns]).sort());
    for (const k of Object.keys(index[ns])) expect((lib[ns] as Record<string, unknown>)[k]).toBe((index[ns] as Record<string, unknown>)[k]);
  }
});
