// A linearizability checker for recorded client histories, used by the deterministic simulator
// (test/sim) and the Jepsen-style suite.
//
// Algorithm: Wing & Gong's search with Lowe's memoization ("Testing for linearizability", 2017),
// as implemented by Porcupine (anishathalye/porcupine, checker.go). Calls and returns are laid out
// in a doubly-linked list in time order. The search walks the list from the front: a call entry
// met before any return entry is an operation that may be linearized next (nothing still open
// returned before it was called). Linearizing one removes ("lifts") its call and return from the
// list and restarts from the front; reaching a return entry means the operation it closes cannot
// be placed, so the last choice is undone ("unlifted") and the walk continues after it.
// Each (set of linearized operations, model state) the search gave up on is remembered: reaching
// it again by a different order cannot lead anywhere new, which is what makes the search
// practical. Indeterminate operations get their own list and stronger pruning, see
// PartitionSearch.
//
// Definitions decided here (Herlihy & Wing 1990, §3):
//  - An operation A precedes B in real time only if A.return < B.call, strictly. Equal timestamps
//    are treated as overlapping: with a coarse clock (virtual ticks, milliseconds) a return and a
//    call stamped with the same value may have happened in either order, and a checker that must
//    never report a false "illegal" has to allow both. Hence, at equal times, calls sort before
//    returns.
//  - An indeterminate operation (return === Infinity: timed out, connection lost) may have taken
//    effect at any point after its call, or never (Knossos' :info semantics). Porcupine forces such
//    an operation to be linearized somewhere, which is wrong for a model in which it could not
//    legally run at the end of the history. Here an indeterminate operation has no return entry at
//    all: it is a candidate from its call onward, and the search succeeds as soon as every
//    *completed* operation is linearized, leaving the rest out.
//
// Cost. The problem is NP-complete in general (Gibbons & Korach 1997); in practice the search
// takes a few steps per operation when few operations overlap. Indeterminate operations are the
// expensive part: each stays a candidate from its call to the end of the history, so refuting an
// illegal history means considering each of them taken effect, or not, at every point before the
// violation. PartitionSearch prunes most of that (dominance, shadows, two search orders raced).
// Measured with the default 5M-step budget, 30 seeds per row, generated KV histories on one key
// with puts/CAS/appends of unique values, each plus three corrupted copies:
//   400 ops, 5 clients, 3% indeterminate: all decided; linearizable ≤ 9k steps, illegal ≤ 0.6M.
//   400 ops, 10 clients, 3%: all decided; illegal up to 4.4M steps.
//   400 ops, 5 clients, 10%: 5 of ~90 illegal copies 'unknown'.
//   2000 ops on one key, 5 clients, 1%: 2 of ~90 illegal copies 'unknown'.
// So keep indeterminate non-read operations to a few per key, e.g. by giving a simulated client a
// definite answer where the system allows it. About 1M steps per second.

export interface Operation<I, O> {
  readonly clientId: number;
  readonly input: I;
  /** Invocation time (any monotone clock: virtual ticks or ms). */
  readonly call: number;
  /** Completion time; Infinity for an operation whose outcome is unknown (timed out / indeterminate). */
  readonly return: number;
  /** The observed output; ignored (matches anything) when return === Infinity. */
  readonly output: O | undefined;
}

export interface Model<S, I, O> {
  init(): S;
  /** Apply input to state: whether `output` is a legal result, and the next state. Must not mutate `state`. */
  step(state: S, input: I, output: O | undefined): { ok: boolean; next: S };
  /** Partition the history into independent sub-histories (e.g. by key). Optional. */
  partition?(history: readonly Operation<I, O>[]): Operation<I, O>[][];
  /** Canonical string of a state, used for memoization. */
  hash(state: S): string;
  describe?(input: I, output: O | undefined): string;
}

export type Verdict = 'ok' | 'illegal' | 'unknown';

