/** Address and route verbs: addresses on links (idempotent), the main table's prefixes, default routes. */
import { FlagsNew, rt } from './netlink-lib';
import type { Family } from '../../lib/prefix';
import { bitsOf, formatCidr, maskOf, parseIpMaybeCidr } from '../../lib/prefix';
import type { LinkVerbs } from './links';
import type { NetlinkChannel } from './netlink-channel';
import { AF_INET, AF_INET6, AddressInfo, RT_TABLE_MAIN, RouteInfo, bytesToBig, ipBytes, kernelError } from './netlink-codec';

const afOf = (family: Family): number => (family === 4 ? AF_INET : AF_INET6);
const familyOf = (af: number | undefined): Family | undefined => (af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined);

export class AddressVerbs {
  constructor(
    private readonly ch: NetlinkChannel,
    private readonly links: LinkVerbs,
  ) {}

  async listAddresses(): Promise<AddressInfo[]> {
    const msgs = await this.ch.call('list addresses', (s) => s.getAddresses());
    const out: AddressInfo[] = [];
    for (const m of msgs) {
      const fam = familyOf(m.data.family);
      const addr = m.attrs.address ?? m.attrs.local;
      if (!fam || !addr) continue;
      out.push({ index: m.data.index ?? 0, family: fam, cidr: formatCidr(fam, bytesToBig(addr), m.data.prefixlen ?? 0) });
    }
    return out;
  }

  /** Adds an address with its prefix length; an address already present is fine. */
  async addAddress(name: string, family: Family, value: bigint, len: number): Promise<void> {
    const idx = await this.links.indexOf(name);
    const bytes = ipBytes(family, value);
    const attrs: rt.AddressAttrs = { local: bytes, address: bytes };
    if (family === 4 && len < 31) {
      const bcast = (value & maskOf(4, len)) | ((1n << BigInt(32 - len)) - 1n);
      attrs.broadcast = ipBytes(4, bcast);
    }
    try {
      await this.ch.serial((s) => s.newAddress({ family: afOf(family), prefixlen: len, index: idx }, attrs, { flags: FlagsNew.CREATE | FlagsNew.EXCL }));
    } catch (err) {
      const e = kernelError(`add address ${formatCidr(family, value, len)} to ${name}`, err);
      if (e.errno !== 'EEXIST') throw e;
    }
  }

  /** Removes an address; one already gone (or a link already gone) is fine. */
  async delAddress(name: string, family: Family, value: bigint, len: number): Promise<void> {
    const idx = await this.links.indexOf(name);
    const bytes = ipBytes(family, value);
    try {
      await this.ch.serial((s) => s.delAddress({ family: afOf(family), prefixlen: len, index: idx }, { local: bytes, address: bytes }));
    } catch (err) {
      const e = kernelError(`delete address ${formatCidr(family, value, len)} from ${name}`, err);
      if (e.errno !== 'EADDRNOTAVAIL' && e.errno !== 'ENODEV') throw e;
    }
  }

  /** Prefixes of the main routing table (both families). */
  async listRoutes(): Promise<RouteInfo[]> {
    const msgs = await this.ch.call('list routes', (s) => s.getRoutes());
    const out: RouteInfo[] = [];
    for (const m of msgs) {
      const fam = familyOf(m.data.family);
      if (!fam) continue;
      const table = m.attrs.table ?? m.data.table;
      if (table !== RT_TABLE_MAIN) continue;
      const len = m.data.dstLen ?? 0;
      const base = m.attrs.dst ? bytesToBig(m.attrs.dst) & maskOf(fam, len) : 0n;
      if (len > bitsOf(fam)) continue;
      out.push({ prefix: { family: fam, base, len }, index: m.attrs.oif });
    }
    return out;
  }

  /** Adds a default route through `gateway` on `dev`. */
  async addDefaultRoute(dev: string, gateway: string): Promise<void> {
    const idx = await this.links.indexOf(dev);
    const gw = parseIpMaybeCidr(gateway);
    await this.ch.call(`add default route via ${gateway}`, (s) =>
      s.newRoute(
        { family: afOf(gw.family), dstLen: 0, table: RT_TABLE_MAIN, protocol: 'BOOT', scope: 'UNIVERSE', type: 'UNICAST' },
        { gateway: ipBytes(gw.family, gw.value), oif: idx },
        { flags: FlagsNew.CREATE | FlagsNew.EXCL },
      ),
    );
  }
}
