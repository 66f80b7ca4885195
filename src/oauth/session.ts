// Login sessions and the browser cookies of the browser side.
//
// A session is a random cookie value; the cluster stores only its hash with the sealed
// SessionPayload (tokens 'session.create', or 'session.replace' when it replaces the browser's
// previous session, `tok.sess`), so any node can find it: no sticky load
// balancer. Reads are local first (the payload never changes once written) and linearizable when
// the record is not there yet: it may have been created on another node a moment ago.
//
// Cookies (RFC 6265bis): HttpOnly (no script reads them), SameSite=Lax (sent on the top-level GET
// that brings the browser to /authorize, not on cross-site POSTs: a first line against CSRF),
// Path=/; on an https issuer also Secure and the `__Host-` prefix (§4.1.3.2: the cookie cannot be
// set by a sibling subdomain nor scoped to a path).
import { parseCookie, stringifySetCookie } from 'cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomToken, tokenHash } from '../crypto/tokens.ts';
import { SealError } from '../crypto/seal.ts';
import type { UserRecord } from '../state/oauth-ops.ts';
import { requestMeta } from './context.ts';
import { users } from '../state/users.ts';
import { mfa } from '../state/mfa.ts';
import { tokens } from '../state/tokens.ts';
import type { TOKENS_WRITES } from '../state/tokens.ts';
import type { MFA_WRITES } from '../state/mfa.ts';
import { must } from '../state/contract.ts';
import type { ArgsOf } from '../state/contract.ts';
import type { OAuthContext } from './context.ts';
import type { Authentication, SessionPayload } from './records.ts';

export const SESSION_COOKIE = 'raftauth_session';
export const INTERACTION_COOKIE = 'raftauth_interaction';

/** The only shape our cookie values have (randomToken(): 32 bytes base64url); anything else is ignored unread. */
const COOKIE_VALUE_RE = /^[A-Za-z0-9_-]{43}$/;
/** A Cookie header longer than this is not parsed (browsers cap a cookie at 4 KiB; a few of them fit). */
const MAX_COOKIE_HEADER_CHARS = 8 * 1024;

/** Our acr for a password login. */
export const ACR_PASSWORD = 'urn:raftauth:acr:pwd';
/** Password and a second factor (TOTP or a recovery code). docs/mfa.md. */
export const ACR_MFA = 'urn:raftauth:acr:mfa';
/** Password and a phishing-resistant factor (WebAuthn: the credential is bound to our RP ID). */
export const ACR_PHR = 'urn:raftauth:acr:phr';

export interface Session {
  /** tokenHash of the cookie: the record's key and the CodePayload's sessionHash. */
  readonly hash: string;
  readonly exp: number;
  readonly payload: SessionPayload;
}

function secure(ctx: OAuthContext): boolean {
  return ctx.config.issuer.startsWith('https:');
}

/** The cookie's name: `__Host-` prefixed on an https issuer (the prefix requires Secure). */
export function cookieName(ctx: OAuthContext, base: string): string {
  return secure(ctx) ? `__Host-${base}` : base;
}

/** One of our cookies from the request, or null when absent or not of our shape. */
export function readCookie(ctx: OAuthContext, req: FastifyRequest, base: string): string | null {
  const header = req.headers.cookie;
  if (header === undefined || header.length > MAX_COOKIE_HEADER_CHARS) return null;
  const v = parseCookie(header)[cookieName(ctx, base)];
  return v !== undefined && COOKIE_VALUE_RE.test(v) ? v : null;
}

function appendSetCookie(reply: FastifyReply, value: string): void {
  const prev = reply.getHeader('set-cookie');
  const list = prev === undefined ? [] : Array.isArray(prev) ? prev.map(String) : [String(prev)];
  void reply.header('set-cookie', [...list, value]);
}

export function setCookie(ctx: OAuthContext, reply: FastifyReply, base: string, value: string, maxAgeS: number): void {
  appendSetCookie(reply, stringifySetCookie(cookieName(ctx, base), value, { httpOnly: true, sameSite: 'lax', path: '/', secure: secure(ctx), maxAge: maxAgeS }));
}

