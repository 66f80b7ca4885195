// Write overlays for apply: a batch overlay over durable state, and child overlays per command so
// a rejected command can be discarded without touching the batch.

import type { StateChangeSet, StateReader } from '../node/applier.ts';

// The node defines what the applier reads and hands back (node/applier.ts).
export type { StateChangeSet, StateReader } from '../node/applier.ts';

/** Keyspace and key joined with a separator that keyspace names cannot contain. */
function k(keyspace: string, key: string): string {
  return `${keyspace}\u0000${key}`;
}

export class Overlay implements StateReader {
  private readonly parent: StateReader;
  /** undefined in the map = not touched; null = deleted. */
  private readonly writes = new Map<string, Uint8Array | null>();
  private committed = false;

  constructor(parent: StateReader) {
    this.parent = parent;
  }

  get(keyspace: string, key: string): Uint8Array | undefined {
    const w = this.writes.get(k(keyspace, key));
    if (w === null) return undefined;
    if (w !== undefined) return w;
    return this.parent.get(keyspace, key);
  }

  put(keyspace: string, key: string, value: Uint8Array): void {
    this.writes.set(k(keyspace, key), value);
  }

  del(keyspace: string, key: string): void {
    this.writes.set(k(keyspace, key), null);
  }

  /** A child overlay whose writes reach this one only if commit() is called. */
  child(): Overlay {
    return new Overlay(this);
  }

  /** Merge this child's writes into its parent overlay. */
  commit(): void {
    if (!(this.parent instanceof Overlay)) throw new Error('commit() on a root overlay');
    if (this.committed) throw new Error('overlay committed twice');
    this.committed = true;
    for (const [key, v] of this.writes) this.parent.writes.set(key, v);
  }

  changes(): StateChangeSet {
    const puts: (readonly [string, string, Uint8Array])[] = [];
    const dels: (readonly [string, string])[] = [];
    for (const [joined, v] of this.writes) {
      const i = joined.indexOf('\u0000');
      const ks = joined.slice(0, i);
      const key = joined.slice(i + 1);
      if (v === null) dels.push([ks, key]);
      else puts.push([ks, key, v]);
    }
    return { puts, dels };
  }
}
