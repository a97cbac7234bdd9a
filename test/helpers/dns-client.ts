/**
 * A DNS client inside a container's network namespace (nsenter into the namespace of the
 * container's process; node from this machine with dns-packet): sends A queries to Docker's
 * resolver address 127.0.0.11:53, as the container's libc would, and times each answer.
 * Used by the service-discovery benchmark and the multihost names test.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { killAndWait } from './run';
import { REPO } from './host/layout';
import type { TestHost } from './test-host';

/** A query without an answer by then counts as a timeout. */
export const QUERY_TIMEOUT_MS = 2_000;

/** Reads "SEQ NAME" lines on stdin, sends one A query to 127.0.0.11:53 per line, prints one JSON line per answer or timeout. */
const CLIENT = `
const dgram = require('node:dgram'); const packet = require('dns-packet'); const readline = require('node:readline');
const s = dgram.createSocket('udp4'); let id = 0; let pending = null;
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
s.on('message', (m) => { let r; try { r = packet.decode(m); } catch { return; } if (!pending || r.id !== pending.id) return;
  const ms = Number(process.hrtime.bigint() - pending.t0) / 1e6; clearTimeout(pending.timer); const p = pending; pending = null;
  out({ seq: p.seq, ms, rcode: r.rcode, a: r.answers.filter((x) => x.type === 'A').map((x) => x.data) }); });
s.bind(0, () => { out({ ready: true }); readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const [seq, name] = line.trim().split(' '); if (!name) return; id = (id + 1) & 0xffff;
  const q = packet.encode({ id, type: 'query', flags: packet.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] });
  pending = { seq, id, timer: setTimeout(() => { if (pending && pending.seq === seq) { pending = null; out({ seq, timeout: true }); } }, ${QUERY_TIMEOUT_MS}) };
  pending.t0 = process.hrtime.bigint(); s.send(q, 53, '127.0.0.11'); }); });
process.stdin.on('end', () => process.exit(0)); setTimeout(() => process.exit(2), 900000).unref();
`;

export interface Reply {
  seq?: string;
  ms?: number;
  rcode?: string;
  a?: string[];
  timeout?: boolean;
  ready?: boolean;
}

/** One client in the network namespace of process `pid`: `query(name)` resolves with its reply line. */
export class DnsClient {
  private readonly child: ChildProcess;
  private waiters = new Map<string, (r: Reply) => void>();
  private seq = 0;
  private readyResolve!: () => void;
  readonly ready: Promise<void>;
  private exited = false;

  constructor(pid: number) {
    this.ready = new Promise((res) => (this.readyResolve = res));
    this.child = spawn('nsenter', ['-t', String(pid), '-n', process.execPath, '-e', CLIENT], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, NODE_PATH: path.join(REPO, 'node_modules') },
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let r: Reply;
      try {
        r = JSON.parse(line) as Reply;
      } catch {
        return;
      }
      if (r.ready) return this.readyResolve();
      const w = r.seq !== undefined ? this.waiters.get(r.seq) : undefined;
      if (w && r.seq !== undefined) {
        this.waiters.delete(r.seq);
        w(r);
      }
    });
    this.child.on('exit', () => {
      this.exited = true;
      for (const w of this.waiters.values()) w({ timeout: true });
      this.waiters.clear();
    });
  }

  query(name: string): Promise<Reply> {
    if (this.exited) return Promise.reject(new Error('DNS client exited'));
    const seq = String(++this.seq);
    return new Promise((resolve) => {
      // The client times out after QUERY_TIMEOUT_MS; this guard only covers a stuck client.
      const guard = setTimeout(() => {
        this.waiters.delete(seq);
        resolve({ timeout: true });
      }, QUERY_TIMEOUT_MS + 5_000);
      this.waiters.set(seq, (r) => {
        clearTimeout(guard);
        resolve(r);
      });
      this.child.stdin!.write(`${seq} ${name}\n`);
    });
  }

  async stop(): Promise<void> {
    this.child.stdin?.end();
    if (this.child.pid && !this.exited) await killAndWait(this.child.pid, 'SIGTERM', 5_000);
  }
}

/** A client in the network namespace of container `ctr` on host `h` (through its main process). */
export async function dnsClientIn(h: Pick<TestHost, 'cliOk'>, ctr: string): Promise<DnsClient> {
  const pid = Number(await h.cliOk(['inspect', '-f', '{{.State.Pid}}', ctr]));
  if (!(pid > 0)) throw new Error(`no PID for ${ctr}`);
  return new DnsClient(pid);
}
