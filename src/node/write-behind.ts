// The state as apply must see it while storage writes are in flight (asynchronous storage writes,
// src/node/driver.ts). The driver applies the committed entries of a Ready in memory and hands
// their state writes to the storage writer; the next Ready may be applied before that write has
// reached LevelDB, and it must read those values, not the older ones on disk. This view answers
// point reads from the newest write in flight that touched the key, else from the store.
//
// Only apply reads through it. Everything else that reads state (HTTP reads, the member table)
// waits for the applied index, which the driver advances only when a write has reached the store.

/** A state change set, as the applier hands it out (puts and deletes by keyspace and key). */
export interface StateWrites {
  readonly puts: readonly (readonly [string, string, Uint8Array])[];
  readonly dels: readonly (readonly [string, string])[];
}

/** Point reads of the durable (written) state. */
export type StateGet = (keyspace: string, key: string) => Uint8Array | undefined;

/** Keyspace and key joined with a separator that keyspace names cannot contain (as state/overlay.ts). */
function joinKey(keyspace: string, key: string): string {
  return `${keyspace}\u0000${key}`;
}

export class WriteBehind {
  private readonly base: StateGet;
  /** Values of writes in flight: the newest per key, with the write that carries it (null = deleted). */
  private readonly inFlight = new Map<string, { readonly value: Uint8Array | null; readonly write: number }>();
  private writesRecorded = 0;

  constructor(base: StateGet) {
    this.base = base;
  }

  get(keyspace: string, key: string): Uint8Array | undefined {
    const w = this.inFlight.get(joinKey(keyspace, key));
    if (w !== undefined) return w.value ?? undefined;
    return this.base(keyspace, key);
  }

  /** A write was handed to the storage writer: its values shadow the store until it is done. Returns its id. */
  record(changes: StateWrites): number {
    const write = ++this.writesRecorded;
    for (const [ks, key] of changes.dels) this.inFlight.set(joinKey(ks, key), { value: null, write });
    for (const [ks, key, value] of changes.puts) this.inFlight.set(joinKey(ks, key), { value, write });
    return write;
  }

  /** Write `write` reached the store: drop its values unless a later write in flight replaced them. */
  release(write: number, changes: StateWrites): void {
    for (const [ks, key] of changes.dels) this.drop(joinKey(ks, key), write);
    for (const [ks, key] of changes.puts) this.drop(joinKey(ks, key), write);
  }

  /** Keys shadowed now (0 whenever no write is in flight). */
  get size(): number {
    return this.inFlight.size;
  }

  private drop(k: string, write: number): void {
    if (this.inFlight.get(k)?.write === write) this.inFlight.delete(k);
  }
}
