// The replicated state machine: a pure function of (state, command), applied in log order.
//
// - Domains (kv now; clients, users, tokens, mfa, keys, audit later) register an apply module by
//   name. apply() is synchronous and deterministic: it reads state through the transaction (which
//   sees the writes of earlier commands in the same batch), takes time only from the command's
//   `ts`, and never touches the network, a clock or randomness.
// - Each command runs in its own child transaction. A command the domain rejects (DomainError)
//   changes nothing and answers with the error; an unexpected exception is a bug that stops the
//   node (the same entry would throw on every node, and serving from a state machine that failed
//   half-way is not an option).
// - Exactly-once (§6.3 of the Raft dissertation): results are remembered per client session and
//   returned again for a retried (sid, seq). See sessions.ts.
// - Conf-change entries apply in log order too, between the commands around them: the member
//   table (sys.members, src/node/members.ts) and each domain's confChange hook (the audit domain's
//   `member.changed` record) are written in the same batch as the entry, so a membership change
//   and its record commit together. The Raft core's side of the change is the driver's.
// - The batch's writes and the applied index are handed to storage as one write, so after a crash
//   the state and the applied index always agree.
// - The state machine is the node's Applier (src/node/applier.ts) and imports the node only as
//   types (docs/architecture.md "Layers"): the node splits batch entries, reads command headers
//   and decodes conf changes, and hands over prepared entries.
import type { ConfChange } from '../raft/types.ts';
import type { ApplyResult } from '../node/api.ts';
import type { AppliedBatch, Applier, ApplyEntry, PreparedCommand } from '../node/applier.ts';
import type { ConfChangeContext } from '../node/members.ts';
import { CommandDecodeError, decodeCommand, unpackValue } from './command.ts';
import type { Command } from './command.ts';
import { SessionTable, SESSION_DOMAIN } from './sessions.ts';
import type { SessionConfig } from './sessions.ts';
import { Overlay, type StateReader } from './overlay.ts';

export type { StateReader } from './overlay.ts';

/** A rejected command: the client sees `code` and `message`; state is unchanged. */
export class DomainError extends Error {
  readonly code: string;

  constructor(
    code: string,
    message: string,
  ) {
    super(message);
    this.code = code;
    this.name = 'DomainError';
  }
}

export interface Tx extends StateReader {
  put(keyspace: string, key: string, value: Uint8Array): void;
  del(keyspace: string, key: string): void;
}

export interface ApplyContext {
  /** Log index of the command. */
  readonly index: number;
  /** Leader time of the command, made monotonic across leaders (never goes backwards). */
  readonly ts: number;
  readonly tx: Tx;
  readonly sid: string | null;
}

export interface Domain {
  readonly name: string;
  /** Keyspaces the domain owns (for documentation and checks; names as storage accepts them). */
  readonly keyspaces: readonly string[];
  apply(ctx: ApplyContext, op: string, args: unknown): unknown;
  /** Read-only queries served from applied state (after ReadIndex for linearizable reads). */
  read?(reader: StateReader, op: string, args: unknown): unknown;
  /**
   * Called for each conf-change entry, in log order, with the entry's decoded context; `ctx.ts` is
   * the audit part's leader time made monotonic (the last command's time when there is none), and
   * `ctx.sid` is null. Writes go through `ctx.tx` like a command's. A DomainError discards the
   * hook's writes and nothing else: the membership change applies regardless.
   */
  confChange?(ctx: ApplyContext, cc: ConfChange, context: ConfChangeContext): void;
}

// The result and batch types are the node's (it defines the applier it drives: node/applier.ts).
export type { ApplyResult } from '../node/api.ts';
export type { AppliedBatch } from '../node/applier.ts';

/**
 * A command of the binary format as the domains see it: the header the node read, and the payload
 * `[domain, op, args]` decoded here, at apply, its only decode. An error (returned, not thrown) for
 * bytes that are not one: every node reads the same bytes the same way.
 */
function decodeBinaryCommand(c: PreparedCommand): Command | Error {
  if (c.kind === 'malformed') return new CommandDecodeError(c.message);
  const h = c.header;
  let p: unknown;
  try {
    p = unpackValue<unknown>(c.payload);
  } catch (e) {
    return new CommandDecodeError(`payload is not msgpack: ${(e as Error).message}`);
  }
  if (!Array.isArray(p) || p.length !== 3 || typeof p[0] !== 'string' || typeof p[1] !== 'string') return new CommandDecodeError('payload is not [domain, op, args]');
  return { v: 1, sid: h.sid, seq: h.seq, ack: h.ack, ts: h.ts, domain: p[0], op: p[1], args: p[2] };
}

/** Monotonic time is kept in this keyspace so a restarted node continues from the same value. */
const META_KEYSPACE = 'sys.meta';
const CLOCK_KEY = 'clock';

export class StateMachine implements Applier {
  private readonly backing: StateReader;
  private readonly domains = new Map<string, Domain>();
  readonly sessions: SessionTable;
  private lastTs: number | null = null;