export interface CheckResult {
  readonly verdict: Verdict;
  /**
   * For 'illegal': the partition that failed (index into `model.partition`'s result, 0 without a
   * partition function), how many operations it holds, and a readable report with the longest
   * linearizable prefix found and the operations that could not follow it.
   */
  readonly failure?: { partition: number; operations: number; explanation: string };
  /** For 'unknown': why (step budget or time budget exhausted). */
  readonly reason?: string;
  /** Search steps taken over all partitions: one per candidate tried and one per backtrack. */
  readonly steps: number;
}

export interface CheckOptions {
  /** Search steps allowed over the whole history; beyond them the verdict is 'unknown'. */
  maxSteps?: number;
  /** Wall-clock budget in milliseconds from the start of the check (a duration, not an epoch time). */
  deadlineMs?: number;
  /**
   * Memo entries kept per partition. When full, the search goes on without remembering new
   * failures: still correct, only slower, and still bounded by maxSteps. Caps memory at roughly
   * maxMemoEntries × (operations/8 + state hash length + ~100) bytes.
   */
  maxMemoEntries?: number;
  /**
   * The search orders raced on partitions with indeterminate operations (see CandidateOrder).
   * Default both; tests pin one to check each on its own.
   */
  candidateOrders?: readonly CandidateOrder[];
}

export const DEFAULT_MAX_STEPS = 5_000_000;
export const DEFAULT_MAX_MEMO_ENTRIES = 1_000_000;
export const DEFAULT_CANDIDATE_ORDERS: readonly CandidateOrder[] = ['pending-first', 'pending-last'];
/** Reading the clock costs more than a step; look at it once per this many steps. */
const DEADLINE_CHECK_INTERVAL_STEPS = 1024;
/** Lines of each list in a failure report; the rest are counted, not printed. */
const REPORT_MAX_LINES = 40;
/** Bitset words are packed 16 bits to a UTF-16 code unit for the memo key; fromCharCode in chunks. */
const FROM_CHAR_CODE_CHUNK = 8192;

/**
 * Decide whether `history` is linearizable with respect to `model`. Never hangs: the search is
 * bounded by `maxSteps` and `deadlineMs`, and returns 'unknown' when either runs out.
 * Throws on a malformed history (non-finite call, return before call).
 */
export function checkLinearizable<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  opts?: CheckOptions,
): CheckResult {
  const maxSteps = opts?.maxSteps ?? DEFAULT_MAX_STEPS;
  const maxMemoEntries = opts?.maxMemoEntries ?? DEFAULT_MAX_MEMO_ENTRIES;
  if (!Number.isSafeInteger(maxSteps) || maxSteps < 0) throw new RangeError(`maxSteps must be a non-negative integer, got ${maxSteps}`);
  if (!Number.isSafeInteger(maxMemoEntries) || maxMemoEntries < 0) {
    throw new RangeError(`maxMemoEntries must be a non-negative integer, got ${maxMemoEntries}`);
  }
  if (opts?.deadlineMs !== undefined && !(opts.deadlineMs >= 0)) throw new RangeError(`deadlineMs must be >= 0, got ${opts.deadlineMs}`);
  const orders = opts?.candidateOrders ?? DEFAULT_CANDIDATE_ORDERS;
  if (orders.length === 0) throw new RangeError('candidateOrders must name at least one order');
  history.forEach(validateOperation);

  const budget: Budget = {
    steps: 0,
    maxSteps,
    deadlineAt: opts?.deadlineMs === undefined ? Infinity : performance.now() + opts.deadlineMs,
    deadlineMs: opts?.deadlineMs,
  };
  const partitions = model.partition ? model.partition(history) : [history.slice()];
  for (const p of partitions) p.forEach(validateOperation);

  // Small partitions first: a violation in any partition makes the whole history illegal, and the
  // cheap ones are the likeliest to be decided before a shared budget runs out on a hard one.
  const order = partitions.map((_, i) => i).sort((a, b) => partitions[a]!.length - partitions[b]!.length || a - b);
  let checked = 0;
  for (const index of order) {
    const ops = partitions[index]!;
    const outcome = runPartition(model, ops, budget, maxMemoEntries, orders);
    if (outcome.kind === 'illegal') {
      return {
        verdict: 'illegal',
        failure: {
          partition: index,
          operations: ops.length,
          explanation: explainFailure(model, ops, index, partitions.length, outcome.longest, budget.steps),
        },
        steps: budget.steps,
      };
    }
    if (outcome.kind === 'unknown') {
      return {
        verdict: 'unknown',
        reason:
          `${outcome.reason} while checking partition ${index} (${ops.length} operations); ` +
          `${checked} of ${partitions.length} partitions were checked linearizable before it`,
        steps: budget.steps,
      };
    }
    checked++;
  }
  return { verdict: 'ok', steps: budget.steps };
}

