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
import { DomainError } from './machine.ts';
import type { ApplyContext, Domain, StateReader } from './machine.ts';
import { packValue, unpackValue } from './command.ts';
import type { UserRecord } from './oauth-ops.ts';
import { MAX_ID_CHARS, MAX_USERNAME_CHARS, obj, str, validateUserRecord } from './validate.ts';
import { appendAudit, auditEvent, auditMeta } from './audit.ts';
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

export const usersDomain: Domain = {
  name: 'users',
  keyspaces: [USERS_KEYSPACE, USERNAMES_KEYSPACE],
  apply(ctx: ApplyContext, op: string, args: unknown): unknown {
    const a = obj(args, 'args');
    const tx = ctx.tx;
    switch (op) {
      case 'create': {
        const u = validateUserRecord(a.user);
        const meta = auditMeta(a.meta);
        if (load(tx, u.sub)) throw new DomainError('ALREADY_EXISTS', `user ${u.sub} already exists`);
        if (subOf(tx, u.username) !== null) throw new DomainError('ALREADY_EXISTS', 'username is taken');
        tx.put(USERS_KEYSPACE, u.sub, packValue(u));
        tx.put(USERNAMES_KEYSPACE, usernameKey(u.username), packValue(u.sub));
        appendAudit(tx, ctx.ts, auditEvent('user.created', meta, { sub: u.sub, details: { username: u.username } }));
        return {};
      }
      case 'update': {
        const u = validateUserRecord(a.user);
        const meta = auditMeta(a.meta);
        const old = load(tx, u.sub);
        if (!old) throw new DomainError('NOT_FOUND', `no user ${u.sub}`);
        if (usernameKey(old.username) !== usernameKey(u.username)) {
          const owner = subOf(tx, u.username);
          if (owner !== null && owner !== u.sub) throw new DomainError('ALREADY_EXISTS', 'username is taken');
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
      }
      case 'delete': {
        const sub = str(a.sub, 'sub', 1, MAX_ID_CHARS);
        const meta = auditMeta(a.meta);
        const old = load(tx, sub);
        if (!old) return { existed: false };
        tx.del(USERS_KEYSPACE, sub);
        if (subOf(tx, old.username) === sub) tx.del(USERNAMES_KEYSPACE, usernameKey(old.username));
        appendAudit(tx, ctx.ts, auditEvent('user.deleted', meta, { sub, details: { username: old.username } }));
        // The mark also tells a deleted user from an unknown subject (tokens.ts userActive).
        endUserGrants(ctx, sub);
        endUserSessions(tx, ctx.ts, sub, { ...meta, sub }, 'user_deleted');
        return { existed: true };
      }
      default:
        throw new DomainError('UNKNOWN_OPERATION', `users has no operation ${op}`);
    }
  },
  read(reader: StateReader, op: string, args: unknown): unknown {
    const a = obj(args, 'args');
    switch (op) {
      case 'get':
        return load(reader, str(a.sub, 'sub', 1, MAX_ID_CHARS));
      case 'byUsername': {
        const sub = subOf(reader, str(a.username, 'username', 1, MAX_USERNAME_CHARS));
        return sub === null ? null : load(reader, sub);
      }
      default:
        throw new DomainError('UNKNOWN_OPERATION', `users has no read ${op}`);
    }
  },
};
