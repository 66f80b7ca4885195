// The admin API's OAuth routes: clients, users and keys (`raftauth clients|users|keys …`).
// Registered by buildAdminApp (src/ops/admin.ts) when the node has a master key, behind the same
// bearer token.
//
// Every change is one replicated command through node.write (forwarded to the leader, retried
// across leader changes with the same (session, seq): exactly-once, DESIGN principle 4); apply
// makes the check-and-set decision (a taken client_id or username), and a refusal from apply is
// answered 400/404/409 with `{ error, message }` and changes nothing. Read-modify-write routes
// (PATCH a client, disable a user, …) read with a linearizable read (ReadIndex, Raft dissertation
// §6.4) first, then propose the whole new record; the update ops carry no version, so two admins
// changing the same record at the same moment resolve as last-writer-wins.
//
// Lists read this node's applied state page by page after a ReadIndex barrier, so a list shows at
// least every change acknowledged before it was asked for.
//
// Secrets: a client secret is 256 random bits (randomToken), returned once, stored only as
// tokenHash(secret); passwords are stored only as scrypt PHC strings. Neither hash is ever returned.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApplyResult, ReadRequest, StateScanner, WriteRequest } from '../node/api.ts';
import { NodeError } from '../node/api.ts';
import { DomainError } from '../state/machine.ts';
import type { ClientRecord, UserRecord, WrappedDataKey } from '../state/oauth-ops.ts';
import type { RequestMeta } from '../state/mfa-ops.ts';
import { listClients, listUsernames } from '../state/listing.ts';
import { MAX_USERNAME_CHARS, validateClientRecord, validateUserRecord } from '../state/validate.ts';
import { mfa } from '../state/mfa.ts';
import { clients as clientOps } from '../state/clients.ts';
import { users as userOps } from '../state/users.ts';
import { keys as keyOps } from '../state/keys.ts';
import { dataKeys } from '../state/crypto-keys.ts';
import type { Outcome } from '../state/contract.ts';
import type { MasterKeyRing } from '../crypto/seal.ts';
import { SealError, unwrapRing } from '../crypto/seal.ts';
import type { Sealer } from '../crypto/seal.ts';
import { randomId, randomToken, tokenHash } from '../crypto/tokens.ts';
import { MAX_PASSWORD_CHARS, hashAndSealPassword } from '../crypto/password.ts';
import type { OAuthConfig } from '../oauth/config.ts';
import type { Logger } from 'pino';

/** Largest page a list returns; the default is smaller. */
export const MAX_PAGE_SIZE = 1_000;
export const DEFAULT_PAGE_SIZE = 100;
/**
 * NIST SP 800-63B §5.1.1.2: "Memorized secrets SHALL be at least 8 characters in length"
 * (counted in Unicode code points after normalization); the upper bound is hashPassword's.
 */
export const MIN_PASSWORD_CHARS = 8;
/** Deadline of one replicated write or linearizable read made by an admin request. */
const NODE_TIMEOUT_MS = 10_000;

/** What the OAuth admin routes need of the node (RaftNode implements it). */
export interface AdminOAuthNode extends StateScanner {
  write(req: WriteRequest): Promise<ApplyResult>;
  read(req: ReadRequest): Promise<ApplyResult>;
  isLeader(): boolean;
  housekeeping(domain: string, op: string, args: unknown, timeoutMs: number): Promise<ApplyResult>;
}

/** What a rotation of the signing keys did: the ring's new version, the new active key and the new next key. */
export interface RotationOutcome {
  readonly version: number;
  readonly active: string;
  readonly next: string;
}

/**
 * Rotates the signing keys now, from the cluster's current ring. Key rotation is the leader's OAuth
 * duty (src/server/oauth-node.ts rotateSigningKeys, adminKeyRotation); the admin API only triggers
 * it, so the composer passes it in and the admin API imports nothing of the server
 * (docs/architecture.md "Layers"). A refusal it meets (CONFLICT, NOT_READY, …) is an AdminRefusal.
 */
export type RotateSigningKeys = (nowMs: number, meta: { readonly ip: string | null }) => Promise<RotationOutcome>;

