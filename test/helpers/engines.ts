/**
 * The Docker engines the e2e tier runs against, picked by LOOM_TEST_ENGINE:
 *   20.10 (default) - Debian 12's docker.io, installed by test/setup-host.sh;
 *   28.5            - Debian unstable's docker.io + containerd 2.1, extracted by
 *                     test/setup-docker28.sh into a private prefix (Debian 12's runc).
 */
import * as path from 'node:path';

export interface Engine {
  id: '20.10' | '28.5';
  dockerd: string;
  client: string;
  dockerdArgs: string[];
  env: NodeJS.ProcessEnv;
}

export const DOCKER28_PREFIX = process.env.LOOM_DOCKER28_PREFIX ?? '/opt/loom-test/docker28';

export function engineFromEnv(): Engine {
  const id = process.env.LOOM_TEST_ENGINE ?? '20.10';
  if (id === '20.10') {
    return { id, dockerd: '/usr/sbin/dockerd', client: '/usr/bin/docker', dockerdArgs: [], env: process.env };
  }
  if (id === '28.5') {
    const bin = [path.join(DOCKER28_PREFIX, 'usr/bin'), path.join(DOCKER28_PREFIX, 'usr/sbin'), path.join(DOCKER28_PREFIX, 'usr/libexec/docker/cli-plugins')];
    return {
      id,
      dockerd: path.join(DOCKER28_PREFIX, 'usr/sbin/dockerd'),
      client: path.join(DOCKER28_PREFIX, 'usr/bin/docker'),
      dockerdArgs: ['--add-runtime', 'deb12runc=/usr/sbin/runc', '--default-runtime', 'deb12runc'],
      env: { ...process.env, PATH: `${bin.join(':')}:${process.env.PATH ?? ''}` },
    };
  }
  throw new Error(`LOOM_TEST_ENGINE must be 20.10 or 28.5, got ${id}`);
}
