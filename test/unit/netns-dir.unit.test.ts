/**
 * The managed plugin's view of Docker's netns directory (--netns-dir): SandboxKeys translated
 * to the mounted directory (netns-file.ts, NetnsPaths), and the start-up check that the mount
 * receives the namespaces of containers started later (mount-propagation.ts).
 */
import { NetnsPaths } from '../../driver/kernel/netns-file';
import { mountOf, netnsPropagationProblem, parseMountinfo } from '../../driver/kernel/mount-propagation';
import { errorOf } from './error-of';

describe('NetnsPaths', () => {
  test('without a directory, Docker\'s path is opened as it is', () => {
    expect(new NetnsPaths().local('/var/run/docker/netns/1a2b3c')).toBe('/var/run/docker/netns/1a2b3c');
    expect(new NetnsPaths().local('')).toBe('');
  });

  test('with one, the file name is taken into it, whatever Docker\'s exec root is', () => {
    const p = new NetnsPaths('/run/loom/docker-exec/netns');
    expect(p.local('/var/run/docker/netns/1a2b3c')).toBe('/run/loom/docker-exec/netns/1a2b3c');
    expect(p.local('/tmp/loom-e2e/h1/exec/netns/default')).toBe('/run/loom/docker-exec/netns/default');
    expect(p.local('')).toBe('');
  });

  test('a key that is no SandboxKey is refused before any translation', () => {
    const p = new NetnsPaths('/run/loom/docker-exec/netns');
    for (const bad of ['/var/run/docker/netns/../../etc/passwd', 'netns/x', '/var/run/docker/other/x', '/var/run/docker/netns/a b']) {
      expect([bad, errorOf(() => p.local(bad)).kind]).toEqual([bad, 'invalid']);
    }
  });
});

// Real lines of a managed plugin's /proc/self/mountinfo (trimmed), and a private variant.
const line = (id: number, mountPoint: string, optional: string): string =>
  `${id} 1 0:${id} / ${mountPoint} ro,relatime ${optional} - tmpfs tmpfs rw`.replace('  ', ' ');
const MOUNTINFO = [
  line(1, '/', 'master:1'),
  line(2, '/run', ''),
  line(3, '/run/loom/docker-exec', 'master:7'),
  line(4, '/run/loom/docker-exec/netns/1a2b', 'master:9'),
  line(5, '/run/loom/with\\040space', 'shared:3'),
].join('\n');

describe('mount propagation of the netns directory', () => {
  test('mountinfo: mount points (escapes undone) and their propagation', () => {
    const m = parseMountinfo(MOUNTINFO);
    expect(m.map((x) => [x.mountPoint, x.shared, x.slave])).toEqual([
      ['/', false, true],
      ['/run', false, false],
      ['/run/loom/docker-exec', false, true],
      ['/run/loom/docker-exec/netns/1a2b', false, true],
      ['/run/loom/with space', true, false],
    ]);
    expect(mountOf(m, '/run/loom/docker-exec/netns')?.mountPoint).toBe('/run/loom/docker-exec');
    expect(mountOf(m, '/run/loom/docker-execx/netns')?.mountPoint).toBe('/run');
    expect(mountOf(m, '/var/lib')?.mountPoint).toBe('/');
  });

  test('a slave or shared mount is fine; a private one is named in the problem', () => {
    expect(netnsPropagationProblem(MOUNTINFO, '/run/loom/docker-exec/netns')).toBeUndefined();
    expect(netnsPropagationProblem(MOUNTINFO, '/run/loom/with space/netns')).toBeUndefined();
    expect(netnsPropagationProblem(MOUNTINFO, '/run/other/netns')).toMatch(/\/run\/other\/netns is on a private mount \(\/run\): .*containers started after loomd.*will not resolve/);
    expect(netnsPropagationProblem('', '/run/x/netns')).toMatch(/no mount holds/);
  });
});
