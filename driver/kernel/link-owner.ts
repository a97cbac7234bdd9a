/**
 * Owner marks: how one loomd tells its own kernel objects from everyone else's, whatever
 * their names. Every link loom creates carries `loom:<instance>` in IFLA_IFALIAS (`ip -d
 * link` shows it as `alias loom:...`); `<instance>` is the loomd's instance id, chosen once
 * and kept in its store. Names are deterministic (model/naming.ts) but prove nothing:
 * another loomd, an older loom or an operator may use the same names.
 *
 * Invariant kept by NetlinkKernel (link-create.ts): a link is created under a temporary name
 * and receives its final name and its mark in one kernel request, so a link with one of
 * loom's names either carries its creator's mark or was not made by this version of loom. A
 * loomd killed between the two requests leaves only a link with a temporary name
 * (`tempLinkName`). The next attempt at the same create removes it; when there is none (Docker
 * gave up on that container), the reconciler does: a temporary name carries a check derived
 * from the creator's mark (`isOwnTempName`), so one loomd recognises its own unfinished links
 * without an alias and never takes another loomd's for its own.
 */
import { createHash } from 'node:crypto';

export const OWNER_PREFIX = 'loom:';

/** Instance ids: short and plain (they end up in interface aliases, nft table and iptables chain names). */
export const INSTANCE_PATTERN = /^[0-9a-z]{4,16}$/;

/** Whose a link is, seen from one loomd: its own, another loomd's, or nobody's mark. */
export type LinkOwner = 'self' | 'foreign' | 'none';

export function ownerMark(instance: string): string {
  if (!INSTANCE_PATTERN.test(instance)) throw new Error(`invalid loom instance id ${JSON.stringify(instance)}`);
  return OWNER_PREFIX + instance;
}

/** The owner of a link given its alias, from the point of view of the loomd whose mark is `mark`. */
export function ownerOf(alias: string | undefined, mark: string): LinkOwner {
  if (alias === mark) return 'self';
  if (alias !== undefined && alias.startsWith(OWNER_PREFIX) && INSTANCE_PATTERN.test(alias.slice(OWNER_PREFIX.length))) return 'foreign';
  return 'none';
}

/**
 * The temporary name a link is created under before it gets `finalName` and the mark: derived
 * from both (never chosen by scanning), so only this instance ever uses it and a retried
 * create finds the leftover of an attempt that was killed half-way.
 */
export function tempLinkName(mark: string, finalName: string): string {
  const stem = hex(`${mark}/${finalName}`, 7);
  return `lt${stem}${tempCheck(mark, stem)}`;
}

/**
 * Whether `name` is a temporary name this loomd (mark `mark`) would create: its last six hex
 * digits are the check of its stem under this mark (another instance's temporary names pass
 * with a chance of one in 16.7 million).
 */
export function isOwnTempName(mark: string, name: string): boolean {
  const m = /^lt([0-9a-f]{7})([0-9a-f]{6})$/.exec(name);
  return m !== null && tempCheck(mark, m[1] as string) === m[2];
}

/** A link a create of this loomd left half-made: no owner mark, one of this loomd's temporary names. */
export function isUnfinishedLink(link: { name: string; alias?: string }, mark: string): boolean {
  return ownerOf(link.alias, mark) === 'none' && isOwnTempName(mark, link.name);
}

function tempCheck(mark: string, stem: string): string {
  return hex(`${mark}#${stem}`, 6);
}

function hex(text: string, digits: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, digits);
}