export function clearCookie(ctx: OAuthContext, reply: FastifyReply, base: string): void {
  appendSetCookie(reply, stringifySetCookie(cookieName(ctx, base), '', { httpOnly: true, sameSite: 'lax', path: '/', secure: secure(ctx), maxAge: 0 }));
}

/** The request's login session, if its cookie names a live one. */
export async function loadSession(ctx: OAuthContext, req: FastifyRequest): Promise<Session | null> {
  const cookie = readCookie(ctx, req, SESSION_COOKIE);
  if (cookie === null) return null;
  const hash = tokenHash(cookie);
  let rec = must(await tokens.read['session.get'](ctx, { hash }, 'local'), 'tokens.session.get');
  if (rec === null) rec = must(await tokens.read['session.get'](ctx, { hash }), 'tokens.session.get');
  if (rec === null || rec.exp <= ctx.now()) return null;
  try {
    return { hash, exp: rec.exp, payload: ctx.crypto.sealer().openValue<SessionPayload>(rec.sealed, 'sess:' + hash) };
  } catch (e) {
    if (!(e instanceof SealError)) throw e;
    ctx.log.warn({ err: e }, 'a login session record does not open; treated as no session');
    return null;
  }
}

/**
 * The session and its user, when the user still exists and is not disabled (an account disabled
 * after login must not keep getting codes). A local read: the admin change that disabled the user
 * reaches this node within the replication delay.
 */
export async function loadActiveSession(ctx: OAuthContext, req: FastifyRequest): Promise<{ session: Session; user: UserRecord } | null> {
  const session = await loadSession(ctx, req);
  if (session === null) return null;
  const user = must(await users.read.get(ctx, { sub: session.payload.auth.sub }, 'local'), 'users.get');
  if (user === null || user.disabled) return null;
  return { session, user };
}

/**
 * Start a login session for `auth` and set its cookie. A session the browser had before is
 * deleted: a new login always gets a new cookie value (no session fixation).
 */
export async function createSession(ctx: OAuthContext, reply: FastifyReply, auth: Authentication, previous: Session | null): Promise<Session> {
  const p = prepareSession(ctx, reply, auth, previous);
  await commitSession(ctx, reply, p);
  return p.session;
}

/** A session made but not yet written: commitSession writes it (with a code, if the flow ends in one). */
export interface PendingSession {
  readonly session: Session;
  readonly cookie: string;
  readonly op: 'session.create' | 'session.replace';
  /** session.create's arguments; with `previous` for session.replace. */
  readonly args: ArgsOf<(typeof TOKENS_WRITES)['session.create']> & { readonly previous?: ArgsOf<(typeof TOKENS_WRITES)['session.replace']>['previous'] };
  /**
   * The second factor this session is the reward for, still to be verified: totp.verify's
   * arguments (mfa/service.ts totpVerifyArgs). commitSession then proposes mfa totp.signIn, which
   * verifies the code and writes the session (and code) in the same command, and throws
   * FactorRefused, writing no session, when the code is refused.
   */
  readonly totp?: ArgsOf<(typeof MFA_WRITES)['totp.verify']>;
}

/**
 * commitSession of a session with a second factor whose factor apply could not judge: removed
 * (NOT_FOUND) or re-enrolled (CONFLICT) since it was read. Nothing was written.
 */
export class FactorChanged extends Error {
  readonly code: 'NOT_FOUND' | 'CONFLICT';

  constructor(code: 'NOT_FOUND' | 'CONFLICT', message: string) {
    super(message);
    this.code = code;
    this.name = 'FactorChanged';
  }
}

/** commitSession of a session whose second factor (PendingSession.totp) apply refused; `result` is totp.verify's answer. */
export class FactorRefused extends Error {
  readonly result: { readonly ok: false; readonly reason: 'invalid' | 'replay' | 'throttled' | 'locked' | 'no_factor'; readonly retryAt?: number };

  constructor(result: { readonly ok: false; readonly reason: 'invalid' | 'replay' | 'throttled' | 'locked' | 'no_factor'; readonly retryAt?: number }) {
    super(`second factor refused: ${result.reason}`);
    this.result = result;
    this.name = 'FactorRefused';
  }
}

