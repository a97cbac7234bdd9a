/**
 * Creating links, each marked as this loomd's: bridges, veth pairs, VXLAN and IFB devices.
 *
 * Hazards handled here (see docs/architecture.md):
 * - request flags are numbers (FlagsNew.CREATE | FlagsNew.EXCL); an object silently becomes 0;
 * - IFLA_LINKINFO is a raw buffer built with ifla.formatInfo and serialised through an AttrStream;
 * - the kernel ignores IFLA_IFALIAS when it creates a link: every link is created under a
 *   temporary name and gets its final name and loom's owner mark in one RTM_SETLINK
 *   (rename, alias, master and up are applied in that order by one request; see link-owner.ts).
 */
import { AttrStream, FlagsNew, ifla, rt } from './netlink-lib';
import { LoomError } from '../../lib/errors';
import { parseIpMaybeCidr } from '../../lib/prefix';
import { tempLinkName } from './link-owner';
import type { LinkVerbs } from './links';
import type { NetlinkChannel } from './netlink-channel';
import { VETH_INFO_PEER, VXLAN_PORT, ipBytes, kernelError, macToBuffer, serialise } from './netlink-codec';

const CREATE_NEW = { flags: FlagsNew.CREATE | FlagsNew.EXCL };

export class LinkFactory {
  constructor(
    private readonly ch: NetlinkChannel,
    private readonly links: LinkVerbs,
  ) {}

  /** Creates a bridge (down) carrying this loomd's owner mark. */
  async createBridge(name: string, mtu: number): Promise<void> {
    await this.createMarked(name, {}, (temp) =>
      this.ch.call(`create bridge ${name}`, (s) => s.newLink({}, { ifname: temp, mtu, linkinfo: serialise(ifla.formatInfo({ kind: 'bridge' })) }, CREATE_NEW)),
    );
  }

  /**
   * A VXLAN device for an overlay: learning off (entries are static), ARP/ND proxy on
   * (answers from the static neighbour table, so no broadcast crosses the tunnel),
   * attached to its bridge and up.
   */
  async createVxlan(name: string, opts: { vni: number; local: string; mtu: number; master?: string; dev?: string }): Promise<void> {
    const local = parseIpMaybeCidr(opts.local);
    const data: ifla.Vxlan = { id: opts.vni, learning: 0, proxy: 1, port: VXLAN_PORT, ttl: 64 };
    if (local.family === 4) data.local = ipBytes(4, local.value);
    else data.local6 = ipBytes(6, local.value);
    if (opts.dev) data.link = await this.links.indexOf(opts.dev);
    const master = opts.master ? await this.links.indexOf(opts.master) : undefined;
    const linkinfo = serialise(ifla.formatInfo({ kind: 'vxlan', data: serialise(ifla.formatVxlan(data)) }));
    await this.createMarked(name, { up: true, ...(master !== undefined ? { master } : {}) }, (temp) =>
      this.ch.call(`create vxlan ${name} vni ${opts.vni}`, (s) => s.newLink({}, { ifname: temp, mtu: opts.mtu, linkinfo }, CREATE_NEW)),
    );
  }

  /** Creates an IFB device (the queue for shaping what arrives on another device), up. */
  async createIfb(name: string, mtu: number): Promise<void> {
    await this.createMarked(name, { up: true }, (temp) =>
      this.ch.call(`create ifb ${name}`, (s) => s.newLink({}, { ifname: temp, mtu, linkinfo: serialise(ifla.formatInfo({ kind: 'ifb' })) }, CREATE_NEW)),
    );
  }

  /**
   * Creates veth `name` with peer `peer`, both marked: the host end attached to `master`
   * and up, the peer (down) with its MAC and MTU.
   */
  async createVethPair(name: string, peer: string, opts: { mtu: number; peerMac?: string; master?: string }): Promise<void> {
    const master = opts.master ? await this.links.indexOf(opts.master) : undefined;
    await this.createMarked(name, { up: true, peer, ...(master !== undefined ? { master } : {}) }, (temp, tempPeer) => {
      const peerAttrs: ifla.LinkAttrs = { ifname: tempPeer as string, mtu: opts.mtu };
      if (opts.peerMac) peerAttrs.address = macToBuffer(opts.peerMac);
      const peerMsg = Buffer.concat([rt.formatLink({}), serialise(ifla.formatLinkAttrs(peerAttrs))]);
      const data = serialise((out: AttrStream) => out.push(VETH_INFO_PEER, peerMsg));
      const attrs: ifla.LinkAttrs = { ifname: temp, mtu: opts.mtu, linkinfo: serialise(ifla.formatInfo({ kind: 'veth', data })) };
      return this.ch.call(`create veth ${name}/${peer}`, (s) => s.newLink({}, attrs, CREATE_NEW));
    });
  }

