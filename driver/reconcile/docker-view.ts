/**
 * What Docker believes exists, read through the Docker API (dockerode). Only the
 * reconciler calls this, asynchronously and never inside a plugin call: dockerd
 * may be waiting on loom while loom would be waiting on dockerd.
 */
import type Dockerode from 'dockerode';
import { canonicalIp, formatPrefix, parsePrefix } from '../../lib/prefix';

export interface DockerNetwork {
  id: string;
  name: string;
  driver: string;
  ipamDriver: string;
  /** Subnets of the network's IPAM config. */
  subnets: string[];
  /** Gateways and aux addresses of the IPAM config, plain IPs. */
  reserved: string[];
  /** Endpoints of local containers: id -> plain addresses. */
  endpoints: Map<string, string[]>;
}

export interface DockerView {
  at: number;
  networks: Map<string, DockerNetwork>;
  /** endpoint id -> container name */
  containerNames: Map<string, string>;
}

export type DockerViewSource = () => Promise<DockerView | undefined>;

/** Docker echoes the user's spelling ("FD00:0::5/64"); loom stores canonical forms. */
const canonical = (cidr: string | undefined): string | undefined => {
  if (!cidr) return undefined;
  try {
    return canonicalIp(cidr);
  } catch {
    return undefined;
  }
};
const subnet = (text: string | undefined): string | undefined => {
  if (!text) return undefined;
  try {
    return formatPrefix(parsePrefix(text));
  } catch {
    return text;
  }
};

/** Reads every network (with its endpoints) from dockerd; undefined when dockerd does not answer. */
/** `onError`: a view could not be read; `onRecovered`: one was read (after errors or not). */
export function dockerViewSource(getDocker: () => Promise<Dockerode>, onError: (err: unknown) => void, onRecovered: () => void = () => undefined): DockerViewSource {
  return async () => {
    const at = Date.now();
    try {
      const docker = await getDocker();
      const list = await docker.listNetworks();
      const networks = new Map<string, DockerNetwork>();
      const containerNames = new Map<string, string>();
      for (const summary of list) {
        const n = await docker.getNetwork(summary.Id).inspect();
        const cfg = n.IPAM?.Config ?? [];
        const endpoints = new Map<string, string[]>();
        for (const c of Object.values(n.Containers ?? {})) {
          if (!c.EndpointID) continue;
          if (c.Name) containerNames.set(c.EndpointID, c.Name);
          endpoints.set(c.EndpointID, [canonical(c.IPv4Address), canonical(c.IPv6Address)].filter((x): x is string => Boolean(x)));
        }
        networks.set(n.Id, {
          id: n.Id,
          name: n.Name,
          driver: n.Driver,
          ipamDriver: n.IPAM?.Driver ?? '',
          subnets: cfg.map((c) => subnet(c.Subnet)).filter((s): s is string => Boolean(s)),
          reserved: cfg.flatMap((c) => [canonical(c.Gateway), ...Object.values((c as { AuxiliaryAddresses?: Record<string, string> }).AuxiliaryAddresses ?? {}).map(canonical)]).filter((x): x is string => Boolean(x)),
          endpoints,
        });
      }
      onRecovered();
      return { at, networks, containerNames };
    } catch (err) {
      onError(err);
      return undefined;
    }
  };
}
