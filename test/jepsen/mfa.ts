// Workload 4 (issue 7): TOTP under faults, through the real sign-in pages, and its checker.
//
// Acceptance races: a worker keeps a few users with TOTP enrolled (admin API for the user and the
// MFA policy, then the enrollment pages: the secret is read off the page). Each round takes a user
// whose next time step is free, signs in with the password on TOTP_FANOUT different nodes (each a
// browser of its own, stopping at the TOTP page), then submits the same code to all of them at
// once. A step is accepted at most once per user on the whole cluster (RFC 6238 §5.2, decided in
// apply: src/state/mfa.ts totp.accept), so at most one submission may be accepted.
//
// Lockouts: a worker enrolls a user, opens a TOTP page on every node, and sends wrong codes through
// GUESS_FANOUT different nodes at a time (through whatever partition is in force) until a node
// answers that the user is locked; then, for LOCK_PROBE_MS, it sends the *right* code to the pages
// it holds and tries fresh password sign-ins, on random nodes: all must be refused. The user stays
// locked for THROTTLE.lockMs (an hour; the lock is a constant of the state machine, not a config
// value), so each lockout cycle takes a new user; a cycle is mostly the backoff between the 4th and
// the 10th failure (1+2+4+…+32 s = 63 s).
//
// Failures are also counted per client IP (THROTTLE.ipFreeFailures, remembered 24 h): every user's
// requests leave from an address of the client namespace's pool (hosts.ts CLIENT_POOL) whose
// failure budget is tracked here, so the workloads never throttle one another through the IP.
//
// Outcomes: an answer of the verification (accepted, invalid, replay, throttled, locked) is `ok`
// with output.answer (the system decided); a 5xx, a lost connection or a timeout is `info` (the
// code may have been accepted); a connection refused is `fail` (never sent).
import type { Rng } from '../sim/rng.ts';
import type { History, OpRecord } from './history.ts';
import type { NodeCluster } from './cluster.ts';
import type { InvariantVerdict, Violation } from './auth.ts';
import { HttpFailure } from '../cluster/harness.ts';
import { REFUSED_BACKOFF_MS, pause } from './kv.ts';
import { Browser, CLIENT_ID, REDIRECT_URI, parseForm } from './oauth-client.ts';
import type { RawResponse } from './oauth-client.ts';
import { ISSUER } from './cluster.ts';
import { totpCodeAt, totpStep, TOTP_PERIOD_S, TOTP_WINDOW } from '../../src/mfa/totp.ts';
import { MFA_PATHS } from '../../src/oauth/mfa-pages.ts';
import { THROTTLE } from '../../src/state/mfa-ops.ts';
import { createHash, randomBytes } from 'node:crypto';

/** Nodes a code is submitted to at once (one more than MAX_PENDING_ATTEMPTS: one is refused before it is looked at). */
export const TOTP_FANOUT = 3;
/** Users an acceptance worker keeps (a user gets one round per 30-second step). */
export const USERS_PER_WORKER = 6;
/** Wrong codes sent at once by the lockout worker, each to another node. */
export const GUESS_FANOUT = 2;
const GUESS_INTERVAL_MS = 300;
/** How long the lockout worker checks that the lock holds, once a node said the user is locked. */
export const LOCK_PROBE_MS = 8_000;
const PROBE_INTERVAL_MS = 400;
/** A lockout cycle that has not reached the lock after this long gives up (the backoff alone is 63 s). */
const LOCKOUT_CYCLE_MAX_MS = 180_000;
const PASSWORD = 'jepsen totp workload password';
const MAX_REDIRECTS = 8;

/**
 * Failures a user can have *answered as a wrong code* before the lock: the failure that reaches
 * THROTTLE.lockAfterFailures sets the lock in the same command and is answered "locked"
 * (src/state/mfa.ts fail() returns the throttle state after counting), so one fewer.
 */
export const INVALID_ANSWERS_BEFORE_LOCK = THROTTLE.lockAfterFailures - 1;

/** The client addresses of the pool, handed out with a failure budget each. */
export class AddressPool {
  private readonly ips: readonly string[];
  private next = 0;
  constructor(ips: readonly string[]) {
    this.ips = ips;
  }
  /** A fresh address, or null when the pool is used up. */
  take(): string | null {
    return this.next < this.ips.length ? this.ips[this.next++]! : null;
  }
  get used(): number {
    return this.next;
  }
}

