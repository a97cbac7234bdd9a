/**
 * A worker thread of the control-plane benchmark (control-plane.ts): it hosts several
 * simulated hosts, each loom's real cluster code as loomd wires it in cluster mode
 * (driver/startup/cluster.ts, driver/cluster/coordinator.ts): an EtcdStore (its own etcd3
 * client), a ClusterAgent (lease, watches, queued publication, remote endpoints with the
 * peer-grace rule), the policies watch loomd adds, and OverlayEntries programming each
 * remote endpoint under its network's lock. Only the kernel is replaced: a recorder that
 * notes when each endpoint's FDB and neighbour entries were written or removed.
 *
 * Between the benchmark and the real code sits a counting wrapper of the raw store: requests
 * per method, bytes of values written, and the moment each endpoint key was written
 * (request sent, answer received).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import * as v8 from 'node:v8';
import { silentLogger } from '../../lib/logger';
import { KeyedMutex } from '../../lib/keyed-mutex';
import { keys } from '../../lib/cluster/store';
import type { CallOpts, KeyValue, RawClusterStore, Watch, WatchHandlers } from '../../lib/cluster/store';
import { ClusterAgent, ClusterEvents } from '../../driver/cluster/agent';
import { EtcdStore } from '../../driver/cluster/etcd-store';
import { OverlayEntries, VxlanEntriesKernel } from '../../driver/cluster/overlay-entries';
import type { FdbEntry, NeighEntry } from '../../driver/kernel/netlink-kernel';
import type { NetworkRecord } from '../../driver/model/types';
import type { NetworkLookup } from '../../driver/network/network-table';
import { epNumber, epOfMac, hostOfEp, macOfEp } from './cp-latency';

export interface WorkerInit {
  hosts: number[];
  etcd: string[];
  overlay: string;
  subnet: string;
  ttlS: number;
  graceS: number;
  endpointsPerHost: number;
  /** Host 0 registers the overlay in etcd; the others join it. */
  origin: number;
}

export type ToWorker =
  | { type: 'start' }
  | { type: 'fill'; spreadMs: number }
  | { type: 'churn'; everyMs: number; forMs: number }
  | { type: 'status' }
  | { type: 'collect' }
  | { type: 'stop' };

export interface WorkerStatus {
  type: 'status';
  /** The host indexes of this worker, in the order of the arrays below. */
  hosts: number[];
  /** Per host: remote endpoints programmed now (entries held by the recorder). */
  programmed: number[];
  /** Per host: endpoints it holds of each other host index (only hosts with some). */
  heldOf: Array<Record<number, number>>;
  backlog: number;
  leases: number;
  /** Hosts whose agent considers etcd down now. */
  down: number;
  sessionFailures: number;
  heapUsed: number;
  heapTotal: number;
  churning: boolean;
  /** This thread's event-loop delay since the last status (ms): how long a ready callback waited. */
  loopDelayP99: number;
  loopDelayMax: number;
}

export interface WorkerCollect {
  type: 'collect';
  /** [ep, host, sent, acked] per endpoint put (flattened). */
  puts: number[];
  /** [ep, host, sent, acked] per endpoint delete (flattened). */
  dels: number[];
  /** [ep, receiver, t] per first programming of an endpoint on a host (flattened). */
  adds: number[];
  /** [ep, receiver, t] per removal (flattened). */
  removes: number[];
  calls: Record<string, number>;
  bytesOut: number;
  /** Bytes (key + JSON value) of endpoint puts. */
  endpointPutBytes: number;
  watchEvents: number;
  sessionFailures: number;
  heapUsed: number;
}

const init = workerData as WorkerInit;
const port = parentPort as NonNullable<typeof parentPort>;
const log = silentLogger();
const now = (): number => performance.timeOrigin + performance.now();

// ---- what every simulated host shares in this thread (collected and cleared on 'collect') ----
let puts: number[] = [];
let dels: number[] = [];
let adds: number[] = [];
let removes: number[] = [];
const calls: Record<string, number> = {};
let bytesOut = 0;
let endpointPutBytes = 0;
let watchEvents = 0;
const count = (m: string): void => {
  calls[m] = (calls[m] ?? 0) + 1;
};

/** The raw etcd store with counters around it; endpoint writes are time-stamped. */
class CountingStore implements RawClusterStore {
  constructor(
    private readonly inner: RawClusterStore,
    private readonly host: number,
  ) {}

