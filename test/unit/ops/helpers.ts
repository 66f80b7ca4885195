// Test support for src/ops: a parser of the Prometheus text format (enough to read values back),
// and the HTTP app of an in-process node served through fastify's inject (no socket needed).
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildHttpApp } from '../../../src/server/http.ts';
import { ReadCache } from '../../../src/server/read-cache.ts';
import { createLogger } from '../../../src/server/log.ts';
import type { NodeApi } from '../../../src/node/api.ts';
import type { RaftNode } from '../../../src/node/node.ts';
import { buildAdminApp } from '../../../src/ops/admin.ts';
import type { MasterKeyRing } from '../../../src/crypto/seal.ts';
import type { OAuthConfig } from '../../../src/oauth/config.ts';
import { adminKeyRotation, ensureOAuthState } from '../../../src/server/oauth-node.ts';
import type { LocalCluster } from '../node/helpers.ts';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parse Prometheus text exposition (0.0.4): one sample per non-comment line. Throws on a line it cannot read. */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unreadable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[3]) for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    // Prometheus reads values with Go's strconv.ParseFloat, which takes NaN and Inf in any case
    // (prom-client writes 'Nan', e.g. for an event-loop lag mean before the first sample).
    const v = /^\+?inf$/i.test(m[4]!) ? Infinity : /^-inf$/i.test(m[4]!) ? -Infinity : /^nan$/i.test(m[4]!) ? NaN : Number(m[4]);
    if (Number.isNaN(v) && !/^nan$/i.test(m[4]!)) throw new Error(`bad value in metrics line: ${line}`);
    out.push({ name: m[1]!, labels, value: v });
  }
  return out;
}

/** The families announced by `# TYPE` lines, with their types. */
export function metricTypes(text: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1]!, m[2]!);
  return types;
}

/** Sum of the samples named `name` whose labels include `match`. */
export function sum(samples: readonly Sample[], name: string, match: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

/** Does any sample named `name` carry labels including `match`? */
export function has(samples: readonly Sample[], name: string, match: Record<string, string> = {}): boolean {
  return samples.some((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** The HTTP app for an in-process node (HTTP served by the primary itself: http.workers = 0). */
export async function appFor(node: NodeApi & { id: number }, opts: { readyMaxApplyLag?: number } = {}): Promise<FastifyInstance> {
  const app = buildHttpApp({
    node,
    cache: new ReadCache(),
    http: { bodyLimitBytes: 64 * 1024, requestTimeoutMs: 5_000, ...(opts.readyMaxApplyLag !== undefined ? { readyMaxApplyLag: opts.readyMaxApplyLag } : {}) },
    nodeId: node.id,
    workerId: 0,
    logger: createLogger('silent', { node: node.id }),
  });
  await app.ready();
  return app;
}

/**
 * Node 1 of `cluster` (a one-node cluster, started and leading), with the OAuth state bootstrapped
 * as a leader does it (data key, signing keys), and the admin API with its OAuth routes over it.
 */
export async function oauthAdminNode(cluster: LocalCluster, master: MasterKeyRing, config: OAuthConfig, token: string): Promise<{ node: RaftNode; app: FastifyInstance }> {
  await cluster.init([1]);
  const node = await cluster.start(1);
  await cluster.leader();
  await ensureOAuthState(
    (domain, op, args) => node.housekeeping(domain, op, args, 5_000),
    (domain, op, args) => node.read({ domain, op, args, timeoutMs: 5_000 }),
    master,
    'ES256',
    Date.now(),
  );
  const app = buildAdminApp({ node, token, oauth: { master, config, rotateSigningKeys: adminKeyRotation(node, master, config, pino({ level: 'silent' })) } });
  await app.ready();
  return { node, app };
}
