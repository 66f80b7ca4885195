// Snapshots the driver starts and forgets: the periodic snapshot that lets the log be compacted,
// a backup's snapshot (raftauth snapshot save), and streaming a snapshot file to a follower. None
// of them holds up the driver's loop (issue 15: a snapshot of a large state written inside the
// loop stopped ticks and heartbeats for seconds, and every such snapshot cost an election).
//
// Precondition of create (the store's, DurableStorage.createSnapshot): no state write in flight,
// and the index given is the store's applied index. The driver calls start() and backup() only
// when its storage writer is idle; createSnapshot takes its LevelDB snapshot synchronously at the
// call, and writes the file while commits go on (they are not in it).
import type { ConfState, MsgSnap, NodeId } from '../raft/types.ts';
import type { DurableStorage, SnapshotChunkStream } from '../storage/durable-storage.ts';
import { StorageError } from '../storage/errors.ts';

/** A backup snapshot: the file of the state at the applied index, opened for reading. */
export type SnapshotNowOutcome = { readonly kind: 'ok'; readonly stream: SnapshotChunkStream } | { readonly kind: 'dropped'; readonly reason: string };

export interface SnapshotLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface SnapshotEvents {
  snapshot(event: 'created' | 'installed' | 'sent' | 'send_failed', bytes: number | null): void;
}

export interface SnapshotSender {
  sendSnapshot(to: NodeId, header: { term: number; metadata: MsgSnap['snapshot']['metadata'] }, chunks: AsyncIterable<Uint8Array>): Promise<void>;
}

export interface SnapshotDutyOptions {
  readonly storage: DurableStorage;
  readonly log: SnapshotLogger;
  readonly events?: SnapshotEvents;
  /** A periodic snapshot failed: the store reports damage this way (fatal). */
  readonly fail: (e: unknown) => void;
  /** Whether the node is stopping (a failure then is not reported). */
  readonly stopping: () => boolean;
}

export class SnapshotDuty {
  private readonly o: SnapshotDutyOptions;
  /** The periodic snapshot being written, if any (one at a time). */
  private writing: Promise<void> | null = null;

  constructor(o: SnapshotDutyOptions) {
    this.o = o;
  }

  get busy(): boolean {
    return this.writing !== null;
  }

  /** Resolves when no periodic snapshot is being written (stop() waits: it holds a LevelDB snapshot). */
  async idle(): Promise<void> {
    await this.writing;
  }

  /** Due at this applied index (the store's policy), and none being written. */
  due(applied: number): boolean {
    return this.writing === null && this.o.storage.shouldSnapshot(applied);
  }

  /** Write a snapshot of the state at `index` (the store's applied index) in the background. */
  start(index: number, confState: ConfState): void {
    const { storage, log } = this.o;
    const term = storage.term(index);
    this.writing = storage
      .createSnapshot({ index, term, confState })
      .then(
        (info) => {
          log.info({ index, term, bytes: info.bytes, records: info.records, compactedThrough: info.compactedThrough }, 'created snapshot');
          this.o.events?.snapshot('created', info.bytes);
        },
        (e: unknown) => {
          // A backup or an installed snapshot recorded one at or past this index meanwhile: nothing lost.
          if (e instanceof StorageError && e.code === 'SNAPSHOT_OUT_OF_DATE') return;
          if (this.o.stopping()) return;
          this.o.fail(e);
        },
      )
      .finally(() => {
        this.writing = null;
      });
  }

  /**
   * A snapshot file of the state at `index` (the store's applied index), for a backup. When the
   * newest snapshot already is at that index (nothing applied since), that file is the state and
   * is streamed as it is. The stream is opened before replying, so pruning the file later does not
   * cut it short.
   */
  backup(index: number, confState: ConfState, reply: (o: SnapshotNowOutcome) => void): void {
    const { storage, log } = this.o;
    const made =
      index === storage.snapshotMetadata.index
        ? Promise.resolve()
        : storage.createSnapshot({ index, term: storage.term(index), confState }).then(
            (info) => {
              log.info({ index, term: info.metadata.term, bytes: info.bytes, records: info.records, compactedThrough: info.compactedThrough }, 'created snapshot for a backup');
              this.o.events?.snapshot('created', info.bytes);
            },
            (e: unknown) => {
              // Another backup (or a received snapshot's install) recorded a snapshot at this index
              // first: its file is the same state.
              if (!(e instanceof StorageError && e.code === 'SNAPSHOT_OUT_OF_DATE' && storage.snapshotMetadata.index === index)) throw e;
            },
          );
    made
      .then(() => storage.openSnapshotChunks(index))
      .then(
        (stream) => reply({ kind: 'ok', stream }),
        (e: unknown) => reply({ kind: 'dropped', reason: e instanceof Error ? e.message : String(e) }),
      );
  }

  /** Stream a snapshot file to a follower; `done` reports the outcome (to the core, through the inbox). */
  stream(m: MsgSnap, sender: SnapshotSender, done: (ok: boolean) => void): void {
    const md = m.snapshot.metadata;
    void (async () => {
      try {
        const stream = await this.o.storage.openSnapshotChunks(md.index);
        await sender.sendSnapshot(m.to, { term: m.term, metadata: md }, stream.chunks);
        this.o.events?.snapshot('sent', stream.totalBytes);
        done(true);
      } catch (e) {
        this.o.events?.snapshot('send_failed', null);
        this.o.log.warn({ to: m.to, index: md.index, err: e instanceof Error ? e.message : String(e) }, 'snapshot send failed');
        done(false);
      }
    })();
  }
}
