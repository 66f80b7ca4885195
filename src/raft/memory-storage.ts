// An in-memory implementation of the core's Storage, plus the write side a driver uses.
// It is the simulator's stable storage, and the durable LevelDB store keeps one as its
// synchronous read cache of the log tail (the core reads storage synchronously, like etcd's).
import { RaftError, invariant } from './errors.ts';
import type { ConfState, Entry, HardState, Snapshot, Storage } from './types.ts';
import { emptyConfState, entrySize } from './util.ts';

/** Index and term of the bootstrap snapshot of a founding member. */
export const BOOTSTRAP_INDEX = 1;
export const BOOTSTRAP_TERM = 1;

export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: 0, commit: 0 };
  private snap: Snapshot;
  /** ents[0] is a dummy entry at the snapshot's index and term. */
  private ents: Entry[];

  /**
   * An empty store (a node that will join an existing cluster), or, given the initial voters, the
   * store of a founding member: bootstrapped with a snapshot at index 1, term 1 that carries the
   * initial configuration (and an empty state-machine image). Every founding member starts from
   * the same snapshot, so a node that joins later is always sent a snapshot first and learns the
   * configuration from it, rather than replaying conf changes against a configuration it never saw.
   */
  constructor(confState: ConfState = emptyConfState()) {
    const bootstrap = confState.voters.length > 0;
    const index = bootstrap ? BOOTSTRAP_INDEX : 0;
    const term = bootstrap ? BOOTSTRAP_TERM : 0;
    this.snap = { metadata: { index, term, confState }, data: new Uint8Array(0) };
    this.ents = [{ term, index, type: 'normal', data: new Uint8Array(0) }];
    if (bootstrap) this.hardState = { term, vote: 0, commit: index };
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.metadata.confState };
  }

  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw new RaftError('COMPACTED', `entries(${lo}) at or below snapshot index ${offset}`);
    if (hi > this.lastIndex() + 1) throw new RaftError('UNAVAILABLE', `entries(${lo}, ${hi}) beyond last index ${this.lastIndex()}`);
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - offset]!;
      size += entrySize(e);
      if (out.length > 0 && size > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  term(i: number): number {
    const offset = this.ents[0]!.index;
    if (i < offset) throw new RaftError('COMPACTED', `term(${i}) below snapshot index ${offset}`);
    if (i - offset >= this.ents.length) throw new RaftError('UNAVAILABLE', `term(${i}) beyond last index ${this.lastIndex()}`);
    return this.ents[i - offset]!.term;
  }

  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replace the whole store with a snapshot (InstallSnapshot on a follower). */
  applySnapshot(snap: Snapshot): void {
    const idx = snap.metadata.index;
    invariant(idx > this.snap.metadata.index || this.snap.metadata.index === 0, () => `applySnapshot: snapshot ${idx} is older than ${this.snap.metadata.index}`);
    this.snap = snap;
    this.ents = [{ term: snap.metadata.term, index: idx, type: 'normal', data: new Uint8Array(0) }];
  }

  /**
   * Record a snapshot the application made at `index` (<= applied) and keep the log. Call
   * compact() afterwards to drop the entries behind it.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    invariant(index > this.snap.metadata.index, () => `createSnapshot(${index}) not after current snapshot ${this.snap.metadata.index}`);
    invariant(index <= this.lastIndex(), () => `createSnapshot(${index}) beyond last index ${this.lastIndex()}`);
    const term = this.term(index);
    this.snap = { metadata: { index, term, confState }, data };
    return this.snap;
  }

  /** Drop log entries up to and including `compactIndex` (which must be covered by a snapshot or applied). */
  compact(compactIndex: number): void {
    const offset = this.ents[0]!.index;
    if (compactIndex <= offset) return;
    invariant(compactIndex <= this.lastIndex(), () => `compact(${compactIndex}) beyond last index ${this.lastIndex()}`);
    const i = compactIndex - offset;
    const head = this.ents[i]!;
    this.ents = [{ term: head.term, index: head.index, type: 'normal', data: new Uint8Array(0) }, ...this.ents.slice(i + 1)];
  }

  /** Append entries, truncating any conflicting suffix (the entries of one Ready). */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[entries.length - 1]!.index;
    if (last < first) return; // all already compacted
    let es = entries;
    if (first > es[0]!.index) es = es.slice(first - es[0]!.index);
    const offset = es[0]!.index - this.ents[0]!.index;
    invariant(offset <= this.ents.length, () => `append: gap: storage last index ${this.lastIndex()}, appending from ${es[0]!.index}`);
    // Truncate a conflicting suffix in place, then push: appending at the end is the hot path.
    if (offset < this.ents.length) this.ents.length = offset;
    for (const e of es) this.ents.push(e);
  }

  /** A deep-enough copy for the simulator's "durable state survives a crash" model. */
  clone(): MemoryStorage {
    const c = new MemoryStorage();
    c.hardState = this.hardState;
    c.snap = this.snap;
    c.ents = this.ents.slice();
    return c;
  }
}
