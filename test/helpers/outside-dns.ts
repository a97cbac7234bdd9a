/**
 * "The outside world's" DNS server for tests that resolve names: a small server (dns-packet for
 * the wire format, UDP and TCP) in a test host's outside namespace at OUTSIDE_IP:53, so a host
 * whose resolv.conf names it (TestHostOptions.resolvConf) never sends DNS to the machine's own
 * resolver. *.outside.test -> 198.18.254.77 (TTL 30); everything else NXDOMAIN. It counts the
 * queries it answered (stdout, one line each). Stopped by its PID.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { killAndWait, waitFor } from './run';
import { OUTSIDE_IP, REPO } from './host/layout';
import type { TestHost } from './test-host';

export const OUTSIDE_NAME_IP = '198.18.254.77';

const SERVER = `
const dgram = require('node:dgram'); const net = require('node:net'); const packet = require('dns-packet');
const addr = process.argv[1];
function answer(q) {
  const qs = q.questions || []; const name = (qs[0] && qs[0].name || '').toLowerCase(); const type = qs[0] && qs[0].type;
  const known = name.endsWith('.outside.test');
  return { id: q.id, type: 'response', flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | (known ? 0 : 3),
    questions: qs, answers: known && type === 'A' ? [{ name: qs[0].name, type: 'A', class: 'IN', ttl: 30, data: '${OUTSIDE_NAME_IP}' }] : [] };
}
const log = (proto, q) => console.log(JSON.stringify({ proto, name: q.questions && q.questions[0] && q.questions[0].name }));
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => { let q; try { q = packet.decode(m); } catch { return; } log('udp', q); u.send(packet.encode(answer(q)), r.port, r.address); });
u.bind(53, addr, () => console.log('LISTENING'));
net.createServer((s) => { let buf = Buffer.alloc(0); s.setTimeout(5000, () => s.destroy()); s.on('error', () => {});
  s.on('data', (d) => { buf = Buffer.concat([buf, d]); while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
    const n = buf.readUInt16BE(0); let q; try { q = packet.decode(buf.subarray(2, 2 + n)); } catch { s.destroy(); return; } buf = buf.subarray(2 + n);
    log('tcp', q); s.write(packet.streamEncode(answer(q))); } }); }).listen(53, addr);
setTimeout(() => process.exit(0), 3600_000).unref();
`;

export interface OutsideDns {
  pid: number;
  /** Queries answered so far (names). */
  queries(): string[];
  stop(): Promise<void>;
}

/** Starts the server in `host`'s outside namespace; resolves once it listens. */
export async function startOutsideDns(host: TestHost): Promise<OutsideDns> {
  const logFile = path.join(host.dir, 'outside-dns.log');
  const out = fs.openSync(logFile, 'a');
  const child = spawn('ip', ['netns', 'exec', host.outNetns, process.execPath, '-e', SERVER, OUTSIDE_IP], {
    stdio: ['ignore', out, out],
    env: { ...process.env, NODE_PATH: path.join(REPO, 'node_modules') },
  });
  fs.closeSync(out);
  if (!child.pid) throw new Error('could not start the outside DNS server');
  const pid = child.pid;
  const read = (): string => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
  const server: OutsideDns = {
    pid,
    queries: () => read().split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { name: string }).name),
    stop: () => killAndWait(pid, 'SIGTERM', 5_000),
  };
  try {
    await waitFor('the outside DNS server to listen', async () => read().includes('LISTENING'), 15_000, 100);
  } catch (err) {
    await server.stop();
    throw new Error(`${String(err)}: ${read().slice(-500)}`);
  }
  return server;
}
