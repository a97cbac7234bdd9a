/**
 * loomd configuration: command-line flags, each with an environment
 * equivalent (flags win). Parsing is pure so it can be unit-tested.
 */
import { parseArgs } from 'node:util';
import { invalid } from './errors';
import { LOG_LEVELS, LogLevel } from './observability/logger';
import { DefaultPool, parseDefaultPool } from '../ipam-driver/core/pool-picker';

export interface Config {
  socket: string;
  socketMode: number;
  /** Admin API socket for loomctl; undefined when disabled ("off"). */
  adminSocket: string | undefined;
  stateDir: string;
  logLevel: LogLevel;
  /** Explicit default pools; when empty, Docker-like IPv4 pools and a per-host ULA /48 are used. */
  defaultPools: DefaultPool[];
}

export const DEFAULTS = {
  socket: '/run/docker/plugins/loom.sock',
  stateDir: '/var/lib/loom',
  logLevel: 'info' as LogLevel,
  socketMode: 0o600,
  adminSocket: '/run/loom/admin.sock',
};

/** Docker's own defaults for local networks: /16s of 172.16.0.0/12, then /20s of 192.168.0.0/16. */
export const DEFAULT_IPV4_POOLS = ['172.16.0.0/12:16', '192.168.0.0/16:20'];

export const USAGE = `Usage: loomd [options]

Docker network + IPAM plugin (bridge networks; state in LevelDB).

  --socket PATH         plugin socket; its file name is the driver name   [LOOM_SOCKET]
                        (default ${DEFAULTS.socket})
  --socket-mode MODE    octal permissions of the socket (default 600)     [LOOM_SOCKET_MODE]
  --admin-socket PATH   admin API for loomctl, or "off" (default ${DEFAULTS.adminSocket}) [LOOM_ADMIN_SOCKET]
  --state-dir DIR       LevelDB state directory (default ${DEFAULTS.stateDir}) [LOOM_STATE_DIR]
  --log-level LEVEL     ${LOG_LEVELS.join('|')} (default info)  [LOOM_LOG_LEVEL]
  --default-pool P      BASE/LEN:SIZE pool for automatic subnets, repeatable [LOOM_DEFAULT_POOLS, comma-separated]
                        (default ${DEFAULT_IPV4_POOLS.join(', ')} and a random ULA /48 split into /64s)
  -h, --help            this text
  --version             print the version
`;

export type ParsedArgs = { kind: 'run'; config: Config } | { kind: 'help' } | { kind: 'version' };

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): ParsedArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        socket: { type: 'string' },
        'socket-mode': { type: 'string' },
        'admin-socket': { type: 'string' },
        'state-dir': { type: 'string' },
        'log-level': { type: 'string' },
        'default-pool': { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    }));
  } catch (err) {
    throw invalid((err as Error).message);
  }
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  const socket = values.socket ?? env.LOOM_SOCKET ?? DEFAULTS.socket;
  if (!socket.startsWith('/') || !socket.endsWith('.sock')) throw invalid(`--socket must be an absolute path ending in .sock, got ${socket}`);
  const modeText = values['socket-mode'] ?? env.LOOM_SOCKET_MODE;
  let socketMode = DEFAULTS.socketMode;
  if (modeText !== undefined) {
    if (!/^0?[0-7]{3}$/.test(modeText)) throw invalid(`--socket-mode must be octal like 600, got ${modeText}`);
    socketMode = parseInt(modeText, 8);
  }
  const logLevel = (values['log-level'] ?? env.LOOM_LOG_LEVEL ?? DEFAULTS.logLevel) as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw invalid(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${logLevel}`);
  const poolTexts = values['default-pool'] ?? (env.LOOM_DEFAULT_POOLS ? env.LOOM_DEFAULT_POOLS.split(',').filter((s) => s.trim()) : []);
  const admin = values['admin-socket'] ?? env.LOOM_ADMIN_SOCKET ?? DEFAULTS.adminSocket;
  if (admin !== 'off' && !admin.startsWith('/')) throw invalid(`--admin-socket must be an absolute path or "off", got ${admin}`);
  return {
    kind: 'run',
    config: {
      socket,
      socketMode,
      adminSocket: admin === 'off' ? undefined : admin,
      stateDir: values['state-dir'] ?? env.LOOM_STATE_DIR ?? DEFAULTS.stateDir,
      logLevel,
      defaultPools: poolTexts.map(parseDefaultPool),
    },
  };
}
