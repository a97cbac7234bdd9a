/**
 * Learning a joined endpoint's DNS names from the Docker API (after Join, from the work
 * queue: never inside a plugin call, where dockerd may be waiting on loom). The names are the
 * ones Docker's embedded resolver answers for the container on that network: its name, its
 * --network-alias aliases on the network (compose service names arrive as aliases), Docker 25+'s
 * DNSNames, and its short id (Docker adds it as an alias). A --hostname differing from those is
 * not resolvable through Docker either, so it is not added.
 */
import type Dockerode from 'dockerode';
import { GiveUp } from './work-queue';
import { normaliseName } from './name-table';

/** The parts of `docker inspect` that names (and network policy's labels) come from. */
export interface InspectedContainer {
  Id: string;
  Name: string;
  Config?: { Labels?: Record<string, string> | null };
  NetworkSettings?: { Networks?: Record<string, { NetworkID?: string; EndpointID?: string; Aliases?: string[] | null; DNSNames?: string[] | null } | undefined> };
}

/** The container's names on the network whose endpoint is `endpointId` (pure), lowercased, unique, sorted. */
export function namesOf(c: InspectedContainer, endpointId: string): string[] | undefined {
  const net = Object.values(c.NetworkSettings?.Networks ?? {}).find((n) => n?.EndpointID === endpointId);
  if (!net) return undefined;
  const raw = [c.Name.replace(/^\//, ''), ...(net.Aliases ?? []), ...(net.DNSNames ?? []), c.Id.slice(0, 12)];
  const out = new Set<string>();
  for (const r of raw) {
    const n = normaliseName(r);
    if (n) out.add(n);
  }
  return [...out].sort();
}

/**
 * Asks Docker for the container joined through `endpointId` on `networkId` (the one inspect
 * that service discovery's names and network policy's labels both read). Throws (to be
 * retried) while Docker does not show the endpoint yet (Join is still in progress); GiveUp when
 * the network is unknown to Docker.
 */
export async function inspectJoined(docker: Dockerode, networkId: string, endpointId: string): Promise<InspectedContainer> {
  let containers: Record<string, { EndpointID?: string }>;
  try {
    containers = ((await docker.getNetwork(networkId).inspect()) as { Containers?: Record<string, { EndpointID?: string }> }).Containers ?? {};
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) throw new GiveUp(`network ${networkId} is not Docker's`);
    throw err;
  }
  const id = Object.entries(containers).find(([, c]) => c.EndpointID === endpointId)?.[0];
  if (!id) throw new Error(`Docker does not show endpoint ${endpointId.slice(0, 12)} on network ${networkId.slice(0, 12)} yet`);
  const c = (await docker.getContainer(id).inspect()) as unknown as InspectedContainer;
  if (!Object.values(c.NetworkSettings?.Networks ?? {}).some((n) => n?.EndpointID === endpointId)) throw new Error(`container ${id.slice(0, 12)} does not show endpoint ${endpointId.slice(0, 12)} yet`);
  return c;
}

/** Asks Docker for the container behind one endpoint (inspectJoined's shape). */
export type JoinedInspect = (networkId: string, endpointId: string) => Promise<InspectedContainer>;

/**
 * One inspect per Join for everyone who needs it (service discovery's names, network policy's
 * labels): concurrent and recent requests for the same endpoint share one answer, kept
 * `keepMs`; a failure is not kept (the next request asks again).
 */
export function sharedInspect(docker: () => Promise<Dockerode>, keepMs = 2_000): JoinedInspect {
  const recent = new Map<string, { at: number; answer: Promise<InspectedContainer> }>();
  return (networkId, endpointId) => {
    const key = `${networkId}/${endpointId}`;
    const now = Date.now();
    for (const [k, v] of recent) if (now - v.at > keepMs) recent.delete(k);
    const hit = recent.get(key);
    if (hit) return hit.answer;
    const answer = docker().then((d) => inspectJoined(d, networkId, endpointId));
    recent.set(key, { at: now, answer });
    answer.catch(() => {
      if (recent.get(key)?.answer === answer) recent.delete(key);
    });
    return answer;
  };
}
