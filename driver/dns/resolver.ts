/**
 * One container's resolver: the UDP socket and TCP listener loomd holds inside the container's
 * namespace (kernel/dns-sockets.ts). Each query is decided (answer.ts); what loom does not
 * answer is relayed byte for byte to Docker's resolver (127.0.0.11:53) over the UDP socket,
 * with the query id swapped for one of this resolver's own, and Docker's reply returned with
 * the client's id. TCP queries are relayed the same way (over UDP: a reply Docker truncates
 * comes back truncated, as Docker would send it over UDP).
 * Bounded: at most MAX_PENDING relayed queries wait, each at most RELAY_TIMEOUT_MS; a TCP
 * connection idles at most TCP_IDLE_MS and buffers at most one message.
 */
import type * as dgram from 'node:dgram';
import type * as net from 'node:net';
import { DOCKER_RESOLVER } from '../kernel/dns-sockets';
import type { Decision } from './answer';

export type QueryResult = 'answered' | 'relayed' | 'refused' | 'failed';

const MAX_PENDING = 1024;
const RELAY_TIMEOUT_MS = 10_000;
const TCP_IDLE_MS = 10_000;
const MAX_MESSAGE = 65_535;

interface Pending {
  clientId: number;
  reply: (msg: Buffer) => void;
  timer: NodeJS.Timeout;
}

export class ContainerResolver {
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closed = false;

  constructor(
    private readonly udp: dgram.Socket,
    private readonly tcp: net.Server,
    private readonly decide: (msg: Buffer) => Decision,
    private readonly onResult: (result: QueryResult, d?: Decision) => void,
  ) {
    udp.on('message', (m, r) => this.onDatagram(m, r));
    udp.on('error', () => this.onResult('failed'));
    tcp.on('connection', (c) => this.onConnection(c));
    tcp.on('error', () => this.onResult('failed'));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    try {
      this.udp.close();
    } catch {
      // already closed
    }
    this.tcp.close();
  }

  private onDatagram(m: Buffer, r: dgram.RemoteInfo): void {
    if (r.address === DOCKER_RESOLVER && r.port === 53) return this.onDockerReply(m);
    this.handle(m, (out) => this.udp.send(out, r.port, r.address));
  }

  private handle(m: Buffer, reply: (out: Buffer) => void): void {
    const d = this.decide(m);
    if (d.kind === 'answer') {
      reply(d.reply);
      this.onResult('answered', d);
    } else if (d.kind === 'drop') {
      this.onResult('refused', d);
    } else this.relay(m, reply);
  }

  private relay(m: Buffer, reply: (out: Buffer) => void): void {
    if (this.pending.size >= MAX_PENDING) return this.onResult('refused');
    let id = this.nextId;
    do id = (id + 1) & 0xffff;
    while (this.pending.has(id));
    this.nextId = id;
    const out = Buffer.from(m);
    const clientId = out.readUInt16BE(0);
    out.writeUInt16BE(id, 0);
    const timer = setTimeout(() => {
      this.pending.delete(id);
      this.onResult('failed');
    }, RELAY_TIMEOUT_MS);
    timer.unref();
    this.pending.set(id, { clientId, reply, timer });
    this.udp.send(out, 53, DOCKER_RESOLVER, (err) => {
      if (!err) return;
      clearTimeout(timer);
      this.pending.delete(id);
      this.onResult('failed');
    });
  }

  private onDockerReply(m: Buffer): void {
    if (m.length < 2) return;
    const p = this.pending.get(m.readUInt16BE(0));
    if (!p) return;
    this.pending.delete(m.readUInt16BE(0));
    clearTimeout(p.timer);
    const out = Buffer.from(m);
    out.writeUInt16BE(p.clientId, 0);
    p.reply(out);
    this.onResult('relayed');
  }

  private onConnection(c: net.Socket): void {
    c.resume();
    c.setTimeout(TCP_IDLE_MS, () => c.destroy());
    c.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    const frame = (out: Buffer): void => {
      if (c.destroyed) return;
      const len = Buffer.alloc(2);
      len.writeUInt16BE(out.length);
      c.write(Buffer.concat([len, out]));
    };
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length > MAX_MESSAGE + 2) return void c.destroy();
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const m = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + m.length);
        this.handle(Buffer.from(m), frame);
      }
    });
  }
}