interface Budget {
  steps: number;
  readonly maxSteps: number;
  readonly deadlineAt: number;
  readonly deadlineMs: number | undefined;
}

type PartitionOutcome =
  | { readonly kind: 'ok' }
  | { readonly kind: 'illegal'; readonly longest: readonly number[] }
  | { readonly kind: 'unknown'; readonly reason: string };

/**
 * One entry of a call/return list. Completed operations live in the main list (call and return
 * entries); indeterminate operations have only a call entry, kept in a list of their own (see
 * PartitionSearch). Head sentinels have op = -1.
 */
interface Entry {
  readonly op: number;
  readonly isCall: boolean;
  /** For a completed operation's call: its return entry. Otherwise null. */
  match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

function validateOperation<I, O>(op: Operation<I, O>, index: number): void {
  if (typeof op.call !== 'number' || !Number.isFinite(op.call)) {
    throw new RangeError(`history operation ${index}: call time must be a finite number, got ${op.call}`);
  }
  if (typeof op.return !== 'number' || Number.isNaN(op.return) || op.return < op.call) {
    throw new RangeError(`history operation ${index}: return time ${op.return} must be >= call time ${op.call} (or Infinity)`);
  }
}

/**
 * Lay out the completed operations' calls and returns in time order, calls before returns at
 * equal times (equal timestamps overlap, see the header); and the indeterminate operations' calls,
 * in call order, in a second list.
 */
function buildLists<I, O>(ops: readonly Operation<I, O>[]): { head: Entry; pendingHead: Entry } {
  const events: { time: number; isCall: boolean; op: number }[] = [];
  const pendingOps: number[] = [];
  ops.forEach((o, i) => {
    if (o.return === Infinity) {
      pendingOps.push(i);
      return;
    }
    events.push({ time: o.call, isCall: true, op: i });
    events.push({ time: o.return, isCall: false, op: i });
  });
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1) || a.op - b.op);
  pendingOps.sort((a, b) => ops[a]!.call - ops[b]!.call || a - b);

  const head: Entry = { op: -1, isCall: false, match: null, prev: null, next: null };
  const returns: (Entry | undefined)[] = new Array(ops.length);
  let last = head;
  for (const ev of events) {
    const e: Entry = { op: ev.op, isCall: ev.isCall, match: null, prev: last, next: null };
    last.next = e;
    last = e;
    if (!ev.isCall) returns[ev.op] = e;
  }
  for (let e = head.next; e !== null; e = e.next) {
    if (e.isCall) e.match = returns[e.op]!;
  }

  const pendingHead: Entry = { op: -1, isCall: false, match: null, prev: null, next: null };
  last = pendingHead;
  for (const op of pendingOps) {
    const e: Entry = { op, isCall: true, match: null, prev: last, next: null };
    last.next = e;
    last = e;
  }
  return { head, pendingHead };
}

/** Unlink a call entry and its return (Knuth's dancing links: the entries keep their own pointers). */
function lift(entry: Entry): void {
  entry.prev!.next = entry.next;
  if (entry.next !== null) entry.next.prev = entry.prev;
  const m = entry.match;
  if (m !== null) {
    m.prev!.next = m.next;
    if (m.next !== null) m.next.prev = m.prev;
  }
}

