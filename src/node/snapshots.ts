// Log compaction and state files, which the driver starts and forgets (issue 15). None of them
// holds up the driver's loop: a snapshot of a large state written inside the loop stopped ticks
// and heartbeats for seconds, and every such snapshot cost an election.
//
// What a snapshot is now (etcd v3 works this way with its backend database): the state already
// lives durably in LevelDB beside its applied index, so compacting the log copies nothing — it
// records the applied index, its term and conf state, and moves the log head behind it
// (DurableStorage.compactLog). Each node compacts when its log costs more than its own threshold,
// spread around storage.compactLogBytes so members never compact at the same moment. The whole
// state is written to a file only when someone needs it: a follower or learner behind the log's
// head (the core sends MsgSnap), or a backup. Such a file is the state at the applied index at the
// time it is written — at or past the snapshot the core named, and the log goes on from it, so the
// follower installs it and the leader replicates from there (the core accepts an install past its
// pending snapshot; etcd's createMergedSnapshotMessage does the same). A file already on disk at or
// past the recorded snapshot is reused.
//
// Precondition of a state file (the store's, DurableStorage.writeStateFile): no state write in
// flight, and the index given is the store's applied index. The driver writes one only when its
// storage writer is idle (requestStateFile's callers wait for that); the store takes its LevelDB
// snapshot synchronously at the call and writes the file while commits go on (they are not in it).
import type { ConfState, MsgSnap, NodeId, ProgressStatus, SnapshotMetadata } from '../raft/types.ts';
import type { DurableStorage, SnapshotChunkStream } from '../storage/durable-storage.ts';

/** A backup snapshot: the file of the state at the applied index, opened for reading. */
export type SnapshotNowOutcome = { readonly kind: 'ok'; readonly stream: SnapshotChunkStream } | { readonly kind: 'dropped'; readonly reason: string };

export interface SnapshotLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface SnapshotEvents {
  snapshot(event: 'created' | 'installed' | 'sent' | 'send_failed', bytes: number | null): void;
  /** The log was compacted (no state copied); how long recording it took. */
  compacted?(seconds: number): void;
}

export interface SnapshotSender {
  sendSnapshot(to: NodeId, header: { term: number; metadata: MsgSnap['snapshot']['metadata'] }, chunks: AsyncIterable<Uint8Array>): Promise<void>;
}

export interface SnapshotDutyOptions {
  readonly id: NodeId;
  readonly storage: DurableStorage;
  readonly log: SnapshotLogger;
  readonly events?: SnapshotEvents;
  /** A compaction or a state file failed: the store reports damage this way (fatal). */
  readonly fail: (e: unknown) => void;
  /** Whether the node is stopping (a failure then is not reported). */
  readonly stopping: () => boolean;
  /**
   * Ask the driver for a state file at its applied index, written once its storage writer is idle
   * (the store's precondition); resolves with the file's metadata. Calls made while one is asked
   * for share it.
   */
  readonly requestStateFile: () => Promise<SnapshotMetadata>;
  /** The leader's view of its followers (null when this node does not lead): what they still need of the log. */
  readonly progress: () => ReadonlyMap<NodeId, ProgressStatus> | null;
}

/**
 * The leader keeps the log its followers still need, within a bound: the log head stays at or
 * below every other member's match, so a follower that was down, or that is installing a state
 * file at f (its match stays below f until it has), goes on from the log — until the log costs
 * more than LOG_HOLD_FACTOR × compactLogBytes; then the memory bound wins, the log is compacted as
 * if nobody lagged, and a follower past it is sent the state. Without this a learner joining a
 * large state under load was sent a dozen files in a row, and a follower 50k entries behind a
 * 1M-record state was sent the whole state (800 MB, 93 s) though its entries cost a few MB.
 */
export const LOG_HOLD_FACTOR = 2;

/** How far above storage.compactLogBytes node `id` compacts: a fraction in [0, COMPACT_SPREAD), fixed per node. */
export const COMPACT_SPREAD = 0.25;

export function compactThresholdBytes(id: NodeId, compactLogBytes: number): number {
  // Fibonacci hashing spreads consecutive ids over [0, 1): 1 → 0.62, 2 → 0.24, 3 → 0.85, 4 → 0.47, 5 → 0.09.
  const frac = Math.imul(id, 0x9e3779b1) >>> 0;
  return Math.floor(compactLogBytes * (1 + (COMPACT_SPREAD * frac) / 2 ** 32));
}

export class SnapshotDuty {
  private readonly o: SnapshotDutyOptions;
  private readonly thresholdBytes: number;
  /** The compaction being recorded, if any (one at a time). */
  private compacting: Promise<void> | null = null;
  /** The log was over its bound at the last look (the warning is logged once per episode). */
  private overBound = false;
  /** The state file being written, if any. */
  private writing: Promise<SnapshotMetadata> | null = null;
  /** Sends choosing (or waiting for) their state file: the log is not compacted meanwhile, or it could be compacted past the file before its follower's match holds it. */
  private sending = 0;

  constructor(o: SnapshotDutyOptions) {
    this.o = o;
    this.thresholdBytes = compactThresholdBytes(o.id, o.storage.config.compactLogBytes);
  }

