/**
 * `npm run build` bundles loomd (dist/driver/main.js and what it imports) into one file with
 * esbuild (package.json's "bundle" script): fewer files for node to find, read and wrap on
 * every start. Which runtime dependencies go into the bundle is a decision per dependency:
 * the pure-JavaScript ones loomd loads before its first real call are bundled; the native
 * ones (their binaries are found from their own directory) and the ones loaded only when used
 * (dockerode, etcd3, express, prom-client, yaml, dns-packet) stay outside. This test makes a
 * new dependency take that decision.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; scripts: Record<string, string> };
const BUNDLED = ['async-mutex', 'ip-address', 'pino', 'zod'];
const NATIVE = ['level', 'netlink'];
const externals = [...(pkg.scripts.bundle ?? '').matchAll(/--external:(\S+)/g)].map((m) => m[1]);

test('every runtime dependency is either bundled or external, never both', () => {
  for (const dep of Object.keys(pkg.dependencies)) {
    expect([dep, BUNDLED.includes(dep) !== externals.includes(dep)]).toEqual([dep, true]);
  }
});

test('native dependencies stay outside the bundle', () => {
  for (const dep of NATIVE) expect(externals).toContain(dep);
});

test('the build and the benchmark bundle loomd in place, after compiling', () => {
  expect(pkg.scripts.build).toMatch(/^tsc -p tsconfig\.build\.json && npm run -s bundle -- dist\/driver\/main\.js --outfile=dist\/driver\/main\.js/);
  expect(pkg.scripts.bench).toMatch(/^tsc -p tsconfig\.bench\.json && npm run -s bundle -- dist-bench\/driver\/main\.js --outfile=dist-bench\/driver\/main\.js/);
  expect(pkg.scripts.bundle).toMatch(/^esbuild --bundle --platform=node /);
});

// After `npm run build` (npm test builds before the unit tests): the bundle loads nothing of loom's from disk.
const BUILT = path.join(REPO, 'dist', 'driver', 'main.js');
(fs.existsSync(BUILT) ? test : test.skip)('the built loomd requires no file of loom by path, and its helpers are where it looks', () => {
  const code = fs.readFileSync(BUILT, 'utf8');
  expect(code.startsWith('#!')).toBe(true);
  expect(code.match(/require\(["'`]\.{1,2}\/[^"'`]*["'`]\)/g) ?? []).toEqual([]);
  for (const helper of ['netns-helper.js', 'overlay-ns-helper.js', 'dns-socket-helper.js']) {
    expect([helper, fs.existsSync(path.join(REPO, 'dist', 'driver', 'kernel', helper))]).toEqual([helper, true]);
  }
});
