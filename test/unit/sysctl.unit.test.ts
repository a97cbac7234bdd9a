/** Sysctl: the /proc/sys root is the object's own (no module state); keys are checked; interface names are taken verbatim. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PROC_SYS, Sysctl } from '../../driver/kernel/sysctl';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-sysctl-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const file = (root: string, rel: string, value?: string): string => {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  if (value !== undefined) fs.writeFileSync(p, value);
  return p;
};

test('two roots, two objects: each reads and writes under its own root only', async () => {
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b/');
  file(a, 'net/ipv4/ip_forward', '0\n');
  file(b, 'net/ipv4/ip_forward', '1\n');
  const sa = new Sysctl(a);
  const sb = new Sysctl(b);
  expect(await sa.read('net.ipv4.ip_forward')).toBe('0');
  expect(await sb.read('net.ipv4.ip_forward')).toBe('1');
  await sa.write('net.ipv4.ip_forward', '1');
  expect(fs.readFileSync(path.join(a, 'net/ipv4/ip_forward'), 'utf8')).toBe('1');
  expect(fs.readFileSync(path.join(b, 'net/ipv4/ip_forward'), 'utf8')).toBe('1\n');
  expect(new Sysctl().ifacePath('ipv4', 'x', 'y')).toBe(`${PROC_SYS}/net/ipv4/conf/x/y`);
});

test('per-interface keys take the name verbatim (dots included); missing keys read as undefined and fail to write', async () => {
  const s = new Sysctl(dir);
  const p = file(dir, 'net/ipv6/conf/br.v10/disable_ipv6', '0');
  expect(s.ifacePath('ipv6', 'br.v10', 'disable_ipv6')).toBe(p);
  await s.writeIface('ipv6', 'br.v10', 'disable_ipv6', '1');
  expect(await s.readIface('ipv6', 'br.v10', 'disable_ipv6')).toBe('1');
  expect(await s.readIface('ipv6', 'br.v10', 'force_forwarding')).toBeUndefined();
  await expect(s.writeIface('ipv4', 'gone0', 'route_localnet', '1')).rejects.toMatchObject({ kind: 'unavailable', message: expect.stringMatching(/net\.ipv4\.conf\.gone0\.route_localnet=1/) });
});

test('dotted keys are checked: no way out of the root', async () => {
  const s = new Sysctl(dir);
  for (const key of ['net..ipv4', 'net/../../etc/x', 'net.ipv4.$x']) await expect(s.write(key, '1')).rejects.toThrow(/invalid sysctl key/);
  expect(await s.read('net.ipv4.missing')).toBeUndefined();
});