/** An address and the failures it may have had counted against it (THROTTLE.ipFreeFailures). */
class Address {
  readonly ip: string;
  spent = 0;
  constructor(ip: string) {
    this.ip = ip;
  }
}

export interface TotpUser {
  readonly username: string;
  readonly sub: string;
  readonly secret: string;
  /** The newest step submitted (accepted, or maybe accepted): the next code must be for a later one. */
  lastStep: number;
  readonly address: Address;
}

interface Page {
  readonly status: number;
  readonly location: string | null;
  readonly html: string;
  readonly title: string | null;
}

/** A sign-in waiting at the TOTP page of one node. */
interface Prompt {
  readonly b: Browser;
  readonly node: number;
  fields: Record<string, string>;
}

function toPage(r: RawResponse): Page {
  const loc = r.headers.location;
  return { status: r.status, location: typeof loc === 'string' ? loc : null, html: r.text, title: /<h1>([^<]*)<\/h1>/.exec(r.text)?.[1] ?? null };
}

/** The hidden fields of the page's form whose action's path is `path`, or null. */
export function formFields(html: string, path: string): Record<string, string> | null {
  for (const m of html.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/gi)) {
    const f = parseForm(m[0]);
    if (f === null) continue;
    let p: string;
    try {
      p = new URL(f.action, ISSUER).pathname;
    } catch {
      continue;
    }
    if (p.endsWith(path)) return f.fields;
  }
  return null;
}

/** The base32 secret the enrollment page shows for manual entry (grouped by 4 there). */
export function secretOf(html: string): string | null {
  const m = /id="totp-secret">([A-Z2-7 ]+)</.exec(html);
  return m ? m[1]!.replace(/ /g, '') : null;
}

/** A 6-digit code that matches no step within ±2 of now (the verifier's window is ±1). */
export function wrongCode(secret: string, nowMs: number): string {
  const now = totpStep(nowMs);
  const near = new Set([-2, -1, 0, 1, 2].map((d) => totpCodeAt(secret, now + d)));
  for (let i = 0; ; i++) {
    const c = String(i).padStart(6, '0');
    if (!near.has(c)) return c;
  }
}

/** What the verification answered, from the page the node sent back (src/oauth/mfa.ts handleMfaTotp). */
export function classifyAnswer(p: Page): string | null {
  if (p.status >= 300 && p.status < 400) return p.location !== null && p.location.startsWith(REDIRECT_URI) && new URL(p.location).searchParams.has('code') ? 'accepted' : null;
  if (p.status === 429) return /this account is locked/.test(p.html) ? 'locked' : 'throttled';
  if (p.status === 400 && /That code was already used/.test(p.html)) return 'replay';
  if (p.status === 400 && /That code is not valid/.test(p.html)) return 'invalid';
  return null;
}

type Result = { outcome: 'ok' | 'fail' | 'info'; output: Record<string, unknown> | null; error?: string };

/** A request's failure as an outcome: a connection refused was never sent; anything else may have been. */
function failure(e: unknown): Result {
  if (e instanceof HttpFailure && e.kind === 'refused') return { outcome: 'fail', output: null, error: 'ECONNREFUSED' };
  throw e;
}

export class TotpWorkload {
  private readonly history: History;
  private readonly cluster: NodeCluster;
  private readonly nodes: () => readonly number[];
  private readonly pool: AddressPool;
  private readonly log: (line: string) => void;

  constructor(
    history: History,
    cluster: NodeCluster,
    nodes: () => readonly number[],
    pool: AddressPool,
    log: (line: string) => void,
  ) {
    this.history = history;
    this.cluster = cluster;
    this.nodes = nodes;
    this.pool = pool;
    this.log = log;
  }

  private users = 0;

  // -------------------------------------------------------------------------------------------
  // Pages

  /** Follow redirects on `node` until a page, or the redirect back to the client. */
  private async follow(b: Browser, node: number, first: RawResponse): Promise<Page> {
    let p = toPage(first);
    for (let hops = 0; hops < MAX_REDIRECTS && p.status >= 300 && p.status < 400 && p.location !== null && !p.location.startsWith(REDIRECT_URI); hops++) p = toPage(await b.fetch(node, p.location));
    return p;
  }

