// The admin API's audit routes (`raftauth audit …`), registered by buildAdminApp (src/ops/admin.ts)
// with the OAuth routes, behind the same bearer token.
//
//   GET /admin/v1/audit?from=&to=&sub=&client_id=&type=&after=&limit=   a page of records (JSON)
//   GET /admin/v1/audit/export?from=&to=&sub=&client_id=&type=          every match, JSON Lines, streamed
//   GET /admin/v1/audit/verify[?node=N]                                  this node's own copy of the chain
//
// Query and export read this node's applied state after a ReadIndex barrier (Raft dissertation
// §6.4), so they show at least every event acknowledged before the request. Verify deliberately
// reads only this node's copy with no barrier: its point is to check each node's own disk, so the
// CLI asks every node. `from`/`to` are milliseconds since the epoch or RFC 3339 date-times; `to` is
// exclusive; `type` is a comma-separated list.
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApplyResult, ReadRequest } from '../node/api.ts';
import { NodeError } from '../node/api.ts';
import { audit } from '../state/audit.ts';
import { keys } from '../state/keys.ts';
import { ContractError, must } from '../state/contract.ts';
import { checkCheckpoint, recordLine, ringJwks, scanAudit, verifyChain } from '../audit/chain.ts';
import type { ScanState, VerifyResult } from '../audit/chain.ts';
import { DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT, exportAudit, parseTime, parseTypes, queryAudit } from '../audit/query.ts';
import type { AuditFilter } from '../audit/query.ts';
import type { Logger } from 'pino';

const NODE_TIMEOUT_MS = 10_000;
/** Exports streamed at once; more get 429 (each holds a scan of the whole log). */
export const MAX_CONCURRENT_EXPORTS = 2;
/** Verifications at once (each hashes the whole chain). */
export const MAX_CONCURRENT_VERIFIES = 1;
const MAX_PARAM_CHARS = 128;

export interface AdminAuditNode {
  readonly id: number;
  read(req: ReadRequest): Promise<ApplyResult>;
  scanState: ScanState;
}

export interface AdminAuditOptions {
  readonly node: AdminAuditNode;
  readonly log: Logger;
}

class BadRequest extends Error {}

const QUERY_PARAMS = ['from', 'to', 'sub', 'client_id', 'type', 'after', 'limit'];
const EXPORT_PARAMS = ['from', 'to', 'sub', 'client_id', 'type'];

function params(req: FastifyRequest, allowed: readonly string[]): Record<string, string> {
  const q = (req.query ?? {}) as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(q)) {
    if (!allowed.includes(k)) throw new BadRequest(`unknown query parameter ${k.slice(0, 40)} (allowed: ${allowed.join(', ')})`);
    if (typeof v !== 'string') throw new BadRequest(`${k} must be given once`);
    if (v.length === 0 || v.length > MAX_PARAM_CHARS) throw new BadRequest(`${k} must be 1..${MAX_PARAM_CHARS} characters`);
    out[k] = v;
  }
  return out;
}

function filterOf(p: Record<string, string>): AuditFilter {
  const time = (k: 'from' | 'to'): number | null => {
    if (p[k] === undefined) return null;
    const t = parseTime(p[k]);
    if (t === null) throw new BadRequest(`${k} must be milliseconds since the epoch or an RFC 3339 date-time (e.g. 2026-11-23T12:00:00Z)`);
    return t;
  };
  let types = null;
  if (p.type !== undefined) {
    try {
      types = parseTypes(p.type);
    } catch (e) {
      throw new BadRequest((e as Error).message);
    }
  }
  return { from: time('from'), to: time('to'), sub: p.sub ?? null, clientId: p.client_id ?? null, types };
}

function nodeErrorStatus(e: { readonly code: string }): number {
  return e.code === 'INVALID_REQUEST' ? 400 : e.code === 'TIMEOUT' ? 504 : 503;
}

const NODE_CODES: ReadonlySet<string> = new Set(['UNAVAILABLE', 'TIMEOUT', 'STOPPING', 'INVALID_REQUEST']);

