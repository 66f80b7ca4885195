// The applier: the interface the node drives and the state machine implements (DESIGN "Layers":
// `node` defines the interfaces it drives and offers; `state` implements the one, by type only).
//
// The node owns the log entry formats: it splits batch entries, reads each command's fixed header
// (node/command.ts) and decodes conf changes and their context (node/members.ts). It hands the
// applier entries in that prepared form, so the state machine needs no value of the node layer: it
// gets header fields and the payload bytes (decoded once, at apply, by the state machine: DESIGN
// "Encode once"), and for a conf change the decoded change, its context and the member-table
// writes it implies. Every node prepares the same bytes the same way, so a malformed entry or
// command is answered with the same error on every node.
//
// The node does not construct the state machine: whoever composes the node (the server, a test)
// passes an ApplierFactory, which the node calls with a reader over its applied state.
import type { ConfChange, Entry } from '../raft/types.ts';
import { decodeConfChange } from '../raft/confchange.ts';
import type { ApplyResult } from './api.ts';
import { CommandFormatError, payloadOf, readHeader, splitBatchEntry } from './command.ts';
import type { CommandHeader } from './command.ts';
import { decodeConfChangeContext, memberChanges } from './members.ts';
import type { ConfChangeContext } from './members.ts';

/** Applied state as the applier reads it (the node's store, read synchronously). */
export interface StateReader {
  get(keyspace: string, key: string): Uint8Array | undefined;
}

/** Writes of an applied batch, last write per key wins; the node stores them with the applied index. */
export interface StateChangeSet {
  readonly puts: (readonly [string, string, Uint8Array])[];
  readonly dels: (readonly [string, string])[];
}

/** A command of a batch entry: its header as the node read it, and its payload bytes, not decoded. */
export type PreparedCommand =
  | { readonly kind: 'command'; readonly header: CommandHeader; readonly payload: Uint8Array }
  /** Bytes that are not a command of this format: answered MALFORMED_COMMAND, nothing changes. */
  | { readonly kind: 'malformed'; readonly message: string };

/** Member-table writes implied by a conf change (node/members.ts memberChanges), deletes first. */
export interface MemberWrites {
  readonly puts: readonly (readonly [string, string, Uint8Array])[];
  readonly dels: readonly (readonly [string, string])[];
}

/** A committed entry, prepared for the applier (see the header comment). */
export type ApplyEntry =
  /** A batch entry (node/command.ts): one result per command, in order. */
  | { readonly kind: 'commands'; readonly index: number; readonly commands: readonly PreparedCommand[] }
  /** An entry of the older one-command msgpack format (state/command.ts decodes it): one result. */
  | { readonly kind: 'legacy'; readonly index: number; readonly data: Uint8Array }
  /** A batch entry that does not split: one MALFORMED_COMMAND result. */
  | { readonly kind: 'malformed'; readonly index: number; readonly message: string }
  | { readonly kind: 'confChange'; readonly index: number; readonly cc: ConfChange; readonly context: ConfChangeContext; readonly members: MemberWrites }
  /** A leader no-op (or an entry that carries nothing to apply): it only advances the applied index. */
  | { readonly kind: 'empty'; readonly index: number };

export interface AppliedBatch {
  /** Writes of the whole batch, last write per key wins. */
  readonly changes: StateChangeSet;
  /**
   * Results per log index of the commands in the batch, one per command of the entry, in order (a
   * batch entry carries many; an entry of the older one-command format, one). No-ops and conf
   * changes have none: the driver answers a conf change.
   */
  readonly results: Map<number, readonly ApplyResult[]>;
  readonly applied: number;
}

/** What the node drives: apply committed entries in order, serve reads of applied state. */
export interface Applier {
  applyEntries(entries: readonly ApplyEntry[]): AppliedBatch;
  /** A read query against applied state; never changes state. */
  read(domain: string, op: string, args: unknown): ApplyResult;
  /** After a snapshot is installed, anything cached from the old state must be dropped. */
  resetCaches(): void;
}

/** Builds the applier over the node's applied state (called once, when the node starts). */
export type ApplierFactory = (reader: StateReader) => Applier;

function prepareCommand(c: Uint8Array): PreparedCommand {
  try {
    return { kind: 'command', header: readHeader(c), payload: payloadOf(c) };
  } catch (e) {
    if (e instanceof CommandFormatError) return { kind: 'malformed', message: e.message };
    throw e;
  }
}

/**
 * Committed entries in the applier's form. A conf change's bytes are the core's (a corrupt one
 * throws here as it would in the core: the node stops rather than diverge); its context is the
 * application's, read tolerantly, so an unreadable context changes the membership without
 * addresses or a record, identically on every node.
 */
export function prepareEntries(entries: readonly Entry[]): ApplyEntry[] {
  return entries.map((e): ApplyEntry => {
    if (e.type === 'confChange') {
      const cc = decodeConfChange(e.data);
      const context = decodeConfChangeContext(cc.context);
      return { kind: 'confChange', index: e.index, cc, context, members: memberChanges(cc, context) };
    }
    if (e.type !== 'normal' || e.data.length === 0) return { kind: 'empty', index: e.index };
    let commands: Uint8Array[] | null;
    try {
      commands = splitBatchEntry(e.data);
    } catch (err) {
      if (!(err instanceof CommandFormatError)) throw err;
      return { kind: 'malformed', index: e.index, message: err.message };
    }
    if (commands === null) return { kind: 'legacy', index: e.index, data: e.data };
    return { kind: 'commands', index: e.index, commands: commands.map(prepareCommand) };
  });
}