export interface AdminOAuthOptions {
  readonly node: AdminOAuthNode;
  readonly master: MasterKeyRing;
  readonly config: OAuthConfig;
  readonly log: Logger;
  readonly rotateSigningKeys: RotateSigningKeys;
  /** Answers 409 NOT_LEADER the way the membership routes do (admin.ts). */
  readonly notLeader: (reply: FastifyReply) => Promise<FastifyReply>;
  /** Milliseconds since the epoch (record times; apply's own clock is the leader's). */
  readonly now?: () => number;
}

/** A refusal the admin API answers with `{ error, message }`. */
export class AdminRefusal extends Error {
  readonly status: number;
  readonly code: string;

  constructor(
    status: number,
    code: string,
    message: string,
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.name = 'AdminRefusal';
  }
}

/** HTTP status of a DomainError code of the OAuth domains (OAUTH_ERROR_CODES). */
export function statusOfCode(code: string): number {
  switch (code) {
    case 'NOT_FOUND':
      return 404;
    case 'ALREADY_EXISTS':
    case 'CONFLICT':
      return 409;
    // NOT_READY, and the node's own failures met through a state stub (src/state/contract.ts), as handle() answers a NodeError.
    case 'NOT_READY':
    case 'UNAVAILABLE':
    case 'STOPPING':
      return 503;
    case 'TIMEOUT':
      return 504;
    default:
      return 400;
  }
}

const bad = (message: string): AdminRefusal => new AdminRefusal(400, 'INVALID_REQUEST', message);

// ---------------------------------------------------------------------------------------------
// Views: what the API returns (never a secret hash or a password hash).

export type ClientView = Omit<ClientRecord, 'client_secret_hash'>;
export type UserView = Omit<UserRecord, 'password_hash'>;

export function clientView(c: ClientRecord): ClientView {
  const { client_secret_hash: _hash, ...rest } = c;
  return rest;
}

export function userView(u: UserRecord): UserView {
  const { password_hash: _hash, ...rest } = u;
  return rest;
}

// ---------------------------------------------------------------------------------------------
// Request bodies

function body(req: FastifyRequest): Record<string, unknown> {
  const b = req.body;
  if (b === undefined || b === null) return {};
  if (typeof b !== 'object' || Array.isArray(b)) throw bad('the body must be a JSON object');
  return b as Record<string, unknown>;
}

function onlyFields(b: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(b)) if (!allowed.includes(k)) throw bad(`unknown field ${k} (allowed: ${allowed.join(', ')})`);
}

/** The fields a client is created or changed with (ClientRecord minus what the server makes). */
export const CLIENT_INPUT_FIELDS = ['client_id', 'client_name', 'token_endpoint_auth_method', 'redirect_uris', 'grant_types', 'scopes', 'jwks', 'first_party', 'audience', 'require_mfa'] as const;
const USER_CREATE_FIELDS = ['username', 'password', 'name', 'email', 'email_verified'] as const;

const hasSecret = (m: unknown): boolean => m === 'client_secret_basic' || m === 'client_secret_post';

/** Validate with the apply module's own rules (validateClientRecord) so a bad record is refused before it is proposed. */
function checkedClient(c: unknown): ClientRecord {
  try {
    return validateClientRecord(c);
  } catch (e) {
    if (e instanceof DomainError) throw new AdminRefusal(400, e.code, e.message);
    throw e;
  }
}

function checkedUser(u: unknown): UserRecord {
  try {
    return validateUserRecord(u);
  } catch (e) {
    if (e instanceof DomainError) throw new AdminRefusal(400, e.code, e.message);
    throw e;
  }
}

/** A password as NIST SP 800-63B §5.1.1.2 bounds it; the value is never echoed in a message. */
function password(v: unknown): string {
  if (typeof v !== 'string') throw bad('password must be a string');
  if (v.length > MAX_PASSWORD_CHARS) throw bad(`password must be at most ${MAX_PASSWORD_CHARS} characters`);
  if ([...v.normalize('NFKC')].length < MIN_PASSWORD_CHARS) throw bad(`password must be at least ${MIN_PASSWORD_CHARS} characters (NIST SP 800-63B §5.1.1.2)`);
  return v;
}

