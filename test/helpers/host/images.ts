/**
 * The images test containers run, built offline from this machine's binaries (no registry is
 * reachable): `local/busybox` on every host, `local/tools` on demand. The tarballs are built
 * once per machine and cached under ROOT.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runOk } from '../run';
import { ROOT } from './layout';

/** A root filesystem tarball of the machine's static busybox and its applets. */
export async function busyboxTar(): Promise<string> {
  const tar = path.join(ROOT, 'busybox.tar');
  if (!fs.existsSync(tar)) {
    const rootfs = path.join(ROOT, `busybox-rootfs-${process.pid}`);
    fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
    fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
    fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
    const applets = (await runOk('/bin/busybox', ['--list'])).split('\n').filter((a) => a && a !== 'busybox');
    for (const a of applets) fs.symlinkSync('busybox', path.join(rootfs, 'bin', a));
    for (const d of ['etc', 'tmp', 'proc', 'sys', 'dev', 'root', 'var']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
    fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    await runOk('tar', ['-C', rootfs, '-cf', `${tar}.tmp`, '.']);
    fs.renameSync(`${tar}.tmp`, tar);
    fs.rmSync(rootfs, { recursive: true, force: true });
  }
  return tar;
}

/** busybox plus iperf3 and socat (UDP servers, throughput) with the libraries they link, copied from this machine. */
export async function toolsTar(): Promise<string> {
  const tar = path.join(ROOT, 'tools.tar');
  if (!fs.existsSync(tar)) {
    const rootfs = path.join(ROOT, `tools-rootfs-${process.pid}`);
    await runOk('mkdir', ['-p', path.join(rootfs, 'bin'), path.join(rootfs, 'usr/bin'), path.join(rootfs, 'tmp'), path.join(rootfs, 'etc')]);
    await runOk('tar', ['-C', rootfs, '-xf', await busyboxTar()]);
    const bins = ['/usr/bin/iperf3', '/usr/bin/socat'];
    const libs = new Set<string>();
    for (const b of bins) {
      for (const m of (await runOk('ldd', [b])).matchAll(/(\/[^\s]+\.so[^\s]*)/g)) libs.add(m[1] as string);
    }
    for (const f of [...bins, ...libs]) {
      fs.mkdirSync(path.join(rootfs, path.dirname(f)), { recursive: true });
      fs.copyFileSync(fs.realpathSync(f), path.join(rootfs, f));
      fs.chmodSync(path.join(rootfs, f), 0o755);
    }
    await runOk('tar', ['-C', rootfs, '-cf', `${tar}.tmp`, '.']);
    fs.renameSync(`${tar}.tmp`, tar);
    fs.rmSync(rootfs, { recursive: true, force: true });
  }
  return tar;
}
