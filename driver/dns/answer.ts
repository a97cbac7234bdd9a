/**
 * What the per-container resolver does with one DNS message (pure; the wire format is
 * dns-packet's, never hand-encoded): answer a name loom serves on the container's overlays,
 * or relay the message unchanged to Docker's resolver, or drop it.
 *
 * Answered: exactly one question, class IN, type A or AAAA, a name the table knows as remote
 * on one of the container's overlays. A or AAAA with no address of that family is NODATA
 * (NOERROR, no answer): a client asking both must not see NXDOMAIN for a name that exists.
 * Everything else (local names, unknown names, other types, odd messages) is Docker's.
 */
import * as packet from 'dns-packet';
import type { NameLookup } from './name-table';

/** Seconds: short, so removals take effect quickly. */
export const ANSWER_TTL_S = 5;
const HEADER_BYTES = 12;

export type Decision =
  | { kind: 'answer'; reply: Buffer; name: string; type: 'A' | 'AAAA'; addresses: string[] }
  | { kind: 'relay' }
  | { kind: 'drop' };

/** dns-packet decodes the rcode and opcode, its types do not list them. */
type Decoded = packet.DecodedPacket & { opcode?: string };

export function decide(msg: Buffer, lookup: (name: string) => NameLookup): Decision {
  if (msg.length < HEADER_BYTES) return { kind: 'drop' };
  let q: Decoded;
  try {
    q = packet.decode(msg) as Decoded;
  } catch {
    return { kind: 'relay' }; // Docker's resolver decides what to make of it
  }
  if (q.type !== 'query') return { kind: 'drop' }; // a response sent to the resolver: not ours to pass on
  const question = q.questions?.[0];
  if ((q.opcode !== undefined && q.opcode !== 'QUERY') || q.questions?.length !== 1 || !question) return { kind: 'relay' };
  if (question.class !== 'IN' || (question.type !== 'A' && question.type !== 'AAAA')) return { kind: 'relay' };
  const found = lookup(question.name);
  if (found?.kind !== 'remote') return { kind: 'relay' };
  const addresses = question.type === 'A' ? found.v4 : found.v6;
  const reply = packet.encode({
    id: q.id,
    type: 'response',
    flags: ((q.flags ?? 0) & packet.RECURSION_DESIRED) | packet.RECURSION_AVAILABLE,
    questions: [question],
    answers: addresses.map((data) => ({ name: question.name, type: question.type as 'A' | 'AAAA', class: 'IN' as const, ttl: ANSWER_TTL_S, data })),
  });
  return { kind: 'answer', reply, name: question.name, type: question.type, addresses };
}
