/**
 * A simulated loom cluster for unit tests of the cluster IPAM: several hosts, each with
 * its own IpamService over its own in-memory store (its LevelDB) and a view of one
 * shared in-memory cluster store (etcd), wired like ClusterCoordinator wires them
 * (reservation and borrow-request watches, delivered in order per host).
 *
 * Every store call of a host, every watch delivery and every wait first passes `gate`:
 * a property test hands in fast-check's scheduler there, so that the calls of all hosts
 * interleave in any order. `kill()` is a SIGKILL: the host's pending and later store
 * calls fail, its watches stop, its lease expires; `boot()` starts it again from its store.
 */
import { MemoryCluster } from '../../driver/cluster/memory-store';
import { ClusterStore, WatchEvent, keys } from '../../lib/cluster/store';
import { silentLogger } from '../../lib/logger';
import { KvStore, MemoryKv } from '../../lib/kv';
import { ClusterPools } from '../../ipam-driver/cluster-pools';
import type { ClusterTiming } from '../../ipam-driver/cluster-records';
import { Prefix, contains, formatIp, formatPrefix, overlaps, parseIp, parsePrefix } from '../../lib/prefix';
import { LOCAL_SPACE } from '../../ipam-driver/address-spaces';
import { IpamService } from '../../ipam-driver/ipam-service';
import { AllocationRecord, IpamRepository, PoolRecord } from '../../ipam-driver/ipam-store';

const log = silentLogger();

export type Gate = () => Promise<void>;
/** The gate of a test that does not control interleavings: yield to everything already queued. */
export const openGate: Gate = () => new Promise((r) => setImmediate(r));

const STORE_CALLS = ['get', 'list', 'put', 'create', 'cas', 'delete', 'commit', 'startLease'];
const KV_CALLS = ['get', 'list', 'batch'];

/** `target` whose listed async methods first pass `gate`, and fail once `dead()`. */
function fenced<T extends object>(target: T, methods: string[], gate: Gate, dead: () => boolean): T {
  return new Proxy(target, {
    get(obj, prop, recv) {
      const v = Reflect.get(obj, prop, recv) as unknown;
      if (typeof v !== 'function' || !methods.includes(String(prop))) return typeof v === 'function' ? v.bind(obj) : v;
      return async (...args: unknown[]) => {
        await gate();
        if (dead()) throw new Error('process killed');
        return (v as (...a: unknown[]) => unknown).apply(obj, args);
      };
    },
  });
}

export interface SimOptions {
  subnet: string;
  hosts: number;
  /** Gate for store calls and watch deliveries (default: openGate). */
  gate?: Gate;
}

export class SimHost {
  ipam!: IpamService;
  pools!: ClusterPools;
  poolId = '';
  private dead = { v: false };
  private off: Array<() => void> = [];
  private queue: Promise<void> = Promise.resolve();
  private lease: string | undefined;
  boots = 0;
  /** Reservation deletions still to be missed (a watch that reconnected replays puts, not deletions). */
  lose = 0;

  constructor(
    readonly sim: ClusterSim,
    readonly id: string,
    readonly kv = new MemoryKv(),
  ) {}

  get alive(): boolean {
    return !this.dead.v && this.boots > 0;
  }

  /** Starts (or restarts) loomd on this host: loads its store, takes a lease, watches. */
  async boot(): Promise<void> {
    const dead = { v: false };
    this.dead = dead;
    this.boots++;
    const gate = (): Promise<void> => this.sim.gate();
    const raw = this.sim.cluster.view();
    const store = fenced<ClusterStore>(raw, STORE_CALLS, gate, () => dead.v);
    const kv = fenced<KvStore>(this.kv, KV_CALLS, gate, () => dead.v);
    const pools = new ClusterPools(store, this.id, log, this.sim.timing);
    const gateway = this.sim.gateway;
    const ipam = new IpamService(
      new IpamRepository(kv),
      { defaultPools: [], hostRoutes: async () => [], cluster: { pools, overlayReserved: () => new Set([gateway]), orphanGraceMs: 0 } },
      log,
    );
    // Like loomd: nothing reaches the new IPAM (calls, reconcile passes) before its state is loaded.
    await ipam.load();
    this.pools = pools;
    this.ipam = ipam;
    this.lease = await raw.grantLease(10);
    await raw.put(keys.host(this.id), { hostId: this.id }, { leased: true });
    const c = this.sim.cluster;
    this.off.push(
      c.subscribe(keys.reservations, (ev) => {
        if (ev.type === 'delete' && this.lose > 0) this.lose--;
        else this.deliver(() => this.onReservation(ev));
      }),
    );
    this.off.push(c.subscribe(keys.loanRequests, (ev) => ev.type === 'put' && this.deliver(() => this.ipam.lendAddress(ev.key))));
    // What a fresh etcd watch reports first: every key present now.
    for (const [key, e] of [...c.data]) {
      if (key.startsWith(keys.loanRequests)) this.deliver(() => this.ipam.lendAddress(key));
      if (key.startsWith(keys.reservations)) this.deliver(() => this.onReservation({ type: 'put', key, value: JSON.parse(e.value) }));
    }
  }

  /** SIGKILL: nothing of this incarnation reaches a store again; its lease expires. */
  kill(): void {
    this.dead.v = true;
    for (const f of this.off) f();
    this.off = [];
    if (this.lease !== undefined) this.sim.cluster.expire(this.lease);
  }

