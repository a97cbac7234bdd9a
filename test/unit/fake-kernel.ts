/**
 * A small in-memory kernel for unit tests of the data plane's steps: links with owner marks
 * (bridges, veth pairs, VXLAN and IFB devices, masters, up/down, MTU, port isolation),
 * addresses, sysctls (global and per interface), FDB and neighbour entries, and tc shaping.
 * Pure logic, no root. It follows the real kernel where loom relies on it: creating a name
 * that exists fails (EEXIST), deleting either end of a veth deletes the pair, a deleted link
 * takes its addresses, ports and per-interface sysctls with it, disable_ipv6=1 drops a link's
 * IPv6 addresses, a link moved to another namespace is gone from this one. The real kernel
 * is covered by the kernel tier (test/kernel/).
 *
 * Failures are injected with `failOn(verb, name?)`: the next call of that verb (for that
 * link) throws. `state()` is a comparable picture of everything (links by name, never by
 * index), for "rolled back to exactly what was there" checks.
 */
import { LoomError } from '../../lib/errors';
import { formatCidr } from '../../lib/prefix';
import type { Family } from '../../lib/prefix';
import type { DataPlaneDeps, DataPlaneKernel, DataPlaneSysctl, Shaper } from '../../driver/dataplane/kernel-verbs';
import { ownerOf } from '../../driver/kernel/link-owner';
import type { AddressInfo, FdbEntry, LinkInfo, NeighEntry } from '../../driver/kernel/netlink-codec';
import type { Logger } from '../../lib/logger';

export const FAKE_MARK = 'loom:fake00000001';

interface FakeLink extends LinkInfo {
  isolated: boolean;
  vxlan?: { vni: number; local: string };
}

type IfaceKey = `${'ipv4' | 'ipv6'}/${string}/${string}`;

/** Per-interface sysctls a new link gets (what loom reads or writes). */
const IFACE_DEFAULTS: Array<['ipv4' | 'ipv6', string, string]> = [
  ['ipv6', 'disable_ipv6', '0'],
  ['ipv6', 'accept_ra', '1'],
  ['ipv6', 'force_forwarding', '0'],
  ['ipv4', 'route_localnet', '0'],
];

export class FakeKernel implements DataPlaneKernel {
  private readonly links = new Map<string, FakeLink>();
  private addresses: AddressInfo[] = [];
  private nextIndex = 2;
  private readonly failures: Array<{ verb: string; name: string | undefined }> = [];
  readonly global = new Map<string, string>([
    ['net.ipv4.ip_forward', '0'],
    ['net.ipv6.conf.all.forwarding', '0'],
  ]);
  readonly iface = new Map<IfaceKey, string>();
  readonly fdb = new Map<string, FdbEntry[]>();
  readonly neigh = new Map<string, NeighEntry[]>();
  /** Root qdisc rate (bits/s) per device, and where a device's ingress is redirected to. */
  readonly qdisc = new Map<string, number>();
  readonly redirect = new Map<string, string>();
  /** Every mutating call, in order ("createBridge lm-x"). */
  readonly calls: string[] = [];

  /** `forceForwarding`: whether per-interface force_forwarding exists (Linux 6.17+). */
  constructor(
    readonly mark: string | undefined = FAKE_MARK,
    private readonly opts: { forceForwarding?: boolean } = {},
  ) {}

  // ---- test set-up and inspection ---------------------------------------------------------

  /** A link made by someone (like `ip link add`): unmarked unless `alias` says otherwise. */
  addLink(name: string, kind: string | undefined, over: Partial<FakeLink> = {}): void {
    this.put({ index: 0, name, kind, master: undefined, mtu: 1500, mac: this.mac(), up: false, isolated: false, ...over });
  }

  failOn(verb: string, name?: string): void {
    this.failures.push({ verb, name });
  }

