/**
 * `loomctl policy …`: network policy (docs/policy.md). Asks loomd over its admin socket; while
 * loomd is stopped, `apply`, `rm`, `ls` and `show` open its store themselves (--state-dir) and
 * the next start enforces what they wrote. Exit codes: 0 done, 1 failed (an invalid file
 * included: nothing was changed), 2 usage, 3 loomd unreachable and its store unusable.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { LoomError } from '../../lib/errors';
import { parsePolicyText } from '../policy/schema';
import { describeSelector } from '../policy/selector';
import type { Policy } from '../policy/schema';
import type { PolicyRecord } from '../store/policy-repo';
import { AdminError, request, Unreachable } from './admin-client';

export const POLICY_USAGE = `Usage: loomctl policy COMMAND [options]

Commands:
  apply -f FILE      create or update the policies of FILE (YAML or JSON; - for stdin);
                     all or nothing: an invalid file changes nothing
  ls                 the policies: network, selector, directions
  show NAME          one policy: what it selects now, its rules and their counters
  rm NAME            remove a policy
  explain CONTAINER  what the container may send and receive, and which policy says so

Options:
  --admin-socket PATH  loomd's admin socket [LOOM_ADMIN_SOCKET] (default /run/loom/admin.sock)
  --state-dir DIR      loomd's --state-dir, used while loomd is stopped [LOOM_STATE_DIR] (default /var/lib/loom)
  --json               machine-readable output
`;

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function directions(p: Policy): string {
  return [p.ingress && `ingress(${p.ingress.length} rule(s))`, p.egress && `egress(${p.egress.length} rule(s))`].filter(Boolean).join(' ');
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** The store of a stopped loomd, for one change or read. */
async function withStore<T>(stateDir: string, fn: (repo: import('../store/policy-repo').PolicyRepository) => Promise<T>): Promise<T> {
  const { LevelKv } = await import('../store/level-kv');
  const { PolicyRepository } = await import('../store/policy-repo');
  const { COMMIT_MARK, DB_DIR } = await import('../store/store-integrity');
  const dbDir = path.join(stateDir, DB_DIR);
  if (!fs.existsSync(dbDir)) throw new LoomError('unavailable', `loomd is not running and there is no store in ${stateDir} (--state-dir)`);
  let kv;
  try {
    kv = await LevelKv.open(dbDir, { create: false, markFile: path.join(stateDir, COMMIT_MARK) });
  } catch (err) {
    throw new LoomError('unavailable', `loomd does not answer and its store ${dbDir} cannot be opened (${(err as Error).message}): is loomd running with another --admin-socket?`);
  }
  try {
    return await fn(new PolicyRepository(kv));
  } finally {
    await kv.close();
  }
}

function explainText(list: Any[]): string {
  const out: string[] = [];
  for (const x of list) {
    out.push(`${x.container ?? x.endpointId.slice(0, 12)} on network ${String(x.networkId).slice(0, 12)} (${(x.addresses as string[]).join(', ')})`);
    if (x.pending) out.push('  labels: NOT KNOWN YET: pending, all its forwarded traffic is dropped until they are (fail closed)');
    else if (x.labelsUnknown) out.push('  labels: NOT KNOWN YET (in no policy set: traffic that needs them is denied)');
    else out.push(`  labels: ${Object.entries(x.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(', ') || '(none)'}`);
    for (const dir of ['ingress', 'egress'] as const) {
      const d = x[dir];
      const verb = dir === 'ingress' ? 'receive' : 'send';
      if (!d.restricted) {
        out.push(`  ${dir}: may ${verb} anything (no policy selects it for ${dir})`);
        continue;
      }
      out.push(`  ${dir}: denied by default (selected by ${(d.selectedBy as string[]).join(', ')}); allowed:`);
      if (!d.allows.length) out.push(`    nothing`);
      for (const a of d.allows as Any[]) out.push(`    ${a.ports} ${dir === 'ingress' ? 'from' : 'to'} ${(a.peers as string[]).join('; ')}   [policy ${a.policy} ${a.rule}]`);
    }
  }
  return out.join('\n') + '\n';
}

