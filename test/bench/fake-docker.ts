/**
 * A small fake Docker API on a Unix socket of the benchmark process, for a standalone loomd
 * (standalone.ts) started with DOCKER_HOST=unix://<socket>. It answers the calls loomd makes
 * through dockerode, from what the benchmark registered:
 *   - GET /networks/ID and GET /containers/ID/json: label and name learning after Join
 *     (dns/learn.ts inspectJoined);
 *   - GET /networks: the reconciler's Docker view (reconcile/docker-view.ts), only once some
 *     network was registered with addNetwork(); until then it answers 500, as a Docker that is
 *     not answering (its Docker-dependent repairs wait);
 *   - GET /containers/json, GET /events (held open, nothing sent), GET /_ping, GET /version:
 *     what a client may ask besides (cheap, so that nothing fails for want of them).
 * Every call is counted by route (calls), so that a benchmark can say what loomd asked.
 * It is not dockerd: no container runs, no network exists in Docker's sense; it is what
 * loomd reads, consistent with what the benchmark made through the plugin API.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';

export interface FakeContainer {
  id: string;
  name: string;
  networkId: string;
  networkName: string;
  endpointId: string;
  labels: Record<string, string>;
  /** The endpoint's address with its prefix length (Docker's IPv4Address), when known. */
  address?: string;
}

export interface FakeNetwork {
  id: string;
  name: string;
  driver: string;
  ipamDriver: string;
  subnet: string;
  gateway: string;
}

export class FakeDocker {
  readonly byEndpoint = new Map<string, FakeContainer>();
  readonly networks = new Map<string, FakeNetwork>();
  /** Calls answered, by route ("GET /networks/ID"...). */
  readonly calls = new Map<string, number>();
  private server: http.Server | undefined;
  private readonly events = new Set<http.ServerResponse>();
  constructor(readonly socket: string) {}

  addNetwork(n: FakeNetwork): void {
    this.networks.set(n.id, n);
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    const srv = this.server;
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(this.socket, () => resolve());
    });
  }

  private count(route: string): void {
    this.calls.set(route, (this.calls.get(route) ?? 0) + 1);
  }

  private containersOf(networkId: string): FakeContainer[] {
    const out: FakeContainer[] = [];
    for (const c of this.byEndpoint.values()) if (c.networkId === networkId) out.push(c);
    return out;
  }

  private networkJson(id: string, withContainers: boolean): Record<string, unknown> {
    const n = this.networks.get(id);
    const containers: Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }> = {};
    if (withContainers) {
      for (const c of this.containersOf(id)) containers[c.id] = { Name: c.name, EndpointID: c.endpointId, MacAddress: '', IPv4Address: c.address ?? '', IPv6Address: '' };
    }
    return {
      Name: n?.name ?? id.slice(0, 12),
      Id: id,
      Scope: 'local',
      Driver: n?.driver ?? '',
      EnableIPv6: false,
      IPAM: { Driver: n?.ipamDriver ?? '', Options: {}, Config: n ? [{ Subnet: n.subnet, Gateway: n.gateway }] : [] },
      Internal: false,
      Attachable: false,
      Containers: containers,
      Options: {},
      Labels: {},
    };
  }

  private containerJson(c: FakeContainer): Record<string, unknown> {
    return {
      Id: c.id,
      Name: `/${c.name}`,
      State: { Status: 'running', Running: true },
      Config: { Labels: c.labels },
      NetworkSettings: { Networks: { [c.networkName]: { NetworkID: c.networkId, EndpointID: c.endpointId, IPAddress: (c.address ?? '').split('/')[0], Aliases: null, DNSNames: [c.name, c.id.slice(0, 12)] } } },
    };
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const p = (req.url ?? '').split('?')[0]?.replace(/^\/v[\d.]+/, '') ?? '';
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    req.resume();
    if (req.method !== 'GET') {
      this.count(`${req.method} other`);
      return send(501, { message: 'fake Docker API of the benchmark: read-only' });
    }
    if (p === '/_ping') {
      this.count('GET /_ping');
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Api-Version': '1.44' });
      return void res.end('OK');
    }
    if (p === '/version') {
      this.count('GET /version');
      return send(200, { Version: '25.0.0-loom-bench-fake', ApiVersion: '1.44', MinAPIVersion: '1.24', Os: 'linux', Arch: 'amd64' });
    }
    if (p === '/events') {
      this.count('GET /events');
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      this.events.add(res);
      res.on('close', () => this.events.delete(res));
      return;
    }
    if (p === '/networks') {
      this.count('GET /networks');
      if (!this.networks.size) return send(500, { message: 'fake Docker API of the benchmark: no networks registered' });
      return send(200, [...this.networks.keys()].map((id) => this.networkJson(id, false)));
    }
    let m = /^\/networks\/([^/]+)$/.exec(p);
    if (m) {
      this.count('GET /networks/ID');
      const id = m[1] as string;
      if (this.networks.size && !this.networks.has(id)) return send(404, { message: `network ${id} not found` });
      return send(200, this.networkJson(id, true));
    }
    if (p === '/containers/json') {
      this.count('GET /containers/json');
      return send(
        200,
        [...this.byEndpoint.values()].map((c) => ({ Id: c.id, Names: [`/${c.name}`], State: 'running', Status: 'Up', Labels: c.labels, NetworkSettings: { Networks: { [c.networkName]: { NetworkID: c.networkId, EndpointID: c.endpointId } } } })),
      );
    }
    m = /^\/containers\/([^/]+)\/json$/.exec(p);
    if (m) {
      this.count('GET /containers/ID/json');
      const c = [...this.byEndpoint.values()].find((x) => x.id === m?.[1]);
      if (!c) return send(404, { message: 'no such container' });
      return send(200, this.containerJson(c));
    }
    this.count('GET other');
    send(404, { message: `fake Docker API of the benchmark: ${p} not implemented` });
  }

  /** What loomd asked, for a note: "GET /networks 12, GET /networks/ID 2040, ...". */
  callSummary(): string {
    return [...this.calls.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  }

  async stop(): Promise<void> {
    const srv = this.server;
    this.server = undefined;
    for (const res of this.events) res.end();
    if (srv) {
      srv.closeAllConnections();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
    fs.rmSync(this.socket, { force: true });
  }
}
