// The admin API of a node: status, membership changes and leadership transfer. Served by the
// primary process on its own address (config `admin.listen`, loopback by default in the shipped
// configs), and every request must carry `Authorization: Bearer <token>` (config `admin.tokenFile`).
//
// Membership changes are proposed by the leader only; another node answers 409 NOT_LEADER with the
// leader's id and HTTP address so a tool can follow it.
//
// With `oauth` (the node has a master key), the OAuth routes of admin-oauth.ts are served too:
// clients, users, signing and data keys; and the audit routes of admin-audit.ts. Without it, those
// paths answer 501 NO_MASTER_KEY naming the setting, instead of a bare 404. Membership
// changes and leader transfers are then audited (member.changed). A membership change carries its
// record in the conf change's own context (leader time, the admin's address, what was asked), and
// every node appends it while applying that entry: the change and its record commit together, so
// an acknowledged change is always audited (issue 6). A leader transfer is no log entry at all,
// so its record is a separate `audit.append` once the transfer has started.
import { timingSafeEqual, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import Fastify from 'fastify';
import { pino } from 'pino';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RaftNode } from '../node/node.ts';
import { NodeError } from '../node/api.ts';
import { validateAddress } from '../node/members.ts';
import type { MasterKeyRing } from '../crypto/seal.ts';
import type { OAuthConfig } from '../oauth/config.ts';
import type { Logger } from 'pino';
import { registerOAuthAdminRoutes } from './admin-oauth.ts';
import type { RotateSigningKeys } from './admin-oauth.ts';
import { registerAuditAdminRoutes } from './admin-audit.ts';
import type { AuditEvent } from '../state/audit-ops.ts';
import { audit, validateAuditEvent } from '../state/audit.ts';
import type { ConfChangeAudit } from '../node/members.ts';
import { VERSION } from '../version.ts';

/**
 * Path prefixes of the admin routes that need the node's master key: clients, users (with their
 * MFA factors and policy), keys (admin-oauth.ts) and audit (admin-audit.ts).
 */
const MASTER_KEY_ROUTE_PREFIXES = ['/admin/v1/clients', '/admin/v1/users', '/admin/v1/keys', '/admin/v1/audit'] as const;
/**
 * What those routes answer on a node without a master key: 501, "the server does not support the
 * functionality required to fulfill the request" (RFC 9110 §15.6.2) — this node, as configured,
 * does not; retrying will not help until it is restarted with a key (503 would invite a retry).
 */
export const NO_MASTER_KEY_STATUS = 501;
const NO_MASTER_KEY_MESSAGE =
  'no master key on this node, so it serves no OAuth: the clients, users, MFA, keys and audit routes need one. ' +
  'Set crypto.masterKeyFile in its config (or the key text in RAFTAUTH_MASTER_KEY) and restart it; ' +
  'every node of the cluster needs the same key (`raftauth keys generate-master --out FILE` makes one; docs/operations.md)';

/** Shortest admin token accepted: 32 characters (about 190 bits from a base64url generator). */
export const MIN_ADMIN_TOKEN_CHARS = 32;
const BODY_LIMIT_BYTES = 16 * 1024;
const CHANGE_TIMEOUT_MS = 15_000;
/** Deadline of a backup's ReadIndex barrier and snapshot (the file is then streamed without one). */
const SNAPSHOT_TIMEOUT_MS = 60_000;
/** Backups served at once (each may write a snapshot and holds a file open while it streams); more get 429. */
export const MAX_CONCURRENT_BACKUPS = 2;

export interface AdminOptions {
  readonly node: RaftNode;
  readonly token: string;
  /**
   * Serve the OAuth admin routes (clients, users, keys) with this node's master key ring; key
   * rotation is the server's (src/server/oauth-node.ts adminKeyRotation), passed in.
   */
  readonly oauth?: { readonly master: MasterKeyRing; readonly config: OAuthConfig; readonly log?: Logger; readonly rotateSigningKeys: RotateSigningKeys };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function parseId(raw: unknown): number | null {
  const n = typeof raw === 'string' && /^[1-9][0-9]{0,15}$/.test(raw) ? Number(raw) : typeof raw === 'number' ? raw : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

export function buildAdminApp(opts: AdminOptions): FastifyInstance {
  if (opts.token.length < MIN_ADMIN_TOKEN_CHARS) throw new Error(`the admin token must be at least ${MIN_ADMIN_TOKEN_CHARS} characters`);
  const want = digest(opts.token);
  const app = Fastify({ bodyLimit: BODY_LIMIT_BYTES, logger: false });
  const node = opts.node;

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const h = req.headers.authorization;
    const got = typeof h === 'string' && h.startsWith('Bearer ') ? h.slice(7) : '';
    // Compare digests in constant time: the token's length and content stay secret.
    if (!timingSafeEqual(digest(got), want)) {
      reply.header('www-authenticate', 'Bearer realm="raftauth-admin"');
      return reply.code(401).send({ error: 'UNAUTHORIZED', message: 'a valid admin bearer token is required' });
    }
    return undefined;
  });

