/**
 * Runs a firewall tool (nft, iptables-restore, ...) with an argument vector and
 * optional stdin: never a shell, always a time limit. Request data only ever
 * reaches these tools as validated interface names and prefixes.
 */
import { spawn } from 'node:child_process';
import { LoomError } from '../../lib/errors';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type CommandRunner = (cmd: string, args: string[], stdin?: string) => Promise<CommandResult>;

export const runCommand: CommandRunner = (cmd, args, stdin) =>
  new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: 15_000, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => reject(new LoomError('unavailable', `${cmd}: ${err.message}`)));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin ?? '');
  });

/** Runs and throws a LoomError (with the tool's stderr) on a non-zero exit. */
export async function runChecked(run: CommandRunner, cmd: string, args: string[], stdin?: string): Promise<string> {
  const r = await run(cmd, args, stdin);
  if (r.code !== 0) {
    throw new LoomError('internal', `${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim().slice(0, 500)}`);
  }
  return r.stdout;
}
