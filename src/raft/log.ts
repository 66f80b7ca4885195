// The Raft log as the core sees it: the durable part (Storage, read-only here) followed by the
// unstable part (entries and possibly a snapshot handed to the driver but not yet persisted).
// etcd's raftLog + unstable.
import { RaftError, invariant } from './errors.ts';
import type { Entry, Snapshot, Storage } from './types.ts';
import { limitSize } from './util.ts';

class Unstable {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];
  /** Index of entries[0] (or where it would be). */
  offset: number;
  /**
   * Entries below this index were handed to the driver's storage writes and are being persisted
   * (asynchronous storage writes, etcd's offsetInProgress): a later Ready does not hand them out
   * again. offset <= offsetInProgress <= offset + entries.length.
   */
  offsetInProgress: number;
  /** The snapshot was handed out and is being installed. */
  snapshotInProgress = false;

  constructor(offset: number) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  /** Entries not yet handed out for persisting. */
  entriesToPersist(): Entry[] {
    return this.entries.slice(this.offsetInProgress - this.offset);
  }

  hasEntriesToPersist(): boolean {
    return this.offset + this.entries.length > this.offsetInProgress;
  }

  snapshotToPersist(): Snapshot | null {
    return this.snapshotInProgress ? null : this.snapshot;
  }

  /**
   * The entries up to (index, term) and the snapshot, if `snapshot`, were handed out and are being
   * persisted. If the entry at `index` was replaced since (a message stepped between ready() and
   * this call), the entries stay to be handed out again: writing them twice is harmless, skipping
   * a replacement would not be.
   */
  acceptInProgress(last: { readonly index: number; readonly term: number } | null, snapshot: boolean): void {
    if (last !== null && this.maybeTerm(last.index) === last.term && last.index >= this.offset) {
      this.offsetInProgress = Math.max(this.offsetInProgress, last.index + 1);
    }
    if (snapshot && this.snapshot !== null) this.snapshotInProgress = true;
  }

  maybeFirstIndex(): number | null {
    return this.snapshot ? this.snapshot.metadata.index + 1 : null;
  }

  maybeLastIndex(): number | null {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.metadata.index : null;
  }

  maybeTerm(i: number): number | null {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return null;
    }
    const last = this.maybeLastIndex();
    if (last === null || i > last) return null;
    return this.entries[i - this.offset]!.term;
  }

  /** Entries up to (index, term) are durable: drop them from the unstable part. */
  stableTo(index: number, term: number): void {
    const t = this.maybeTerm(index);
    // Only if the entry is still the one that was persisted (a newer leader may have replaced it).
    if (t === term && index >= this.offset) {
      this.entries = this.entries.slice(index + 1 - this.offset);
      this.offset = index + 1;
      if (this.offsetInProgress < this.offset) this.offsetInProgress = this.offset;
    }
  }

  stableSnapTo(index: number): void {
    if (this.snapshot && this.snapshot.metadata.index === index) {
      this.snapshot = null;
      this.snapshotInProgress = false;
    }
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = s;
    this.snapshotInProgress = false;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const from = ents[0]!.index;
    if (from === this.offset + this.entries.length) {
      this.entries = this.entries.concat(ents);
    } else if (from <= this.offset) {
      // Replace the whole unstable part; the driver's append overwrites storage from `from` on.
      this.offset = from;
      this.entries = ents.slice();
    } else {
      this.entries = this.entries.slice(0, from - this.offset).concat(ents);
    }
    // Replaced entries that were being persisted are handed out again: the driver's later write
    // overwrites the earlier one (its writes are ordered), and the earlier one's stableTo is ignored
    // because the term at its index no longer matches.
    if (this.offsetInProgress > from) this.offsetInProgress = Math.max(from, this.offset);
  }

  slice(lo: number, hi: number): Entry[] {
    invariant(lo >= this.offset && hi <= this.offset + this.entries.length, () => `unstable.slice(${lo}, ${hi}) out of [${this.offset}, ${this.offset + this.entries.length}]`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

export class RaftLog {
  readonly storage: Storage;
  private readonly unstable: Unstable;
  /** Highest index known to be committed (on a quorum). */
  committed: number;
  /** Highest index the application has applied (acknowledged through advance). */
  applied: number;
  /**
   * Highest index handed to the application in a Ready that is not advanced yet (etcd's
   * `applying`): applied <= applying <= committed. Above `applied` exactly while committed
   * entries are out for application.
   */
  applying: number;

  constructor(storage: Storage, applied: number) {
    this.storage = storage;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    // Everything up to the snapshot is committed and applied by definition.
    this.committed = first - 1;
    this.applied = first - 1;
    if (applied > 0) {
      invariant(applied >= first - 1, () => `log init: applied ${applied} is behind the snapshot ${first - 1}`);
      this.applied = applied;
    }
    this.applying = this.applied;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    invariant(t !== null, () => `log: no term for last index ${this.lastIndex()}`);
    return t;
  }

  /** Term of entry i, or null when i is compacted away or beyond the log. */
  term(i: number): number | null {
    const dummy = this.firstIndex() - 1;
    if (i < dummy || i > this.lastIndex()) return null;
    const t = this.unstable.maybeTerm(i);
    if (t !== null) return t;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (e instanceof RaftError && (e.code === 'COMPACTED' || e.code === 'UNAVAILABLE')) return null;
      throw e;
    }
  }

  matchTerm(i: number, term: number): boolean {
    return this.term(i) === term;
  }

  /** §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * AppendEntries on a follower (§5.3). Returns the index of the last new entry, or null when
   * the entry before `ents` does not match (reject).
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number | null {
    if (!this.matchTerm(index, logTerm)) return null;
    const lastNew = index + ents.length;
    const conflict = this.findConflict(ents);
    if (conflict !== 0) {
      invariant(conflict > this.committed, () => `append: entry ${conflict} conflicts with committed entry (committed ${this.committed})`);
      this.append(ents.slice(conflict - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    invariant(after >= this.committed, () => `append: would overwrite committed entries (after ${after}, committed ${this.committed})`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * Index of the first entry of `ents` that is new or conflicts with the log (different term at
   * the same index), or 0 if all are already present.
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`: where the logs can first possibly match
   * (etcd's findConflictByTerm, the conflict hint of §5.3's optimization).
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    for (; i >= 0; i--) {
      const t = this.term(i);
      if (t === null) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
    }
    return { index: 0, term: 0 };
  }

  /** Unstable entries not yet handed out for persisting (a Ready's entries). */
  unstableEntries(): Entry[] {
    return this.unstable.entriesToPersist();
  }

  hasUnstableEntries(): boolean {
    return this.unstable.hasEntriesToPersist();
  }

  /** The unstable snapshot, unless it was already handed out. */
  unstableSnapshot(): Snapshot | null {
    return this.unstable.snapshotToPersist();
  }

  /** A Ready's entries (up to `last`) and snapshot are being persisted: do not hand them out again. */
  acceptInProgress(last: { readonly index: number; readonly term: number } | null, snapshot: boolean): void {
    this.unstable.acceptInProgress(last, snapshot);
  }

  /** Committed entries not yet applied, at most maxBytes (at least one if any). */
  nextCommittedEntries(maxBytes: number): Entry[] {
    if (this.unstable.snapshot) return []; // install the snapshot first
    // From `applying`: entries handed out for application and not yet applied are not handed out again.
    const lo = Math.max(this.applying + 1, this.firstIndex());
    const hi = this.committed + 1;
    if (lo >= hi) return [];
    return this.slice(lo, hi, maxBytes);
  }

  hasNextCommittedEntries(): boolean {
    if (this.unstable.snapshot) return false;
    return this.committed > Math.max(this.applying, this.firstIndex() - 1);
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  commitTo(index: number): void {
    if (index > this.committed) {
      invariant(index <= this.lastIndex(), () => `commitTo(${index}) is beyond the last index ${this.lastIndex()}: the log is corrupt, truncated or lost`);
      this.committed = index;
    }
  }

  /** Leader commit (§5.4.2): only an entry of the current term is committed by counting. */
  maybeCommit(maxIndex: number, term: number, anyTerm = false): boolean {
    if (maxIndex > this.committed && (anyTerm || this.term(maxIndex) === term)) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /** Committed entries up to `index` were handed to the application in a Ready. */
  acceptApplying(index: number): void {
    invariant(index <= this.committed && index > this.applying, () => `acceptApplying(${index}) out of range (applying ${this.applying}, committed ${this.committed}]`);
    this.applying = index;
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    invariant(index <= this.committed && index >= this.applied, () => `appliedTo(${index}) out of range [applied ${this.applied}, committed ${this.committed}]`);
    this.applied = index;
    if (index > this.applying) this.applying = index;
  }

  /** The application installed a snapshot at `index`: its state is applied up to there. */
  appliedSnapshotTo(index: number): void {
    if (index > this.applied) this.applied = index;
    if (index > this.applying) this.applying = index;
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: number): void {
    this.unstable.stableSnapTo(index);
  }

  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /** Entries from `lo` to the end, at most maxBytes. Throws COMPACTED if lo is behind the log. */
  entries(lo: number, maxBytes: number): Entry[] {
    if (lo > this.lastIndex()) return [];
    return this.slice(lo, this.lastIndex() + 1, maxBytes);
  }

  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    invariant(lo <= hi, () => `slice(${lo}, ${hi}): lo > hi`);
    const first = this.firstIndex();
    if (lo < first) throw new RaftError('COMPACTED', `slice(${lo}) is behind the first index ${first}`);
    invariant(hi <= this.lastIndex() + 1, () => `slice(${lo}, ${hi}) beyond last index ${this.lastIndex()}`);
    if (lo === hi) return [];
    let ents: Entry[] = [];
    const off = this.unstable.offset;
    if (lo < off) {
      const stored = this.storage.entries(lo, Math.min(hi, off), maxBytes);
      // Size-limited: the storage returned less than asked.
      if (stored.length < Math.min(hi, off) - lo) return stored;
      ents = stored;
    }
    if (hi > off) {
      const u = this.unstable.slice(Math.max(lo, off), hi);
      ents = ents.length > 0 ? ents.concat(u) : u;
    }
    return limitSize(ents, maxBytes);
  }
}
