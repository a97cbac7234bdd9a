/**
 * Borrowing single addresses from other hosts' blocks of a shared (overlay) pool, when
 * this host's blocks are full and no block is left unclaimed (docs/overlay.md, "Borrowing").
 *
 * The owner of a block is the only one that decides who uses an address inside it (it
 * allocates there locally, without etcd, at any moment), so a borrower never writes into
 * another host's block: it asks, and the owner lends.
 *
 *   borrower  creates  loans/<subnet>/<owner>/<id> = {host: borrower}   (leased to the borrower)
 *   owner     (watch)  under its pool lock: takes a free address X of its blocks, persists it
 *                      locally as foreign (lent), then one etcd transaction:
 *                        IF   the request is still at its revision AND reservations/<subnet>/X is absent
 *                        THEN delete the request; put reservations/<subnet>/X =
 *                             {host: borrower, state: granted, borrowed: true, request: id}
 *                      nothing free: deletes the request (a refusal)
 *   borrower  polls its request; once it is gone, looks for the reservation carrying its id:
 *             found = X is its own, absent = refused (or its lease ended). At its deadline it
 *             withdraws the request (delete at the request's revision); when that fails the
 *             owner answered in between, and the reservation says how.
 *
 * Why no address is ever used twice: the owner hands X out (locally or as a loan) only when
 * X is free in its own allocator, and it marks X used before the transaction; the
 * transaction grants X to at most one borrower and only while the borrower still waits (a
 * withdrawn request can no longer be granted). Failures leave, at worst, X held on both
 * sides' books without use (an etcd error with unknown outcome, a SIGKILL between steps):
 * the IPAM resync (shared-resync.ts) gives such addresses back, never the other way round.
 */
import { exhausted, unavailable } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { ClusterStore, KeyValue, keys } from '../lib/cluster/store';
import { ClusterTiming, Reservation, lastSegment } from './cluster-records';
import { Prefix, formatPrefix } from '../lib/prefix';

/** `loans/<subnet>/<owner>/<id>`: `host` asks `owner` for one address. */
export interface LoanRequest {
  host: string;
  at: string;
}

/** A request as seen from its key. */
export interface LoanRequestKey {
  subnet: string;
  owner: string;
  id: string;
}

/** Parses `/loom/v1/loans/<subnet_seg>/<owner>/<id>`. */
export function parseLoanKey(key: string): LoanRequestKey | undefined {
  if (!key.startsWith(keys.loanRequests)) return undefined;
  const parts = key.slice(keys.loanRequests.length).split('/');
  if (parts.length !== 3 || parts.some((p) => !p)) return undefined;
  const [seg, owner, id] = parts as [string, string, string];
  return { subnet: seg.replace('_', '/'), owner, id };
}

/** What became of a grant transaction. */
export type GrantOutcome =
  | { kind: 'granted' }
  /** the request was withdrawn or expired: nothing was granted */
  | { kind: 'gone' }
  /** another host already holds a reservation for the address */
  | { kind: 'taken'; host: string }
  /** this host itself reserved the address (a static address in flight) */
  | { kind: 'mine' };

export class AddressLoans {
  private turn = 0;

  constructor(
    private readonly store: ClusterStore,
    private readonly hostId: string,
    private readonly log: Logger,
    private readonly timing: ClusterTiming,
  ) {}

  // ---- borrower ---------------------------------------------------------------------------

  /**
   * One address of `pool` lent by another host, asked for under request `id` (the caller
   * keeps `id` marked in flight until it has recorded the address). Owners whose host key
   * is gone (lease expired) are not asked; each owner gets a deadline, the whole borrow too.
   */
  async borrow(pool: Prefix, id: string): Promise<{ ip: string; owner: string }> {
    const subnet = formatPrefix(pool);
    const started = this.timing.now();
    const { live, gone } = await this.owners(subnet);
    const notes: string[] = [];
    // Rotate the starting owner so that borrowers spread over the lenders.
    const start = live.length ? this.turn++ % live.length : 0;
    for (const owner of [...live.slice(start), ...live.slice(0, start)]) {
      const left = started + this.timing.loanBudgetMs - this.timing.now();
      if (left <= 0) {
        notes.push(`${owner}: not asked (deadline)`);
        continue;
      }
      const answer = await this.ask(subnet, owner, id, Math.min(this.timing.loanOwnerTimeoutMs, left));
      if (answer.ip) {
        this.log.info({ pool: subnet, ip: answer.ip, owner }, 'borrowed an address from another host');
        return { ip: answer.ip, owner };
      }
      notes.push(`${owner}: ${answer.why}`);
    }
    notes.push(...gone.map((h) => `${h}: gone (no lease)`));
    throw exhausted(
      `no free address left in ${subnet}: this host's blocks are full, every block is claimed, and no other host could lend one (${notes.join('; ') || 'no other host holds a block'})`,
    );
  }

