/**
 * Who owns a test host or cluster: the test process's PID and its start time (so that a
 * reused PID is not taken for the owner). A run killed before its clean-up (SIGKILL, a CI
 * timeout) leaves namespaces, mounts and processes behind; the next run removes what belongs
 * to an owner that is gone, and never touches what a live run, or nothing known, owns.
 */
import { statFields } from './run';

const startTime = (pid: number): string | undefined => statFields(pid)?.[19];

/** This process's owner stamp. */
export function ownerStamp(): string {
  return `${process.pid} ${startTime(process.pid) ?? '?'}`;
}

/** True when the stamp's process still runs (or the stamp cannot be read: then assume it does). */
export function ownerAlive(stamp: string): boolean {
  const [pidText, start] = stamp.trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || !start) return true;
  return startTime(pid) === start;
}