  /** Everything, by name: equal pictures mean equal kernels for loom's purposes. */
  state(): Record<string, unknown> {
    const nameOf = (index: number | undefined): string | undefined => [...this.links.values()].find((l) => l.index === index)?.name;
    const links = Object.fromEntries(
      [...this.links.values()]
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((l) => [l.name, { kind: l.kind, up: l.up, mtu: l.mtu, alias: l.alias, master: nameOf(l.master), isolated: l.isolated, vxlan: l.vxlan, mac: l.mac }]),
    );
    const addresses = this.addresses.map((a) => `${nameOf(a.index)} ${a.cidr}`).sort();
    const sorted = <V>(m: Map<string, V>): Record<string, V> => Object.fromEntries([...m.entries()].sort(([a], [b]) => a.localeCompare(b)));
    return { links, addresses, global: sorted(this.global), iface: sorted(this.iface), qdisc: sorted(this.qdisc), redirect: sorted(this.redirect) };
  }

  link(name: string): FakeLink | undefined {
    const l = this.links.get(name);
    return l && { ...l };
  }

  /** The data plane's dependencies on this kernel. */
  deps(log: Logger): DataPlaneDeps {
    return { kernel: this, sysctl: this.sysctl, tc: this.tc, log };
  }

  // ---- links --------------------------------------------------------------------------------

  async findLink(name: string): Promise<LinkInfo | undefined> {
    this.check('findLink', name);
    const l = this.links.get(name);
    return l && this.info(l);
  }

  async listLinks(): Promise<LinkInfo[]> {
    return [...this.links.values()].map((l) => this.info(l));
  }

  async vxlanInfo(name: string): Promise<{ vni: number; local: string | undefined } | undefined> {
    const v = this.links.get(name)?.vxlan;
    return v && { vni: v.vni, local: v.local };
  }

  async createBridge(name: string, mtu: number): Promise<void> {
    this.create('createBridge', name, { kind: 'bridge', mtu });
  }

  async createVethPair(name: string, peer: string, opts: { mtu: number; peerMac?: string; master?: string }): Promise<void> {
    const master = opts.master === undefined ? undefined : this.need(opts.master).index;
    if (this.links.has(peer)) throw new LoomError('conflict', `interface ${peer} already exists`, 'EEXIST');
    this.create('createVethPair', name, { kind: 'veth', mtu: opts.mtu, master, up: true });
    const host = this.need(name);
    const p = this.put({ index: 0, name: peer, kind: 'veth', master: undefined, mtu: opts.mtu, mac: opts.peerMac ?? this.mac(), up: false, isolated: false, alias: this.mark, peerIndex: host.index });
    host.peerIndex = p.index;
  }

  async createVxlan(name: string, opts: { vni: number; local: string; mtu: number; master: string }): Promise<void> {
    const master = this.need(opts.master).index;
    this.create('createVxlan', name, { kind: 'vxlan', mtu: opts.mtu, master, up: true, vxlan: { vni: opts.vni, local: opts.local } });
  }

  async createIfb(name: string, mtu: number): Promise<void> {
    this.create('createIfb', name, { kind: 'ifb', mtu, up: true });
  }

  async setOwnerMark(name: string): Promise<void> {
    this.mutate('setOwnerMark', name).alias = this.requireMark();
  }

  async deleteOwnedLink(name: string, opts: { unmarkedToo?: boolean } = {}): Promise<'deleted' | 'absent' | 'not-ours'> {
    const mark = this.requireMark();
    this.check('deleteOwnedLink', name);
    const l = this.links.get(name);
    if (!l) return 'absent';
    const owner = ownerOf(l.alias, mark);
    if (owner === 'foreign' || (owner === 'none' && !opts.unmarkedToo)) return 'not-ours';
    this.calls.push(`deleteOwnedLink ${name}`);
    this.remove(l);
    return 'deleted';
  }

  async setMtu(name: string, mtu: number): Promise<void> {
    this.mutate('setMtu', name).mtu = mtu;
  }

