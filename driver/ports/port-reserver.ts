/**
 * Holds host ports for published bindings, the way docker-proxy does: loomd binds
 * (TCP: listens, UDP: binds) hostIp:port, so no other process can take a port that
 * loom forwards, and a port another process holds is reported as allocated. The
 * sockets never see traffic: DNAT redirects it before it reaches them. SCTP ports
 * are tracked in memory only (Node cannot open SCTP sockets).
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { LoomError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { ContainerAddresses, DockerPortBinding, Proto, PublishedPort, choosePorts } from '../model/port-map';

type Holder = { close(): void };

const keyOf = (proto: Proto, hostIp: string, port: number): string => `${proto}/${hostIp}/${port}`;

export class PortReserver {
  private readonly held = new Map<string, Holder>();

  constructor(private readonly log: Logger) {}

  /**
   * Reserves proto/hostIp/port; false when loom or another process already holds it.
   * Other failures (no permission for a port below 1024, an address the host lacks) are errors.
   */
  async tryReserve(proto: Proto, hostIp: string, port: number): Promise<boolean> {
    const key = keyOf(proto, hostIp, port);
    if (this.held.has(key)) return false;
    // An "any address" binding conflicts with every specific binding of the same port and vice versa.
    for (const k of this.held.keys()) {
      const [p, ip, pt] = k.split('/');
      if (p === proto && Number(pt) === port && (ip === '0.0.0.0' || ip === '::' || hostIp === '0.0.0.0' || hostIp === '::')) {
        if (sameFamily(ip as string, hostIp)) return false;
      }
    }
    const holder = await this.bind(proto, hostIp, port);
    if (!holder) return false;
    this.held.set(key, holder);
    return true;
  }

  private bind(proto: Proto, hostIp: string, port: number): Promise<Holder | undefined> {
    if (proto === 'sctp') return Promise.resolve({ close: () => undefined });
    return new Promise((resolve, reject) => {
      if (proto === 'tcp') {
        const srv = net.createServer((sock) => sock.destroy());
        srv.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(undefined) : reject(bindError(hostIp, port, proto, err))));
        srv.listen({ host: hostIp, port, exclusive: true, ipv6Only: hostIp.includes(':') }, () => {
          srv.unref();
          resolve({ close: () => srv.close() });
        });
      } else {
        const sock = dgram.createSocket({ type: hostIp.includes(':') ? 'udp6' : 'udp4', ipv6Only: hostIp.includes(':') });
        sock.once('error', (err: NodeJS.ErrnoException) => {
          sock.close();
          if (err.code === 'EADDRINUSE') resolve(undefined);
          else reject(bindError(hostIp, port, proto, err));
        });
        sock.bind({ address: hostIp, port, exclusive: true }, () => {
          sock.unref();
          resolve({ close: () => sock.close() });
        });
      }
    });
  }

  /**
   * Swaps an endpoint's published ports for new bindings (a retried
   * ProgramExternalConnectivity replaces the previous ones): the previous ports are
   * released, the new ones chosen and held. On failure nothing new stays held and
   * the previous ports are held again.
   */
  async replace(previous: PublishedPort[], bindings: DockerPortBinding[], container: ContainerAddresses, defaultHostIp: string): Promise<PublishedPort[]> {
    this.release(previous);
    const taken: PublishedPort[] = [];
    try {
      return await choosePorts(bindings, container, defaultHostIp, async (proto, hostIp, port) => {
        const ok = await this.tryReserve(proto, hostIp, port);
        if (ok) taken.push({ proto, family: hostIp.includes(':') ? 6 : 4, hostIp, hostPort: port, containerIp: '', containerPort: 0 });
        return ok;
      });
    } catch (err) {
      this.release(taken);
      await this.restore(previous);
      throw err;
    }
  }

  /** Undoes a successful `replace` (a later step of the publication failed). */
  async undoReplace(chosen: PublishedPort[], previous: PublishedPort[]): Promise<void> {
    this.release(chosen);
    await this.restore(previous);
  }

  release(ports: PublishedPort[]): void {
    for (const p of ports) {
      const key = keyOf(p.proto, p.hostIp, p.hostPort);
      this.held.get(key)?.close();
      this.held.delete(key);
    }
  }

  /** Re-takes ports loom published before a restart; a port someone else took meanwhile is logged. */
  async restore(ports: PublishedPort[]): Promise<void> {
    for (const p of ports) {
      try {
        if (!(await this.tryReserve(p.proto, p.hostIp, p.hostPort))) {
          this.log.warn({ ...p }, 'a published port is now held by another process; its DNAT rule stays, local binds may conflict');
        }
      } catch (err) {
        this.log.warn({ ...p, err: String(err) }, 'could not hold a published port again; its DNAT rule stays');
      }
    }
  }

  get size(): number {
    return this.held.size;
  }
}

function bindError(hostIp: string, port: number, proto: Proto, err: NodeJS.ErrnoException): LoomError {
  const where = `${hostIp.includes(':') ? `[${hostIp}]` : hostIp}:${port}/${proto}`;
  if (err.code === 'EACCES') return new LoomError('unavailable', `cannot publish ${where}: loomd may not bind ports below 1024 (it needs CAP_NET_BIND_SERVICE)`);
  if (err.code === 'EADDRNOTAVAIL') return new LoomError('invalid', `cannot publish ${where}: the host has no address ${hostIp}`);
  return new LoomError('unavailable', `cannot publish ${where}: ${err.code ?? err.message}`);
}

function sameFamily(a: string, b: string): boolean {
  return a.includes(':') === b.includes(':');
}
