// Small pure helpers shared inside the core.
import type { ConfState, Entry } from './types.ts';

/** Bytes an entry counts for in size limits: its data plus a fixed header estimate. */
export function entrySize(e: Entry): number {
  return e.data.length + 16;
}

export function entriesSize(es: readonly Entry[]): number {
  let n = 0;
  for (const e of es) n += entrySize(e);
  return n;
}

export function emptyConfState(): ConfState {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}

/** Limit a run of entries to maxBytes, keeping at least one. */
export function limitSize<T extends Entry>(es: readonly T[], maxBytes: number): T[] {
  if (es.length === 0) return [];
  let size = entrySize(es[0]!);
  let n = 1;
  for (; n < es.length; n++) {
    size += entrySize(es[n]!);
    if (size > maxBytes) break;
  }
  return es.slice(0, n);
}