  /** Watch events reach the host in order, each handled like the coordinator does (not awaited). */
  private deliver(fn: () => Promise<void>): void {
    const dead = this.dead;
    this.queue = this.queue
      .then(() => this.sim.gate())
      .then(() => {
        if (!dead.v) void fn().catch(() => undefined);
      });
  }

  private async onReservation(ev: WatchEvent<unknown>): Promise<void> {
    const rest = ev.key.slice(keys.reservations.length);
    const subnet = rest.slice(0, rest.lastIndexOf('/')).replace('_', '/');
    const ip = rest.slice(rest.lastIndexOf('/') + 1);
    if (ev.type === 'delete') return this.ipam.dropForeign(subnet, ip);
    const v = ev.value as { host: string; state: string };
    if (v.state === 'requested' && v.host !== this.id) return this.ipam.answerReservation(subnet, ip, v.host);
  }

  /** Allocations as persisted in this host's store (what survives a SIGKILL). */
  persisted(): AllocationRecord[] {
    return [...this.kv.data.entries()].filter(([k]) => k.startsWith('ipam/addr/')).map(([, v]) => JSON.parse(v) as AllocationRecord);
  }

  /** The blocks this host's persisted pool record lists. */
  persistedBlocks(): Prefix[] {
    const pools = [...this.kv.data.entries()].filter(([k]) => k.startsWith('ipam/pool/')).map(([, v]) => JSON.parse(v) as PoolRecord);
    return pools.flatMap((p) => (p.blocks ?? []).map((b) => parsePrefix(b)));
  }

  /** Addresses Docker on this host was given and still holds (gateway excluded). */
  inUse(): string[] {
    return this.persisted()
      .filter((a) => a.kind === 'dynamic' || a.kind === 'explicit' || a.kind === 'borrowed')
      .map((a) => a.address);
  }

  async alloc(address = ''): Promise<string> {
    return (await this.ipam.requestAddress({ poolId: this.poolId, address, options: {} })).address.split('/')[0] as string;
  }

  async release(address: string): Promise<void> {
    await this.ipam.releaseAddress(this.poolId, address);
  }
}

export class ClusterSim {
  readonly cluster = new MemoryCluster();
  readonly hosts: SimHost[] = [];
  /** Simulated time for deadlines and waits (ms); advanced by every wait. */
  clock = 0;
  gate: Gate;
  readonly timing: Partial<ClusterTiming>;
  readonly gateway: string;

  constructor(readonly opts: SimOptions) {
    this.gate = opts.gate ?? openGate;
    this.timing = {
      now: () => this.clock,
      sleep: async (ms: number) => {
        this.clock += ms;
        await this.gate();
      },
    };
    const p = parsePrefix(opts.subnet);
    this.gateway = formatIp(p.family, p.base + 1n);
    for (let i = 1; i <= opts.hosts; i++) this.hosts.push(new SimHost(this, `h${i}`));
  }

  /** Every host joins the overlay's subnet (h1 created it) and holds its gateway. */
  async setUp(): Promise<void> {
    const [first, ...rest] = this.hosts as [SimHost, ...SimHost[]];
    for (const h of this.hosts) await h.boot();
    const req = { addressSpace: LOCAL_SPACE, pool: this.opts.subnet, subPool: '', options: {}, v6: false };
    first.poolId = (await first.ipam.requestPool(req)).poolId;
    await first.ipam.markShared(this.opts.subnet, 'ov');
    await first.pools.settle(this.opts.subnet, 'overlay', 'ov');
    for (const h of rest) h.poolId = (await h.ipam.requestPool(req)).poolId;
    for (const h of this.hosts) {
      await h.ipam.requestAddress({ poolId: h.poolId, address: '', options: { RequestAddressType: 'com.docker.network.gateway' } });
    }
  }

  /**
   * Broken invariants of the persisted state (must stay empty at every moment): an address
   * used by two hosts; a block two hosts list; an address a host uses inside a block another
   * host lists without that host holding it as foreign (it could hand it out).
   */
  violations(): string[] {
    const out = this.duplicates();
    const blocks = this.hosts.map((h) => ({ h, blocks: h.persistedBlocks(), held: new Map(h.persisted().map((a) => [a.address, a.kind])) }));
    for (const x of blocks) {
      for (const y of blocks) {
        if (x.h === y.h) continue;
        for (const b of x.blocks) if (y.blocks.some((c) => overlaps(b, c))) out.push(`block ${formatPrefix(b)} listed by ${x.h.id} and ${y.h.id}`);
        for (const a of x.h.inUse()) {
          const ip = parseIp(a);
          if (y.blocks.some((b) => contains(b, ip)) && y.held.get(a) !== 'foreign') out.push(`${a} used by ${x.h.id} in a block of ${y.h.id}, which holds it as ${y.held.get(a) ?? 'free'}`);
        }
      }
    }
    return out;
  }

  /** Addresses held by more than one host (must stay empty). */
  duplicates(): string[] {
    const seen = new Map<string, string>();
    const dups: string[] = [];
    for (const h of this.hosts) {
      for (const a of h.inUse()) {
        const other = seen.get(a);
        if (other !== undefined && other !== h.id) dups.push(`${a} on ${other} and ${h.id}`);
        seen.set(a, h.id);
      }
    }
    return dups;
  }

  /** Keys under a prefix of the cluster store. */
  keysUnder(prefix: string): string[] {
    return [...this.cluster.data.keys()].filter((k) => k.startsWith(prefix));
  }
}
