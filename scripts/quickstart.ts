/**
 * Quick start: runs loom as a plugin of a Docker engine and shows two containers
 * talking over a loom network, then cleans up.
 *
 * - With a Docker engine answering on /var/run/docker.sock (or DOCKER_HOST), loomd
 *   is started as a legacy plugin on /run/docker/plugins/loom.sock of that engine.
 * - Without one (CI machines, this project's build hosts), a private engine is
 *   started in a throwaway network namespace (the e2e harness) and removed afterwards.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TestHost, REPO } from '../test/helpers/test-host';
import { run, waitFor, killAndWait } from '../test/helpers/run';
import { LOOMD_NODE_FLAGS } from '../driver/node-flags';

const step = (msg: string): void => console.log(`\n==> ${msg}`);

async function sandbox(): Promise<void> {
  step('no local Docker engine answers: starting a private one in a throwaway network namespace');
  const host = await TestHost.create();
  try {
    step('starting loomd as the legacy plugin "loom"');
    await host.startLoomd({ LOOM_LOG_LEVEL: 'info' });
    await demo((args) => host.cliOk(args));
  } finally {
    step('cleaning up the private engine, loomd and the namespace');
    await host.destroy();
  }
}

async function local(): Promise<void> {
  const socket = '/run/docker/plugins/loom.sock';
  step(`starting loomd on ${socket} for the local Docker engine`);
  const log = fs.openSync('/tmp/loomd-quickstart.log', 'a');
  const child = spawn(process.execPath, [...LOOMD_NODE_FLAGS, path.join(REPO, 'dist/driver/main.js')], { stdio: ['ignore', log, log], detached: true });
  child.unref();
  try {
    await waitFor('loomd socket', async () => fs.existsSync(socket), 10_000);
    const cli = async (args: string[]): Promise<string> => {
      const r = await run('docker', args, { timeoutMs: 120_000 });
      if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr.trim()}`);
      return r.stdout.trim();
    };
    if ((await run('docker', ['image', 'inspect', 'busybox'])).code !== 0) await cli(['pull', 'busybox']);
    await demo(cli, 'busybox');
  } finally {
    step('stopping loomd (the quickstart network is gone; its log is /tmp/loomd-quickstart.log)');
    if (child.pid) await killAndWait(child.pid, 'SIGTERM');
  }
}

async function demo(cli: (args: string[]) => Promise<string>, image = 'local/busybox'): Promise<void> {
  step('docker network create -d loom --ipam-driver loom quickstart');
  await cli(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', 'quickstart']);
  try {
    console.log(await cli(['network', 'inspect', '-f', 'subnet {{(index .IPAM.Config 0).Subnet}}  gateway {{(index .IPAM.Config 0).Gateway}}', 'quickstart']));
    step('two containers on it');
    await cli(['run', '-d', '--init', '--name', 'qs-server', '--network', 'quickstart', image, 'sleep', '600']);
    const ip = await cli(['inspect', '-f', '{{.NetworkSettings.Networks.quickstart.IPAddress}}', 'qs-server']);
    console.log(`qs-server has ${ip}`);
    step(`docker run --rm --network quickstart ${image} ping -c 3 ${ip}`);
    console.log(await cli(['run', '--rm', '--init', '--network', 'quickstart', image, 'ping', '-c', '3', ip]));
  } finally {
    await cli(['rm', '-f', 'qs-server']).catch(() => undefined);
    await cli(['network', 'rm', 'quickstart']).catch(() => undefined);
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('loom manages bridges and firewall rules: run as root');
  const hasEngine = (await run('docker', ['version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 })).code === 0;
  await (hasEngine ? local() : sandbox());
  step('done: two containers talked over a loom network');
}

main().catch((err) => {
  console.error(`quickstart failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
