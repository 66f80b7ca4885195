// What every OAuth endpoint gets: the node (writes and reads through Raft), the read cache
// (clients, keys), the crypto runtime (sealing, signing keys), the configuration and a clock.
// One object, built once per HTTP app (src/oauth/index.ts).
import type { NodeApi } from '../node/api.ts';
import type { FastifyRequest } from 'fastify';
import type { RequestMeta } from '../state/mfa-ops.ts';
import type { Logger } from 'pino';
import type { CryptoRuntime } from '../crypto/runtime.ts';
import type { OAuthConfig } from './config.ts';
import { ServerError, TemporarilyUnavailable } from './errors.ts';
import type { OAuthError } from './errors.ts';
import { ContractError } from '../state/contract.ts';
import { AuditQueueFull } from '../audit/batcher.ts';

/**
 * The read cache of replicated tables (clients, keys) as the endpoints use it: the serving process
 * fills it from what the primary pushes (src/server/read-cache.ts ReadCache implements it). Defined
 * here, where it is used, so the endpoints import nothing of the server (docs/architecture.md).
 */
export interface ReadTables {
  /** The entry of `table` under `key`, or undefined (not pushed yet, or absent). */
  get(table: string, key: string): unknown;
  /** The table's version, or 0 if it was never pushed. */
  version(table: string): number;
}

export interface OAuthContext {
  readonly node: NodeApi;
  readonly cache: ReadTables;
  readonly crypto: CryptoRuntime;
  readonly config: OAuthConfig;
  readonly log: Logger;
  /** Milliseconds since the epoch (tests inject a clock). */
  readonly now: () => number;
  /** Deadline of each node call (the HTTP request deadline, http.requestTimeoutMs). */
  readonly requestTimeoutMs: number;
}

/**
 * A failure of the state layer as the OAuth error to answer with (every OAuth error handler asks
 * this first): a node that could not reach a leader in time is temporarily_unavailable (503,
 * Retry-After), never a half-done answer; a full audit queue too; any other contract error or
 * refusal nobody handled is a server_error. Decided by code, never by message.
 */
export function stateFailure(err: unknown): OAuthError | null {
  if (err instanceof AuditQueueFull) return new TemporarilyUnavailable('the audit log is busy; retry');
  if (!(err instanceof ContractError)) return null;
  if (err.kind === 'error' && (err.code === 'UNAVAILABLE' || err.code === 'STOPPING')) return new TemporarilyUnavailable('the cluster is unavailable; retry');
  if (err.kind === 'error' && err.code === 'TIMEOUT') return new TemporarilyUnavailable('the cluster did not answer in time; retry');
  // The code and message stay in the server's log (the handlers log 5xx errors), not in the answer.
  return new ServerError('the request was refused by the replicated state');
}

/**
 * What the serving node knows of a request, for throttling and audit records (`meta` of the
 * audited and MFA ops): the peer address of the connection. x-forwarded-for is not trusted: any
 * client can send it, and a forged address would both dodge per-IP throttling and falsify the
 * audit trail. Behind a proxy this is the proxy's address.
 */
export function requestMeta(req: FastifyRequest): RequestMeta {
  return { ip: req.socket?.remoteAddress ?? null };
}
