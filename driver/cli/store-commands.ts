/**
 * `loomctl store …`: offline recovery of loom's state store (docs/operations.md, "Store
 * damage"). These commands open the store themselves, so they run only while loomd is
 * stopped (LevelDB's lock refuses them otherwise). Exit codes: 0 done, 1 failed, 2 usage.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import Dockerode from 'dockerode';
import { rebuildEntries } from '../recovery/docker-rebuild';
import { RecoveryReport, acceptStore, ensureStopped, rebuildStore, restoreSnapshot } from '../store/recovery';
import { listSnapshots } from '../store/snapshot';

export const STORE_USAGE = `Usage: loomctl store COMMAND --state-dir DIR [options]   (loomd must be stopped)

Commands:
  snapshots   list the verified snapshots loom keeps (newest first)
  restore     replace the store with a snapshot (the newest, or --snapshot FILE)
  rebuild     replace the store with records rebuilt from Docker's view: the networks of
              loom's driver (--driver), their IPAM config, endpoints, addresses and MACs
  accept      keep the store as LevelDB recovered it (drops the refusal; acknowledged
              writes it lost stay lost)
The previous store is moved to db.damaged-<time>, never deleted. The next loomd start
logs what was recovered.

Options:
  --state-dir DIR     loomd's --state-dir [LOOM_STATE_DIR] (default /var/lib/loom)
  --snapshot FILE     restore: this snapshot instead of the newest
  --docker-host URL   rebuild: Docker's API [DOCKER_HOST] (default unix:///var/run/docker.sock)
  --driver NAME       rebuild: loom's driver name in Docker [LOOM_DRIVER_NAME] (default loom)
  --json              machine-readable output
`;

export async function storeMain(argv: string[], env: NodeJS.ProcessEnv, out: (s: string) => void): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'state-dir': { type: 'string' },
        snapshot: { type: 'string' },
        'docker-host': { type: 'string' },
        driver: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    out(`loomctl store: ${(err as Error).message}\n\n${STORE_USAGE}`);
    return 2;
  }
  const cmd = parsed.positionals[0];
  if (parsed.values.help || !cmd) {
    out(STORE_USAGE);
    return parsed.values.help ? 0 : 2;
  }
  const stateDir = path.resolve(parsed.values['state-dir'] ?? (env.LOOM_STATE_DIR || '/var/lib/loom'));
  const json = parsed.values.json === true;
  const show = (r: RecoveryReport): void => out(json ? JSON.stringify(r, null, 2) + '\n' : describe(r));
  try {
    switch (cmd) {
      case 'snapshots': {
        const list = listSnapshots(stateDir);
        out(json ? JSON.stringify(list, null, 2) + '\n' : list.length ? list.map((s) => `${s.createdAt}  write #${s.seq}  ${s.file}`).join('\n') + '\n' : `no verified snapshot in ${stateDir}/snapshots\n`);
        return 0;
      }
      case 'restore':
        show(await restoreSnapshot(stateDir, parsed.values.snapshot));
        return 0;
      case 'rebuild': {
        await ensureStopped(stateDir);
        const docker = new Dockerode({ socketPath: (parsed.values['docker-host'] ?? (env.DOCKER_HOST || 'unix:///var/run/docker.sock')).replace(/^unix:\/\//, ''), timeout: 30_000 });
        const driver = parsed.values.driver ?? (env.LOOM_DRIVER_NAME || 'loom');
        const networks = [];
        for (const n of await docker.listNetworks()) if (n.Driver === driver) networks.push(await docker.getNetwork(n.Id).inspect());
        const containers = new Map<string, Dockerode.ContainerInspectInfo>();
        for (const n of networks) {
          for (const id of Object.keys(n.Containers ?? {})) if (!containers.has(id)) containers.set(id, await docker.getContainer(id).inspect());
        }
        const r = rebuildEntries(networks, containers, driver, await bridgeAddresses());
        show(await rebuildStore(stateDir, r.entries, r.skipped));
        return 0;
      }
      case 'accept':
        show(await acceptStore(stateDir));
        return 0;
      default:
        out(`loomctl store: unknown command ${cmd}\n\n${STORE_USAGE}`);
        return 2;
    }
  } catch (err) {
    out(`loomctl store ${cmd}: ${(err as Error).message}\n`);
    return 1;
  }
}

/** The addresses of each bridge in the kernel (where Docker's view names no gateway). */
async function bridgeAddresses(): Promise<(bridge: string) => string[]> {
  const { NetlinkKernel } = await import('../kernel/netlink-kernel');
  const kernel = new NetlinkKernel();
  try {
    const links = await kernel.listLinks();
    const addrs = await kernel.listAddresses();
    return (bridge) => {
      const index = links.find((l) => l.name === bridge)?.index;
      return addrs.filter((a) => a.index === index).map((a) => a.cidr);
    };
  } catch {
    return () => [];
  } finally {
    await kernel.close();
  }
}

function describe(r: RecoveryReport): string {
  const c = r.counts;
  const from = r.how === 'snapshot' ? `snapshot ${r.snapshot?.file} (taken ${r.snapshot?.createdAt}, write #${r.snapshot?.seq}): changes after it are not in the store` : r.how === 'docker' ? "Docker's view" : 'the store as LevelDB recovered it';
  return [
    `recovered from ${from}`,
    `store now holds ${c.networks} network(s), ${c.endpoints} endpoint(s), ${c.pools} pool(s), ${c.allocations} allocation(s)`,
    ...(r.movedAside ? [`the previous store was kept in ${r.movedAside}`] : []),
    ...r.skipped.map((s) => `NOT recovered: ${s}`),
    'start loomd; it logs this recovery, then run: loomctl doctor',
  ].join('\n') + '\n';
}
