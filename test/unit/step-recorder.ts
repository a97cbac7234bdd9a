/** Unit-test helpers for step tables: a StepRunner that records step names, and a logger that keeps its lines. */
import pino from 'pino';
import { StepRunner } from '../../driver/dataplane/steps';
import type { Logger } from '../../lib/logger';

export class RecordingRunner extends StepRunner {
  readonly names: string[] = [];

  constructor(log: Logger, what = 'test') {
    super(what, log);
  }

  override step(name: string, fn: () => Promise<(() => Promise<unknown>) | void>): Promise<void> {
    this.names.push(name);
    return super.step(name, fn);
  }
}

/** A logger at debug level whose lines (parsed) are kept in `lines`. */
export function capturingLogger(): { log: Logger; lines: Array<{ level: number; msg: string } & Record<string, unknown>> } {
  const lines: Array<{ level: number; msg: string } & Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines };
}