/** Exact inverse of lift; must be applied in reverse order of the lifts. */
function unlift(entry: Entry): void {
  const m = entry.match;
  if (m !== null) {
    m.prev!.next = m;
    if (m.next !== null) m.next.prev = m;
  }
  entry.prev!.next = entry;
  if (entry.next !== null) entry.next.prev = entry;
}

function bitsetKey(words: Uint16Array): string {
  if (words.length <= FROM_CHAR_CODE_CHUNK) return String.fromCharCode.apply(null, words as unknown as number[]);
  let s = '';
  for (let i = 0; i < words.length; i += FROM_CHAR_CODE_CHUNK) {
    s += String.fromCharCode.apply(null, words.subarray(i, i + FROM_CHAR_CODE_CHUNK) as unknown as number[]);
  }
  return s;
}

/** Whether every bit of `a` is set in `b`. */
function subsetOf(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if ((a[i]! & ~b[i]!) !== 0) return false;
  return true;
}

/**
 * The order in which a node's candidates are tried. Both give exact answers; which one answers
 * sooner depends on the history, so a partition with indeterminate operations runs both (see
 * runPartition). Measured on simulator-like histories (400 operations on one key, 5 clients, 3%
 * indeterminate): pending-first alone fails to refute a few illegal histories within 5M steps,
 * pending-last alone takes up to 25× longer on some linearizable ones; raced, neither happens.
 *  - 'pending-first' tries indeterminate operations before completed ones: it assumes such an
 *    operation took effect as early as it could, which is usually right in a linearizable history
 *    (most did, or were overwritten unseen), so it finds the linearization with little
 *    backtracking.
 *  - 'pending-last' tries them only after the completed candidates, i.e. just in time, and prunes
 *    with shadows (see shadowsAfter): the branch that leaves an indeterminate operation out is
 *    explored first and the branches that merely add it are cut. That is what refuting an
 *    illegal history needs. (Shadows do not suit pending-first: there they cut the very branch it
 *    bets on and force a long backtrack to the branch without it.)
 */
export type CandidateOrder = 'pending-first' | 'pending-last';

/** The state a path would reach without one of its indeterminate operations. */
interface Shadow<S> {
  readonly state: S;
  readonly hash: string;
}
const NO_SHADOWS: readonly Shadow<never>[] = [];

/**
 * A resumable search of one partition.
 *
 * Candidates at a node are the completed operations whose call precedes the first return still
 * in the main list, and the indeterminate operations called no later than that return.
 *
 * A search node is (completed operations linearized, indeterminate operations linearized, model
 * state). A node is skipped when:
 *  - the memo holds it: the same node failed before (Porcupine's rule);
 *  - the memo holds a node with the same completed set and state and a subset of its
 *    indeterminate operations (dominance): a completion from the new node is a completion from
 *    the failed one, the extra indeterminate operations being simply left out;
 *  - (pending-last only) a shadow shows the path would be valid and end in the same state without
 *    one of its indeterminate operations (see shadowsAfter).
 * Skipping is sound: take, among the successful paths with the fewest indeterminate operations,
 * the first in search order. None of its nodes is skipped: the shadow rule would give a path with
 * fewer indeterminate operations; the dominance rule a path through the failed node that has
 * fewer, or as many and comes first. So the search finds it (or another success before it).
 * Nodes enter the memo when the search backtracks out of them, not on entry, so that an ancestor
 * still being explored never prunes its own descendants.
 */
class PartitionSearch<S, I, O> {
  private readonly model: Model<S, I, O>;
  private readonly ops: readonly Operation<I, O>[];
  private readonly maxMemoEntries: number;
  private readonly order: CandidateOrder;
  steps = 0;
  /** The longest linearizable prefix seen, as operation indices. */
  longest: number[] = [];

