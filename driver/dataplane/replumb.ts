/**
 * Re-plumbing a running container whose veth pair was deleted: the pair is made again
 * (the endpoint table), its container end moved into the container's namespace and
 * configured there by a small helper process (kernel/netns-helper.ts: node cannot switch
 * namespaces itself), which names it, gives it its addresses and restores default routes.
 */
import * as fs from 'node:fs';
import { runChecked, runCommand } from '../kernel/command';
import { openNetnsFile } from '../kernel/netns-file';
import type { EndpointRecord } from '../model/types';
import type { Gateways } from './data-plane';
import type { DataPlaneDeps } from './kernel-verbs';
import type { StepRunner } from './steps';
import { helperScript } from '../kernel/helper-scripts';

/** The compiled helper that runs inside a container's namespace. */
const netnsHelper = (): string => helperScript('netns-helper.js');

/**
 * Opens `sandbox` once (non-blocking and type-checked: netns-file.ts), runs `ensurePair` on
 * `steps`, then moves and configures the container end; both steps use the descriptor,
 * never the path again.
 */
export async function plumbIntoSandbox(
  deps: Pick<DataPlaneDeps, 'kernel' | 'log'>,
  ep: EndpointRecord,
  sandbox: string,
  gateways: Gateways,
  steps: StepRunner,
  ensurePair: () => Promise<void>,
): Promise<void> {
  const nsFd = openNetnsFile(sandbox);
  try {
    await ensurePair();
    await steps.step(`move ${ep.peerIf} into ${sandbox}`, () => deps.kernel.moveToNetns(ep.peerIf, nsFd));
    const req = {
      ifname: ep.peerIf,
      prefix: 'eth',
      addresses: [ep.address, ep.addressV6].filter((a): a is string => Boolean(a)),
      ...(gateways.gateway4 ? { gateway4: gateways.gateway4 } : {}),
      ...(gateways.gateway6 ? { gateway6: gateways.gateway6 } : {}),
    };
    await steps.step('configure the interface inside the container', async () => {
      const nsRef = `/proc/${process.pid}/fd/${nsFd}`;
      const out = await runChecked(runCommand, 'nsenter', [`--net=${nsRef}`, '--', process.execPath, netnsHelper(), JSON.stringify(req)]);
      deps.log.info({ endpointId: ep.id, ...JSON.parse(out) }, 're-plumbed an endpoint into its running container');
    });
  } finally {
    fs.closeSync(nsFd);
  }
}