  private endpointOf(key: string, value?: unknown): number | undefined {
    if (!key.startsWith(keys.endpoints)) return undefined;
    if (value && typeof value === 'object' && 'mac' in value) return epOfMac(String((value as { mac: string }).mac));
    const id = key.slice(key.lastIndexOf('/') + 1);
    const m = /^ep(\d+)$/.exec(id);
    return m ? Number(m[1]) : undefined;
  }

  get<T>(key: string, opts?: CallOpts): Promise<KeyValue<T> | undefined> {
    count('get');
    return this.inner.get<T>(key, opts);
  }
  list<T>(prefix: string, opts?: CallOpts): Promise<Array<KeyValue<T>>> {
    count('list');
    return this.inner.list<T>(prefix, opts);
  }
  snapshot<T>(prefix: string, opts?: CallOpts): Promise<{ revision: string; kvs: Array<KeyValue<T>> }> {
    count('snapshot');
    return this.inner.snapshot<T>(prefix, opts);
  }
  async put(key: string, value: unknown, opts?: CallOpts): Promise<void> {
    count('put');
    bytesOut += key.length + JSON.stringify(value).length;
    const ep = this.endpointOf(key, value);
    if (ep !== undefined) endpointPutBytes += key.length + JSON.stringify(value).length;
    const sent = now();
    await this.inner.put(key, value, opts);
    if (ep !== undefined) puts.push(ep, this.host, sent, now());
  }
  create(key: string, value: unknown, opts?: CallOpts): Promise<boolean> {
    count('create');
    bytesOut += key.length + JSON.stringify(value).length;
    return this.inner.create(key, value, opts);
  }
  cas(key: string, revision: string, value: unknown | undefined, opts?: CallOpts): Promise<boolean> {
    count('cas');
    return this.inner.cas(key, revision, value, opts);
  }
  async delete(key: string, opts?: CallOpts): Promise<void> {
    count('delete');
    bytesOut += key.length;
    const ep = this.endpointOf(key);
    const sent = now();
    await this.inner.delete(key, opts);
    if (ep !== undefined) dels.push(ep, this.host, sent, now());
  }
  commit(conditions: Array<{ key: string; revision: string }>, writes: Array<{ key: string; value: unknown | undefined }>, opts?: CallOpts): Promise<boolean> {
    count('commit');
    return this.inner.commit(conditions, writes, opts);
  }
  watch<T>(prefix: string, fromRevision: string, handlers: WatchHandlers<T>, opts?: CallOpts): Promise<Watch> {
    count('watch');
    return this.inner.watch<T>(prefix, fromRevision, { ...handlers, onEvent: (ev) => (watchEvents++, handlers.onEvent(ev)) }, opts);
  }
  grantLease(ttlSeconds: number, opts?: CallOpts): Promise<string> {
    count('grantLease');
    return this.inner.grantLease(ttlSeconds, opts);
  }
  keepAlive(lease: string, opts?: CallOpts): Promise<number> {
    count('keepAlive');
    return this.inner.keepAlive(lease, opts);
  }
  revokeLease(lease: string, opts?: CallOpts): Promise<void> {
    count('revokeLease');
    return this.inner.revokeLease(lease, opts);
  }
  renew(): void {
    count('renew');
    this.inner.renew();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The kernel replaced: FDB and neighbour entries kept in maps, each write time-stamped. */
class RecordingKernel implements VxlanEntriesKernel {
  readonly fdb = new Map<string, string>();
  readonly neigh = new Map<string, string>();
  private readonly programmed = new Set<number>();

  constructor(private readonly host: number) {}

  async listFdb(): Promise<FdbEntry[]> {
    return [...this.fdb].map(([mac, dst]) => ({ mac, dst }));
  }
  async addFdb(_dev: string, e: FdbEntry): Promise<void> {
    this.fdb.set(e.mac, e.dst);
  }
  async delFdb(_dev: string, e: FdbEntry): Promise<void> {
    if (this.fdb.get(e.mac) === e.dst) this.fdb.delete(e.mac);
  }
  async listNeigh(): Promise<NeighEntry[]> {
    return [...this.neigh].map(([ip, mac]) => ({ ip, mac }));
  }
  /** The last write of a present endpoint (after its FDB entry): it is programmed now. */
  async addNeigh(_dev: string, e: NeighEntry): Promise<void> {
    this.count(this.neigh.get(e.ip), -1);
    this.neigh.set(e.ip, e.mac);
    this.count(e.mac, 1);
    const ep = epOfMac(e.mac);
    if (ep !== undefined && !this.programmed.has(ep)) {
      this.programmed.add(ep);
      adds.push(ep, this.host, now());
    }
  }
  /** The last write of a removed endpoint. */
  async delNeigh(_dev: string, ip: string): Promise<void> {
    const mac = this.neigh.get(ip);
    this.count(mac, -1);
    this.neigh.delete(ip);
    const ep = mac === undefined ? undefined : epOfMac(mac);
    if (ep !== undefined) {
      this.programmed.delete(ep);
      removes.push(ep, this.host, now());
    }
  }

  /** Neighbour entries held per publishing host index (kept up to date on every write: status is cheap). */
  private readonly byHost = new Map<number, number>();

  private count(mac: string | undefined, d: number): void {
    const ep = mac === undefined ? undefined : epOfMac(mac);
    if (ep === undefined) return;
    const h = hostOfEp(ep);
    const n = (this.byHost.get(h) ?? 0) + d;
    if (n) this.byHost.set(h, n);
    else this.byHost.delete(h);
  }

  heldByHost(): Record<number, number> {
    return Object.fromEntries(this.byHost);
  }
}

/** This simulated host's one overlay network, as the network table would hold it. */
class OneNetwork implements NetworkLookup {
  private readonly locks = new KeyedMutex();
  constructor(private readonly record: NetworkRecord) {}
  list(): Array<{ record: NetworkRecord; endpoints: [] }> {
    return [{ record: this.record, endpoints: [] }];
  }
  get(id: string): NetworkRecord | undefined {
    return id === this.record.id ? this.record : undefined;
  }
  byOverlay(key: string): NetworkRecord | undefined {
    return this.record.overlay?.key === key ? this.record : undefined;
  }
  withNetworkLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(id, fn);
  }
}

const vtepOf = (h: number): string => `198.18.${128 + Math.floor(h / 250)}.${(h % 250) + 1}`;
const ipOf = (h: number, seq: number): string => {
  const [a, b] = init.subnet.split('.').map(Number) as [number, number];
  return `${a}.${b}.${h + 1}.${(seq % 250) + 1}`;
};

interface SimHost {
  index: number;
  agent: ClusterAgent;
  kernel: RecordingKernel;
  /** Endpoint sequence numbers published now, oldest first. */
  live: number[];
  nextSeq: number;
  timer?: NodeJS.Timeout;
}

const hosts: SimHost[] = [];
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
let churning = false;

function makeHost(index: number): SimHost {
  const hostId = `sim${String(index).padStart(3, '0')}`;
  const raw = new CountingStore(new EtcdStore({ endpoints: init.etcd }, log), index);
  const events = new ClusterEvents();
  const agent = new ClusterAgent(raw, { hostId, vtep: vtepOf(index), underlayMtu: 1500, version: 'bench' }, log, { leaseTtlS: init.ttlS, peerGraceS: init.graceS, events });
  // loomd's cluster mode also follows network policies (driver/startup/cluster.ts, watchClusterPolicies).
  agent.session.addWatch({ prefix: keys.policies, onResync: () => undefined, onEvent: () => undefined });
  const kernel = new RecordingKernel(index);
  const record = {
    id: `net${hostId}`,
    overlay: { key: init.overlay, vni: 0, vxlan: `lx${init.overlay.slice(0, 12)}`, local: vtepOf(index), origin: `sim${String(init.origin).padStart(3, '0')}` },
  } as unknown as NetworkRecord;
  const entries = new OverlayEntries(agent, new OneNetwork(record), kernel, log);
  // As the coordinator does (driver/cluster/coordinator.ts).
  events.listen({ onRemoteEndpoint: (ep, present) => void entries.changed(ep, present) });
  return { index, agent, kernel, live: [], nextSeq: 0 };
}

function publish(h: SimHost): void {
  const seq = h.nextSeq++;
  const ep = epNumber(h.index, seq);
  h.live.push(seq);
  h.agent.publishEndpoint({ overlay: init.overlay, endpointId: `ep${ep}`, mac: macOfEp(ep), ip: ipOf(h.index, seq) });
}

function unpublishOldest(h: SimHost): void {
  const seq = h.live.shift();
  if (seq === undefined) return;
  h.agent.unpublishEndpoint(init.overlay, `ep${epNumber(h.index, seq)}`);
}

async function waitFor(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`worker: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function start(): Promise<void> {
  for (const i of init.hosts) hosts.push(makeHost(i));
  for (const h of hosts) await h.agent.start();
  await waitFor('every lease', () => hosts.every((h) => h.agent.session.leaseId !== undefined), 60_000);
  const origin = hosts.find((h) => h.index === init.origin);
  if (origin) {
    await origin.agent.registerOverlay({ key: init.overlay, origin: origin.agent.hostId, mtu: 1450, ipv4: [{ pool: init.subnet, gateway: `${init.subnet.split('/')[0]?.replace(/\.0$/, '.1')}/16`, aux: {} }], ipv6: [], enableIpv6: false, internal: false, options: {} });
  }
  for (const h of hosts) h.agent.join(init.overlay, `net${h.agent.hostId}`);
}

function churn(everyMs: number, forMs: number): void {
  churning = true;
  const stopAt = Date.now() + forMs;
  for (const h of hosts) {
    // Each host replaces its oldest endpoint every `everyMs` (a container stops, another starts), phases spread.
    const tick = (): void => {
      if (Date.now() >= stopAt) {
        churning = hosts.some((x) => x.timer !== undefined && x !== h);
        h.timer = undefined;
        return;
      }
      unpublishOldest(h);
      publish(h);
      h.timer = setTimeout(tick, everyMs);
    };
    h.timer = setTimeout(tick, Math.random() * everyMs);
  }
  setTimeout(() => (churning = false), forMs + 100).unref();
}

function status(): WorkerStatus {
  const heap = v8.getHeapStatistics();
  const out: WorkerStatus = {
    type: 'status',
    hosts: hosts.map((h) => h.index),
    programmed: hosts.map((h) => h.kernel.neigh.size),
    heldOf: hosts.map((h) => h.kernel.heldByHost()),
    backlog: hosts.reduce((s, h) => s + h.agent.backlog, 0),
    leases: hosts.filter((h) => h.agent.session.leaseId !== undefined).length,
    down: hosts.filter((h) => h.agent.health.isDown).length,
    sessionFailures: hosts.reduce((a, h) => a + h.agent.session.stats.failures, 0),
    heapUsed: heap.used_heap_size,
    heapTotal: heap.total_heap_size,
    churning,
    loopDelayP99: loopDelay.percentile(99) / 1e6,
    loopDelayMax: loopDelay.max / 1e6,
  };
  loopDelay.reset();
  return out;
}

function collect(): WorkerCollect {
  const out: WorkerCollect = {
    type: 'collect',
    puts,
    dels,
    adds,
    removes,
    calls: { ...calls },
    bytesOut,
    endpointPutBytes,
    watchEvents,
    sessionFailures: hosts.reduce((s, h) => s + h.agent.session.stats.failures, 0),
    heapUsed: v8.getHeapStatistics().used_heap_size,
  };
  puts = [];
  dels = [];
  adds = [];
  removes = [];
  return out;
}

port.on('message', (msg: ToWorker) => {
  void (async () => {
    try {
      switch (msg.type) {
        case 'start':
          await start();
          port.postMessage({ type: 'started' });
          break;
        case 'fill':
          // Each host starts its containers one after another over `spreadMs` (random phase), not all at one instant.
          for (const h of hosts) {
            const every = msg.spreadMs / init.endpointsPerHost;
            let left = init.endpointsPerHost;
            const next = (): void => {
              publish(h);
              if (--left > 0) h.timer = setTimeout(next, every);
              else h.timer = undefined;
            };
            h.timer = setTimeout(next, Math.random() * every);
          }
          port.postMessage({ type: 'filling' });
          break;
        case 'churn':
          churn(msg.everyMs, msg.forMs);
          port.postMessage({ type: 'churning' });
          break;
        case 'status':
          port.postMessage(status());
          break;
        case 'collect':
          port.postMessage(collect());
          break;
        case 'stop':
          for (const h of hosts) if (h.timer) clearTimeout(h.timer);
          await Promise.all(hosts.map((h) => h.agent.stop().catch(() => undefined)));
          port.postMessage({ type: 'stopped' });
          break;
      }
    } catch (err) {
      port.postMessage({ type: 'error', error: (err as Error).stack ?? String(err) });
    }
  })();
});
