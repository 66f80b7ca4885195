// Workloads 2 and 3 and their checkers.
//
// Refresh-token rotation races (workload 2): a worker gets a grant by the code flow, then in
// rounds sends the family's current refresh token to REFRESH_FANOUT different nodes at once. The
// successes must all carry the same successor (the first rotation, and the grace window's replay
// of it, docs/oauth.md "Refresh token"), which becomes the next round's token. Now and then it
// replays a token whose successor it already used (a real reuse, RFC 9700 §4.14.2): that must be
// refused and revoke the family, which the next refresh of the newest token then shows. A round
// without any success abandons the family (its token may or may not have been rotated).
//
// Authorization codes (workload 3): one code redeemed on REDEEM_FANOUT nodes at once; at most one
// redemption may succeed (RFC 6749 §4.1.2: a code is single use).
import type { Rng } from '../sim/rng.ts';
import type { History, OpRecord } from './history.ts';
import { HttpFailure } from '../cluster/harness.ts';
import { REFUSED_BACKOFF_MS, pause } from './kv.ts';
import { AuthorizeRefused, Browser, fingerprint, redeemCode, refresh } from './oauth-client.ts';

export const REFRESH_FANOUT = 3;
export const REDEEM_FANOUT = 3;
/** Rounds of one family before a new grant is started. */
export const ROUNDS_PER_FAMILY = 8;
/** Chance that a round ends with a deliberate reuse. */
export const REUSE_CHANCE = 0.12;
/** oauth.refreshGraceMs of the nodes (the default). */
export const GRACE_MS = 2_000;
/**
 * Clock slack of the grace reasoning: the node stamps a rotation with the leader's clock at
 * proposal; the history's times are the client's. Same machine, so a small allowance.
 */
const GRACE_SLACK_MS = 100;

interface Family {
  readonly id: string;
  /** Newest refresh token known to be issued (in clear) and whether the family is done with. */
  latest: string;
  closed: boolean;
}

function distinct(rng: Rng, nodes: readonly number[], n: number): number[] {
  return rng.shuffle(nodes).slice(0, Math.min(n, nodes.length));
}

/** Get a code on `node` and record it (an `authorize` op). Returns null when it did not work. */
async function getCode(history: History, workload: 'refresh' | 'code', process: number, browser: Browser, node: number): Promise<{ code: string; verifier: string } | null> {
  let got: { code: string; verifier: string } | null = null;
  await history.op({ workload, process, f: 'authorize', node, input: {} }, async () => {
    try {
      got = await browser.authorize(node);
    } catch (e) {
      // A refusal or a connection never made is a definite answer; anything else stays open.
      if (e instanceof AuthorizeRefused || (e instanceof HttpFailure && e.kind === 'refused')) return { outcome: 'fail', output: null, error: e.message.slice(0, 200) };
      throw e;
    }
    return { outcome: 'ok', output: { code: fingerprint(got.code) } };
  });
  return got;
}

export class RefreshWorkload {
  private readonly history: History;
  private readonly nodes: () => readonly number[];
  readonly families: Family[] = [];
  constructor(
    history: History,
    nodes: () => readonly number[],
  ) {
    this.history = history;
    this.nodes = nodes;
  }

  async worker(w: number, rng: Rng, stop: () => boolean): Promise<void> {
    const browser = new Browser();
    let n = 0;
    while (!stop()) {
      const process = this.history.newProcess();
      const node = rng.pick(this.nodes());
      const c = await getCode(this.history, 'refresh', process, browser, node);
      if (c === null) {
        await pause(REFUSED_BACKOFF_MS);
        continue;
      }
      const start = await this.history.op({ workload: 'refresh', process, f: 'grant', node, input: { code: fingerprint(c.code) } }, () => redeemCode(node, c.code, c.verifier));
      const rt0 = this.history.secrets.get(start);
      if (rt0 === undefined) {
        await pause(REFUSED_BACKOFF_MS);
        continue;
      }
      const fam: Family = { id: `${w}.${++n}`, latest: rt0, closed: false };
      this.families.push(fam);
      let previous: string | null = null;
      for (let round = 0; round < ROUNDS_PER_FAMILY && !stop(); round++) {
        const current = fam.latest;
        const recs = await Promise.all(distinct(rng, this.nodes(), REFRESH_FANOUT).map((to) => this.refreshOp(fam, to, current, false)));
        const next = recs.map((r) => this.history.secrets.get(r)).find((t) => t !== undefined);
        if (next === undefined) {
          // Unknown whether the token was rotated: this family cannot go on without a reuse.
          fam.closed = true;
          break;
        }
        fam.latest = next;
        if (previous !== null && rng.chance(REUSE_CHANCE)) {
          // `previous`'s successor (`current`) was just used successfully: replaying it is a reuse.
          // Until a node decides it (a killed node refuses the connection: nothing was sent).
          for (let attempt = 0; attempt < 3; attempt++) {
            const r = await this.refreshOp(fam, rng.pick(this.nodes()), previous, true);
            if (r.outcome !== 'fail' || r.output?.error === 'invalid_grant') break;
          }
          await this.refreshOp(fam, rng.pick(this.nodes()), fam.latest, false);
          fam.closed = true;
          break;
        }
        previous = current;
      }
    }
  }

