#!/usr/bin/env node
/**
 * Runs inside a container's network namespace (started by loomd as
 * `nsenter --net=<netns> node dns-socket-helper.js <address>`, see dns-sockets.ts): binds a
 * UDP socket and a TCP listener on `<address>` (Docker's resolver address, 127.0.0.11) with
 * ports the kernel picks, hands both to loomd over the IPC channel (Node's handle passing,
 * SCM_RIGHTS underneath) and exits once loomd says it holds them. The sockets stay in that
 * namespace, owned by loomd; this process lives for a fraction of a second.
 * Node cannot switch network namespaces itself, hence this helper. It imports nothing of loom.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';

/** Give up (exit 2) when loomd has not taken the sockets by then. */
const HELPER_DEADLINE_MS = 10_000;

function main(address: string): void {
  if (!process.send) {
    process.stderr.write('dns-socket-helper: no IPC channel (run by loomd only)\n');
    process.exit(2);
  }
  const send = process.send.bind(process);
  const udp = dgram.createSocket('udp4');
  udp.once('error', (err) => fail(`udp ${address}: ${err.message}`));
  udp.bind(0, address, () => {
    const tcp = net.createServer({ pauseOnConnect: true });
    tcp.once('error', (err) => fail(`tcp ${address}: ${err.message}`));
    tcp.listen(0, address, () => {
      send({ kind: 'udp', port: udp.address().port }, udp as unknown as net.Socket);
      send({ kind: 'tcp', port: (tcp.address() as net.AddressInfo).port }, tcp);
      process.on('message', () => process.exit(0));
    });
  });
  setTimeout(() => fail('loomd did not take the sockets in time'), HELPER_DEADLINE_MS).unref();
}

function fail(why: string): never {
  process.stderr.write(`dns-socket-helper: ${why}\n`);
  process.exit(2);
}

if (require.main === module) main(process.argv[2] ?? '127.0.0.11');
