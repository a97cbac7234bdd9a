/**
 * Whether network namespace files Docker creates later will appear in a directory this
 * process sees through a bind mount (the managed plugin's mount of Docker's exec root,
 * --netns-dir). Docker bind-mounts each container's namespace onto a file in its netns
 * directory when the container starts; that mount reaches the plugin's view only if the
 * plugin's mount receives propagation (`rslave` or shared) from the host. A private mount
 * shows the namespaces that existed when the plugin started, and no later one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** One line of /proc/self/mountinfo, as far as propagation goes. */
export interface MountPropagation {
  mountPoint: string;
  /** `shared:N` (sends and receives), `master:N` (receives: a slave), neither: private. */
  shared: boolean;
  slave: boolean;
}

/** Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses /proc/self/mountinfo (pure). */
export function parseMountinfo(text: string): MountPropagation[] {
  const out: MountPropagation[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-');
    if (f.length < 7 || dash < 6) continue;
    const optional = f.slice(6, dash);
    out.push({
      mountPoint: unescape(f[4] as string),
      shared: optional.some((o) => o.startsWith('shared:')),
      slave: optional.some((o) => o.startsWith('master:')),
    });
  }
  return out;
}

/** The mount `dir` lives on: the last mounted of the longest mount points containing it (pure). */
export function mountOf(mounts: MountPropagation[], dir: string): MountPropagation | undefined {
  let best: MountPropagation | undefined;
  for (const m of mounts) {
    const inside = m.mountPoint === '/' || dir === m.mountPoint || dir.startsWith(`${m.mountPoint}/`);
    if (inside && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

/**
 * Why containers started later will not show up in `dir` (pure; undefined when they will):
 * the mount holding it neither receives (slave) nor shares propagation.
 */
export function netnsPropagationProblem(mountinfo: string, dir: string): string | undefined {
  const m = mountOf(parseMountinfo(mountinfo), path.posix.normalize(dir));
  if (!m) return `no mount holds ${dir}`;
  if (m.shared || m.slave) return undefined;
  return `${dir} is on a private mount (${m.mountPoint}): network namespaces of containers started after loomd will not appear there, so their names will not resolve through loom (the mount must receive propagation: rslave, as in plugin-config/config.json, of a host exec root on a shared mount, e.g. after \`mount --make-rshared /\`)`;
}

/** Checks `dir` against this process's mounts; a problem (missing directory included) as text. */
export function checkNetnsDir(dir: string): string | undefined {
  if (!fs.existsSync(dir)) return `--netns-dir ${dir} does not exist: container namespaces cannot be entered, names will not resolve through loom`;
  try {
    return netnsPropagationProblem(fs.readFileSync('/proc/self/mountinfo', 'utf8'), dir);
  } catch (err) {
    return `cannot read /proc/self/mountinfo to check ${dir}: ${String(err)}`;
  }
}
