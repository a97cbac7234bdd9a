/**
 * Static forwarding (FDB) and neighbour (ARP/ND) entries: what the overlay programs on
 * its VXLAN devices. Adds replace (idempotent); deleting an entry already gone is fine.
 */
import { FlagsNew } from './netlink-lib';
import { formatIp, parseIpMaybeCidr } from '../../lib/prefix';
import type { LinkVerbs } from './links';
import type { NetlinkChannel } from './netlink-channel';
import { AF_BRIDGE, AF_INET, AF_INET6, FdbEntry, NeighEntry, bytesToBig, ipBytes, kernelError, macToBuffer, macToString } from './netlink-codec';

const CREATE_OR_REPLACE = { flags: FlagsNew.CREATE | FlagsNew.REPLACE };

export class NeighbourVerbs {
  constructor(
    private readonly ch: NetlinkChannel,
    private readonly links: LinkVerbs,
  ) {}

  async listFdb(dev: string): Promise<FdbEntry[]> {
    const idx = await this.links.indexOf(dev);
    const msgs = await this.ch.call(`list fdb of ${dev}`, (s) => s.getNeighbors({ family: AF_BRIDGE }));
    return msgs
      .filter((m) => m.data.ifindex === idx && m.attrs.dst && m.attrs.lladdr)
      .map((m) => ({ mac: macToString(m.attrs.lladdr), dst: formatIp(m.attrs.dst?.length === 4 ? 4 : 6, bytesToBig(m.attrs.dst as Buffer)) }));
  }

  async addFdb(dev: string, e: FdbEntry): Promise<void> {
    const idx = await this.links.indexOf(dev);
    const dst = parseIpMaybeCidr(e.dst);
    await this.ch.call(`add fdb ${e.mac} -> ${e.dst} on ${dev}`, (s) =>
      s.newNeighbor({ family: AF_BRIDGE, ifindex: idx, state: { permanent: true }, flags: { self: true } }, { lladdr: macToBuffer(e.mac), dst: ipBytes(dst.family, dst.value) }, CREATE_OR_REPLACE),
    );
  }

  async delFdb(dev: string, e: FdbEntry): Promise<void> {
    const idx = await this.links.indexOf(dev);
    const dst = parseIpMaybeCidr(e.dst);
    try {
      await this.ch.serial((s) => s.delNeighbor({ family: AF_BRIDGE, ifindex: idx, flags: { self: true } }, { lladdr: macToBuffer(e.mac), dst: ipBytes(dst.family, dst.value) }));
    } catch (err) {
      const k = kernelError(`delete fdb ${e.mac} on ${dev}`, err);
      if (k.errno !== 'ENOENT') throw k;
    }
  }

  /** The permanent neighbour entries of `dev` (both families). */
  async listNeigh(dev: string): Promise<NeighEntry[]> {
    const idx = await this.links.indexOf(dev);
    const out: NeighEntry[] = [];
    for (const family of [AF_INET, AF_INET6]) {
      const msgs = await this.ch.call(`list neighbours of ${dev}`, (s) => s.getNeighbors({ family }));
      for (const m of msgs) {
        if (m.data.ifindex !== idx || !m.attrs.dst || !m.attrs.lladdr || !m.data.state?.permanent) continue;
        out.push({ ip: formatIp(family === AF_INET ? 4 : 6, bytesToBig(m.attrs.dst)), mac: macToString(m.attrs.lladdr) });
      }
    }
    return out;
  }

  async addNeigh(dev: string, e: NeighEntry): Promise<void> {
    const idx = await this.links.indexOf(dev);
    const ip = parseIpMaybeCidr(e.ip);
    await this.ch.call(`add neighbour ${e.ip} ${e.mac} on ${dev}`, (s) =>
      s.newNeighbor({ family: ip.family === 4 ? AF_INET : AF_INET6, ifindex: idx, state: { permanent: true } }, { lladdr: macToBuffer(e.mac), dst: ipBytes(ip.family, ip.value) }, CREATE_OR_REPLACE),
    );
  }

  async delNeigh(dev: string, ip: string): Promise<void> {
    const idx = await this.links.indexOf(dev);
    const a = parseIpMaybeCidr(ip);
    try {
      await this.ch.serial((s) => s.delNeighbor({ family: a.family === 4 ? AF_INET : AF_INET6, ifindex: idx }, { dst: ipBytes(a.family, a.value) }));
    } catch (err) {
      const k = kernelError(`delete neighbour ${ip} on ${dev}`, err);
      if (k.errno !== 'ENOENT') throw k;
    }
  }
}