  private refreshOp(fam: Family, node: number, token: string, reuse: boolean): Promise<OpRecord> {
    return this.history.op({ workload: 'refresh', process: this.history.newProcess(), f: 'refresh', node, input: { family: fam.id, token: fingerprint(token), ...(reuse ? { reuse: true } : {}) } }, () =>
      refresh(node, token),
    );
  }

  /** After healing: refresh each open family's newest token once more (no acknowledged rotation lost). */
  async finalRefreshes(rng: Rng): Promise<void> {
    for (const fam of this.families) {
      if (fam.closed) continue;
      await this.refreshOp(fam, rng.pick(this.nodes()), fam.latest, false);
    }
  }
}

export class CodeWorkload {
  private readonly history: History;
  private readonly nodes: () => readonly number[];

  constructor(
    history: History,
    nodes: () => readonly number[],
  ) {
    this.history = history;
    this.nodes = nodes;
  }

  async worker(rng: Rng, stop: () => boolean): Promise<void> {
    const browser = new Browser();
    while (!stop()) {
      const process = this.history.newProcess();
      const c = await getCode(this.history, 'code', process, browser, rng.pick(this.nodes()));
      if (c === null) {
        await pause(REFUSED_BACKOFF_MS);
        continue;
      }
      await Promise.all(
        distinct(rng, this.nodes(), REDEEM_FANOUT).map((node) =>
          this.history.op({ workload: 'code', process: this.history.newProcess(), f: 'redeem', node, input: { code: fingerprint(c.code) } }, () => redeemCode(node, c.code, c.verifier)),
        ),
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Checkers

export interface Violation {
  readonly kind: string;
  readonly message: string;
  readonly ops: readonly number[];
}

export interface InvariantVerdict {
  readonly checker: string;
  readonly valid: boolean;
  readonly counts: Record<string, number>;
  readonly violations: readonly Violation[];
}

const RET = (o: OpRecord): number => (o.outcome === 'info' ? Infinity : o.ret);

/**
 * Refresh-token invariants over the `refresh` ops of each family:
 *  - double-spend: two successful redemptions of one token with different successors;
 *  - used-after-successor: a token redeemed successfully although its successor had been used
 *    successfully before the request was sent (that is a reuse: it must be refused);
 *  - reuse-accepted: a deliberate reuse succeeded;
 *  - not-revoked: a redemption in the family succeeded after a deliberate reuse was refused;
 *  - unjustified-refusal: a token refused (invalid_grant) although nothing could have been a reuse
 *    before it — an acknowledged rotation lost, or a family revoked without a real reuse.
 * A redemption "may be a reuse" if it is deliberate, or another redemption of the same token began
 * more than the grace window before it may have been applied, or the token's successor was being
 * redeemed before it may have been applied. The family may be revoked from the call of the first
 * redemption that may be a reuse and was refused or has no known answer. An indeterminate redemption may be applied at any time after its
 * call, so its "return" is +∞ here.
 */
export function checkRefresh(ops: readonly OpRecord[]): InvariantVerdict {
  const byFamily = new Map<string, OpRecord[]>();
  for (const o of ops) {
    if (o.workload !== 'refresh' || o.f !== 'refresh') continue;
    const f = String(o.input.family);
    const list = byFamily.get(f) ?? [];
    list.push(o);
    byFamily.set(f, list);
  }
  const violations: Violation[] = [];
  const counts = { families: byFamily.size, refreshes: 0, ok: 0, refused: 0, indeterminate: 0, reuses: 0, graceReplays: 0, justifiedRefusals: 0 };
  for (const [family, list] of byFamily) {
    const byToken = new Map<string, OpRecord[]>();
    for (const o of list) {
      counts.refreshes++;
      if (o.outcome === 'ok') counts.ok++;
      else if (o.outcome === 'info') counts.indeterminate++;
      else counts.refused++;
      if (o.input.reuse === true) counts.reuses++;
      const t = String(o.input.token);
      byToken.set(t, [...(byToken.get(t) ?? []), o]);
    }
    const successor = new Map<string, string>();
    for (const [t, rs] of byToken) {
      const succ = new Set(rs.filter((r) => r.outcome === 'ok').map((r) => String(r.output!.refresh)));
      if (succ.size > 1) violations.push({ kind: 'double-spend', message: `family ${family}: token ${t} redeemed successfully with ${succ.size} different successors`, ops: rs.filter((r) => r.outcome === 'ok').map((r) => r.index) });
      if (succ.size >= 1) successor.set(t, [...succ][0]!);
      counts.graceReplays += Math.max(0, rs.filter((r) => r.outcome === 'ok').length - 1);
    }
    const mayBeReuse = (x: OpRecord): boolean => {
      if (x.input.reuse === true) return true;
      const t = String(x.input.token);
      const applyBy = RET(x);
      if ((byToken.get(t) ?? []).some((r) => r !== x && r.outcome !== 'fail' && applyBy - r.call > GRACE_MS - GRACE_SLACK_MS)) return true;
      const s = successor.get(t);
      return s !== undefined && (byToken.get(s) ?? []).some((r) => r.outcome !== 'fail' && r.call < applyBy);
    };
    // Only a redemption that was refused, or whose answer is unknown, can have been the reuse that
    // revoked the family: the server answers a detected reuse with invalid_grant, never a token.
    const revokedFrom = Math.min(...list.filter((x) => x.outcome === 'info' || (x.outcome === 'fail' && x.output?.error === 'invalid_grant')).filter(mayBeReuse).map((x) => x.call));
    for (const o of list) {
      const t = String(o.input.token);
      if (o.outcome === 'ok') {
        if (o.input.reuse === true) violations.push({ kind: 'reuse-accepted', message: `family ${family}: the deliberate reuse of ${t} succeeded`, ops: [o.index] });
        const s = successor.get(t);
        const usedBefore = s === undefined ? [] : (byToken.get(s) ?? []).filter((r) => r.outcome === 'ok' && r.ret < o.call);
        if (usedBefore.length > 0) violations.push({ kind: 'used-after-successor', message: `family ${family}: ${t} redeemed although its successor ${s} had been used`, ops: [o.index, usedBefore[0]!.index] });
        const refusedReuse = list.find((d) => d.input.reuse === true && d.outcome === 'fail' && d.output?.error === 'invalid_grant' && d.ret < o.call);
        if (refusedReuse) violations.push({ kind: 'not-revoked', message: `family ${family}: ${t} redeemed after the reuse of ${String(refusedReuse.input.token)} was refused`, ops: [refusedReuse.index, o.index] });
      } else if (o.outcome === 'fail' && o.input.reuse !== true) {
        if (o.output?.error !== 'invalid_grant') continue;
        if (mayBeReuse(o) || revokedFrom < o.ret) {
          counts.justifiedRefusals++;
          continue;
        }
        violations.push({ kind: 'unjustified-refusal', message: `family ${family}: ${t} refused (${String(o.output?.description ?? '')}) though nothing before it could have been a reuse: an acknowledged rotation lost or a family revoked without a reuse`, ops: [o.index] });
      }
    }
  }
  return { checker: 'refresh-tokens', valid: violations.length === 0, counts, violations };
}

/** At most one successful redemption per code. */
export function checkCodes(ops: readonly OpRecord[]): InvariantVerdict {
  const byCode = new Map<string, OpRecord[]>();
  for (const o of ops) {
    if (o.workload !== 'code' || o.f !== 'redeem') continue;
    const c = String(o.input.code);
    byCode.set(c, [...(byCode.get(c) ?? []), o]);
  }
  const violations: Violation[] = [];
  const counts = { codes: byCode.size, redemptions: 0, ok: 0, refused: 0, indeterminate: 0, codesRedeemed: 0 };
  for (const [code, rs] of byCode) {
    const ok = rs.filter((r) => r.outcome === 'ok');
    counts.redemptions += rs.length;
    counts.ok += ok.length;
    counts.refused += rs.filter((r) => r.outcome === 'fail').length;
    counts.indeterminate += rs.filter((r) => r.outcome === 'info').length;
    if (ok.length > 0) counts.codesRedeemed++;
    if (ok.length > 1) violations.push({ kind: 'code-redeemed-twice', message: `code ${code} redeemed successfully ${ok.length} times (nodes ${ok.map((r) => r.node).join(', ')})`, ops: ok.map((r) => r.index) });
  }
  return { checker: 'authorization-codes', valid: violations.length === 0, counts, violations };
}