  /** /authorize on `node`, then the password: the page after the login form. */
  private async signIn(b: Browser, node: number, username: string): Promise<Page> {
    const verifier = randomBytes(32).toString('base64url');
    const q = new URLSearchParams({
      client_id: CLIENT_ID,
      redirect_uri: REDIRECT_URI,
      response_type: 'code',
      scope: 'api:read',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      state: randomBytes(12).toString('base64url'),
    });
    const login = await this.follow(b, node, await b.fetch(node, `/authorize?${q}`));
    if (login.status !== 200) return login;
    const form = parseForm(login.html);
    const pw = form?.inputs.find((i) => i.type === 'password');
    const user = form?.inputs.find((i) => i.type === 'text' || i.type === 'email' || i.name === 'username');
    if (!form || !pw || !user) return login;
    return this.follow(b, node, await b.fetch(node, new URL(form.action || '/login', ISSUER).toString(), { ...form.fields, [pw.name]: PASSWORD, [user.name]: username }));
  }

  /** An admin write on the leader; `ok` statuses end it, 409 NOT_LEADER and 5xx are retried until the deadline. */
  private async admin(method: string, path: string, body: unknown, ok: readonly number[]): Promise<Record<string, unknown> | null> {
    const deadline = performance.now() + 20_000;
    while (performance.now() < deadline) {
      const r = await this.cluster.onLeader(method, path, body, Math.max(1, deadline - performance.now()));
      if (ok.includes(r.status)) return r.body;
      // A retried create whose first attempt was applied.
      if (r.status === 409 && r.body.error !== 'NOT_LEADER') return null;
      if (r.status >= 400 && r.status < 500) return null;
      await pause(200);
    }
    return null;
  }

  /**
   * A new user with TOTP: created and made to require MFA through the admin API, enrolled through
   * the pages on a random node (recorded as an `enroll` op: ok when the first code was accepted).
   */
  async enroll(rng: Rng, address: Address, kind: 'race' | 'lock'): Promise<TotpUser | null> {
    const username = `${kind}-${++this.users}`;
    const created = await this.admin('POST', '/admin/v1/users', { username, password: PASSWORD }, [201]);
    const sub = typeof created?.sub === 'string' ? created.sub : null;
    if (sub === null) return null;
    if ((await this.admin('POST', `/admin/v1/users/${username}/mfa-required`, { required: true }, [200])) === null) return null;
    // The secret of a confirmation whose answer was lost: it may have been applied.
    let maybe: { secret: string; step: number } | null = null;
    for (let attempt = 0; attempt < 5; attempt++) {
      const node = rng.pick(this.nodes());
      const b = new Browser(address.ip);
      let secret: string | null = null;
      let step = 0;
      const rec = await this.history.op({ workload: 'totp', process: this.history.newProcess(), f: 'enroll', node, input: { user: username, sub, ip: address.ip } }, async () => {
        try {
          const choice = await this.signIn(b, node, username);
          if (maybe !== null && choice.status === 200 && formFields(choice.html, MFA_PATHS.totp) !== null) {
            // The verification page, not the enrollment: the lost confirmation was applied.
            ({ secret, step } = maybe);
            return { outcome: 'ok', output: { step, earlier: true } };
          }
          const start = choice.status === 200 ? formFields(choice.html, MFA_PATHS.enrollTotp) : null;
          if (start === null) return { outcome: choice.status >= 500 ? 'info' : 'fail', output: null, error: `${choice.status} ${choice.title ?? ''}` };
          const qr = toPage(await b.fetch(node, MFA_PATHS.enrollTotp, start));
          secret = qr.status === 200 ? secretOf(qr.html) : null;
          const confirm = qr.status === 200 ? formFields(qr.html, MFA_PATHS.enrollTotpConfirm) : null;
          if (secret === null || confirm === null) return { outcome: qr.status >= 500 ? 'info' : 'fail', output: null, error: `${qr.status} ${qr.title ?? ''}` };
          step = totpStep(Date.now());
          const done = toPage(await b.fetch(node, MFA_PATHS.enrollTotpConfirm, { ...confirm, code: totpCodeAt(secret, step) }));
          if (done.status === 200 && done.title === 'Your recovery codes') return { outcome: 'ok', output: { step } };
          // The confirmation may have been applied (a 5xx after the accept, for one).
          return { outcome: done.status >= 500 ? 'info' : 'fail', output: null, error: `${done.status} ${done.title ?? ''}` };
        } catch (e) {
          return failure(e);
        }
      });
      if (rec.outcome === 'ok' && secret !== null) return { username, sub, secret, lastStep: step, address };
      if (rec.outcome === 'info' && secret !== null) maybe = { secret, step };
      await pause(REFUSED_BACKOFF_MS);
    }
    return null;
  }

