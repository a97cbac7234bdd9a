/**
 * The admin API on its own root-only Unix socket (never the plugin socket):
 * read-only views of loom's state for loomctl, tests and operators. LevelDB
 * allows one process, so every tool asks loomd instead of opening the store.
 */
import express, { Request, Response } from 'express';
import type { NetworkLookup } from '../network/network-table';
import type { IpamService } from '../../ipam-driver/index';
import type { Reconciler } from '../reconcile/reconciler';
import type { HealthView } from '../../lib/cluster/health';
import type { ClaimConflict } from '../../ipam-driver/index';
import { asLoomError } from '../../lib/errors';
import { logLosses } from '../../lib/logger';
import { checkPolicyName, PolicyService } from './policy-service';

/** This host's view of the cluster (status, doctor). */
export interface ClusterStatus {
  hostId: string;
  vtep: string;
  /** False while etcd is known to be unreachable. */
  healthy: boolean;
  etcd: HealthView;
  /** The reconnect loop is running (etcd lost, or a watch being re-created). */
  reconnecting: boolean;
  session: { attempts: number; failures: number; leaseGrants: number; watchResyncs: number; renewals: number };
  /** Cluster writes waiting for etcd. */
  backlog: number;
  hosts: number;
  claimConflicts: ClaimConflict[];
}

export interface AdminDeps {
  version: string;
  startedAt: Date;
  stateDir: string;
  /** Who this loomd is on the host: the mark on its links and the names of its firewall objects. */
  owner: { instance: string; mark: string; nftTable: string; iptablesChain: string };
  networks: NetworkLookup;
  ipam: IpamService;
  reconciler: Reconciler;
  /** Cluster mode only. */
  overlayDrift?: () => Promise<Array<{ overlay: string; vxlan: string; missing: number; stale: number }>>;
  cluster?: () => ClusterStatus;
  peers?: () => unknown;
  /** Service discovery: the names loom serves, optionally of one network (overlay key or Docker name). */
  names?: (network?: string) => unknown;
  /** Network policy (loomctl policy ...). */
  policies?: PolicyService;
}

const STATUS: Record<string, number> = { invalid: 400, 'not-found': 404, conflict: 409, unavailable: 503 };

/** Runs a route's work; a LoomError becomes its status and `{ error }`. */
async function answer(res: Response, work: () => unknown): Promise<void> {
  try {
    sendJson(res, await work());
  } catch (err) {
    const e = asLoomError(err);
    res.status(STATUS[e.kind] ?? 500).type('application/json').send(JSON.stringify({ error: e.message, kind: e.kind }));
  }
}

/** JSON with bigint values written as decimal strings. */
function sendJson(res: Response, body: unknown): void {
  res.type('application/json').send(JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
}

export function createAdminApp(deps: AdminDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/v1/status', (_req: Request, res: Response) => {
    const nets = deps.networks.list();
    sendJson(res, {
      version: deps.version,
      pid: process.pid,
      startedAt: deps.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - deps.startedAt.getTime()) / 1000),
      stateDir: deps.stateDir,
      owner: deps.owner,
      networks: nets.length,
      endpoints: nets.reduce((n, x) => n + x.endpoints.length, 0),
      pools: deps.ipam.listPools().length,
      cluster: deps.cluster ? deps.cluster() : undefined,
      reconciler: { passes: deps.reconciler.passes, repairs: Object.fromEntries(deps.reconciler.repairs), lastPass: deps.reconciler.last?.at },
      logs: logLosses(),
    });
  });
  app.get('/v1/networks', (_req: Request, res: Response) => {
    const names = deps.reconciler.containerNames;
    sendJson(res, deps.networks.list().map(({ record, endpoints }) => ({ ...record, endpoints: endpoints.map((e) => ({ ...e, container: names.get(e.id) ?? '' })) })));
  });
  app.get('/v1/ipam', (_req: Request, res: Response) => {
    sendJson(res, deps.ipam.listPools());
  });
  app.get('/v1/reconcile', (_req: Request, res: Response) => {
    sendJson(res, { passes: deps.reconciler.passes, repairs: Object.fromEntries(deps.reconciler.repairs), last: deps.reconciler.last });
  });
  app.post('/v1/reconcile', async (req: Request, res: Response) => {
    const result = req.query.force === '1' ? await deps.reconciler.runForced() : await deps.reconciler.runOnce();
    sendJson(res, result);
  });
  app.get('/v1/doctor', async (_req: Request, res: Response) => {
    const { observed, actions, unknownToLoom } = await deps.reconciler.preview();
    const overlays = deps.overlayDrift ? await deps.overlayDrift() : [];
    sendJson(res, {
      dockerView: observed.docker !== undefined,
      cluster: deps.cluster ? deps.cluster() : undefined,
      firewallDrift: observed.firewallDrift,
      policyDrift: deps.policies ? await deps.policies.drift() : [],
      actions: actions.map((a) => ({ ...a, container: 'endpointId' in a ? (observed.docker?.containerNames.get(a.endpointId) ?? '') : undefined })),
      overlays,
      unknownToLoom,
    });
  });
  app.get('/v1/names', (req: Request, res: Response) => {
    const network = typeof req.query.network === 'string' && req.query.network ? req.query.network : undefined;
    sendJson(res, deps.names ? deps.names(network) : []);
  });
  app.get('/v1/peers', (_req: Request, res: Response) => {
    sendJson(res, deps.peers ? deps.peers() : { cluster: false });
  });
  const policies = (): PolicyService => {
    if (!deps.policies) throw asLoomError(new Error('network policy is not available'));
    return deps.policies;
  };
  app.get('/v1/policies', (_req: Request, res: Response) => answer(res, () => policies().list()));
  app.post('/v1/policies', express.text({ type: () => true, limit: '1mb' }), (req: Request, res: Response) =>
    answer(res, () => policies().apply(typeof req.body === 'string' ? req.body : '', typeof req.query.file === 'string' ? req.query.file : undefined)),
  );
  app.get('/v1/policies/:name', (req: Request, res: Response) => answer(res, () => policies().show(checkPolicyName(String(req.params.name)))));
  app.delete('/v1/policies/:name', (req: Request, res: Response) => answer(res, async () => ({ removed: await policies().remove(checkPolicyName(String(req.params.name))) })));
  app.get('/v1/policy-explain', (req: Request, res: Response) => answer(res, () => policies().explain(String(req.query.container ?? ''))));
  app.use((_req: Request, res: Response) => {
    res.status(404).type('application/json').send(JSON.stringify({ error: 'not found' }));
  });
  return app;
}
