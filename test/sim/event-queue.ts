// A binary min-heap of timed events for the discrete-event simulation. Ties on time are broken by
// insertion order, so the run is deterministic.

interface Slot<T> {
  readonly timeUs: number;
  readonly seq: number;
  readonly event: T;
}

export class EventQueue<T> {
  private readonly maxEvents: number;
  private readonly heap: Slot<T>[] = [];
  private nextSeq = 0;

  constructor(maxEvents: number) {
    this.maxEvents = maxEvents;
  }

  get size(): number {
    return this.heap.length;
  }

  push(timeUs: number, event: T): void {
    if (this.heap.length >= this.maxEvents) throw new Error(`event queue: more than ${this.maxEvents} pending events (runaway simulation)`);
    const slot: Slot<T> = { timeUs, seq: this.nextSeq++, event };
    const h = this.heap;
    h.push(slot);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      swap(h, i, p);
      i = p;
    }
  }

  peekTimeUs(): number {
    return this.heap.length === 0 ? Infinity : this.heap[0]!.timeUs;
  }

  pop(): { timeUs: number; event: T } | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        swap(h, i, m);
        i = m;
      }
    }
    return { timeUs: top.timeUs, event: top.event };
  }
}

function less<T>(a: Slot<T>, b: Slot<T>): boolean {
  return a.timeUs < b.timeUs || (a.timeUs === b.timeUs && a.seq < b.seq);
}

function swap<T>(h: Slot<T>[], i: number, j: number): void {
  const t = h[i]!;
  h[i] = h[j]!;
  h[j] = t;
}