/**
 * docs/oauth-internals.md: usernames are NFKC-normalised by the proposer and compared
 * lower-cased by apply; the same normalisation applies to a username in a URL.
 */
function username(v: unknown): string {
  if (typeof v !== 'string') throw bad('username must be a string');
  const u = v.normalize('NFKC');
  if (u.length === 0 || u.length > MAX_USERNAME_CHARS) throw bad(`username must be 1..${MAX_USERNAME_CHARS} characters`);
  if (u.trim() !== u) throw bad('username must not start or end with whitespace');
  return u;
}

function optionalStringOrNull(b: Record<string, unknown>, k: string): string | null {
  const v = b[k];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw bad(`${k} must be a string or null`);
  return v;
}

function pageArgs(req: FastifyRequest): { after: string | null; limit: number } {
  const q = (req.query ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(q)) if (k !== 'after' && k !== 'limit') throw bad(`unknown query parameter ${k} (allowed: after, limit)`);
  let limit = DEFAULT_PAGE_SIZE;
  if (q.limit !== undefined) {
    if (typeof q.limit !== 'string' || !/^[0-9]{1,4}$/.test(q.limit) || Number(q.limit) < 1 || Number(q.limit) > MAX_PAGE_SIZE) throw bad(`limit must be an integer from 1 to ${MAX_PAGE_SIZE}`);
    limit = Number(q.limit);
  }
  let after: string | null = null;
  if (q.after !== undefined) {
    if (typeof q.after !== 'string' || q.after.length === 0 || q.after.length > 128) throw bad('after must be 1..128 characters (the last key of the previous page)');
    after = q.after;
  }
  return { after, limit };
}

// ---------------------------------------------------------------------------------------------
// Routes