export async function policyMain(argv: string[], env: NodeJS.ProcessEnv, out: (s: string) => void): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { 'admin-socket': { type: 'string' }, 'state-dir': { type: 'string' }, file: { type: 'string', short: 'f' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    out(`loomctl policy: ${(err as Error).message}\n\n${POLICY_USAGE}`);
    return 2;
  }
  const [cmd, arg] = parsed.positionals;
  if (parsed.values.help || !cmd) {
    out(POLICY_USAGE);
    return parsed.values.help ? 0 : 2;
  }
  const sock = parsed.values['admin-socket'] ?? env.LOOM_ADMIN_SOCKET ?? '/run/loom/admin.sock';
  const stateDir = path.resolve(parsed.values['state-dir'] ?? (env.LOOM_STATE_DIR || '/var/lib/loom'));
  const json = parsed.values.json === true;
  const emit = (data: unknown, text: () => string): void => out(json ? JSON.stringify(data, null, 2) + '\n' : text());
  /** Asks loomd; `offline` runs when loomd is unreachable (undefined: the command needs loomd). */
  const ask = async (method: string, p: string, offline?: () => Promise<unknown>, body?: string): Promise<{ answer: unknown; offline: boolean }> => {
    try {
      return { answer: await request(sock, method, p, 60_000, body), offline: false };
    } catch (err) {
      if (!(err instanceof Unreachable) || !offline) throw err;
      return { answer: await offline(), offline: true };
    }
  };
  const offlineNote = (o: boolean): string => (o ? `(loomd is not running: written to its store in ${stateDir}; enforced when it starts)\n` : '');
  try {
    switch (cmd) {
      case 'apply': {
        const file = parsed.values.file;
        if (!file) {
          out(`loomctl policy apply: -f FILE is required\n\n${POLICY_USAGE}`);
          return 2;
        }
        const text = file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
        const name = file === '-' ? 'stdin' : path.basename(file);
        // Validated here as well: an invalid file is refused even when loomd is down.
        const policies = parsePolicyText(text, name);
        const r = await ask('POST', `/v1/policies?file=${encodeURIComponent(name)}`, () =>
          withStore(stateDir, async (repo) => {
            const old = new Map((await repo.listPolicies()).map((x) => [x.policy.name, x]));
            const res = { created: [] as string[], updated: [] as string[], unchanged: [] as string[] };
            const at = new Date().toISOString();
            const records: PolicyRecord[] = [];
            for (const p of policies) {
              const o = old.get(p.name);
              if (o && JSON.stringify(o.policy) === JSON.stringify(p)) res.unchanged.push(p.name);
              else {
                (o ? res.updated : res.created).push(p.name);
                records.push({ policy: p, appliedAt: at });
              }
            }
            await repo.putPolicies(records);
            return res;
          }),
          text,
        );
        const a = r.answer as Any;
        emit({ ...a, offline: r.offline }, () =>
          [...(a.created as string[]).map((n) => `policy ${n} created`), ...(a.updated as string[]).map((n) => `policy ${n} updated`), ...(a.unchanged as string[]).map((n) => `policy ${n} unchanged`)].join('\n') + '\n' + offlineNote(r.offline),
        );
        return 0;
      }
      case 'ls': {
        const r = await ask('GET', '/v1/policies', () => withStore(stateDir, (repo) => repo.listPolicies()));
        const list = r.answer as PolicyRecord[];
        emit(list, () => table(['NAME', 'NETWORK', 'SELECTOR', 'DIRECTIONS', 'APPLIED'], list.map((x) => [x.policy.name, x.policy.network ?? '*', describeSelector(x.policy.selector), directions(x.policy), x.appliedAt])) + offlineNote(r.offline).replace('written to', 'read from'));
        return 0;
      }
      case 'show': {
        if (!arg) return usage(out, 'show NAME');
        const r = await ask('GET', `/v1/policies/${encodeURIComponent(arg)}`, () =>
          withStore(stateDir, async (repo) => {
            const p = (await repo.listPolicies()).find((x) => x.policy.name === arg);
            if (!p) throw new LoomError('not-found', `no policy ${arg}`);
            return p;
          }),
        );
        const s = r.answer as Any;
        emit(s, () => {
          const lines = [`policy ${s.policy.name}, network ${s.policy.network ?? '*'}, applied ${s.appliedAt}`, `selector: ${describeSelector(s.policy.selector)}`];
          if (s.selected) lines.push(`selects now: ${(s.selected as string[]).join(', ') || 'no container'}`);
          for (const x of (s.rules ?? []) as Any[]) {
            lines.push(`  ${x.rule}: ${x.anyPeer ? 'any peer' : [...(x.peers as string[]), ...(x.cidrs as string[])].join(', ') || 'no peer now'}; ${x.counter.packets} packets / ${x.counter.bytes} bytes allowed`);
          }
          if (s.defaultDeny) lines.push(`default deny on this host (all policies): ingress ${s.defaultDeny.ingress?.packets ?? 0} packets, egress ${s.defaultDeny.egress?.packets ?? 0} packets dropped`);
          lines.push(JSON.stringify(s.policy, null, 2));
          return lines.join('\n') + '\n' + offlineNote(r.offline).replace('written to', 'read from');
        });
        return 0;
      }
      case 'rm': {
        if (!arg) return usage(out, 'rm NAME');
        const r = await ask('DELETE', `/v1/policies/${encodeURIComponent(arg)}`, () =>
          withStore(stateDir, async (repo) => {
            const exists = (await repo.listPolicies()).some((x) => x.policy.name === arg);
            if (exists) await repo.deletePolicy(arg);
            return { removed: exists };
          }),
        );
        const a = r.answer as Any;
        emit({ ...a, offline: r.offline }, () => (a.removed ? `policy ${arg} removed\n` : `no policy ${arg} (nothing to remove)\n`) + offlineNote(r.offline));
        return 0;
      }
      case 'explain': {
        if (!arg) return usage(out, 'explain CONTAINER');
        const r = await ask('GET', `/v1/policy-explain?container=${encodeURIComponent(arg)}`);
        emit(r.answer, () => explainText(r.answer as Any[]));
        return 0;
      }
      default:
        out(`loomctl policy: unknown command ${cmd}\n\n${POLICY_USAGE}`);
        return 2;
    }
  } catch (err) {
    out(`loomctl policy: ${(err as Error).message}\n`);
    if (err instanceof AdminError || (err instanceof LoomError && err.kind !== 'unavailable')) return 1;
    return err instanceof Unreachable || (err instanceof LoomError && err.kind === 'unavailable') ? 3 : 1;
  }
}

function usage(out: (s: string) => void, what: string): number {
  out(`loomctl policy ${what}: missing argument\n\n${POLICY_USAGE}`);
  return 2;
}