  /**
   * A veth pair whose end `name` is created directly in the namespace open at `nsFd`, on the
   * bridge with index `masterIndex` there and up, while `peer` (with its MAC, down) is created in
   * loomd's namespace and marked: one request, and no move between namespaces (a move waits for
   * an RCU grace period: about 20 ms on a loaded 2-core host). The kernel ignores an alias given
   * at creation and cannot rename or mark a link of another namespace, so `name` carries no mark:
   * what is in an overlay's namespace is this loomd's by that namespace (overlay-ns.ts).
   */
  async createVethInto(name: string, peer: string, opts: { nsFd: number; masterIndex: number; mtu: number; peerMac?: string }): Promise<void> {
    const peerAttrs: ifla.LinkAttrs = { ifname: peer, mtu: opts.mtu };
    if (opts.peerMac) peerAttrs.address = macToBuffer(opts.peerMac);
    const peerMsg = Buffer.concat([rt.formatLink({}), serialise(ifla.formatLinkAttrs(peerAttrs))]);
    const data = serialise((out: AttrStream) => out.push(VETH_INFO_PEER, peerMsg));
    const attrs: ifla.LinkAttrs = { ifname: name, mtu: opts.mtu, netNsFd: opts.nsFd, master: opts.masterIndex, linkinfo: serialise(ifla.formatInfo({ kind: 'veth', data })) };
    try {
      await this.ch.serial((s) => s.newLink({ flags: { up: true }, change: { up: true } }, attrs, CREATE_NEW));
    } catch (err) {
      const e = kernelError(`create veth ${name}/${peer}`, err);
      if (e.errno === 'EEXIST') throw new LoomError('conflict', `interface ${name} or ${peer} already exists`, 'EEXIST');
      throw e;
    }
    try {
      await this.links.setOwnerMark(peer);
    } catch (err) {
      await this.links.deleteLink(peer).catch(() => false);
      throw err;
    }
  }

  /**
   * Creates a link under its temporary name (`create`, which must leave it down), then names it
   * `name` and marks it in one request, also attaching it to `finish.master` and setting it up.
   * A leftover of an attempt killed between the two (same temporary name) makes the create fail
   * with EEXIST: it is removed and the create tried once more (no lookups on the common path).
   * If naming fails (`name` is taken), the temporary link is removed again.
   * `peer`: a veth's container end, named and marked before the host end.
   */
  private async createMarked(name: string, finish: { master?: number; up?: boolean; peer?: string }, create: (temp: string, tempPeer?: string) => Promise<unknown>): Promise<void> {
    const mark = this.links.requireMark();
    const temp = tempLinkName(mark, name);
    const tempPeer = finish.peer ? tempLinkName(mark, finish.peer) : undefined;
    try {
      await create(temp, tempPeer);
    } catch (err) {
      if ((err as LoomError).errno !== 'EEXIST') throw err;
      let removed = false;
      for (const t of [temp, tempPeer]) if (t && (await this.links.deleteLink(t))) removed = true;
      if (!removed) throw err;
      await create(temp, tempPeer);
    }
    try {
      const link = await this.links.findLink(temp);
      if (!link) throw new LoomError('internal', `link ${temp} vanished right after it was created`);
      if (finish.peer) {
        const peerIdx = link.peerIndex;
        if (peerIdx === undefined) throw new LoomError('internal', `veth ${temp} has no peer in this namespace`);
        await this.nameAndMark(peerIdx, finish.peer, mark, {});
      }
      await this.nameAndMark(link.index, name, mark, finish);
    } catch (err) {
      await this.links.deleteLink(temp).catch(() => false);
      throw err;
    }
  }

  private async nameAndMark(index: number, name: string, mark: string, finish: { master?: number; up?: boolean }): Promise<void> {
    const data: rt.Link = finish.up ? { index, flags: { up: true }, change: { up: true } } : { index };
    try {
      await this.ch.serial((s) => s.setLink(data, { ifname: name, ifalias: mark, ...(finish.master !== undefined ? { master: finish.master } : {}) }));
    } catch (err) {
      const e = kernelError(`name and mark ${name}`, err);
      if (e.errno === 'EEXIST') throw new LoomError('conflict', `interface ${name} already exists`, 'EEXIST');
      throw e;
    }
  }
}