  private readonly head: Entry;
  private readonly pendingHead: Entry;
  /** Completed and indeterminate operations are numbered apart: the first set is part of the memo key, the second is compared by inclusion. */
  private readonly bit: Int32Array;
  private readonly indeterminate: Uint8Array;
  private completedLeft = 0;
  /** 16 completed operations per word, so that a word is one UTF-16 code unit of the memo key (fixed length per partition: no separator needed before the state hash). */
  private readonly done: Uint16Array;
  private readonly pending: Uint32Array;
  private readonly memo = new Map<string, Uint32Array[]>();
  private memoEntries = 0;
  // The search path: the entry chosen at each depth, the state before it, the key of the node it
  // led to, and the return time that bounded the indeterminate candidates when it was chosen.
  private readonly stackEntries: Entry[] = [];
  private readonly stackStates: S[] = [];
  private readonly stackKeys: string[] = [];
  private readonly stackLimits: number[] = [];
  private readonly stackShadows: (readonly Shadow<S>[])[] = [];
  /**
   * For each indeterminate operation on the path whose removal still leaves a valid path: the
   * state that path would reach (see shadowsAfter).
   */
  private shadows: readonly Shadow<S>[] = NO_SHADOWS;
  private state: S;
  private entry: Entry | null = null;
  /** Time of the first return left in the main list; bounds the indeterminate candidates. */
  private limit = -Infinity;

  constructor(
    model: Model<S, I, O>,
    ops: readonly Operation<I, O>[],
    maxMemoEntries: number,
    order: CandidateOrder,
  ) {
    this.model = model;
    this.ops = ops;
    this.maxMemoEntries = maxMemoEntries;
    this.order = order;
    const lists = buildLists(ops);
    this.head = lists.head;
    this.pendingHead = lists.pendingHead;
    this.bit = new Int32Array(ops.length);
    this.indeterminate = new Uint8Array(ops.length);
    let indeterminateCount = 0;
    ops.forEach((o, i) => {
      this.indeterminate[i] = o.return === Infinity ? 1 : 0;
      this.bit[i] = o.return === Infinity ? indeterminateCount++ : this.completedLeft++;
    });
    this.done = new Uint16Array(Math.ceil(this.completedLeft / 16));
    this.pending = new Uint32Array(Math.ceil(indeterminateCount / 32));
    this.state = model.init();
    this.enterNode();
  }

  /** Run at most `maxSteps` more steps: 'ok' or 'illegal' once decided, null if not yet. */
  advance(maxSteps: number): 'ok' | 'illegal' | null {
    const { ops, model, stackEntries } = this;
    for (let n = 0; n < maxSteps; n++) {
      if (this.completedLeft === 0) return 'ok';
      this.steps++;
      const entry = this.entry;
      if (entry !== null && entry.isCall && (entry.match !== null || ops[entry.op]!.call <= this.limit)) {
        const o = ops[entry.op]!;
        const isPending = entry.match === null;
        const r = model.step(this.state, o.input, isPending ? undefined : o.output);
        if (r.ok) {
          this.toggle(entry.op);
          const nextHash = model.hash(r.next);
          const key = bitsetKey(this.done) + nextHash;
          const shadows = this.knownFailure(key) ? null : this.shadowsAfter(o, isPending, nextHash);
          if (shadows !== null) {
            stackEntries.push(entry);
            this.stackStates.push(this.state);
            this.stackKeys.push(key);
            this.stackLimits.push(this.limit);
            this.stackShadows.push(this.shadows);
            this.shadows = shadows;
            this.state = r.next;
            lift(entry);
            if (!isPending) this.completedLeft--;
            if (stackEntries.length > this.longest.length) this.longest = stackEntries.map((e) => e.op);
            this.enterNode();
            continue;
          }
          this.toggle(entry.op);
        }
        this.entry = entry.next;
      } else if (entry !== null && !entry.isCall) {
        // The first return in the main list: no completed operation called after it can come
        // next. Pending-last goes on with the indeterminate operations called no later than it;
        // pending-first has tried those already.
        if (this.order === 'pending-last') {
          this.limit = ops[entry.op]!.return;
          this.entry = this.pendingHead.next;
        } else if (!this.backtrack()) {
          return 'illegal';
        }
      } else if (this.order === 'pending-first') {
        // Indeterminate candidates exhausted (end of their list, or called after the limit): go
        // on with the completed ones.
        this.entry = this.head.next;
      } else if (!this.backtrack()) {
        return 'illegal';
      }
    }
    return this.completedLeft === 0 ? 'ok' : null;
  }

