// The replicated command envelope and its codec (msgpackr).
//
// Every normal Raft entry that is not a leader no-op carries one Command. A command names a
// domain (clients, tokens, kv, …), an operation and its arguments; it carries the client session
// it belongs to (exactly-once, Raft dissertation §6.3) and the proposing leader's clock (`ts`):
// apply never reads the applying node's clock (DESIGN principle 3).
import { packValue, unpackValue } from '../codec/msgpack.ts';

// The value codec lives at the bottom of the layers (src/codec) so crypto and the node can use it
// without importing the state machine; re-exported here for the state layer's callers.
export { packValue, unpackValue } from '../codec/msgpack.ts';

/** Largest encoded command accepted for proposal: 1 MiB, well under the 4 MiB gRPC message limit. */
export const MAX_COMMAND_BYTES = 1 << 20;

export interface Command {
  /** Format version. */
  readonly v: 1;
  /** Client session id, or null for a command outside any session (leader housekeeping). */
  readonly sid: string | null;
  /** Sequence number within the session, from 1; 0 when sid is null. */
  readonly seq: number;
  /** All results with seq <= ack have been received by the client and may be forgotten. */
  readonly ack: number;
  /** Milliseconds since the epoch on the proposing leader. */
  readonly ts: number;
  readonly domain: string;
  readonly op: string;
  readonly args: unknown;
}

export class CommandDecodeError extends Error {
  constructor(message: string) {
    super(`command decode: ${message}`);
    this.name = 'CommandDecodeError';
  }
}

export function encodeCommand(c: Command): Uint8Array {
  const bytes = packValue(c);
  if (bytes.length > MAX_COMMAND_BYTES) throw new CommandDecodeError(`command of ${bytes.length} bytes exceeds ${MAX_COMMAND_BYTES}`);
  return bytes;
}

export function decodeCommand(data: Uint8Array): Command {
  let c: unknown;
  try {
    c = unpackValue<unknown>(data);
  } catch (e) {
    throw new CommandDecodeError(`not msgpack: ${(e as Error).message}`);
  }
  if (typeof c !== 'object' || c === null) throw new CommandDecodeError('not a map');
  const o = c as Record<string, unknown>;
  if (o.v !== 1) throw new CommandDecodeError(`unknown version ${String(o.v)}`);
  if (o.sid !== null && typeof o.sid !== 'string') throw new CommandDecodeError('sid');
  for (const k of ['seq', 'ack', 'ts'] as const) {
    if (typeof o[k] !== 'number' || !Number.isSafeInteger(o[k]) || (o[k] as number) < 0) throw new CommandDecodeError(k);
  }
  if (typeof o.domain !== 'string' || typeof o.op !== 'string') throw new CommandDecodeError('domain/op');
  return o as unknown as Command;
}