  const notLeader = async (reply: FastifyReply) => {
    const st = await node.status();
    const addr = st.leader ? node.memberAddresses().get(st.leader) : undefined;
    return reply.code(409).send({ error: 'NOT_LEADER', leader: st.leader, leaderHttp: addr?.httpAddress ?? null, leaderAdmin: addr?.adminAddress ?? null });
  };

  /**
   * The audit part of a membership change's context (only where the audit domain is registered,
   * i.e. with oauth). Checked here as apply will check it: apply skips a part it refuses (the change
   * still applies), so an address the event format cannot hold is recorded as null instead.
   */
  const memberAudit = (req: FastifyRequest, details: AuditEvent['details']): ConfChangeAudit | undefined => {
    if (!opts.oauth) return undefined;
    const event = (ip: string | null) => validateAuditEvent({ type: 'member.changed', sub: null, clientId: null, ip, details });
    let e: AuditEvent;
    try {
      e = event(req.socket?.remoteAddress ?? null);
    } catch {
      e = event(null);
    }
    // Leader time: this route runs on the leader only (change() checks), like a command's ts.
    return { ts: Date.now(), ip: e.ip, details: e.details };
  };

  /** Append member.changed for a leader transfer, which is no log entry (with oauth only). Never fails the transfer it records. */
  const auditMember = async (req: FastifyRequest, details: AuditEvent['details']): Promise<boolean> => {
    if (!opts.oauth) return false;
    const event: AuditEvent = { type: 'member.changed', sub: null, clientId: null, ip: req.socket?.remoteAddress ?? null, details };
    try {
      const r = await audit.append({ node, requestTimeoutMs: CHANGE_TIMEOUT_MS }, { events: [event] });
      if (r.kind === 'ok') return true;
      opts.oauth.log?.error({ code: r.code, message: r.message }, 'member.changed audit record not written');
    } catch (e) {
      opts.oauth.log?.error({ err: (e as Error).message }, 'member.changed audit record not written');
    }
    return false;
  };

  /** Run a membership change; its audit part (if any) went into the change itself, so it is audited iff it applied. */
  const change = async (reply: FastifyReply, run: () => Promise<unknown>, audit: ConfChangeAudit | undefined) => {
    if ((await node.status()).role !== 'leader') return notLeader(reply);
    try {
      const r = (await run()) as { ok: boolean; value?: unknown; code?: string; message?: string };
      if (r.ok) {
        return reply.send({ ok: true, status: await node.status(), ...(opts.oauth ? { audited: audit !== undefined } : {}) });
      }
      return reply.code(400).send({ error: r.code, message: r.message });
    } catch (e) {
      if (e instanceof NodeError) {
        const code = e.code === 'INVALID_REQUEST' ? 400 : e.code === 'TIMEOUT' ? 504 : 503;
        return reply.code(code).send({ error: e.code, message: e.message });
      }
      throw e;
    }
  };

  // The node's status with this build's version (so `raftauth status` shows which version each
  // member runs: rolling upgrades), and the addresses of the members from its member table: a tool
  // given one admin URL finds the other members' admin APIs here (adminAddress null: none known).
  app.get('/admin/v1/status', async () => ({
    ...(await node.status()),
    version: VERSION,
    memberAddresses: [...node.memberAddresses()].map(([id, a]) => ({ id, raftAddress: a.raftAddress, httpAddress: a.httpAddress, adminAddress: a.adminAddress ?? null })),
  }));

