// The users domain: local accounts. `users` maps sub → UserRecord; `users.name` maps the
// lower-cased username → sub, so a username is unique regardless of case (the proposer has
// already NFKC-normalised it). Every change appends its audit event (user.created/updated/deleted)
// in the same transaction; details never hold the password hash.
//
// Disabling a user, changing the password and deleting the user sign the user out everywhere: the
// login sessions end in the same command (tokens.ts endUserSessions, audited `logout` with the
// reason). Disabling and deleting also end the user's grants (tokens.ts endUserGrants): refresh
// tokens issued before stay dead after the user is enabled again (RFC 6749 §10.4, RFC 9700 §4.14);
// while the user is disabled or deleted, no refresh, code or device redemption succeeds (tokens.ts).
import type { Domain, StateReader } from './machine.ts';
import { packValue, unpackValue } from './command.ts';
import type { UserRecord } from './oauth-ops.ts';
import { MAX_ID_CHARS, MAX_USERNAME_CHARS, str, validateUserRecord } from './validate.ts';
import { appendAudit, auditEvent, auditMeta } from './audit.ts';
import type { AuditMeta } from './audit.ts';
import { check, object, read, readStubs, tableDomain, withDefault, write, writeStubs } from './contract.ts';
import { endUserGrants, endUserSessions } from './tokens.ts';

export const USERS_KEYSPACE = 'users';
export const USERNAMES_KEYSPACE = 'users.name';

/** Index key of a username. String.prototype.toLowerCase is locale-independent, so every node agrees. */
export function usernameKey(username: string): string {
  return username.toLowerCase();
}

function load(reader: StateReader, sub: string): UserRecord | null {
  const b = reader.get(USERS_KEYSPACE, sub);
  return b === undefined ? null : unpackValue<UserRecord>(b);
}

function subOf(reader: StateReader, username: string): string | null {
  const b = reader.get(USERNAMES_KEYSPACE, usernameKey(username));
  return b === undefined ? null : unpackValue<string>(b);
}

const USER = check((v) => validateUserRecord(v));
const META = withDefault<AuditMeta, Partial<AuditMeta>>(auditMeta);
const SUB = check((v, n) => str(v, n, 1, MAX_ID_CHARS));

/** The users domain's operations (the contract: src/state/contract.ts). */
export const USERS_WRITES = {
  /** ALREADY_EXISTS: the sub exists, or the username (case-insensitively) is taken. */
  create: write({
    args: object({ user: USER, meta: META }),
    refuses: ['ALREADY_EXISTS'],
    apply: (ctx, a, refuse): Record<string, never> => {
      const { tx } = ctx;
      const u = a.user;
      if (load(tx, u.sub)) refuse('ALREADY_EXISTS', `user ${u.sub} already exists`);
      if (subOf(tx, u.username) !== null) refuse('ALREADY_EXISTS', 'username is taken');
      tx.put(USERS_KEYSPACE, u.sub, packValue(u));
      tx.put(USERNAMES_KEYSPACE, usernameKey(u.username), packValue(u.sub));
      appendAudit(tx, ctx.ts, auditEvent('user.created', a.meta, { sub: u.sub, details: { username: u.username } }));
      return {};
    },
  }),
  /** Replace the record (created_at kept); a disable or a password change signs the user out everywhere. */
  update: write({
    args: object({ user: USER, meta: META }),
    refuses: ['NOT_FOUND', 'ALREADY_EXISTS'],
    apply: (ctx, a, refuse): Record<string, never> => {
      const { tx } = ctx;
      const { user: u, meta } = a;
      const old = load(tx, u.sub);
      if (!old) return refuse('NOT_FOUND', `no user ${u.sub}`);
      if (usernameKey(old.username) !== usernameKey(u.username)) {
        const owner = subOf(tx, u.username);
        if (owner !== null && owner !== u.sub) refuse('ALREADY_EXISTS', 'username is taken');
        tx.del(USERNAMES_KEYSPACE, usernameKey(old.username));
        tx.put(USERNAMES_KEYSPACE, usernameKey(u.username), packValue(u.sub));
      }
      tx.put(USERS_KEYSPACE, u.sub, packValue({ ...u, created_at: old.created_at }));
      const details = { username: u.username, previousUsername: old.username === u.username ? null : old.username, disabled: u.disabled, passwordChanged: u.password_hash !== old.password_hash };
      appendAudit(tx, ctx.ts, auditEvent('user.updated', meta, { sub: u.sub, details }));
      const disabling = u.disabled && !old.disabled;
      if (disabling) endUserGrants(ctx, u.sub);
      // OWASP Session Management: a password change (a reset by an admin: the old one may be known
      // to someone else) or a disable ends every session; a sign-in with the new password starts anew.
      if (disabling || details.passwordChanged) endUserSessions(tx, ctx.ts, u.sub, { ...meta, sub: u.sub }, disabling ? 'user_disabled' : 'password_changed');
      return {};
    },
  }),
  delete: write({
    args: object({ sub: SUB, meta: META }),
    apply: (ctx, a): { existed: boolean } => {
      const { tx } = ctx;
      const { sub, meta } = a;
      const old = load(tx, sub);
      if (!old) return { existed: false };
      tx.del(USERS_KEYSPACE, sub);
      if (subOf(tx, old.username) === sub) tx.del(USERNAMES_KEYSPACE, usernameKey(old.username));
      appendAudit(tx, ctx.ts, auditEvent('user.deleted', meta, { sub, details: { username: old.username } }));
      // The mark also tells a deleted user from an unknown subject (tokens.ts userActive).
      endUserGrants(ctx, sub);
      endUserSessions(tx, ctx.ts, sub, { ...meta, sub }, 'user_deleted');
      return { existed: true };
    },
  }),
};

export const USERS_READS = {
  get: read({ args: object({ sub: SUB }), read: (r, a): UserRecord | null => load(r, a.sub) }),
  byUsername: read({
    args: object({ username: check((v, n) => str(v, n, 1, MAX_USERNAME_CHARS)) }),
    read: (r, a): UserRecord | null => {
      const sub = subOf(r, a.username);
      return sub === null ? null : load(r, sub);
    },
  }),
};

export const usersDomain: Domain = tableDomain({ name: 'users', keyspaces: [USERS_KEYSPACE, USERNAMES_KEYSPACE], writes: USERS_WRITES, reads: USERS_READS });

/** Typed client stubs: `users.update(client, { user, meta })`, `users.read.get(client, { sub }, 'local')`. */
export const users = { ...writeStubs('users', USERS_WRITES), read: readStubs('users', USERS_READS) };
