// Logging: pino, one JSON line per event. Every line names the node, and in an HTTP worker the
// worker too, so the interleaved output of a node's processes can be told apart and filtered.
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';
import type { LogLevel } from './config.ts';

export type { Logger } from 'pino';

export interface LogIdentity {
  readonly node: number;
  /** cluster worker id; absent in the primary. */
  readonly worker?: number;
}

/**
 * A logger writing to `destination` (stdout by default, synchronously: a line logged just before
 * a crash must not be lost in a buffer).
 */
export function createLogger(level: LogLevel, who: LogIdentity, destination?: DestinationStream): Logger {
  const base: Record<string, number> = { node: who.node, pid: process.pid };
  if (who.worker !== undefined) base.worker = who.worker;
  return pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime }, destination ?? pino.destination({ dest: 1, sync: true }));
}
