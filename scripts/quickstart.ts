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
import { TestHost, REPO, busyboxTar } from '../test/helpers/test-host';
import { unixRequest } from '../test/helpers/unix-http';
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
  const cli = async (args: string[]): Promise<string> => {
    const r = await run('docker', args, { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout.trim();
  };
  let child: ReturnType<typeof spawn> | undefined;
  if (await answers(socket)) {
    step(`a loom plugin already answers on ${socket}: using it`);
  } else {
    step(`starting loomd on ${socket} for the local Docker engine`);
    const log = fs.openSync('/tmp/loomd-quickstart.log', 'a');
    child = spawn(process.execPath, [...LOOMD_NODE_FLAGS, path.join(REPO, 'dist/driver/main.js')], { stdio: ['ignore', log, log], detached: true });
    child.unref();
  }
  try {
    await waitFor('loomd socket', async () => answers(socket), 20_000);
    await demo(cli, await demoImage(cli));
  } finally {
    if (child?.pid) {
      step('stopping loomd (the quickstart network is gone; its log is /tmp/loomd-quickstart.log)');
      await killAndWait(child.pid, 'SIGTERM');
    }
  }
}

/** True when a plugin answers Plugin.Activate on `socket`. */
async function answers(socket: string): Promise<boolean> {
  if (!fs.existsSync(socket)) return false;
  return (await unixRequest(socket, 'POST', '/Plugin.Activate', undefined, 2_000).catch(() => undefined))?.status === 200;
}

/** An image to run: busybox if the engine has it, else the machine's static busybox imported, else a pull. */
async function demoImage(cli: (args: string[]) => Promise<string>): Promise<string> {
  if ((await run('docker', ['image', 'inspect', 'busybox'])).code === 0) return 'busybox';
  if (fs.existsSync('/bin/busybox')) {
    step('importing this machine\'s static busybox as local/busybox (no registry needed)');
    await cli(['import', '-c', 'CMD ["/bin/sh"]', await busyboxTar(), 'local/busybox']);
    return 'local/busybox';
  }
  step('docker pull busybox');
  await cli(['pull', 'busybox']);
  return 'busybox';
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
  // scripts/setup-host.sh (run by `npm run quickstart` before this) installed what is missing.
  for (const tool of ['nft', 'nsenter']) {
    if ((await run('sh', ['-c', `command -v ${tool}`])).code !== 0) throw new Error(`${tool} is missing: run \`bash scripts/setup-host.sh quickstart\` as root (npm run quickstart does)`);
  }
  const hasEngine = (await run('docker', ['version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 })).code === 0;
  await (hasEngine ? local() : sandbox());
  step('done: two containers talked over a loom network');
}

main().catch((err) => {
  console.error(`quickstart failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