  /** Sign in with the password on `node` and stop at the TOTP page (a `login` op). */
  private async prompt(u: TotpUser, node: number, f = 'login'): Promise<Prompt | null> {
    const b = new Browser(u.address.ip);
    let fields: Record<string, string> | null = null;
    await this.history.op({ workload: 'totp', process: this.history.newProcess(), f, node, input: { user: u.username, sub: u.sub, ip: u.address.ip } }, async () => {
      try {
        const p = await this.signIn(b, node, u.username);
        fields = p.status === 200 ? formFields(p.html, MFA_PATHS.totp) : null;
        if (fields !== null) return { outcome: 'ok', output: { answer: 'prompt' } };
        // The sign-in page says the same for a locked user, a backoff and attempts in flight
        // (MAX_PENDING_ATTEMPTS): a refusal, not evidence of a lock.
        if (p.status === 429) return { outcome: 'ok', output: { answer: 'refused' } };
        return { outcome: p.status >= 500 ? 'info' : 'fail', output: null, error: `${p.status} ${p.title ?? ''}` };
      } catch (e) {
        return failure(e);
      }
    });
    return fields === null ? null : { b, node, fields };
  }

  /** Submit `code` at a TOTP page (a `verify`, `guess` or `probe` op). */
  private submit(u: TotpUser, p: Prompt, f: string, step: number | null, code: string): Promise<OpRecord> {
    return this.history.op({ workload: 'totp', process: this.history.newProcess(), f, node: p.node, input: { user: u.username, sub: u.sub, ip: u.address.ip, ...(step !== null ? { step } : {}) } }, async () => {
      let page: Page;
      try {
        page = toPage(await p.b.fetch(p.node, MFA_PATHS.totp, { ...p.fields, code }));
      } catch (e) {
        return failure(e);
      }
      // The page shown again after a refusal carries the form for the next attempt.
      const next = formFields(page.html, MFA_PATHS.totp);
      if (next !== null) p.fields = next;
      const answer = classifyAnswer(page);
      if (answer !== null) return { outcome: 'ok', output: { answer } };
      if (page.status >= 500) return { outcome: 'info', output: null, error: `${page.status} ${page.title ?? ''}` };
      return { outcome: 'fail', output: null, error: `${page.status} ${page.title ?? ''} ${page.location ?? ''}`.trim() };
    });
  }

  // -------------------------------------------------------------------------------------------
  // Acceptance races

