// Health and readiness of a node, for load balancers and orchestrators.
//
//   GET /healthz          200 whenever the process serves HTTP (liveness: restart me if this fails).
//   GET /readyz           200 only when this node can serve linearizable requests now, else 503;
//                         the JSON body says why: { ready, reasons: [...], node: NodeHealth }.
//   GET /readyz?deep=1    the same, plus a real linearizable round trip (a ReadIndex barrier,
//                         dissertation §6.4) that must finish within DEEP_READY_TIMEOUT_MS.
//
// Ready means all of:
//  - the node is not stopping;
//  - a leader is known;
//  - the node heard from it recently: a follower within one election timeout of its last message
//    from the leader; the leader within one election timeout of its last contact with a majority.
//    The bound is the election timeout because that is when Raft itself gives up on a leader
//    (§5.2 for followers, check-quorum §6.2 for the leader): a node cut off from the majority
//    turns not-ready as soon as the cluster would start replacing what it can no longer reach,
//    while a heartbeat or two lost on a healthy link (heartbeats come every heartbeatTick, a
//    fraction of it) does not flap readiness;
//  - applied is within http.readyMaxApplyLag entries of commit: a node replaying a long backlog
//    would answer reads only after the replay, so it should not take traffic yet;
//  - with ?deep=1: the round trip succeeded.
// The facts come from the node (NodeApi.health; over IPC in a worker); the decision is made here,
// in whichever process serves HTTP.
import type { FastifyInstance } from 'fastify';
import type { NodeApi, NodeHealth } from '../node/api.ts';

/** Default http.readyMaxApplyLag: committed-but-unapplied entries a ready node may have. */
export const DEFAULT_READY_MAX_APPLY_LAG = 1000;
/** Deadline of the deep check's round trip (shortened by the request's own deadline). */
export const DEEP_READY_TIMEOUT_MS = 1_000;
/** Extra time after the deep deadline before this layer stops waiting for the node's answer. */
const HEALTH_GRACE_MS = 500;

export interface ReadinessVerdict {
  readonly ready: boolean;
  /** Why the node is not ready (empty when it is). */
  readonly reasons: readonly string[];
}

/** Decide readiness from a node's facts (pure: the tests call it with made-up facts too). */
export function evaluateReadiness(h: NodeHealth, maxApplyLag: number): ReadinessVerdict {
  const reasons: string[] = [];
  if (h.stopping) reasons.push('the node is stopping');
  if (h.leader === 0) {
    reasons.push('no leader known');
  } else if (h.leaderContactAgeMs === null) {
    reasons.push(h.leader === h.id ? 'the leader has not heard from a majority of voters' : `no message received from the leader (node ${h.leader})`);
  } else if (h.leaderContactAgeMs > h.electionTimeoutMs) {
    reasons.push(
      h.leader === h.id
        ? `the leader last heard from a majority ${h.leaderContactAgeMs} ms ago (election timeout ${h.electionTimeoutMs} ms)`
        : `last message from the leader (node ${h.leader}) ${h.leaderContactAgeMs} ms ago (election timeout ${h.electionTimeoutMs} ms)`,
    );
  }
  const lag = h.commit - h.applied;
  if (lag > maxApplyLag) reasons.push(`applied index ${h.applied} is ${lag} entries behind commit ${h.commit} (limit ${maxApplyLag})`);
  if (h.deep !== null && !h.deep.ok) reasons.push(`linearizable round trip failed after ${h.deep.ms} ms: ${h.deep.error ?? 'unknown error'}`);
  return { ready: reasons.length === 0, reasons };
}

export interface HealthRouteOptions {
  readonly node: NodeApi;
  readonly nodeId: number;
  readonly maxApplyLag: number;
  /** The request deadline of the HTTP layer (http.requestTimeoutMs): the deep check never exceeds it. */
  readonly requestTimeoutMs: number;
}

function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/** Register /healthz and /readyz on a serving app. */
export function registerHealthRoutes(app: FastifyInstance, opts: HealthRouteOptions): void {
  const { node } = opts;

  app.get('/healthz', async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    return reply.code(200).send({ status: 'ok', node: opts.nodeId, pid: process.pid });
  });

  app.get<{ Querystring: Record<string, string | undefined> }>('/readyz', async (req, reply) => {
    reply.header('cache-control', 'no-store');
    const d = req.query.deep;
    if (d !== undefined && d !== '0' && d !== '1') return reply.code(400).send({ error: 'INVALID_REQUEST', message: 'deep must be 0 or 1' });
    const deep = d === '1';
    if (!node.health) return reply.code(503).send({ ready: false, reasons: ['the node reports no health'], node: null });
    const timeoutMs = Math.min(DEEP_READY_TIMEOUT_MS, opts.requestTimeoutMs);
    let h: NodeHealth;
    try {
      h = await bounded(node.health({ deep, timeoutMs }), timeoutMs + HEALTH_GRACE_MS, 'node health');
    } catch (e) {
      return reply.code(503).send({ ready: false, reasons: [`cannot get the node's health: ${e instanceof Error ? e.message : String(e)}`], node: null });
    }
    const v = evaluateReadiness(h, opts.maxApplyLag);
    return reply.code(v.ready ? 200 : 503).send({ ready: v.ready, reasons: v.reasons, node: h });
  });
}