  constructor(
    backing: StateReader,
    sessionConfig: SessionConfig,
  ) {
    this.backing = backing;
    this.sessions = new SessionTable(sessionConfig);
  }

  register(d: Domain): void {
    if (this.domains.has(d.name) || d.name === SESSION_DOMAIN) throw new Error(`domain ${d.name} registered twice`);
    this.domains.set(d.name, d);
  }

  /**
   * Apply committed entries in order. A conf-change entry writes its state here (member table,
   * domain hooks); the driver hands it to the Raft core and answers its proposer.
   */
  applyEntries(entries: readonly ApplyEntry[]): AppliedBatch {
    const batch = new Overlay(this.backing);
    const results = new Map<number, readonly ApplyResult[]>();
    let applied = 0;
    this.sessions.begin();
    for (const e of entries) {
      applied = e.index;
      switch (e.kind) {
        case 'empty':
          break;
        case 'confChange':
          this.applyConfChange(batch, e);
          break;
        case 'malformed':
          results.set(e.index, [{ ok: false, code: 'MALFORMED_COMMAND', message: e.message }]);
          break;
        case 'legacy': {
          // An entry of the one-command msgpack format (written by older versions).
          let cmd: Command;
          try {
            cmd = decodeCommand(e.data);
          } catch (err) {
            // Every node decodes the same bytes the same way: answer with an error, change nothing.
            if (!(err instanceof CommandDecodeError)) throw err;
            results.set(e.index, [{ ok: false, code: 'MALFORMED_COMMAND', message: err.message }]);
            break;
          }
          results.set(e.index, [this.applyCommand(batch, e.index, cmd)]);
          break;
        }
        case 'commands': {
          const rs: ApplyResult[] = [];
          for (const c of e.commands) {
            const cmd = decodeBinaryCommand(c);
            rs.push(cmd instanceof Error ? { ok: false, code: 'MALFORMED_COMMAND', message: cmd.message } : this.applyCommand(batch, e.index, cmd));
          }
          results.set(e.index, rs);
          break;
        }
      }
    }
    this.sessions.flush(batch);
    return { changes: batch.changes(), results, applied };
  }

  private monotonicTs(batch: Overlay, ts: number): number {
    if (this.lastTs === null) {
      const stored = batch.get(META_KEYSPACE, CLOCK_KEY);
      this.lastTs = stored ? new DataView(stored.buffer, stored.byteOffset, stored.byteLength).getFloat64(0) : 0;
    }
    if (ts > this.lastTs) {
      this.lastTs = ts;
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, ts);
      batch.put(META_KEYSPACE, CLOCK_KEY, b);
    }
    return this.lastTs;
  }

  /**
   * A conf-change entry's state writes: the member table (as the node decoded it) and each
   * domain's hook. The node decoded the change and its context (node/applier.ts prepareEntries).
   */
  private applyConfChange(batch: Overlay, e: Extract<ApplyEntry, { readonly kind: 'confChange' }>): void {
    const { cc, context } = e;
    // Without an audit part there is no leader time: the clock stays where the last command left it.
    const ts = this.monotonicTs(batch, context.audit?.ts ?? 0);
    for (const [ks, key] of e.members.dels) batch.del(ks, key);
    for (const [ks, key, v] of e.members.puts) batch.put(ks, key, v);
    for (const d of this.domains.values()) {
      if (!d.confChange) continue;
      const tx = batch.child();
      try {
        d.confChange({ index: e.index, ts, tx, sid: null }, cc, context);
        tx.commit();
      } catch (err) {
        if (!(err instanceof DomainError)) throw err;
      }
    }
  }

  private applyCommand(batch: Overlay, index: number, cmd: Command): ApplyResult {
    const ts = this.monotonicTs(batch, cmd.ts);
    if (cmd.domain === SESSION_DOMAIN) return this.sessions.applySessionOp(batch, ts, cmd);
    const seen = this.sessions.check(batch, ts, cmd);
    if (seen) return seen;
    const d = this.domains.get(cmd.domain);
    let result: ApplyResult;
    if (!d) {
      result = { ok: false, code: 'UNKNOWN_DOMAIN', message: `no domain ${cmd.domain}` };
    } else {
      const tx = batch.child();
      try {
        const value = d.apply({ index, ts, tx, sid: cmd.sid }, cmd.op, cmd.args);
        tx.commit();
        result = { ok: true, value };
      } catch (e) {
        if (!(e instanceof DomainError)) throw e;
        result = { ok: false, code: e.code, message: e.message };
      }
    }
    this.sessions.record(batch, ts, cmd, result);
    return result;
  }

  /** Run a domain's read query against applied state. Never changes state. */
  read(domain: string, op: string, args: unknown): ApplyResult {
    const d = this.domains.get(domain);
    if (!d || !d.read) return { ok: false, code: 'UNKNOWN_DOMAIN', message: `no readable domain ${domain}` };
    try {
      return { ok: true, value: d.read(this.backing, op, args) };
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      return { ok: false, code: e.code, message: e.message };
    }
  }

  /** After a snapshot is installed the cached clock must be re-read. */
  resetCaches(): void {
    this.lastTs = null;
  }
}