  /** Other hosts holding blocks of `subnet`, split by whether their host key (lease) is alive. */
  private async owners(subnet: string): Promise<{ live: string[]; gone: string[] }> {
    try {
      const blocks = await this.store.list<{ host: string }>(keys.blocksOf(subnet));
      const hosts = new Set((await this.store.list(keys.hosts)).map((kv) => lastSegment(kv.key)));
      const owners = [...new Set(blocks.map((kv) => kv.value.host))].filter((h) => h !== this.hostId).sort();
      return { live: owners.filter((h) => hosts.has(h)), gone: owners.filter((h) => !hosts.has(h)) };
    } catch (err) {
      throw unavailable(`borrow an address of ${subnet}: the cluster store (etcd) is unreachable: ${(err as Error).message}`);
    }
  }

  /** Asks one owner; an etcd failure aborts the whole borrow (its outcome is unknown). */
  private async ask(subnet: string, owner: string, id: string, timeoutMs: number): Promise<{ ip?: string; why: string }> {
    const key = keys.loanRequest(subnet, owner, id);
    try {
      const request: LoanRequest = { host: this.hostId, at: new Date().toISOString() };
      if (!(await this.createRequest(key, request))) return { why: 'request id already in use' };
      const created = await this.store.get<LoanRequest>(key);
      if (!created) return this.outcome(subnet, id);
      const deadline = this.timing.now() + timeoutMs;
      for (let delay = 10; this.timing.now() < deadline; delay = Math.min(100, delay * 2)) {
        await this.timing.sleep(delay);
        if (!(await this.store.get(key))) return this.outcome(subnet, id);
      }
      // Withdraw; failing means the owner answered in between.
      if (await this.store.cas(key, created.revision, undefined)) return { why: 'no answer in time' };
      return this.outcome(subnet, id);
    } catch (err) {
      if (err instanceof Error && 'kind' in err) throw err;
      throw unavailable(`borrow an address of ${subnet} from host ${owner}: the cluster store (etcd) failed: ${(err as Error).message}`);
    }
  }

  /** Leased to this host when it has a lease (a dead borrower's requests vanish); else plain (the resync removes it). */
  private async createRequest(key: string, value: LoanRequest): Promise<boolean> {
    try {
      return await this.store.create(key, value, { leased: true });
    } catch (err) {
      if (!/lease/i.test(String(err))) throw err;
      return this.store.create(key, value);
    }
  }

  /** The request is gone: granted (a reservation carries its id) or refused. */
  private async outcome(subnet: string, id: string): Promise<{ ip?: string; why: string }> {
    const all = await this.store.list<Reservation>(keys.reservationsOf(subnet));
    const mine = all.find((kv) => kv.value.request === id && kv.value.host === this.hostId && kv.value.state === 'granted');
    return mine ? { ip: lastSegment(mine.key), why: 'lent' } : { why: 'none free' };
  }

  // ---- owner --------------------------------------------------------------------------------

  /** The request at `key` if it is still pending (with its revision for the grant transaction). */
  async pending(key: string): Promise<KeyValue<LoanRequest> | undefined> {
    return this.store.get<LoanRequest>(key);
  }

  /** Lends `ip` to the request: one transaction, see the header. Throws when etcd fails (outcome unknown). */
  async grant(subnet: string, req: KeyValue<LoanRequest>, ip: string): Promise<GrantOutcome> {
    const parsed = parseLoanKey(req.key);
    const rkey = keys.reservation(subnet, ip);
    const reservation: Reservation = { host: req.value.host, state: 'granted', at: new Date().toISOString(), borrowed: true, request: parsed?.id ?? '' };
    const ok = await this.store.commit(
      [
        { key: req.key, revision: req.revision },
        { key: rkey, revision: '0' },
      ],
      [
        { key: req.key, value: undefined },
        { key: rkey, value: reservation },
      ],
    );
    if (ok) return { kind: 'granted' };
    const held = await this.store.get<Reservation>(rkey);
    if (held) return held.value.host === this.hostId ? { kind: 'mine' } : { kind: 'taken', host: held.value.host };
    return { kind: 'gone' };
  }

  /** Refuses (nothing free here): deletes the request at its revision. */
  async refuse(req: KeyValue<LoanRequest>): Promise<void> {
    await this.store.cas(req.key, req.revision, undefined);
  }

  /** Requests addressed to this host, and this host's own requests (resync). */
  async requests(): Promise<{ toMe: Array<KeyValue<LoanRequest>>; mine: Array<KeyValue<LoanRequest>> }> {
    const all = await this.store.list<LoanRequest>(keys.loanRequests);
    return {
      toMe: all.filter((kv) => parseLoanKey(kv.key)?.owner === this.hostId),
      mine: all.filter((kv) => kv.value.host === this.hostId),
    };
  }

  /** Withdraws a request of this host still at its revision (a stale one, found by the resync). */
  async withdraw(req: KeyValue<LoanRequest>): Promise<boolean> {
    return this.store.cas(req.key, req.revision, undefined);
  }
}
