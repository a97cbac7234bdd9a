/**
 * Network policies and the container labels they select by, in the key-value store
 * (docs/state.md): `policy/<name>` -> PolicyRecord, `plabel/<networkId>/<endpointId>` ->
 * LabelRecord. Labels are stored so that a restarted loomd renders the same sets before it
 * has asked Docker again (the kernel keeps enforcing meanwhile). Every write is one synced batch.
 */
import type { KvOp, KvStore } from '../../lib/kv';
import type { Policy } from '../policy/schema';

const POLICY = 'policy/';
const LABEL = 'plabel/';

export interface PolicyRecord {
  policy: Policy;
  /** When this version was applied (unchanged by an identical re-apply). */
  appliedAt: string;
}

/** What Docker said about the container behind one endpoint. */
export interface LabelRecord {
  networkId: string;
  endpointId: string;
  containerId: string;
  /** Without the leading slash. */
  container: string;
  labels: Record<string, string>;
  /** Docker's names of the container's networks, by network id (policies name networks). */
  networkNames: Record<string, string>;
  learnedAt: string;
}

export class PolicyRepository {
  constructor(private readonly kv: KvStore) {}

  async listPolicies(): Promise<PolicyRecord[]> {
    return (await this.kv.list<PolicyRecord>(POLICY)).map((e) => e.value);
  }

  /** Creates or replaces these policies in one batch, and removes `remove` in the same one. */
  async putPolicies(records: PolicyRecord[], remove: string[] = []): Promise<void> {
    const ops: KvOp[] = records.map((r) => ({ type: 'put', key: POLICY + r.policy.name, value: r }));
    for (const name of remove) ops.push({ type: 'del', key: POLICY + name });
    if (ops.length) await this.kv.batch(ops);
  }

  async deletePolicy(name: string): Promise<void> {
    await this.kv.batch([{ type: 'del', key: POLICY + name }]);
  }

  async listLabels(): Promise<LabelRecord[]> {
    return (await this.kv.list<LabelRecord>(LABEL)).map((e) => e.value);
  }

  async putLabels(r: LabelRecord): Promise<void> {
    await this.kv.batch([{ type: 'put', key: `${LABEL}${r.networkId}/${r.endpointId}`, value: r }]);
  }

  async deleteLabels(keys: Array<{ networkId: string; endpointId: string }>): Promise<void> {
    if (keys.length) await this.kv.batch(keys.map((k) => ({ type: 'del', key: `${LABEL}${k.networkId}/${k.endpointId}` })));
  }
}