  /** Resolves when no compaction and no state file is being written (stop() waits: a file holds a LevelDB snapshot). */
  async idle(): Promise<void> {
    await this.compacting;
    await this.writing?.catch(() => undefined);
  }

  /**
   * The log costs more than this node's threshold, nothing is being compacted and no state file is
   * being chosen, and the log head may move (no lagging member holds it where it is).
   */
  compactionDue(): boolean {
    if (this.compacting !== null || this.sending > 0 || !this.o.storage.shouldCompact(this.thresholdBytes)) return false;
    const floor = this.floor();
    return floor === undefined || floor > this.o.storage.firstIndex() - 1;
  }

  /**
   * The index the log head must not pass: the lowest match of the other members (the leader's
   * view), or undefined — not leading, or the log over its bound (LOG_HOLD_FACTOR).
   */
  private floor(): number | undefined {
    const progress = this.o.progress();
    if (progress === null) return undefined;
    let floor: number | undefined;
    for (const [id, p] of progress) if (id !== this.o.id) floor = floor === undefined ? p.match : Math.min(floor, p.match);
    if (floor === undefined) return undefined;
    const logBytes = this.o.storage.logBytes;
    if (logBytes > LOG_HOLD_FACTOR * this.o.storage.config.compactLogBytes) {
      if (!this.overBound) this.o.log.warn({ lowestMatch: floor, logBytes }, 'the log outgrew its bound while a member lags: compacting past it (it will be sent the state)');
      this.overBound = true;
      return undefined;
    }
    this.overBound = false;
    return floor;
  }

  /** Compact the log behind the durable applied index, in the background (one small batch). */
  compact(): void {
    const { storage, log } = this.o;
    const startMs = performance.now();
    this.compacting = storage
      .compactLog(this.floor())
      .then(
        (done) => {
          if (done === null) return;
          const seconds = (performance.now() - startMs) / 1000;
          log.info({ index: done.metadata.index, term: done.metadata.term, compactedThrough: done.compactedThrough, ms: Math.round(seconds * 1000) }, 'compacted the log');
          this.o.events?.compacted?.(seconds);
        },
        (e: unknown) => {
          if (!this.o.stopping()) this.o.fail(e);
        },
      )
      .finally(() => {
        this.compacting = null;
      });
  }

  /**
   * Write a state file at `index` (the store's applied index, with the writer idle: the driver
   * calls this only then). Resolves with its metadata.
   */
  writeStateFile(index: number, confState: ConfState): Promise<SnapshotMetadata> {
    const { storage, log } = this.o;
    const meta: SnapshotMetadata = { index, term: storage.term(index), confState };
    const startMs = performance.now();
    const p = storage.writeStateFile(meta).then((info) => {
      log.info({ index, term: meta.term, bytes: info.bytes, records: info.records, ms: Math.round(performance.now() - startMs) }, 'wrote a state file');
      this.o.events?.snapshot('created', info.bytes);
      return meta;
    });
    this.writing = p;
    const done = (): void => {
      if (this.writing === p) this.writing = null;
    };
    p.then(done, done);
    return p;
  }

  /**
   * A state file of the state at or past the applied index of the call, for a backup: asked of
   * the driver, then opened for reading before replying, so pruning the file later does not cut
   * the stream short.
   */
  backup(reply: (o: SnapshotNowOutcome) => void): void {
    this.o
      .requestStateFile()
      .then((meta) => this.o.storage.openSnapshotChunks(meta.index))
      .then(
        (stream) => reply({ kind: 'ok', stream }),
        (e: unknown) => reply({ kind: 'dropped', reason: e instanceof Error ? e.message : String(e) }),
      );
  }

  /**
   * Send a follower the whole state, for the core's MsgSnap: the newest state file at or past the
   * recorded snapshot, or one written now. The header names the file's index and term (at or
   * past the snapshot the core named). `done` reports the outcome (to the core, through the inbox).
   */
  stream(m: MsgSnap, sender: SnapshotSender, done: (ok: boolean) => void): void {
    const { storage } = this.o;
    // No compaction until the file is chosen: one written now is at the applied index
    // of its start, and a compaction meanwhile could move the log head past it.
    this.sending++;
    void (async () => {
      let stream: SnapshotChunkStream | null = null;
      let choosing = true;
      try {
        const meta = (await storage.newestSendableStateFile()) ?? (await this.o.requestStateFile());
        this.sending--;
        choosing = false;
        stream = await storage.openSnapshotChunks(meta.index);
        await sender.sendSnapshot(m.to, { term: m.term, metadata: stream.metadata }, stream.chunks);
        this.o.events?.snapshot('sent', stream.totalBytes);
        done(true);
      } catch (e) {
        if (choosing) this.sending--;
        await stream?.chunks.return(undefined).catch(() => undefined);
        this.o.events?.snapshot('send_failed', null);
        this.o.log.warn({ to: m.to, index: m.snapshot.metadata.index, err: e instanceof Error ? e.message : String(e) }, 'snapshot send failed');
        done(false);
      }
    })();
  }
}