  // A backup (raftauth snapshot save, src/ops/backup.ts): the state at this node's applied index
  // after a linearizable barrier, as a snapshot file (format: src/storage/snapshot-format.ts,
  // self-verifying: CRC per frame, SHA-256 trailer). Any node can serve it.
  let backupsInFlight = 0;
  app.get('/admin/v1/snapshot', async (_req, reply) => {
    if (backupsInFlight >= MAX_CONCURRENT_BACKUPS) return reply.code(429).send({ error: 'TOO_MANY_BACKUPS', message: `${MAX_CONCURRENT_BACKUPS} backups are being served; try again later` });
    backupsInFlight++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      backupsInFlight--;
    };
    // 'close': the answer was sent completely, or the client went away (mid-stream or before).
    let clientGone = false;
    reply.raw.once('close', () => {
      clientGone = true;
      release();
    });
    let stream;
    try {
      stream = await node.backupSnapshot(SNAPSHOT_TIMEOUT_MS);
    } catch (e) {
      release();
      if (e instanceof NodeError) return reply.code(e.code === 'TIMEOUT' ? 504 : 503).send({ error: e.code, message: e.message });
      throw e;
    }
    if (clientGone) {
      // Nobody to send it to. The chunk generator closes its file in its finally, which runs only
      // once the generator has started: start it, then stop it.
      for await (const chunk of stream.chunks) {
        void chunk;
        break;
      }
      return reply;
    }
    const md = stream.metadata;
    reply.header('content-type', 'application/octet-stream');
    reply.header('content-length', String(stream.totalBytes));
    reply.header('x-raftauth-node-id', String(node.id));
    reply.header('x-raftauth-snapshot-index', String(md.index));
    reply.header('x-raftauth-snapshot-term', String(md.term));
    reply.header('x-raftauth-snapshot-voters', md.confState.voters.join(','));
    return reply.send(Readable.from(stream.chunks, { objectMode: false }));
  });

  app.post('/admin/v1/members', async (req, reply) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    const id = parseId(b.id);
    if (id === null) return reply.code(400).send({ error: 'INVALID_REQUEST', message: 'id must be a positive integer' });
    let addr;
    try {
      addr = validateAddress(b, 'member');
    } catch (e) {
      return reply.code(400).send({ error: 'INVALID_REQUEST', message: (e as Error).message });
    }
    const audit = memberAudit(req, { action: 'add_learner', node: id });
    return change(reply, () => node.addLearner(id, addr, CHANGE_TIMEOUT_MS, audit), audit);
  });

  app.post('/admin/v1/members/:id/promote', async (req, reply) => {
    const id = parseId((req.params as { id: string }).id);
    if (id === null) return reply.code(400).send({ error: 'INVALID_REQUEST', message: 'id must be a positive integer' });
    if (!node.confState().learners.includes(id)) return reply.code(400).send({ error: 'INVALID_REQUEST', message: `node ${id} is not a learner` });
    const audit = memberAudit(req, { action: 'promote', node: id });
    return change(reply, () => node.promote(id, CHANGE_TIMEOUT_MS, audit), audit);
  });

  app.delete('/admin/v1/members/:id', async (req, reply) => {
    const id = parseId((req.params as { id: string }).id);
    if (id === null) return reply.code(400).send({ error: 'INVALID_REQUEST', message: 'id must be a positive integer' });
    const cs = node.confState();
    if (![...cs.voters, ...cs.learners].includes(id)) return reply.code(404).send({ error: 'NOT_FOUND', message: `node ${id} is not a member` });
    const audit = memberAudit(req, { action: 'remove', node: id });
    return change(reply, () => node.removeMember(id, CHANGE_TIMEOUT_MS, audit), audit);
  });

  app.post('/admin/v1/leader/transfer', async (req, reply) => {
    const to = parseId(((req.body ?? {}) as Record<string, unknown>).to);
    if (to === null) return reply.code(400).send({ error: 'INVALID_REQUEST', message: 'to must be a positive integer' });
    if ((await node.status()).role !== 'leader') return notLeader(reply);
    try {
      await node.transferLeadership(to);
    } catch (e) {
      return reply.code(400).send({ error: 'TRANSFER_REFUSED', message: (e as Error).message });
    }
    // A transfer is no log entry, so it cannot carry its record the way a membership change does:
    // a separate append, proposed once the transfer is started (the write follows leadership to
    // the new leader). If that write fails the answer says audited:false; a crash in between loses
    // the record, not the transfer.
    const audited = await auditMember(req, { action: 'transfer_leader', from: node.id, to });
    return reply.code(202).send({ ok: true, to, ...(opts.oauth ? { audited } : {}) });
  });

  if (opts.oauth) {
    registerOAuthAdminRoutes(app, { node, master: opts.oauth.master, config: opts.oauth.config, log: opts.oauth.log ?? pino({ level: 'silent' }), rotateSigningKeys: opts.oauth.rotateSigningKeys, notLeader });
    registerAuditAdminRoutes(app, { node, log: opts.oauth.log ?? pino({ level: 'silent' }) });
  } else {
    // Without a master key these routes do not exist, and fastify's own 404 ("Route POST:/admin/v1/
    // clients not found") reads like a mistyped URL: say what is missing and which setting gives it.
    const noKey = async (_req: FastifyRequest, reply: FastifyReply) => reply.code(NO_MASTER_KEY_STATUS).send({ error: 'NO_MASTER_KEY', message: NO_MASTER_KEY_MESSAGE });
    for (const prefix of MASTER_KEY_ROUTE_PREFIXES) {
      app.all(prefix, noKey);
      app.all(`${prefix}/*`, noKey);
    }
  }

  return app;
}