  async raceWorker(rng: Rng, stop: () => boolean): Promise<void> {
    const users: TotpUser[] = [];
    let address: Address | null = null;
    while (!stop()) {
      // A user whose next code (a step after the last one submitted) is within the ±1 window now.
      const now = totpStep(Date.now());
      const ready = users.filter((u) => u.lastStep < now + TOTP_WINDOW);
      if (ready.length === 0 && users.length >= USERS_PER_WORKER) {
        await pause(Math.min(2_000, TOTP_PERIOD_S * 1000 - (Date.now() % (TOTP_PERIOD_S * 1000)) + 20));
        continue;
      }
      // Each round may add TOTP_FANOUT - 1 replay failures to the address's count.
      if (address === null || address.spent + TOTP_FANOUT > THROTTLE.ipFreeFailures) {
        const ip = this.pool.take();
        if (ip === null) {
          this.log('  totp: the client address pool is used up; the acceptance worker stops');
          return;
        }
        address = new Address(ip);
      }
      let u: TotpUser;
      if (ready.length === 0) {
        const nu = await this.enroll(rng, address, 'race');
        if (nu === null) {
          await pause(REFUSED_BACKOFF_MS);
          continue;
        }
        users.push(nu);
        u = nu;
      } else {
        const picked = rng.pick(ready);
        // A user whose address is spent moves to the current one.
        u = picked.address === address ? picked : { ...picked, address };
        users.splice(users.indexOf(picked), 1, u);
      }
      // One sign-in after the other: the password check lets MAX_PENDING_ATTEMPTS attempts of a
      // user through at once (src/state/mfa.ts); the race is the codes', not the passwords'.
      const prompts: Prompt[] = [];
      for (const n of rng.shuffle(this.nodes()).slice(0, TOTP_FANOUT)) {
        const p = await this.prompt(u, n);
        if (p !== null) prompts.push(p);
      }
      if (prompts.length === 0) {
        await pause(REFUSED_BACKOFF_MS);
        continue;
      }
      const step = Math.max(totpStep(Date.now()), u.lastStep + 1);
      if (step > totpStep(Date.now()) + TOTP_WINDOW) continue;
      const code = totpCodeAt(u.secret, step);
      u.lastStep = step;
      const recs = await Promise.all(prompts.map((p) => this.submit(u, p, 'verify', step, code)));
      u.address.spent += recs.filter((r) => r.output?.answer !== 'accepted').length;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Lockouts

  /** Lockout cycles until stopped; a cycle under way when the run stops is finished (it ends healed). */
  async lockWorker(rng: Rng, stop: () => boolean): Promise<void> {
    while (!stop()) {
      const ip = this.pool.take();
      if (ip === null) {
        this.log('  totp: the client address pool is used up; the lockout worker stops');
        return;
      }
      const address = new Address(ip);
      const u = await this.enroll(rng, address, 'lock');
      if (u === null) {
        await pause(REFUSED_BACKOFF_MS);
        continue;
      }
      await this.lockCycle(rng, u);
    }
  }

  private async lockCycle(rng: Rng, u: TotpUser): Promise<void> {
    const prompts = new Map<number, Prompt>();
    const promptOn = async (node: number): Promise<Prompt | null> => {
      const have = prompts.get(node);
      if (have) return have;
      const p = await this.prompt(u, node);
      if (p !== null) prompts.set(node, p);
      return p;
    };
    const deadline = performance.now() + LOCKOUT_CYCLE_MAX_MS;
    let locked = false;
    while (!locked && performance.now() < deadline) {
      const targets = rng.shuffle(this.nodes()).slice(0, GUESS_FANOUT);
      // The pages the right code is sent to once the user is locked must be opened before (a
      // locked user cannot sign in): one more node's each round, alongside the guesses, until
      // every node has one (the backoff leaves a minute for it).
      const missing = this.nodes().filter((n) => !prompts.has(n) && !targets.includes(n));
      const opening = missing.length > 0 ? promptOn(rng.pick(missing)) : Promise.resolve(null);
      const recs = await Promise.all(
        targets.map(async (n) => {
          const p = await promptOn(n);
          return p === null ? null : this.submit(u, p, 'guess', null, wrongCode(u.secret, Date.now()));
        }),
      );
      await opening;
      locked = recs.some((r) => r?.output?.answer === 'locked');
      if (!locked) await pause(GUESS_INTERVAL_MS);
    }
    if (!locked) {
      this.log(`  totp: ${u.username} not locked after ${LOCKOUT_CYCLE_MAX_MS} ms of wrong codes`);
      return;
    }
    // The lock must hold on every node: the right code (a step never used) at the open pages, and
    // a new password sign-in, both refused; a wrong code is not even looked at.
    const end = performance.now() + LOCK_PROBE_MS;
    while (performance.now() < end) {
      const n = rng.pick(this.nodes());
      const p = prompts.get(n);
      const step = Math.max(totpStep(Date.now()), u.lastStep + 1);
      await Promise.all([
        p ? this.submit(u, p, 'probe', step, totpCodeAt(u.secret, step)) : Promise.resolve(null),
        this.prompt(u, rng.pick(this.nodes()), 'login-probe'),
        p && rng.chance(0.3) ? this.submit(u, p, 'guess', null, wrongCode(u.secret, Date.now())) : Promise.resolve(null),
      ]);
      await pause(PROBE_INTERVAL_MS);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Checker

const answerOf = (o: OpRecord): string | null => (o.outcome === 'ok' && typeof o.output?.answer === 'string' ? o.output.answer : null);

/**
 * TOTP invariants over the `totp` ops:
 *  - double-acceptance: one (user, step) accepted by two acknowledged submissions. An indeterminate
 *    submission may have been the one acceptance (or not): one ok acceptance with any number of
 *    indeterminate ones is legal, as in Jepsen;
 *  - old-step-accepted: a step accepted after an acceptance of a later step had returned (steps
 *    only move forward, RFC 6238 §5.2);
 *  - over-budget: more wrong codes answered "invalid" (or replays, which count too) for one user
 *    than INVALID_ANSWERS_BEFORE_LOCK: a guess evaluated that the lockout rule forbids;
 *  - accepted-while-locked: after a node answered that the user is locked, within THROTTLE.lockMs,
 *    a code accepted or evaluated, or a password sign-in let through to the TOTP page, on any node.
 */
export function checkTotp(ops: readonly OpRecord[]): InvariantVerdict {
  const mine = ops.filter((o) => o.workload === 'totp');
  const violations: Violation[] = [];
  const counts = {
    users: 0,
    rounds: 0,
    submissions: 0,
    accepted: 0,
    replays: 0,
    invalid: 0,
    throttled: 0,
    locked: 0,
    indeterminate: 0,
    lockouts: 0,
    maxInvalidBeforeLock: 0,
    probesAfterLock: 0,
  };
  const bySub = new Map<string, OpRecord[]>();
  for (const o of mine) {
    const sub = String(o.input.sub);
    bySub.set(sub, [...(bySub.get(sub) ?? []), o]);
  }
  counts.users = bySub.size;
  for (const [sub, list] of bySub) {
    const codes = list.filter((o) => o.f === 'verify' || o.f === 'guess' || o.f === 'probe');
    counts.submissions += codes.length;
    counts.rounds += new Set(list.filter((o) => o.f === 'verify').map((o) => o.input.step)).size;
    for (const o of codes) {
      if (o.outcome === 'info') counts.indeterminate++;
      const a = answerOf(o);
      if (a === 'accepted') counts.accepted++;
      else if (a === 'replay') counts.replays++;
      else if (a === 'invalid') counts.invalid++;
      else if (a === 'throttled') counts.throttled++;
      else if (a === 'locked') counts.locked++;
    }
    const accepted = codes.filter((o) => answerOf(o) === 'accepted');
    const byStep = new Map<number, OpRecord[]>();
    for (const o of accepted) {
      const s = Number(o.input.step);
      byStep.set(s, [...(byStep.get(s) ?? []), o]);
    }
    for (const [step, rs] of byStep) {
      if (rs.length > 1) violations.push({ kind: 'double-acceptance', message: `user ${sub}: step ${step} accepted ${rs.length} times (nodes ${rs.map((r) => r.node).join(', ')})`, ops: rs.map((r) => r.index) });
    }
    for (const a of accepted) {
      const later = accepted.find((b) => b.ret < a.call && Number(b.input.step) > Number(a.input.step));
      if (later) violations.push({ kind: 'old-step-accepted', message: `user ${sub}: step ${String(a.input.step)} accepted after step ${String(later.input.step)} was`, ops: [later.index, a.index] });
    }
    // The budget is for users who never had a code accepted after enrolling (the lockout
    // worker's): an acceptance resets the count (src/state/mfa.ts succeed()).
    const evaluated = codes.filter((o) => answerOf(o) === 'invalid' || answerOf(o) === 'replay');
    const guessing = accepted.length === 0 && !list.some((o) => o.f === 'verify');
    if (guessing) counts.maxInvalidBeforeLock = Math.max(counts.maxInvalidBeforeLock, evaluated.length);
    const lockedAnswers = codes.filter((o) => answerOf(o) === 'locked');
    if (lockedAnswers.length > 0) counts.lockouts++;
    if (guessing && evaluated.length > INVALID_ANSWERS_BEFORE_LOCK) {
      violations.push({
        kind: 'over-budget',
        message: `user ${sub}: ${evaluated.length} failed codes evaluated; the lock (THROTTLE.lockAfterFailures = ${THROTTLE.lockAfterFailures}) allows ${INVALID_ANSWERS_BEFORE_LOCK} answered as wrong before the one that locks`,
        ops: evaluated.map((o) => o.index),
      });
    }
    if (lockedAnswers.length > 0) {
      const lockSeen = Math.min(...lockedAnswers.map((o) => o.ret));
      const first = lockedAnswers.find((o) => o.ret === lockSeen)!;
      for (const o of list) {
        if (o.call <= lockSeen || o.call >= lockSeen + THROTTLE.lockMs) continue;
        if (o.f === 'probe' || o.f === 'login-probe') counts.probesAfterLock++;
        const a = answerOf(o);
        if (a === 'accepted' || a === 'invalid' || a === 'replay' || a === 'prompt') {
          violations.push({ kind: 'accepted-while-locked', message: `user ${sub}: ${o.f} on node ${o.node} answered ${a} after node ${first.node} said the user is locked`, ops: [first.index, o.index] });
        }
      }
    }
  }
  return { checker: 'totp', valid: violations.length === 0, counts, violations };
}
