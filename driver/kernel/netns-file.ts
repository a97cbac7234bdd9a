/**
 * Network namespace files handed over by Docker (a container's SandboxKey,
 * `<exec-root>/netns/<id>`). The path comes from a request, so it is never trusted:
 * - its shape is checked when Docker sends it (absolute, normalised, inside a
 *   `netns` directory, no control characters);
 * - it is opened only non-blocking (a FIFO or a device at that path must not freeze
 *   loomd) and the open file must live on nsfs, the kernel's namespace filesystem;
 * - whoever uses it gets the open descriptor, never the path again (no swap between
 *   the check and the use).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { invalid } from '../../lib/errors';

/** Why `p` cannot be a SandboxKey, or undefined when its shape is fine (pure). */
export function sandboxKeyProblem(p: string): string | undefined {
  if (p === '') return undefined; // Docker sends none for some sandboxes; nothing is opened then
  if (!p.startsWith('/')) return 'must be an absolute path';
  if (/[\u0000-\u001f\u007f]/.test(p)) return 'contains control characters';
  if (path.posix.normalize(p) !== p || p.endsWith('/')) return 'must be a normalised path';
  const parts = p.split('/');
  if (parts.length < 3 || parts[parts.length - 2] !== 'netns') return 'must be a file inside a netns directory (e.g. /var/run/docker/netns/<id>)';
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(parts[parts.length - 1] as string)) return 'has an unexpected file name';
  return undefined;
}

/** Throws an `invalid` error when `p` cannot be a SandboxKey. */
export function checkSandboxKey(p: string): string {
  const problem = sandboxKeyProblem(p);
  if (problem) throw invalid(`SandboxKey ${JSON.stringify(p.slice(0, 200))} ${problem}`);
  return p;
}

/**
 * Where this process opens a SandboxKey. Docker sends the path as dockerd sees it
 * (`<exec root>/netns/<id>`); a managed plugin sees Docker's netns directory at another path
 * (its mount of Docker's exec root, `--netns-dir`), so only the file name is kept and joined
 * to that directory. The key itself stays the sandbox's identity everywhere else (loom's
 * state, Docker's view, logs): only the path that is opened is translated.
 */
export class NetnsPaths {
  /** `dir`: Docker's netns directory as seen here (its last component is `netns`); undefined: Docker's paths as they are. */
  constructor(readonly dir?: string) {}

  /** The path to open for `sandboxKey` (checked first: never a path a request could aim elsewhere). */
  local(sandboxKey: string): string {
    if (this.dir === undefined || sandboxKey === '') return sandboxKey;
    checkSandboxKey(sandboxKey);
    return path.posix.join(this.dir, path.posix.basename(sandboxKey));
  }
}

let nsfsDev: number | undefined;

/** The device number of nsfs (every namespace file lives there). */
function nsfs(): number {
  nsfsDev ??= fs.statSync('/proc/self/ns/net').dev;
  return nsfsDev;
}

/**
 * Opens a namespace file without blocking and checks that it is one (a regular nsfs inode);
 * the caller closes the returned descriptor.
 */
export function openNetnsFile(p: string): number {
  checkSandboxKey(p);
  let fd: number;
  try {
    fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY); // libuv adds O_CLOEXEC
  } catch (err) {
    throw invalid(`cannot open network namespace ${p}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.dev !== nsfs()) throw invalid(`${p} is not a network namespace file`);
    return fd;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/** True when `p` is an existing namespace file (stat only: never opens, never blocks). */
export function isNetnsFile(p: string): boolean {
  if (sandboxKeyProblem(p) || p === '') return false;
  try {
    const st = fs.statSync(p);
    return st.isFile() && st.dev === nsfs();
  } catch {
    return false;
  }
}