  async setUp(name: string): Promise<void> {
    this.mutate('setUp', name).up = true;
  }

  async setDown(name: string): Promise<void> {
    this.mutate('setDown', name).up = false;
  }

  async setMaster(name: string, master: string): Promise<void> {
    const m = this.need(master);
    this.mutate('setMaster', name).master = m.index;
  }

  async setPortIsolated(name: string, isolated: boolean): Promise<void> {
    this.mutate('setPortIsolated', name).isolated = isolated;
  }

  async moveToNetns(name: string, _nsFd: number): Promise<void> {
    this.remove(this.mutate('moveToNetns', name), { pairToo: false });
  }

  // ---- addresses ------------------------------------------------------------------------------

  async listAddresses(): Promise<AddressInfo[]> {
    return this.addresses.map((a) => ({ ...a }));
  }

  async addAddress(name: string, family: Family, value: bigint, len: number): Promise<void> {
    const l = this.mutate('addAddress', name);
    const cidr = formatCidr(family, value, len);
    if (family === 6 && this.iface.get(`ipv6/${name}/disable_ipv6`) === '1') throw new LoomError('unavailable', `add address ${cidr} to ${name}: IPv6 is disabled`, 'EACCES');
    if (!this.addresses.some((a) => a.index === l.index && a.cidr === cidr)) this.addresses.push({ index: l.index, family, cidr });
  }

  async delAddress(name: string, family: Family, value: bigint, len: number): Promise<void> {
    const l = this.mutate('delAddress', name);
    const cidr = formatCidr(family, value, len);
    this.addresses = this.addresses.filter((a) => !(a.index === l.index && a.cidr === cidr));
  }

  // ---- FDB and neighbours (the overlay's verbs) -------------------------------------------

  async listFdb(dev: string): Promise<FdbEntry[]> {
    this.need(dev);
    return [...(this.fdb.get(dev) ?? [])];
  }

  async addFdb(dev: string, e: FdbEntry): Promise<void> {
    this.mutate('addFdb', dev);
    this.fdb.set(dev, [...(this.fdb.get(dev) ?? []).filter((x) => x.mac !== e.mac), { ...e }]);
  }

  async delFdb(dev: string, e: FdbEntry): Promise<void> {
    this.mutate('delFdb', dev);
    this.fdb.set(dev, (this.fdb.get(dev) ?? []).filter((x) => !(x.mac === e.mac && x.dst === e.dst)));
  }

  async listNeigh(dev: string): Promise<NeighEntry[]> {
    this.need(dev);
    return [...(this.neigh.get(dev) ?? [])];
  }

  async addNeigh(dev: string, e: NeighEntry): Promise<void> {
    this.mutate('addNeigh', dev);
    this.neigh.set(dev, [...(this.neigh.get(dev) ?? []).filter((x) => x.ip !== e.ip), { ...e }]);
  }

  async delNeigh(dev: string, ip: string): Promise<void> {
    this.mutate('delNeigh', dev);
    this.neigh.set(dev, (this.neigh.get(dev) ?? []).filter((x) => x.ip !== ip));
  }

  // ---- sysctls and tc -----------------------------------------------------------------------

  readonly sysctl: DataPlaneSysctl = {
    read: async (key) => this.global.get(key),
    write: async (key, value) => {
      this.check('sysctl', key);
      if (!this.global.has(key)) throw new LoomError('unavailable', `sysctl ${key}=${value}: no such key`);
      this.calls.push(`sysctl ${key}=${value}`);
      this.global.set(key, value);
    },
    readIface: async (family, ifname, leaf) => this.iface.get(`${family}/${ifname}/${leaf}`),
    writeIface: async (family, ifname, leaf, value) => {
      const key: IfaceKey = `${family}/${ifname}/${leaf}`;
      this.check('sysctl', key);
      if (!this.iface.has(key)) throw new LoomError('unavailable', `sysctl net.${family}.conf.${ifname}.${leaf}=${value}: no such file`);
      this.calls.push(`sysctl ${key}=${value}`);
      this.iface.set(key, value);
      const l = this.links.get(ifname);
      if (key.endsWith('/disable_ipv6') && value === '1' && l) this.addresses = this.addresses.filter((a) => !(a.index === l.index && a.family === 6));
    },
  };

