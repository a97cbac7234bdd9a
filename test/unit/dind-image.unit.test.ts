/**
 * loom's DinD image has two builds (issue 17): offline, plugin-config/dind/build.sh (`docker import`
 * of a Debian rootfs made from the host's mirror), and from public base images,
 * plugin-config/dind/Dockerfile (`npm run dind:build -- --from-registry`). They must make the same
 * image: the image configuration lives in the Dockerfile only (build.sh reads its marked block for
 * `docker import --change`), and the packages and loom's files agree.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..');
const read = (f: string): string => fs.readFileSync(path.join(REPO, f), 'utf8');
const dockerfile = read('plugin-config/dind/Dockerfile');
const buildSh = read('plugin-config/dind/build.sh');

/** What build.sh passes to `docker import --change`: its sed range, then its case filter. */
function importChanges(): string[] {
  const lines = dockerfile.split('\n');
  const from = lines.findIndex((l) => l.startsWith('# ---- image configuration'));
  const to = lines.findIndex((l) => l.startsWith('# ---- end of the image configuration'));
  expect(from).toBeGreaterThanOrEqual(0);
  expect(to).toBeGreaterThan(from);
  return lines.slice(from, to + 1).filter((l) => /^(ENTRYPOINT|CMD|ENV|VOLUME)/.test(l));
}

test("the image configuration is the Dockerfile's block, and build.sh reads that block", () => {
  expect(importChanges()).toEqual([
    'ENTRYPOINT ["/usr/local/bin/loom-dind"]',
    'CMD []',
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'ENV LOOM_DIND=on',
    'VOLUME /var/lib/docker',
    'VOLUME /var/lib/loom',
  ]);
  expect(buildSh).toContain("sed -n '/^# ---- image configuration/,/^# ---- end of the image configuration/p'");
  expect(buildSh).toContain('ENTRYPOINT*|CMD*|ENV*|VOLUME*');
  // no second copy of the configuration in the offline path
  expect(buildSh).not.toMatch(/--change '(ENTRYPOINT|ENV|VOLUME)/);
  // the block is the end of the Dockerfile: nothing after it changes the configuration
  const after = dockerfile.split('# ---- end of the image configuration')[1] ?? '';
  expect(after.trim()).toBe('');
});

test('both builds install the same Debian packages (the Dockerfile adds etcd-server, the offline build its etcd binary)', () => {
  const offline = /^PACKAGES=(\S+)$/m.exec(buildSh)?.[1]?.split(',') ?? [];
  expect(offline.length).toBeGreaterThan(3);
  const install = /apt-get install -y --no-install-recommends\s*\\?\s*\n?([^;]+);/.exec(dockerfile)?.[1] ?? '';
  const registry = install.replace(/\\\n/g, ' ').trim().split(/\s+/);
  expect([...registry].sort()).toEqual([...offline, 'etcd-server'].sort());
  // where the cluster command runs etcd from
  expect(dockerfile).toContain('/usr/local/bin/etcd');
  expect(read('scripts/cluster.ts')).toContain("'/usr/local/bin/etcd'");
});

test("loom's files come from the top-level Dockerfile's build stage, as its runtime stage takes them", () => {
  const top = read('Dockerfile');
  expect(top).toMatch(/^FROM \$\{BASE_IMAGE\} AS build$/m);
  const runtimeCopies = [...top.matchAll(/^COPY --from=build \/src\/(\S+) \.\/(\S+)$/gm)].map((m) => m[1]);
  const dindCopies = [...dockerfile.matchAll(/^COPY --from=loom \/src\/(\S+) \/opt\/loom\/(\S+)$/gm)].map((m) => {
    expect(m[2]).toBe(m[1]);
    return m[1];
  });
  expect(dindCopies.sort()).toEqual(runtimeCopies.sort());
  // the same entrypoint script as the offline image, which the build context must carry
  expect(dockerfile).toContain('COPY plugin-config/dind/entrypoint.sh /usr/local/bin/loom-dind');
  expect(buildSh).toContain('"$here/entrypoint.sh" "$layer/usr/local/bin/loom-dind"');
  expect(read('.dockerignore').split('\n')).toContain('!plugin-config/dind/entrypoint.sh');
  // the label the cluster command compares
  expect(dockerfile).toMatch(/^LABEL org\.loom\.source=\$\{LOOM_SOURCE\}$/m);
  expect(dockerfile).toMatch(/^ARG BASE_IMAGE=debian:bookworm-slim$/m);
  expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
});