  /** Position the walk at the first candidate of a node just entered. */
  private enterNode(): void {
    if (this.order === 'pending-first' && this.pendingHead.next !== null && this.completedLeft > 0) {
      let e = this.head.next;
      while (e !== null && e.isCall) e = e.next;
      // completedLeft > 0, so a return entry is in the main list.
      if (e === null) throw new Error('linearizability: no return entry left with completed operations open (checker bug)');
      this.limit = this.ops[e.op]!.return;
      this.entry = this.pendingHead.next;
    } else {
      this.limit = -Infinity;
      this.entry = this.head.next;
    }
  }

  /** The current node has failed: record it and undo the last choice. False at the root. */
  private backtrack(): boolean {
    const top = this.stackEntries.pop();
    if (top === undefined) return false;
    this.recordFailure(this.stackKeys.pop()!);
    this.state = this.stackStates.pop()!;
    this.limit = this.stackLimits.pop()!;
    this.shadows = this.stackShadows.pop()!;
    this.toggle(top.op);
    unlift(top);
    if (top.match !== null) this.completedLeft++;
    this.entry = top.next;
    return true;
  }

  /**
   * The shadows of the child reached by applying `o`, or null if that child is redundant: some
   * indeterminate operation on the path could be taken out and the path would still be valid and
   * end in the same state. The child is then dominated by a node with fewer indeterminate
   * operations that the search reaches anyway (the same path without that operation, from the
   * node where it was chosen), so it is skipped. This is what stops an old indeterminate write
   * from multiplying the search: once a later write has overwritten it unseen, "it took effect"
   * and "it did not" are the same node, and only the second is kept.
   */
  private shadowsAfter(o: Operation<I, O>, isPending: boolean, nextHash: string): readonly Shadow<S>[] | null {
    if (this.order === 'pending-first' || (!isPending && this.shadows.length === 0)) return NO_SHADOWS;
    const out: Shadow<S>[] = [];
    for (const sh of this.shadows) {
      const r = this.model.step(sh.state, o.input, isPending ? undefined : o.output);
      if (!r.ok) continue; // the operation was needed on this path: the shadow dies
      const hash = this.model.hash(r.next);
      if (hash === nextHash) return null;
      out.push({ state: r.next, hash });
    }
    if (isPending) {
      // Without `o` the state would have stayed as it is.
      const hash = this.model.hash(this.state);
      if (hash === nextHash) return null;
      out.push({ state: this.state, hash });
    }
    return out;
  }

  private toggle(op: number): void {
    const b = this.bit[op]!;
    if (this.indeterminate[op] === 1) this.pending[b >> 5] ^= 1 << (b & 31);
    else this.done[b >> 4] ^= 1 << (b & 15);
  }

  private knownFailure(key: string): boolean {
    const seen = this.memo.get(key);
    if (seen === undefined) return false;
    for (const u of seen) if (subsetOf(u, this.pending)) return true;
    return false;
  }

  private recordFailure(key: string): void {
    if (this.memoEntries >= this.maxMemoEntries) return;
    const u = this.pending.length === 0 ? this.pending : this.pending.slice();
    const seen = this.memo.get(key);
    if (seen === undefined) {
      this.memo.set(key, [u]);
      this.memoEntries++;
      return;
    }
    // Drop what the new entry dominates, so the list stays an antichain.
    const kept = seen.filter((v) => !subsetOf(u, v));
    this.memoEntries += kept.length + 1 - seen.length;
    kept.push(u);
    this.memo.set(key, kept);
  }
}

/**
 * Decide one partition within the shared budget, in slices between looks at the clock. With
 * indeterminate operations, both candidate orders run in alternating slices and the first to
 * decide answers (both are exact), so the cost is about twice that of the better order at most.
 */