  readonly tc: Shaper = {
    shapeEgress: async (dev, bps) => {
      this.mutate('shapeEgress', dev);
      this.qdisc.set(dev, bps);
    },
    shapeIngressVia: async (dev, ifb, bps) => {
      this.mutate('shapeIngressVia', dev);
      if (!this.links.get(ifb)?.up) throw new LoomError('internal', `tc: ${ifb} is missing or down`);
      this.qdisc.set(ifb, bps);
      this.redirect.set(dev, ifb);
    },
  };

  // ---- internals ----------------------------------------------------------------------------

  private requireMark(): string {
    if (!this.mark) throw new LoomError('internal', 'this netlink handle has no owner mark and cannot create links');
    return this.mark;
  }

  private check(verb: string, name: string | undefined): void {
    const i = this.failures.findIndex((f) => f.verb === verb && (f.name === undefined || f.name === name));
    if (i < 0) return;
    this.failures.splice(i, 1);
    throw new LoomError('internal', `${verb} ${name ?? ''}: injected failure`.replace('  ', ' '), 'EIO');
  }

  private need(name: string): FakeLink {
    const l = this.links.get(name);
    if (!l) throw new LoomError('not-found', `link ${name} not found`, 'ENODEV');
    return l;
  }

  /** The link a mutating verb works on, after the failure check; the call is recorded. */
  private mutate(verb: string, name: string): FakeLink {
    this.check(verb, name);
    const l = this.need(name);
    this.calls.push(`${verb} ${name}`);
    return l;
  }

  private create(verb: string, name: string, over: Partial<FakeLink>): void {
    const alias = this.requireMark();
    this.check(verb, name);
    if (this.links.has(name)) throw new LoomError('conflict', `interface ${name} already exists`, 'EEXIST');
    this.calls.push(`${verb} ${name}`);
    this.put({ index: 0, name, kind: undefined, master: undefined, mtu: 1500, mac: this.mac(), up: false, isolated: false, alias, ...over });
  }

  private put(l: FakeLink): FakeLink {
    const link: FakeLink = { ...l, index: this.nextIndex++ };
    this.links.set(link.name, link);
    for (const [family, leaf, value] of IFACE_DEFAULTS) {
      if (leaf === 'force_forwarding' && this.opts.forceForwarding === false) continue;
      this.iface.set(`${family}/${link.name}/${leaf}`, value);
    }
    return link;
  }

  private remove(l: FakeLink, opts: { pairToo?: boolean } = {}): void {
    this.links.delete(l.name);
    this.addresses = this.addresses.filter((a) => a.index !== l.index);
    for (const key of [...this.iface.keys()]) if (key.split('/')[1] === l.name) this.iface.delete(key);
    for (const m of [this.qdisc, this.redirect, this.fdb, this.neigh] as Array<Map<string, unknown>>) m.delete(l.name);
    for (const other of this.links.values()) if (other.master === l.index) other.master = undefined;
    const peer = l.kind === 'veth' && opts.pairToo !== false ? [...this.links.values()].find((o) => o.index === l.peerIndex) : undefined;
    if (peer) this.remove(peer, { pairToo: false });
  }

  private info(l: FakeLink): LinkInfo {
    const { isolated: _i, vxlan: _v, ...info } = l;
    return { ...info };
  }

  private mac(): string {
    return `02:00:00:00:00:${(this.nextIndex % 256).toString(16).padStart(2, '0')}`;
  }
}
