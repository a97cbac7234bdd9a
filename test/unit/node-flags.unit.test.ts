/**
 * Every place that starts loomd passes the same V8 flags (driver/node-flags.ts): the
 * shebang of the `loomd` entry point, the systemd unit, the managed plugin's entrypoint,
 * the image and `npm start`. The harness, the quick start and the benchmarks import the list.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LOOMD_NODE_FLAGS } from '../../driver/node-flags';

const REPO = path.resolve(__dirname, '..', '..');
const read = (f: string): string => fs.readFileSync(path.join(REPO, f), 'utf8');
const flags = LOOMD_NODE_FLAGS.join(' ');

test('the flags are plain V8 flags (no value that needs quoting)', () => {
  expect(LOOMD_NODE_FLAGS.length).toBeGreaterThan(0);
  for (const f of LOOMD_NODE_FLAGS) expect(f).toMatch(/^--[a-z0-9-]+(=[a-z0-9]+)?$/);
});

test('the loomd shebang', () => {
  expect(read('driver/main.ts').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${flags}`);
});

test('npm start and the systemd unit', () => {
  expect(JSON.parse(read('package.json')).scripts.start).toBe(`node ${flags} dist/driver/main.js`);
  expect(read('plugin-config/loom.service')).toContain(`ExecStart=@NODE@ ${flags} /opt/loom/dist/driver/main.js`);
});

test('the managed plugin entrypoint and the image', () => {
  const entry = ['/usr/local/bin/node', ...LOOMD_NODE_FLAGS, '/opt/loom/dist/driver/main.js'];
  expect(JSON.parse(read('plugin-config/config.json')).entrypoint).toEqual(entry);
  expect(read('Dockerfile')).toContain(`ENTRYPOINT ${JSON.stringify(entry).replace(/","/g, '", "')}`);
});
