// MFA on a real 3-node cluster (issue 6), through the server-rendered pages as a browser drives
// them, each browser talking to one node's HTTP address directly (the issuer is a front proxy):
//  1. the same TOTP code submitted to two nodes at the same moment is accepted at most once — one
//     sign-in completes, the other is refused as a replay, and the audit log (read on the third
//     node) has exactly one mfa.replay_refused and one mfa.verified for it;
//  2. the lockout reached with wrong codes through node A holds on node B (the right code and the
//     right password are refused there), and an admin unlock through node C lets the user in;
//  3. wrong codes spread round-robin over the three nodes count exactly as on one node: the same
//     failure count after each, the backoff set by one node refuses the next node, the lock after
//     the same number of failures.
//
// The three scenarios run concurrently (most of 2 and 3 is waiting out the backoff of
// THROTTLE in src/state/mfa-ops.ts: 1+2+4+8+16+32 s between the 4th and the 10th failure, each
// wait a condition on the replicated state read through the admin API, never a sleep). Each
// scenario's browsers connect from their own loopback address (127.0.0.1/.2/.3): failures are
// also counted per client IP (THROTTLE.ipFreeFailures), and the scenarios must not share that
// counter. A TOTP step accepted once stays spent, so every race round uses a fresh user instead of
// waiting for the next 30-second step.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Browser, ProcessCluster, fillLogin, freePort, httpJson, parseForm, waitFor } from './harness.ts';
import { waitFor as waitPolling } from '../../scripts/lib/wait.ts';
import { FrontProxy } from '../../scripts/lib/front-proxy.ts';
import { totpCodeAt, totpStep } from '../../src/mfa/totp.ts';
import { ACR_MFA } from '../../src/oauth/session.ts';
import { THROTTLE } from '../../src/state/mfa-ops.ts';

const IDS = [1, 2, 3] as const;
const CLIENT_ID = 'mfa-rp';
const REDIRECT = 'http://127.0.0.1:8765/callback';
const PASSWORD = 'correct horse battery staple';
/** Race rounds (a fresh user each), over these (node, node) pairs: every node on each side. */
const RACE_PAIRS: readonly (readonly [number, number])[] = [
  [1, 2],
  [2, 3],
  [3, 1],
  [2, 1],
];
/** Source addresses: one per scenario, so their per-IP failure counters stay apart. */
const IP = { race: '127.0.0.1', lockAB: '127.0.0.2', spread: '127.0.0.3' } as const;
/** The longest backoff before the lock is backoffMs(6) = 32 s; the wait for it gets a margin. */
const BACKOFF_WAIT_MS = 45_000;
/** Polling the admin API while a backoff runs out: 10 reads/s per scenario is plenty. */
const BACKOFF_POLL_MS = 100;

/** A page shown by the server, or the redirect back to the client (the end of a sign-in). */
type Step =
  | { readonly kind: 'page'; readonly status: number; readonly html: string; readonly url: string }
  | { readonly kind: 'client'; readonly status: number; readonly params: URLSearchParams };
type PageStep = Extract<Step, { kind: 'page' }>;

interface Pkce {
  readonly verifier: string;
  readonly challenge: string;
  readonly state: string;
}

interface LockView {
  readonly failures: number;
  readonly lockedUntil: number | null;
  readonly backoffUntil: number | null;
}

interface AuditRow {
  readonly seq: number;
  readonly type: string;
  readonly sub: string | null;
  readonly ip: string | null;
  readonly details: Record<string, unknown>;
}

function h1(html: string): string {
  return /<h1>([^<]*)<\/h1>/.exec(html)?.[1] ?? '(no h1)';
}

function pkce(): Pkce {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url'), state: randomBytes(16).toString('base64url') };
}

/** A 6-digit code that matches no step within ±2 of now (the verifier's window is ±1). */
function wrongCode(secret: string): string {
  const now = totpStep(Date.now());
  const near = new Set([-2, -1, 0, 1, 2].map((d) => totpCodeAt(secret, now + d)));
  for (let i = 0; ; i++) {
    const c = String(i).padStart(6, '0');
    if (!near.has(c)) return c;
  }
}

/**
 * A valid, unspent code: the current step's, or (while the current step is the one the
 * enrollment spent) the next step's, which the ±1 window (RFC 6238 §5.2) accepts.
 */
