/**
 * Links in another network namespace (an overlay network's own, docs/overlay.md), through
 * loomd's one rtnetlink socket: the namespace is addressed by the id this namespace knows it
 * by (its nsid, RTM_NEWNSID/RTM_GETNSID on an open namespace file).
 *
 * What the kernel (6.18) accepts, verified: RTM_GETLINK (one link or a dump) and RTM_DELLINK
 * with IFLA_TARGET_NETNSID; RTM_SETLINK moving a link with IFLA_NET_NS_FD also applies the
 * master (looked up in the target namespace), the name and the up flag of the same request.
 * RTM_SETLINK and RTM_NEWLINK on an existing link ignore IFLA_TARGET_NETNSID (ENODEV): other
 * changes inside the namespace go through a process in it (overlay-netns.ts).
 */
import { LoomError } from '../../lib/errors';
import { ownerOf } from './link-owner';
import type { LinkVerbs } from './links';
import type { NetlinkChannel } from './netlink-channel';
import { LinkInfo, kernelError, toLinkInfo } from './netlink-codec';

const RTM_NEWNSID = 88;
const RTM_GETNSID = 90;
const NETNSA_NSID = 1;
const NETNSA_FD = 3;

function s32Attr(type: number, value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(8, 0);
  b.writeUInt16LE(type, 2);
  b.writeInt32LE(value, 4);
  return b;
}

/** NETNSA_NSID out of an RTM_NEWNSID answer (rtgenmsg, padded to 4 bytes, then attributes). */
export function parseNsid(data: Buffer): number | undefined {
  let off = 4;
  while (off + 4 <= data.length) {
    const len = data.readUInt16LE(off);
    const type = data.readUInt16LE(off + 2) & 0x3fff;
    if (len < 4) break;
    if (type === NETNSA_NSID && len >= 8) return data.readInt32LE(off + 4);
    off += (len + 3) & ~3;
  }
  return undefined;
}

export class NetnsLinkVerbs {
  constructor(
    private readonly ch: NetlinkChannel,
    private readonly links: LinkVerbs,
  ) {}

  /** The id of the namespace open at `nsFd`, seen from loomd's namespace (assigned when it has none). */
  async nsidOf(nsFd: number): Promise<number> {
    const hdr = Buffer.alloc(4);
    await this.ch.serial((s) => s.request(RTM_NEWNSID, [hdr, s32Attr(NETNSA_FD, nsFd), s32Attr(NETNSA_NSID, -1)])).catch((err) => {
      const e = kernelError('assign a namespace id', err);
      if (e.errno !== 'EEXIST') throw e;
    });
    const [msgs] = await this.ch.call('get a namespace id', (s) => s.socket.request(RTM_GETNSID, [hdr, s32Attr(NETNSA_FD, nsFd)]));
    const id = msgs[0] ? parseNsid(Buffer.from(msgs[0].data)) : undefined;
    if (id === undefined || id < 0) throw new LoomError('internal', 'the kernel gave no id for an overlay namespace');
    return id;
  }

  async findLinkIn(nsid: number, name: string): Promise<LinkInfo | undefined> {
    try {
      const [m] = await this.ch.serial((s) => s.getLink({}, { ifname: name, targetNetnsid: nsid }));
      return m ? toLinkInfo(m) : undefined;
    } catch (err) {
      const e = kernelError(`get link ${name} in namespace ${nsid}`, err);
      if (e.errno === 'ENODEV') return undefined;
      throw e;
    }
  }

  async listLinksIn(nsid: number): Promise<LinkInfo[]> {
    const msgs = await this.ch.call(`list links in namespace ${nsid}`, (s) => s.getLinks({}, { targetNetnsid: nsid }));
    return msgs.map(toLinkInfo);
  }

  /**
   * Moves link `name` of loomd's namespace into the namespace open at `nsFd` and, in the same
   * request, attaches it to the bridge with index `masterIndex` there and sets it up.
   */
  async moveInto(name: string, nsFd: number, masterIndex: number): Promise<void> {
    const idx = await this.links.indexOf(name);
    await this.ch.call(`move ${name} into an overlay namespace`, (s) =>
      s.setLink({ index: idx, flags: { up: true }, change: { up: true } }, { netNsFd: nsFd, master: masterIndex }),
    );
  }

  /** deleteOwnedLink (links.ts) for a link in namespace `nsid`. */
  async deleteOwnedLinkIn(nsid: number, name: string, opts: { unmarkedToo?: boolean } = {}): Promise<'deleted' | 'absent' | 'not-ours'> {
    const mark = this.links.requireMark();
    const link = await this.findLinkIn(nsid, name);
    if (!link) return 'absent';
    const owner = ownerOf(link.alias, mark);
    if (owner === 'foreign' || (owner === 'none' && !opts.unmarkedToo)) return 'not-ours';
    try {
      await this.ch.delLink({ index: link.index }, { targetNetnsid: nsid });
      return 'deleted';
    } catch (err) {
      const e = kernelError(`delete link ${name} in namespace ${nsid}`, err);
      if (e.errno === 'ENODEV') return 'absent';
      throw e;
    }
  }
}