export function registerOAuthAdminRoutes(app: FastifyInstance, o: AdminOAuthOptions): void {
  const { node, master, config } = o;
  const now = o.now ?? Date.now;

  const client = { node, requestTimeoutMs: NODE_TIMEOUT_MS };
  /** A state stub's outcome: its value, or its refusal or error answered by code (a node failure as handle() answers a NodeError). */
  const value = <T>(o: Outcome<T, string>): T => {
    if (o.kind === 'ok') return o.value;
    throw new AdminRefusal(statusOfCode(o.code), o.code, o.message);
  };
  /** The data-key sealer (password hashes are sealed before they are proposed); 503 until the leader has made the data key. */
  const sealer = async (): Promise<Sealer> => {
    const dk = value(await dataKeys.read.ring(client, {}, 'local'));
    if (!dk) throw new AdminRefusal(503, 'UNAVAILABLE', 'the cluster has not created its data key yet; retry in a moment');
    return unwrapRing(dk, master);
  };
  /** A ReadIndex barrier: afterwards this node has applied every write acknowledged before. */
  const barrier = async (): Promise<void> => {
    value(await dataKeys.read.ring(client, {}));
  };

  /** Wrap a handler: refusals, node errors and key errors become `{ error, message }` answers. */
  const handle =
    (fn: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>) =>
    async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
      try {
        return await fn(req, reply);
      } catch (e) {
        if (e instanceof AdminRefusal) return reply.code(e.status).send({ error: e.code, message: e.message });
        if (e instanceof NodeError) {
          const status = e.code === 'INVALID_REQUEST' ? 400 : e.code === 'TIMEOUT' ? 504 : 503;
          return reply.code(status).send({ error: e.code, message: e.message });
        }
        if (e instanceof SealError) {
          o.log.error({ err: e.message }, 'admin key operation failed');
          return reply.code(500).send({ error: 'KEY_ERROR', message: e.message });
        }
        throw e;
      }
    };

  /**
   * The admin's own address, carried as `meta` by every change this API proposes so its audit
   * record names where it came from (requestMeta's rule: the socket peer; X-Forwarded-For is not
   * trusted: a forged value would falsify the audit trail).
   */
  const adminMeta = (req: FastifyRequest): RequestMeta => ({ ip: req.socket?.remoteAddress ?? null });

  // --- clients -------------------------------------------------------------------------------

  const getClient = async (id: string): Promise<ClientRecord> => {
    const c = value(await clientOps.read.get(client, { client_id: id }));
    if (!c) throw new AdminRefusal(404, 'NOT_FOUND', `no client ${id}`);
    return c;
  };

  /** The record a create or a change asks for: `base` (the current record) with the body's fields over it. */
  const clientFrom = (b: Record<string, unknown>, base: ClientRecord | null): { record: ClientRecord; secret: string | null } => {
    const ts = now();
    const pick = <K extends (typeof CLIENT_INPUT_FIELDS)[number]>(k: K, dflt: unknown): unknown => (b[k] !== undefined ? b[k] : base ? base[k] : dflt);
    const method = pick('token_endpoint_auth_method', 'client_secret_basic'); // RFC 7591 §2: the default method
    // A client that needs a secret and has none yet (created, or switched from none/private_key_jwt) gets a fresh one.
    let secret: string | null = null;
    let hash: string | null = null;
    if (hasSecret(method)) {
      if (base?.client_secret_hash && hasSecret(base.token_endpoint_auth_method)) hash = base.client_secret_hash;
      else hash = tokenHash((secret = randomToken()));
    }
    const record = checkedClient({
      client_id: base ? base.client_id : b.client_id !== undefined ? b.client_id : randomId(),
      client_name: pick('client_name', undefined),
      client_secret_hash: hash,
      token_endpoint_auth_method: method,
      redirect_uris: pick('redirect_uris', []),
      grant_types: pick('grant_types', ['authorization_code']), // RFC 7591 §2: the default grant type
      scopes: pick('scopes', []),
      jwks: pick('jwks', null),
      first_party: pick('first_party', false),
      audience: pick('audience', null),
      // A record from before issue 6 has no require_mfa: it means false.
      require_mfa: pick('require_mfa', false) ?? false,
      created_at: base ? base.created_at : ts,
      updated_at: ts,
    });
    return { record, secret };
  };

  const clientAnswer = (c: ClientRecord, secret: string | null) => (secret !== null ? { client: clientView(c), client_secret: secret } : { client: clientView(c) });

  app.post(
    '/admin/v1/clients',
    handle(async (req, reply) => {
      const b = body(req);
      onlyFields(b, CLIENT_INPUT_FIELDS);
      if (b.client_name === undefined) throw bad('client_name is required');
      const { record, secret } = clientFrom(b, null);
      value(await clientOps.create(client, { client: record, meta: adminMeta(req) }));
      return reply.code(201).send(clientAnswer(record, secret));
    }),
  );

  app.get(
    '/admin/v1/clients',
    handle(async (req) => {
      const { after, limit } = pageArgs(req);
      await barrier();
      const page = await listClients(node, after, limit);
      return { clients: page.items.map(clientView), next: page.next };
    }),
  );

  app.get(
    '/admin/v1/clients/:id',
    handle(async (req) => ({ client: clientView(await getClient((req.params as { id: string }).id)) })),
  );

  app.patch(
    '/admin/v1/clients/:id',
    handle(async (req) => {
      const b = body(req);
      if (b.client_id !== undefined) throw bad('client_id cannot be changed (create a new client instead)');
      onlyFields(b, CLIENT_INPUT_FIELDS);
      if (Object.keys(b).length === 0) throw bad(`nothing to change: give at least one of ${CLIENT_INPUT_FIELDS.slice(1).join(', ')}`);
      const current = await getClient((req.params as { id: string }).id);
      const { record, secret } = clientFrom(b, current);
      value(await clientOps.update(client, { client: record, meta: adminMeta(req) }));
      return clientAnswer(record, secret);
    }),
  );

  app.post(
    '/admin/v1/clients/:id/secret',
    handle(async (req) => {
      const current = await getClient((req.params as { id: string }).id);
      if (!hasSecret(current.token_endpoint_auth_method)) throw bad(`client ${current.client_id} uses ${current.token_endpoint_auth_method}: it has no secret`);
      const secret = randomToken();
      const record = checkedClient({ ...current, client_secret_hash: tokenHash(secret), updated_at: now() });
      value(await clientOps.update(client, { client: record, meta: adminMeta(req) }));
      return clientAnswer(record, secret);
    }),
  );

  app.delete(
    '/admin/v1/clients/:id',
    handle(async (req) => {
      const id = (req.params as { id: string }).id;
      const r = value(await clientOps.delete(client, { client_id: id, meta: adminMeta(req) }));
      if (!r.existed) throw new AdminRefusal(404, 'NOT_FOUND', `no client ${id}`);
      return { deleted: id };
    }),
  );

  // --- users ---------------------------------------------------------------------------------

  const getUser = async (name: string): Promise<UserRecord> => {
    const u = value(await userOps.read.byUsername(client, { username: username(name) }));
    if (!u) throw new AdminRefusal(404, 'NOT_FOUND', `no user ${name}`);
    return u;
  };

  const updateUser = async (req: FastifyRequest, u: UserRecord, change: Partial<UserRecord>): Promise<UserRecord> => {
    const record = checkedUser({ ...u, ...change, updated_at: now() });
    value(await userOps.update(client, { user: record, meta: adminMeta(req) }));
    return record;
  };

  app.post(
    '/admin/v1/users',
    handle(async (req, reply) => {
      const b = body(req);
      onlyFields(b, USER_CREATE_FIELDS);
      const pw = password(b.password);
      const verified = b.email_verified ?? false;
      if (typeof verified !== 'boolean') throw bad('email_verified must be a boolean');
      const ts = now();
      const draft = {
        sub: randomId(),
        username: username(b.username),
        password_hash: '',
        name: optionalStringOrNull(b, 'name'),
        email: optionalStringOrNull(b, 'email'),
        email_verified: verified,
        disabled: false,
        created_at: ts,
        updated_at: ts,
      };
      // Check everything else before paying for the hash (scrypt is deliberately costly).
      checkedUser({ ...draft, password_hash: '$scrypt$' });
      const record = checkedUser({ ...draft, password_hash: await hashAndSealPassword(await sealer(), draft.sub, pw, config.passwordScrypt) });
      value(await userOps.create(client, { user: record, meta: adminMeta(req) }));
      return reply.code(201).send({ sub: record.sub, username: record.username });
    }),
  );

  app.get(
    '/admin/v1/users',
    handle(async (req) => {
      const { after, limit } = pageArgs(req);
      await barrier();
      // The username index is in username order; each entry's record is read from the same applied state.
      const page = await listUsernames(node, after, limit);
      const users: UserView[] = [];
      for (const username of page.items) {
        const u = value(await userOps.read.byUsername(client, { username }, 'local'));
        if (u) users.push(userView(u)); // deleted between the scan and the read
      }
      return { users, next: page.next };
    }),
  );

  app.get(
    '/admin/v1/users/:username',
    handle(async (req) => ({ user: userView(await getUser((req.params as { username: string }).username)) })),
  );

  app.post(
    '/admin/v1/users/:username/password',
    handle(async (req) => {
      const b = body(req);
      onlyFields(b, ['password']);
      const pw = password(b.password);
      const u = await getUser((req.params as { username: string }).username);
      const record = await updateUser(req, u, { password_hash: await hashAndSealPassword(await sealer(), u.sub, pw, config.passwordScrypt) });
      return { user: userView(record) };
    }),
  );

  for (const [action, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    app.post(
      `/admin/v1/users/:username/${action}`,
      handle(async (req) => {
        const u = await getUser((req.params as { username: string }).username);
        const record = u.disabled === disabled ? u : await updateUser(req, u, { disabled });
        return { user: userView(record) };
      }),
    );
  }

  // --- MFA factors (the `mfa` domain, src/state/mfa-ops.ts; docs/mfa.md) ----------------------

  app.get(
    '/admin/v1/users/:username/factors',
    handle(async (req) => {
      const u = await getUser((req.params as { username: string }).username);
      const f = value(await mfa.read.factors(client, { sub: u.sub }));
      // Never the sealed TOTP secret nor the credentials' public keys: what an operator needs to decide a reset or an unlock.
      return {
        username: u.username,
        sub: u.sub,
        required: f.required,
        totp: f.totp === null ? null : { confirmed: f.totp.confirmed, createdAt: f.totp.createdAt },
        webauthn: f.webauthn.map((c) => ({ id: c.id, name: c.name, createdAt: c.createdAt, lastUsedAt: c.lastUsedAt, transports: [...c.transports], discoverable: c.discoverable, counter: c.counter })),
        recovery: { remaining: f.recovery.remaining },
        lock: f.lock,
      };
    }),
  );

  app.post(
    '/admin/v1/users/:username/factors/reset',
    handle(async (req) => {
      const u = await getUser((req.params as { username: string }).username);
      value(await mfa.reset(client, { sub: u.sub, meta: adminMeta(req) }));
      return { reset: u.username, sub: u.sub };
    }),
  );

  app.post(
    '/admin/v1/users/:username/unlock',
    handle(async (req) => {
      const u = await getUser((req.params as { username: string }).username);
      value(await mfa.unlock(client, { sub: u.sub, meta: adminMeta(req) }));
      return { unlocked: u.username, sub: u.sub };
    }),
  );

  app.post(
    '/admin/v1/users/:username/mfa-required',
    handle(async (req) => {
      const b = body(req);
      onlyFields(b, ['required']);
      if (typeof b.required !== 'boolean') throw bad('required must be true or false');
      const u = await getUser((req.params as { username: string }).username);
      value(await mfa['policy.set'](client, { sub: u.sub, required: b.required, meta: adminMeta(req) }));
      return { username: u.username, sub: u.sub, required: b.required };
    }),
  );

  app.delete(
    '/admin/v1/users/:username',
    handle(async (req) => {
      const u = await getUser((req.params as { username: string }).username);
      value(await userOps.delete(client, { sub: u.sub, meta: adminMeta(req) }));
      return { deleted: u.username, sub: u.sub };
    }),
  );

  // --- keys ----------------------------------------------------------------------------------

  app.get(
    '/admin/v1/keys',
    handle(async () => {
      const ring = value(await keyOps.read.ring(client, {}));
      const dk = value(await dataKeys.read.ring(client, {}));
      return {
        signingKeys: ring
          ? { version: ring.version, keys: ring.keys.map((k) => ({ kid: k.kid, alg: k.alg, state: k.state, createdAt: k.createdAt, activatedAt: k.activatedAt, publishUntil: k.publishUntil })) }
          : null,
        dataKeys: dk ? { version: dk.version, activeId: dk.activeId, keys: dk.keys.map((k) => ({ id: k.id, masterKid: k.masterKid, createdAt: k.createdAt })) } : null,
        // Ids only (a hash of each key): which master key wraps what, for the rewrap procedure.
        masterKeys: { current: master.currentKid, all: master.kids() },
      };
    }),
  );

  app.post(
    '/admin/v1/keys/rotate',
    handle(async (req, reply) => {
      if (!node.isLeader()) return o.notLeader(reply);
      return o.rotateSigningKeys(now(), adminMeta(req));
    }),
  );

  app.post(
    '/admin/v1/keys/rewrap',
    handle(async (req, reply) => {
      if (!node.isLeader()) return o.notLeader(reply);
      const dk = value(await dataKeys.read.ring(client, {}));
      if (!dk) throw new AdminRefusal(503, 'NOT_READY', 'the cluster has no data keys yet (the leader creates them once it runs with a master key)');
      const stale = dk.keys.filter((k) => k.masterKid !== master.currentKid).length;
      if (stale === 0) return { version: dk.version, masterKid: master.currentKid, rewrapped: 0 };
      const keys: WrappedDataKey[] = dk.keys.map((k) => {
        // Unwrap with whichever of this node's master keys wrapped it (SealError names a missing one).
        const plain = master.unwrap(k);
        try {
          const { masterKid, wrapped } = master.wrap(plain, k.id);
          return { id: k.id, masterKid, wrapped, createdAt: k.createdAt };
        } finally {
          plain.fill(0);
        }
      });
      // Apply refuses with CONFLICT if the ring changed since it was read (expectVersion).
      const { version } = value(await dataKeys.rewrap(client, { expectVersion: dk.version, keys, meta: adminMeta(req) }));
      o.log.info({ masterKid: master.currentKid, keys: keys.length, version }, 'data keys rewrapped under the current master key');
      return { version, masterKid: master.currentKid, rewrapped: keys.length };
    }),
  );
}