function freshCode(secret: string, spentStep: number): { step: number; code: string } {
  const step = Math.max(totpStep(Date.now()), spentStep + 1);
  return { step, code: totpCodeAt(secret, step) };
}

/** Settled once by one test, awaited by another. */
class Deferred<T> {
  resolve!: (v: T) => void;
  reject!: (e: unknown) => void;
  readonly promise = new Promise<T>((res, rej) => {
    this.resolve = res;
    this.reject = rej;
  });
  constructor() {
    this.promise.catch(() => {});
  }
}

describe('MFA on a 3-node cluster: replay, lockout and throttling hold cluster-wide', { timeout: 240_000, concurrency: true }, () => {
  let c: ProcessCluster;
  let front: FrontProxy;
  let issuer: URL;
  let authorizePath: string;
  let tokenPath: string;
  /** The lock count of scenario 2 (one node), for scenario 3 (spread over the nodes). */
  const oneNodeLock = new Deferred<number>();

  const nodeBase = (id: number): string => `http://${c.member(id).httpAddress}`;

  async function admin(id: number, method: string, path: string, body?: unknown, expect = 200): Promise<Record<string, unknown>> {
    const r = await c.admin(id, method, path, body);
    assert.equal(r.status, expect, `${method} ${path} on node ${id}: ${JSON.stringify(r.body)}`);
    return r.body;
  }

  async function lockOf(id: number, username: string): Promise<LockView> {
    return (await admin(id, 'GET', `/admin/v1/users/${encodeURIComponent(username)}/factors`)).lock as LockView;
  }

  async function auditRows(id: number, type: string, sub: string): Promise<AuditRow[]> {
    const body = await admin(id, 'GET', `/admin/v1/audit?type=${encodeURIComponent(type)}&sub=${encodeURIComponent(sub)}&limit=1000`);
    return body.records as AuditRow[];
  }

  /** A user who must use MFA (per-user policy), created through node `id`. */
  async function newMfaUser(id: number, username: string): Promise<{ username: string; sub: string }> {
    const u = await admin(id, 'POST', '/admin/v1/users', { username, password: PASSWORD }, 201);
    await admin(id, 'POST', `/admin/v1/users/${encodeURIComponent(username)}/mfa-required`, { required: true });
    return { username, sub: u.sub as string };
  }

  /** A location the server sent, on the node the browser talks to (the issuer's origin is the front's). */
  function onNode(location: string, base: string): string {
    const u = new URL(location, base);
    if (u.origin === issuer.origin) return new URL(u.pathname + u.search, base).toString();
    assert.equal(u.origin, new URL(base).origin, `a redirect to an unexpected origin: ${location}`);
    return u.toString();
  }

  /** Follow redirects on `base` until a page or the redirect back to the client. */
  async function follow(b: Browser, base: string, first: Response): Promise<Step> {
    let res = first;
    for (let hops = 0; ; hops++) {
      if (res.status < 300 || res.status >= 400) return { kind: 'page', status: res.status, html: await res.text(), url: res.url };
      const location = res.headers.get('location');
      assert.ok(location, `HTTP ${res.status} without a location from ${res.url}`);
      if (location.startsWith(REDIRECT)) return { kind: 'client', status: res.status, params: new URL(location).searchParams };
      assert.ok(hops < 6, `too many redirects, the last to ${location}`);
      res = await b.fetch(onNode(location, base));
    }
  }

  function page(s: Step, title: string, status = 200): PageStep {
    assert.equal(s.kind, 'page', `expected the page "${title}", got the redirect to the client: ${s.kind === 'client' ? s.params.toString() : ''}`);
    const p = s as PageStep;
    assert.equal(h1(p.html), title, `HTTP ${p.status} ${p.url}: ${p.html.slice(0, 800)}`);
    assert.equal(p.status, status, `${title}: ${p.html.slice(0, 800)}`);
    return p;
  }

  /** The authorization code of a sign-in that ended back at the client. */
  function clientCode(s: Step, state: string): string {
    assert.equal(s.kind, 'client', s.kind === 'page' ? `expected the redirect to the client, got HTTP ${s.status} "${h1(s.html)}": ${s.html.slice(0, 800)}` : '');
    const params = (s as Extract<Step, { kind: 'client' }>).params;
    assert.equal(params.get('error'), null, params.toString());
    assert.equal(params.get('state'), state);
    const code = params.get('code');
    assert.ok(code, params.toString());
    return code;
  }

  /** Submit the first form of `p` (with these fields changed) and follow. */
  async function submit(b: Browser, base: string, p: PageStep, fields: Record<string, string>): Promise<Step> {
    const form = parseForm(p.html, base);
    return follow(b, base, await b.fetch(form.action, { form: { ...form.fields, ...fields } }));
  }

  /** /authorize on `base`, then the password: the step after the login form. */
  async function signIn(b: Browser, base: string, username: string, password = PASSWORD): Promise<{ step: Step; pkce: Pkce }> {
    const p = pkce();
    const q = new URLSearchParams({ client_id: CLIENT_ID, redirect_uri: REDIRECT, response_type: 'code', scope: 'openid profile', code_challenge: p.challenge, code_challenge_method: 'S256', state: p.state });
    const login = page(await follow(b, base, await b.fetch(`${base}${authorizePath}?${q.toString()}`)), 'Sign in');
    const form = parseForm(login.html, base);
    return { step: await follow(b, base, await b.fetch(form.action, { form: fillLogin(form, username, password) })), pkce: p };
  }

  /** Sign in and stop at the TOTP prompt. */
  async function totpPrompt(b: Browser, id: number, username: string): Promise<{ prompt: PageStep; pkce: Pkce }> {
    const { step, pkce: p } = await signIn(b, nodeBase(id), username);
    const prompt = page(step, 'Two-step verification');
    assert.match(prompt.html, /action="[^"]*\/mfa\/totp"/, 'the TOTP form comes first');
    return { prompt, pkce: p };
  }

  /**
   * TOTP enrollment through the pages, via the front: sign in, choose the authenticator app, read
   * the secret off the page, confirm with the current code, pass the recovery codes. Returns the
   * secret and the step the confirmation spent.
   */
  async function enrollTotp(username: string): Promise<{ secret: string; spent: number }> {
    const b = new Browser();
    const base = issuer.origin;
    const { step, pkce: p } = await signIn(b, base, username);
    const choice = page(step, 'Set up two-step verification');
    assert.match(choice.html, /Your account requires two-step verification/);
    const qr = page(await submit(b, base, choice, {}), 'Set up your authenticator app');
    const secret = /id="totp-secret">([A-Z2-7 ]+)</.exec(qr.html)?.[1]?.replace(/ /g, '');
    assert.ok(secret && /^[A-Z2-7]{32}$/.test(secret), 'the base32 secret is on the page');
    const spent = totpStep(Date.now());
    const codes = page(await submit(b, base, qr, { code: totpCodeAt(secret, spent) }), 'Your recovery codes');
    clientCode(await submit(b, base, codes, {}), p.state);
    return { secret, spent };
  }

  /** Redeem a code on node `id`: the tokens must say the sign-in used two factors. */
  async function redeem(id: number, code: string, p: Pkce): Promise<void> {
    const res = await fetch(`${nodeBase(id)}${tokenPath}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: CLIENT_ID, code_verifier: p.verifier }).toString(),
    });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const idToken = (JSON.parse(text) as { id_token: string }).id_token;
    const claims = JSON.parse(Buffer.from(idToken.split('.')[1]!, 'base64url').toString()) as { acr: string; amr: string[] };
    assert.equal(claims.acr, ACR_MFA);
    assert.ok(claims.amr.includes('otp'), JSON.stringify(claims.amr));
  }

  /** Until `observer`'s view of the replicated state shows no backoff running for the user. */
  async function backoffOver(observer: number, username: string): Promise<void> {
    await waitPolling(
      `the backoff of ${username} to run out (read on node ${observer})`,
      async () => {
        const l = await lockOf(observer, username);
        return l.backoffUntil === null || l.backoffUntil <= Date.now();
      },
      BACKOFF_WAIT_MS,
      BACKOFF_POLL_MS,
    );
  }

  interface Prompt {
    readonly b: Browser;
    readonly node: number;
    page: PageStep;
  }

  /**
   * Wrong codes, one at a time, each once the backoff is over, until the user is locked. Attempt
   * i goes to `pick(i)`; after each failure a node other than the one that took it must count
   * exactly i failures. Returns the attempt that locked the user (every attempt before was
   * evaluated and counted: none was refused by the throttle).
   */
  async function guessUntilLocked(u: { username: string }, secret: string, pick: (i: number) => Prompt, afterFailure?: (i: number, observer: number) => Promise<void>): Promise<number> {
    for (let i = 1; i <= 2 * THROTTLE.lockAfterFailures; i++) {
      const p = pick(i);
      const observer = (p.node % IDS.length) + 1;
      await backoffOver(observer, u.username);
      const s = await submit(p.b, nodeBase(p.node), p.page, { code: wrongCode(secret) });
      assert.equal(s.kind, 'page', `wrong code ${i} on node ${p.node} ended the sign-in`);
      p.page = s as PageStep;
      const lock = await lockOf(observer, u.username);
      if (p.page.status === 429) {
        assert.match(p.page.html, /this account is locked/, `attempt ${i} on node ${p.node}: refused but not locked: ${p.page.html.slice(0, 600)}`);
        assert.ok(lock.lockedUntil !== null && lock.lockedUntil > Date.now(), `node ${observer} sees the lock: ${JSON.stringify(lock)}`);
        assert.equal(lock.failures, i, `node ${observer} counts ${i} failures at the lock`);
        return i;
      }
      page(p.page, 'Two-step verification', 400);
      assert.match(p.page.html, /That code is not valid/, `attempt ${i} on node ${p.node}`);
      assert.equal(lock.failures, i, `after ${i} wrong codes (the last on node ${p.node}), node ${observer} counts: ${JSON.stringify(lock)}`);
      assert.equal(lock.lockedUntil, null, `not locked after ${i} failures`);
      await afterFailure?.(i, observer);
    }
    assert.fail(`${u.username} was never locked after ${2 * THROTTLE.lockAfterFailures} wrong codes`);
  }

  before(async () => {
    const frontPort = await freePort();
    issuer = new URL(`http://127.0.0.1:${frontPort}`);
    c = await ProcessCluster.create([...IDS], { name: 'mfa', workers: 1, oauth: { issuer: issuer.origin, settings: { passwordScryptLn: 12 } } });
    front = new FrontProxy({ backends: IDS.map((id) => ({ id, url: nodeBase(id) })), port: frontPort, checkIntervalMs: 100 });
    await front.start();
    await Promise.all(IDS.map((id) => c.startServing(id)));
    await c.waitLeader([...IDS]);
    // Every node has the signing keys in its worker's read cache (the race rounds redeem codes).
    for (const id of IDS) {
      await waitFor(`JWKS on node ${id}`, async () => {
        const r = await httpJson(c.member(id).httpAddress, 'GET', '/jwks.json');
        return r.status === 200 && Array.isArray(r.body.keys) && (r.body.keys as unknown[]).length >= 1;
      }, 30_000);
    }
    await front.waitUntilReady(IDS.length, 30_000);
    const meta = await httpJson(c.member(1).httpAddress, 'GET', '/.well-known/openid-configuration');
    assert.equal(meta.status, 200, JSON.stringify(meta.body));
    authorizePath = new URL(meta.body.authorization_endpoint as string).pathname;
    tokenPath = new URL(meta.body.token_endpoint as string).pathname;
    await admin(1, 'POST', '/admin/v1/clients', {
      client_id: CLIENT_ID,
      client_name: 'MFA RP',
      token_endpoint_auth_method: 'none',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code'],
      scopes: ['openid', 'profile'],
      first_party: true,
    }, 201);
    // The client reaches every node's worker through the read cache: its login page shows.
    for (const id of IDS) {
      await waitFor(`the client on node ${id}`, async () => {
        const p = pkce();
        const q = new URLSearchParams({ client_id: CLIENT_ID, redirect_uri: REDIRECT, response_type: 'code', scope: 'openid', code_challenge: p.challenge, code_challenge_method: 'S256', state: p.state });
        const res = await new Browser().fetch(`${nodeBase(id)}${authorizePath}?${q.toString()}`);
        return res.status === 200 && h1(await res.text()) === 'Sign in';
      }, 30_000);
    }
  });

  after(async () => {
    await front?.close();
    await c?.close();
  });

  it('the same TOTP code sent to two nodes at the same moment is accepted at most once', async () => {
    const outcomes: string[] = [];
    for (const [round, [a, b]] of RACE_PAIRS.entries()) {
      const third = IDS.find((id) => id !== a && id !== b)!;
      const u = await newMfaUser(third, `race${round}`);
      const { secret, spent } = await enrollTotp(u.username);
      const ba = new Browser({ localAddress: IP.race });
      const bb = new Browser({ localAddress: IP.race });
      const [pa, pb] = await Promise.all([totpPrompt(ba, a, u.username), totpPrompt(bb, b, u.username)]);
      const { step, code } = freshCode(secret, spent);
      const fa = parseForm(pa.prompt.html, nodeBase(a));
      const fb = parseForm(pb.prompt.html, nodeBase(b));
      // Both connections open and both requests' headers sent; then both bodies in one tick.
      const armed = await Promise.all([ba.arm(fa.action, { form: { ...fa.fields, code } }), bb.arm(fb.action, { form: { ...fb.fields, code } })]);
      const fired = armed.map((r) => r.fire());
      const [ra, rb] = await Promise.all([follow(ba, nodeBase(a), await fired[0]!), follow(bb, nodeBase(b), await fired[1]!)]);
      const results = [
        { node: a, s: ra, p: pa.pkce },
        { node: b, s: rb, p: pb.pkce },
      ];
      const won = results.filter((r) => r.s.kind === 'client');
      const lost = results.filter((r) => r.s.kind === 'page');
      assert.equal(won.length, 1, `round ${round} (nodes ${a} and ${b}): exactly one sign-in completes; got ${JSON.stringify(results.map((r) => (r.s.kind === 'page' ? `${r.node}: HTTP ${r.s.status} ${/role="alert">([^<]*)</.exec(r.s.html)?.[1] ?? h1(r.s.html)}` : `${r.node}: redirect`)))}`);
      const loser = page(lost[0]!.s, 'Two-step verification', 400);
      assert.match(loser.html, /That code was already used/, `round ${round}: the other is refused as a replay`);
      await redeem(won[0]!.node, clientCode(won[0]!.s, won[0]!.p.state), won[0]!.p);

      // The third node's audit log: one replay refused (the loser's), one verification (the winner's).
      const replays = await auditRows(third, 'mfa.replay_refused', u.sub);
      assert.equal(replays.length, 1, JSON.stringify(replays));
      assert.equal(replays[0]!.details.step, step);
      assert.equal(replays[0]!.details.lastStep, step, 'refused because this very step was just accepted');
      assert.equal(replays[0]!.ip, IP.race);
      const verified = await auditRows(third, 'mfa.verified', u.sub);
      assert.equal(verified.length, 1, JSON.stringify(verified));
      assert.ok(verified[0]!.seq < replays[0]!.seq, 'the acceptance comes first in the chain');
      const f = await admin(third, 'GET', `/admin/v1/users/${u.username}/factors`);
      assert.equal((f.lock as LockView).failures, 1, 'the replay counts as one failed attempt');
      outcomes.push(`${a}|${b}: node ${won[0]!.node} won`);
    }
    console.log(`# race rounds: ${outcomes.join('; ')}`);
  });

  it('the lockout reached through node A holds on node B; an admin unlock through node C lets the user in', async () => {
    const [A, B, C] = [1, 2, 3];
    const t0 = performance.now();
    try {
      const u = await newMfaUser(C, 'lockab');
      const { secret, spent } = await enrollTotp(u.username);
      // The user's own browser waits at the TOTP prompt on node B; the attacker (who has the
      // password) guesses codes on node A from another address.
      const victim = new Browser();
      const v = await totpPrompt(victim, B, u.username);
      const ab = new Browser({ localAddress: IP.lockAB });
      const attacker: Prompt = { b: ab, node: A, page: (await totpPrompt(ab, A, u.username)).prompt };
      const lockedAt = await guessUntilLocked(u, secret, () => attacker);
      oneNodeLock.resolve(lockedAt);
      assert.equal(lockedAt, THROTTLE.lockAfterFailures);
      console.log(`# one node: locked at wrong code ${lockedAt} after ${Math.round((performance.now() - t0) / 1000)} s`);

      // Node B: the right code at the waiting prompt, and the right password in a new sign-in.
      const right = freshCode(secret, spent);
      const refused = page(await submit(victim, nodeBase(B), v.prompt, { code: right.code }), 'Two-step verification', 429);
      assert.match(refused.html, /this account is locked/);
      const again = await signIn(new Browser(), nodeBase(B), u.username);
      const loginRefused = page(again.step, 'Sign in', 429);
      assert.match(loginRefused.html, /Too many failed sign-in attempts/);
      const onB = await lockOf(B, u.username);
      assert.ok(onB.lockedUntil !== null && onB.lockedUntil > Date.now(), JSON.stringify(onB));
      assert.equal(onB.failures, THROTTLE.lockAfterFailures, 'the refusals on node B were not counted');

      await admin(C, 'POST', `/admin/v1/users/${u.username}/unlock`);
      assert.deepEqual(await lockOf(B, u.username), { failures: 0, lockedUntil: null, backoffUntil: null });
      const fresh = new Browser();
      const p = await totpPrompt(fresh, B, u.username);
      const ok = await submit(fresh, nodeBase(B), p.prompt, { code: freshCode(secret, spent).code });
      await redeem(B, clientCode(ok, p.pkce.state), p.pkce);

      const locked = await auditRows(B, 'user.locked', u.sub);
      assert.equal(locked.length, 1, JSON.stringify(locked));
      assert.equal(locked[0]!.ip, IP.lockAB, 'the lock is recorded with the address of the attempts');
      assert.equal(locked[0]!.details.failures, THROTTLE.lockAfterFailures);
      assert.equal((await auditRows(A, 'user.unlocked', u.sub)).length, 1);
      assert.equal((await auditRows(A, 'mfa.failed', u.sub)).length, THROTTLE.lockAfterFailures);
    } catch (e) {
      oneNodeLock.reject(e);
      throw e;
    }
  });

  it('spreading wrong codes over the three nodes gains nothing: same count, shared backoff, the lock after the same number', async () => {
    const t0 = performance.now();
    const u = await newMfaUser(1, 'spread');
    const { secret, spent } = await enrollTotp(u.username);
    // One attacker with a sign-in on each node, from one address; attempt i goes to node ((i-1) mod 3) + 1.
    const prompts: Prompt[] = [];
    for (const id of IDS) {
      const b = new Browser({ localAddress: IP.spread });
      prompts.push({ b, node: id, page: (await totpPrompt(b, id, u.username)).prompt });
    }
    const pick = (i: number): Prompt => prompts[(i - 1) % prompts.length]!;
    let probed = false;
    const lockedAt = await guessUntilLocked(u, secret, pick, async (i, observer) => {
      // In a long backoff (8 s after the 7th failure), the next node refuses even the right code
      // without looking at it: nothing counted, nothing spent.
      if (i !== 7) return;
      const next = pick(i + 1);
      const l = await lockOf(observer, u.username);
      assert.ok(l.backoffUntil !== null && l.backoffUntil > Date.now() + 1_000, `a backoff runs: ${JSON.stringify(l)}`);
      const s = page(await submit(next.b, nodeBase(next.node), next.page, { code: freshCode(secret, spent).code }), 'Two-step verification', 429);
      assert.match(s.html, /Too many failed attempts\. Try again after/);
      assert.doesNotMatch(s.html, /locked/);
      next.page = s;
      assert.equal((await lockOf(next.node, u.username)).failures, i, 'the refused attempt was not counted');
      probed = true;
    });
    assert.ok(probed, 'the backoff probe ran');
    console.log(`# spread over 3 nodes: locked at wrong code ${lockedAt} after ${Math.round((performance.now() - t0) / 1000)} s`);
    assert.equal(lockedAt, THROTTLE.lockAfterFailures);
    assert.equal(lockedAt, await oneNodeLock.promise, 'the same number of failures as on one node');
    // Locked everywhere: a new sign-in with the right password is refused on every node.
    for (const id of IDS) {
      const s = await signIn(new Browser({ localAddress: IP.spread }), nodeBase(id), u.username);
      assert.match(page(s.step, 'Sign in', 429).html, /Too many failed sign-in attempts/, `node ${id}`);
    }
  });
});
