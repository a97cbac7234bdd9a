/**
 * Link verbs on the namespace loomd runs in: find and list, set up/down, MTU, master,
 * port isolation, rename, move to another namespace, mark, delete. Creation lives in
 * link-create.ts (every link loom creates is marked in the same request that names it).
 */
import { ifla, rt } from './netlink-lib';
import { LoomError } from '../../lib/errors';
import { formatIp } from '../../lib/prefix';
import { isUnfinishedLink, ownerOf } from './link-owner';
import type { NetlinkChannel } from './netlink-channel';
import { LinkInfo, bytesToBig, kernelError, serialise, toLinkInfo } from './netlink-codec';

export class LinkVerbs {
  /** `mark`: this loomd's owner mark; without one (tools, the netns helper) nothing can be created or deleted by owner. */
  constructor(
    private readonly ch: NetlinkChannel,
    readonly mark: string | undefined,
  ) {}

  requireMark(): string {
    if (!this.mark) throw new LoomError('internal', 'this netlink handle has no owner mark and cannot create links');
    return this.mark;
  }

  async listLinks(): Promise<LinkInfo[]> {
    const msgs = await this.ch.call('list links', (s) => s.getLinks());
    return msgs.map(toLinkInfo);
  }

  /** A link by name, or undefined when it does not exist. */
  async findLink(name: string): Promise<LinkInfo | undefined> {
    try {
      const [m] = await this.ch.serial((s) => s.getLink({}, { ifname: name }));
      return m ? toLinkInfo(m) : undefined;
    } catch (err) {
      const e = kernelError(`get link ${name}`, err);
      if (e.errno === 'ENODEV') return undefined;
      throw e;
    }
  }

  /** The ifindex of `name`; not-found (ENODEV) when there is no such link. */
  async indexOf(name: string): Promise<number> {
    const link = await this.findLink(name);
    if (!link) throw new LoomError('not-found', `link ${name} not found`, 'ENODEV');
    return link.index;
  }

  /** VNI and local address of a VXLAN device (undefined when `name` is not one). */
  async vxlanInfo(name: string): Promise<{ vni: number; local: string | undefined } | undefined> {
    const m = await this.ch.serial(async (s) => (await s.getLink({}, { ifname: name }).catch(() => []))[0]);
    const info = m?.attrs.linkinfo ? ifla.parseInfo(m.attrs.linkinfo) : undefined;
    if (!info || info.kind !== 'vxlan' || !info.data) return undefined;
    const vx = ifla.parseVxlan(info.data);
    const local = vx.local ? formatIp(4, bytesToBig(vx.local)) : vx.local6 ? formatIp(6, bytesToBig(vx.local6)) : undefined;
    return { vni: vx.id ?? 0, local };
  }

  /** Puts this loomd's owner mark on an existing link (a link an earlier loom made without one). */
  async setOwnerMark(name: string): Promise<void> {
    const mark = this.requireMark();
    const idx = await this.indexOf(name);
    await this.ch.call(`mark ${name}`, (s) => s.setLink({ index: idx }, { ifalias: mark }));
  }

  /**
   * Deletes link `name` only if it is this loomd's: it carries this loomd's mark, or no loom
   * mark at all when `unmarkedToo` (a link an earlier loom made, named in this loomd's
   * records), or it is an unfinished link under one of this loomd's temporary names. The
   * check and the deletion address the same object (by index). Returns
   * 'deleted', 'absent', or 'not-ours' (left alone).
   */
  async deleteOwnedLink(name: string, opts: { unmarkedToo?: boolean } = {}): Promise<'deleted' | 'absent' | 'not-ours'> {
    const mark = this.requireMark();
    const link = await this.findLink(name);
    if (!link) return 'absent';
    const owner = ownerOf(link.alias, mark);
    // A link still under one of this loomd's temporary names is its own, unfinished (link-create.ts).
    if (owner === 'foreign' || (owner === 'none' && !opts.unmarkedToo && !isUnfinishedLink(link, mark))) return 'not-ours';
    try {
      await this.ch.delLink({ index: link.index });
      return 'deleted';
    } catch (err) {
      const e = kernelError(`delete link ${name}`, err);
      if (e.errno === 'ENODEV') return 'absent';
      throw e;
    }
  }

  /** Deletes a link whoever made it (tests, temporary names); returns false when it did not exist. */
  async deleteLink(name: string): Promise<boolean> {
    try {
      await this.ch.delLink({}, { ifname: name });
      return true;
    } catch (err) {
      const e = kernelError(`delete link ${name}`, err);
      if (e.errno === 'ENODEV') return false;
      throw e;
    }
  }

  /**
   * Bridge port isolation: isolated ports cannot reach each other, only the bridge
   * itself and non-isolated ports (enable_icc=false, without depending on br_netfilter).
   * Slave data is only applied by RTM_NEWLINK on an existing link, not by RTM_SETLINK.
   */
  async setPortIsolated(name: string, isolated: boolean): Promise<void> {
    const idx = await this.indexOf(name);
    const slaveData = serialise(ifla.formatBridgePort({ isolated: Buffer.from([isolated ? 1 : 0]) }));
    await this.ch.call(`set ${name} isolated ${isolated ? 'on' : 'off'}`, (s) =>
      s.newLink({ index: idx }, { linkinfo: serialise(ifla.formatInfo({ slaveKind: 'bridge', slaveData })) }),
    );
  }

  async rename(name: string, to: string): Promise<void> {
    if (name === to) return;
    const idx = await this.indexOf(name);
    await this.ch.call(`rename ${name} to ${to}`, (s) => s.setLink({ index: idx }, { ifname: to }));
  }

  /** Moves a link into the network namespace open at `nsFd` (see netns-file.ts: never a path from a request). */
  async moveToNetns(name: string, nsFd: number): Promise<void> {
    const idx = await this.indexOf(name);
    await this.ch.call(`move ${name} to namespace fd ${nsFd}`, (s) => s.setLink({ index: idx }, { netNsFd: nsFd }));
  }

  async setMaster(name: string, master: string): Promise<void> {
    const [idx, masterIdx] = [await this.indexOf(name), await this.indexOf(master)];
    await this.ch.call(`attach ${name} to ${master}`, (s) => s.setLink({ index: idx }, { master: masterIdx }));
  }

  async setUp(name: string): Promise<void> {
    const idx = await this.indexOf(name);
    const up: rt.Link = { index: idx, flags: { up: true }, change: { up: true } };
    await this.ch.call(`set ${name} up`, (s) => s.setLink(up));
  }

  async setDown(name: string): Promise<void> {
    const idx = await this.indexOf(name);
    await this.ch.call(`set ${name} down`, (s) => s.setLink({ index: idx, flags: {}, change: { up: true } }));
  }

  async setMtu(name: string, mtu: number): Promise<void> {
    const idx = await this.indexOf(name);
    await this.ch.call(`set ${name} mtu ${mtu}`, (s) => s.setLink({ index: idx }, { mtu }));
  }
}