/** The new session's record and cookie, not written yet (createSession, or a caller that writes it together with the code). */
export function prepareSession(ctx: OAuthContext, reply: FastifyReply, auth: Authentication, previous: Session | null): PendingSession {
  const cookie = randomToken();
  const hash = tokenHash(cookie);
  const payload: SessionPayload = { auth, csrf: randomToken() };
  const exp = ctx.now() + ctx.config.sessionTtlS * 1000;
  // The audit record of the login (login.succeeded) is written by session.create itself.
  const meta = { ...requestMeta(reply.request), sub: auth.sub };
  const args = { hash, exp, sealed: ctx.crypto.sealer().sealValue(payload, 'sess:' + hash), meta };
  // A previous session ends in the same replicated write that starts the new one (session.replace:
  // one fsynced round instead of two, and never a moment with both or neither).
  if (previous === null) return { session: { hash, exp, payload }, cookie, op: 'session.create', args };
  return { session: { hash, exp, payload }, cookie, op: 'session.replace', args: { ...args, previous: { hash: previous.hash, meta: { ...meta, sub: previous.payload.auth.sub } } } };
}

/**
 * Write a prepared session and set its cookie. `code` (code.create's arguments) stores the
 * authorization code the flow answers with in the same replicated write (interaction.ts issueCode).
 */
export async function commitSession(ctx: OAuthContext, reply: FastifyReply, p: PendingSession, code?: ArgsOf<(typeof TOKENS_WRITES)['code.create']>): Promise<void> {
  const args = code === undefined ? p.args : { ...p.args, code };
  if (p.totp !== undefined) {
    const o = await mfa['totp.signIn'](ctx, { verify: p.totp, session: { op: p.op, args } });
    if (o.kind === 'refused' && o.code !== 'ALREADY_EXISTS') throw new FactorChanged(o.code, o.message);
    const r = must(o, 'mfa.totp.signIn');
    if (!r.factor.ok) throw new FactorRefused(r.factor);
  } else if (args.previous !== undefined) must(await tokens['session.replace'](ctx, { ...args, previous: args.previous }), 'tokens.session.replace');
  else must(await tokens['session.create'](ctx, args), 'tokens.session.create');
  setCookie(ctx, reply, SESSION_COOKIE, p.cookie, ctx.config.sessionTtlS);
}

/**
 * The session after a second factor: a new record with the upgraded Authentication (acr, amr, and
 * auth_time now, OIDC Core §2: the time of the latest authentication), under a new cookie value
 * (a change of privilege gets a new session identifier, OWASP Session Management); the old record
 * is deleted. Session records are immutable once written, so an upgrade is a new one.
 */
export async function upgradeSession(ctx: OAuthContext, reply: FastifyReply, previous: Session, method: { readonly acr: string; readonly amr: readonly string[] }): Promise<Session> {
  const p = prepareUpgrade(ctx, reply, previous, method);
  await commitSession(ctx, reply, p);
  return p.session;
}

/** upgradeSession's new session, not written yet (commitSession). */
export function prepareUpgrade(ctx: OAuthContext, reply: FastifyReply, previous: Session, method: { readonly acr: string; readonly amr: readonly string[] }): PendingSession {
  // RFC 8176 §2: 'mfa' with the methods used. The first factor stays named: 'pwd' for a password
  // login; a passkey login (passkey-login.ts) had no password, so its own methods stay instead.
  const before = previous.payload.auth.amr;
  const first = before.includes('pwd') ? ['pwd'] : before.filter((m) => m !== 'mfa');
  const amr = [...new Set([...first, ...method.amr.filter((m) => m !== 'pwd' && m !== 'mfa')]), 'mfa'];
  const auth: Authentication = { sub: previous.payload.auth.sub, authTime: Math.floor(ctx.now() / 1000), acr: method.acr, amr };
  return prepareSession(ctx, reply, auth, previous);
}

/** End a session: delete its record and clear the cookie. */
export async function endSession(ctx: OAuthContext, reply: FastifyReply, session: Session | null): Promise<void> {
  if (session !== null) must(await tokens['session.delete'](ctx, { hash: session.hash, meta: { ...requestMeta(reply.request), sub: session.payload.auth.sub } }), 'tokens.session.delete');
  clearCookie(ctx, reply, SESSION_COOKIE);
}

/** How a user is named on pages. */
export function userLabel(user: UserRecord): string {
  return user.name === null ? user.username : `${user.name} (${user.username})`;
}