function runPartition<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  budget: Budget,
  maxMemoEntries: number,
  orders: readonly CandidateOrder[],
): PartitionOutcome {
  // Without indeterminate operations the orders coincide: one search is enough.
  const raced = ops.some((o) => o.return === Infinity) ? orders : orders.slice(0, 1);
  const searches = raced.map((order) => new PartitionSearch(model, ops, maxMemoEntries, order));
  for (let turn = 0; ; turn++) {
    const search = searches[turn % searches.length]!;
    const before = search.steps;
    const outcome = search.advance(Math.max(0, Math.min(DEADLINE_CHECK_INTERVAL_STEPS, budget.maxSteps - budget.steps)));
    budget.steps += search.steps - before;
    if (outcome === 'ok') return { kind: 'ok' };
    if (outcome === 'illegal') return { kind: 'illegal', longest: search.longest };
    if (budget.steps >= budget.maxSteps) return { kind: 'unknown', reason: `step budget exhausted (maxSteps ${budget.maxSteps})` };
    if (performance.now() >= budget.deadlineAt) {
      return { kind: 'unknown', reason: `time budget exhausted (deadlineMs ${budget.deadlineMs}) after ${budget.steps} steps` };
    }
  }
}

function describeOp<S, I, O>(model: Model<S, I, O>, o: Operation<I, O>): string {
  const indeterminate = o.return === Infinity;
  const text = model.describe
    ? model.describe(o.input, indeterminate ? undefined : o.output)
    : `${JSON.stringify(o.input)} -> ${indeterminate ? '?' : JSON.stringify(o.output)}`;
  return `client ${o.clientId} [${o.call}, ${indeterminate ? '∞' : o.return}] ${text}`;
}

function capped(lines: string[]): string[] {
  if (lines.length <= REPORT_MAX_LINES) return lines;
  return [...lines.slice(0, REPORT_MAX_LINES), `  ... and ${lines.length - REPORT_MAX_LINES} more`];
}

/**
 * Replay the longest prefix to show the states it passes through, then list the operations that
 * could have come next (called no later than the earliest return among the rest) with whether the
 * model accepts them there, and count the completed operations left over.
 */
function explainFailure<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  partition: number,
  partitionCount: number,
  longest: readonly number[],
  steps: number,
): string {
  const out: string[] = [
    `partition ${partition} of ${partitionCount}: the ${ops.length} operations have no linearization (${steps} search steps so far).`,
    `Longest linearizable prefix found: ${longest.length} operations; state after each:`,
  ];
  let state = model.init();
  const prefixLines: string[] = [];
  longest.forEach((i, n) => {
    const o = ops[i]!;
    state = model.step(state, o.input, o.return === Infinity ? undefined : o.output).next;
    prefixLines.push(`  ${n + 1}. ${describeOp(model, o)}   => ${model.hash(state)}`);
  });
  out.push(...capped(prefixLines));

  const inPrefix = new Set(longest);
  const rest = ops.map((_, i) => i).filter((i) => !inPrefix.has(i));
  // Earliest return among the remaining completed operations: anything called after it cannot
  // come next (it must follow that operation in real time).
  let earliestReturn = Infinity;
  for (const i of rest) earliestReturn = Math.min(earliestReturn, ops[i]!.return);
  const nextLines: string[] = [];
  for (const i of rest.sort((a, b) => ops[a]!.call - ops[b]!.call || a - b)) {
    const o = ops[i]!;
    if (o.call > earliestReturn) continue;
    const r = model.step(state, o.input, o.return === Infinity ? undefined : o.output);
    nextLines.push(`  ${describeOp(model, o)}   ${r.ok ? `model accepts => ${model.hash(r.next)} (but no completion from there)` : 'model rejects'}`);
  }
  out.push(`Operations that could come next, in state ${model.hash(state)}:`, ...capped(nextLines));
  const completedLeft = rest.filter((i) => ops[i]!.return !== Infinity).length;
  out.push(`${completedLeft} completed operations remain unlinearized after the prefix.`);
  return out.join('\n');
}