export function registerAuditAdminRoutes(app: FastifyInstance, o: AdminAuditOptions): void {
  const { node } = o;
  // Bound: RaftNode.scanState is a method.
  const scan: ScanState = (ks, opts) => node.scanState(ks, opts);
  const client = { node, requestTimeoutMs: NODE_TIMEOUT_MS };

  const handle =
    (fn: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>) =>
    async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
      try {
        return await fn(req, reply);
      } catch (e) {
        if (e instanceof BadRequest) return reply.code(400).send({ error: 'INVALID_REQUEST', message: e.message });
        if (e instanceof NodeError) return reply.code(nodeErrorStatus(e)).send({ error: e.code, message: e.message });
        // A node failure met by a state stub: the same answer, by its code.
        if (e instanceof ContractError && e.kind === 'error' && NODE_CODES.has(e.code)) return reply.code(nodeErrorStatus(e)).send({ error: e.code, message: e.message });
        throw e;
      }
    };

  app.get(
    '/admin/v1/audit',
    handle(async (req) => {
      const p = params(req, QUERY_PARAMS);
      const f = filterOf(p);
      let limit = DEFAULT_QUERY_LIMIT;
      if (p.limit !== undefined) {
        if (!/^[0-9]{1,4}$/.test(p.limit) || Number(p.limit) < 1 || Number(p.limit) > MAX_QUERY_LIMIT) throw new BadRequest(`limit must be an integer from 1 to ${MAX_QUERY_LIMIT}`);
        limit = Number(p.limit);
      }
      let after = 0;
      if (p.after !== undefined) {
        if (!/^[0-9]{1,16}$/.test(p.after) || !Number.isSafeInteger(Number(p.after))) throw new BadRequest('after must be a record seq (the next value of the previous page)');
        after = Number(p.after);
      }
      // The head read is the ReadIndex barrier: every event acknowledged before is applied here.
      const head = must(await audit.read.head(client, {}, 'linearizable'), 'reading the audit head');
      return queryAudit(scan, head, f, after, limit);
    }),
  );

  let exports = 0;
  app.get(
    '/admin/v1/audit/export',
    handle(async (req, reply) => {
      const f = filterOf(params(req, EXPORT_PARAMS));
      if (exports >= MAX_CONCURRENT_EXPORTS) return reply.code(429).send({ error: 'TOO_MANY_EXPORTS', message: `${MAX_CONCURRENT_EXPORTS} exports are running; try again later` });
      const head = must(await audit.read.head(client, {}, 'linearizable'), 'reading the audit head');
      exports++;
      let released = false;
      const release = (): void => {
        if (!released) {
          released = true;
          exports--;
        }
      };
      reply.raw.once('close', release);
      const lines = async function* (): AsyncGenerator<string> {
        try {
          for await (const r of exportAudit(scan, head, f)) yield recordLine(r);
        } finally {
          release();
        }
      };
      reply.header('content-type', 'application/jsonl; charset=utf-8');
      reply.header('x-raftauth-node-id', String(node.id));
      return reply.send(Readable.from(lines(), { objectMode: false }));
    }),
  );

  let verifying = 0;
  app.get(
    '/admin/v1/audit/verify',
    handle(async (req, reply) => {
      const p = params(req, ['node']);
      if (p.node !== undefined && p.node !== String(node.id)) {
        return reply.code(409).send({ error: 'WRONG_NODE', message: `this admin API is node ${node.id}'s, not node ${p.node}'s`, node: node.id });
      }
      if (verifying >= MAX_CONCURRENT_VERIFIES) return reply.code(429).send({ error: 'VERIFY_RUNNING', message: 'a verification is running on this node; try again later' });
      verifying++;
      try {
        const result = await verifyLocal();
        if (!result.ok) o.log.error({ firstBroken: result.firstBroken, why: result.why }, 'audit chain verification failed');
        return { node: node.id, ...result };
      } finally {
        verifying--;
      }
    }),
  );

  /** Verify this node's copy; a compaction racing the walk can make records vanish under it, so a failure is confirmed once against a fresh checkpoint. */
  const verifyLocal = async (): Promise<VerifyResult> => {
    let result: VerifyResult | null = null;
    for (let attempt = 0; attempt < 2; attempt++) {
      const head = must(await audit.read.head(client, {}, 'local'), 'reading the audit head');
      const checkpoint = must(await audit.read.checkpoint(client, {}, 'local'), 'reading the audit checkpoint');
      const ring = must(await keys.read.ring(client, {}, 'local'), 'reading the signing keys');
      const jwks = ringJwks(ring);
      result = await verifyChain({
        head,
        checkpoint,
        records: scanAudit(scan, (checkpoint?.seq ?? 0) + 1, head?.seq ?? null),
        checkCheckpoint: (cp) => checkCheckpoint(cp, jwks),
      });
      const after = must(await audit.read.checkpoint(client, {}, 'local'), 'reading the audit checkpoint');
      if (result.ok || after?.seq === checkpoint?.seq) return result;
    }
    return result!;
  };
}
