// Fill a running cluster's state through its replicated write path, fast: the records of
// scripts/lib/fill-records.ts sent with the contract's own stubs (users.create, mfa['totp.enroll'],
// tokens['code.redeem'], audit.append: src/state/*.ts), many units in flight. Used by
// `npm run bench:scale` (scripts/bench-scale.ts) and the partition suite's --prefill
// (test/jepsen/runner.ts).
//
// How a write travels: the filler is a client with a certificate of the cluster CA naming a node id
// of its own (not a member). Its proposal router (src/node/router.ts, the node's own: one session,
// numbered commands, retries with the same (session, seq) inside the deadline, exactly once, Raft
// dissertation §6.3) forwards each command to the leader on the peer transport's ProposeStream
// (src/transport/peer-client.ts), exactly as a follower forwards the writes its HTTP workers hand
// it. The leader proposes the bytes as they came: the same entries, the same apply, the same
// fsynced majority as an OAuth request's write. What it skips is the HTTP request and the worker's
// IPC hop in front of the router, so it can drive the log faster than HTTP clients on this machine.
//
// Sealed fields are sealed with the cluster's own data key (read from a backup of the tiny state
// before the fill, unwrapped with the master key file), so every record opens as the server's own
// would: a filled user can sign in with FILL_PASSWORD.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { hashPassword } from '../../src/crypto/password.ts';
import type { ScryptParams } from '../../src/crypto/password.ts';
import { MasterKeyRing, unwrapRing } from '../../src/crypto/seal.ts';
import type { Sealer } from '../../src/crypto/seal.ts';
import type { DataKeyRing } from '../../src/crypto/records.ts';
import { issueNodeCert } from '../../src/crypto/certs.ts';
import type { ClusterCa } from '../../src/crypto/certs.ts';
import { unpackValue } from '../../src/codec/msgpack.ts';
import { ProposalRouter } from '../../src/node/router.ts';
import type { ApplyResult } from '../../src/node/api.ts';
import { PeerClient } from '../../src/transport/peer-client.ts';
import { DEFAULT_LIMITS } from '../../src/transport/limits.ts';
import { newStats } from '../../src/transport/stats.ts';
import type { ProposeRequest, ProposeResult, TransportLogger } from '../../src/transport/types.ts';
import { saveBackup, verifyBackupFile } from '../../src/ops/backup.ts';
import { DATA_KEYS_KEYSPACE } from '../../src/state/crypto-keys.ts';
import { RING_KEY } from '../../src/state/keys.ts';
import type { Outcome, StateClient } from '../../src/state/contract.ts';
import { users } from '../../src/state/users.ts';
import { mfa } from '../../src/state/mfa.ts';
import { tokens } from '../../src/state/tokens.ts';
import { audit } from '../../src/state/audit.ts';
import { kv } from '../../src/state/kv.ts';
import { LatencyHistogram } from '../bench/histogram.ts';
import type { LatencySummary } from '../bench/histogram.ts';
import { behindWrite, expiringWrite, unitWrites } from './fill-records.ts';
import type { FillContext, FillWrite } from './fill-records.ts';

/** The node id the filler's certificate names; far above any member id a test or bench uses. */
export const FILLER_NODE_ID = 4_000_000;
/** The password of every filled user. */
export const FILL_PASSWORD = 'fill-password-correct-horse';
/** Cheap scrypt for the one hash every user reuses (the cost is the server's, at sign-in; not the fill's). */
const FILL_SCRYPT: ScryptParams = { ln: 10, r: 8, p: 1 };
/** A write's deadline, as an HTTP request's (x-request-timeout-ms default). */
export const FILL_WRITE_TIMEOUT_MS = 5_000;
/** Deadline of one status request while looking for the leader. */
const STATUS_TIMEOUT_MS = 1_000;

const silent: TransportLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

export interface ClusterMember {
  readonly id: number;
  /** host:port of its peer (raft) listener. */
  readonly raftAddress: string;
  /** http://host:port of its public HTTP API (GET /v1/status tells who leads). */
  readonly httpUrl: string;
}

/**
 * A StateClient (src/state/contract.ts) whose writes go through a ProposalRouter that forwards to
 * the leader on the peer transport. Reads are not offered (the filler only writes).
 */
export class ForwardingClient implements StateClient {
  readonly requestTimeoutMs: number;
  readonly node: StateClient['node'];
  private readonly router: ProposalRouter;
  private readonly peers = new Map<number, PeerClient>();
  private readonly members: readonly ClusterMember[];
  private leaderId = 0;
  private lookingUp: Promise<void> | null = null;
  private closed = false;

  constructor(opts: { members: readonly ClusterMember[]; tls: { caPem: string; certPem: string; keyPem: string }; selfId?: number; requestTimeoutMs?: number }) {
    const selfId = opts.selfId ?? FILLER_NODE_ID;
    this.members = opts.members;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? FILL_WRITE_TIMEOUT_MS;
    for (const m of opts.members) {
      this.peers.set(m.id, new PeerClient({ selfId, peerId: m.id, address: m.raftAddress, tls: opts.tls, limits: DEFAULT_LIMITS, logger: silent, stats: newStats() }));
    }
    this.router = new ProposalRouter({
      id: selfId,
      proposeLocal: () => Promise.resolve({ kind: 'notLeader', leader: 0 }),
      leader: () => this.leaderId,
      leaderChange: (ms) => this.leaderChange(ms),
      forward: (to, req) => this.forward(to, req),
      now: () => Date.now(),
    });
    const router = this.router;
    this.node = {
      write: (req) => router.write(req.domain, req.op, req.args, req.timeoutMs),
      writeEncoded: (req) => router.writePayload(req.payload, req.timeoutMs),
      read: (): Promise<ApplyResult> => Promise.reject(new Error('the filler does not read')),
    };
  }

  /** Learn the leader from the members' /v1/status (the first that names one). */
  async findLeader(): Promise<number> {
    const views = await Promise.all(
      this.members.map(async (m) => {
        try {
          const r = await fetch(`${m.httpUrl}/v1/status`, { signal: AbortSignal.timeout(STATUS_TIMEOUT_MS) });
          return r.ok ? ((await r.json()) as { role: string; id: number; leader: number }) : null;
        } catch {
          return null;
        }
      }),
    );
    const lead = views.find((v) => v?.role === 'leader') ?? views.find((v) => v !== null && v.leader > 0);
    this.leaderId = lead ? (lead.role === 'leader' ? lead.id : lead.leader) : 0;
    return this.leaderId;
  }

  private async leaderChange(ms: number): Promise<void> {
    const start = Date.now();
    if (!this.closed) {
      this.lookingUp ??= this.findLeader().then(
        () => {
          this.lookingUp = null;
        },
        () => {
          this.lookingUp = null;
        },
      );
      await this.lookingUp;
    }
    const left = ms - (Date.now() - start);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
  }

  private async forward(to: number, req: ProposeRequest): Promise<ProposeResult> {
    const peer = this.peers.get(to);
    if (!peer) {
      this.leaderId = 0;
      return { ok: false, error: { code: 'UNAVAILABLE', leaderHint: 0, message: `node ${to} is not one the filler knows` } };
    }
    const r = await peer.forward(req);
    if (!r.ok && r.error.leaderHint > 0 && r.error.leaderHint !== to) this.leaderId = r.error.leaderHint;
    else if (!r.ok && r.error.code === 'NOT_LEADER') this.leaderId = 0;
    return r;
  }

  /** Send one filler write with the contract's stub for it. */
  send(w: FillWrite): Promise<Outcome<unknown, string>> {
    const stub = (STUBS[w.domain] as unknown as Record<string, (c: StateClient, a: unknown) => Promise<Outcome<unknown, string>>>)[w.op];
    if (stub === undefined) throw new Error(`no contract write ${w.domain}.${w.op}`);
    return stub(this, w.args);
  }

  close(): void {
    this.closed = true;
    for (const p of this.peers.values()) p.close();
  }
}

const STUBS = { users, mfa, tokens, audit, kv } as const;

/** Whether an outcome is what the fill meant: applied, and for the ops answering { ok }, ok. */
export function fillSucceeded(w: FillWrite, o: Outcome<unknown, string>): boolean {
  if (o.kind !== 'ok') return false;
  if (w.op === 'code.redeem' || w.op === 'totp.accept') return (o.value as { ok?: unknown } | null)?.ok === true;
  return true;
}

/** A failure's name for the report: TIMEOUT, another error code, or refused:<code>, or not_ok:<op>. */
export function failureKind(w: FillWrite, o: Outcome<unknown, string>): string {
  if (o.kind === 'error') return o.code;
  if (o.kind === 'refused') return `refused:${o.code}`;
  return `not_ok:${w.domain}.${w.op}:${String((o.value as { reason?: unknown } | null)?.reason ?? '?')}`;
}

/** A certificate of the cluster CA for the filler's own node id. */
export async function fillerTls(ca: ClusterCa, selfId = FILLER_NODE_ID): Promise<{ caPem: string; certPem: string; keyPem: string }> {
  const c = await issueNodeCert(ca, selfId);
  return { caPem: ca.certPem, certPem: c.certPem, keyPem: c.keyPem };
}

/**
 * The cluster's data-key sealer: a backup of the (small) state from an admin API, its data-key
 * ring unwrapped with the master key. Waits (bounded) until the leader has created the ring.
 */
export async function clusterSealer(opts: { adminUrls: readonly string[]; token: string; masterKeyText: string; timeoutMs: number }): Promise<Sealer> {
  const master = MasterKeyRing.parse(opts.masterKeyText, 'master key');
  const deadline = Date.now() + opts.timeoutMs;
  const dir = await mkdtemp(join(tmpdir(), 'raftauth-fill-'));
  try {
    for (let attempt = 0; ; attempt++) {
      const file = join(dir, `state-${attempt}.snap`);
      let why: string;
      try {
        await saveBackup({ adminUrls: opts.adminUrls, token: opts.token, outPath: file, timeoutMs: Math.max(1_000, deadline - Date.now()) });
        const b = await verifyBackupFile(file);
        const rec = b.records.find((r) => r.keyspace === DATA_KEYS_KEYSPACE && new TextDecoder().decode(r.key) === RING_KEY);
        if (rec) return unwrapRing(unpackValue<DataKeyRing>(rec.value), master);
        why = 'the cluster has no data key yet';
      } catch (e) {
        why = (e as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`could not read the cluster's data key within ${opts.timeoutMs} ms: ${why}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The PHC string every filled user's sealed hash holds (hashed once). */
export function fillPasswordPhc(): Promise<string> {
  return hashPassword(FILL_PASSWORD, FILL_SCRYPT);
}

export async function readMasterKey(file: string): Promise<string> {
  return readFile(file, 'utf8');
}

export interface FillStats {
  readonly units: number;
  readonly writes: number;
  readonly failed: number;
  /** Failures by kind (failureKind). */
  readonly failures: Record<string, number>;
  readonly seconds: number;
  readonly writesPerSec: number;
  readonly latency: LatencySummary;
}

export interface FillOptions {
  /** Units in flight at once (each unit's writes run in order). */
  readonly concurrency: number;
  /** Called now and then with the units done. */
  readonly progress?: (done: number, total: number) => void;
  /** Give up (throw) when this much time has passed. */
  readonly deadlineMs: number;
  /** Stop early (resolves with what was done) when this returns true; checked before every write, so a unit may end unfinished. */
  readonly stop?: () => boolean;
}

/**
 * Run `count` jobs (numbered from `first`), `concurrency` at a time; each job is a list of writes
 * sent in order (a failed write ends its job: the next ones depend on it). Returns the counts and
 * the latency of every write. Throws when deadlineMs passes.
 */
export async function runWrites(client: ForwardingClient, jobs: { first: number; count: number; writesOf: (i: number) => FillWrite[] }, o: FillOptions): Promise<FillStats> {
  const hist = new LatencyHistogram();
  const failures: Record<string, number> = {};
  let writes = 0;
  let failed = 0;
  let next = jobs.first;
  let done = 0;
  const end = jobs.first + jobs.count;
  const t0 = performance.now();
  const deadline = Date.now() + o.deadlineMs;
  let lastProgress = t0;
  let expired = false;
  const worker = async (): Promise<void> => {
    while (next < end && !expired && !(o.stop?.() ?? false)) {
      if (Date.now() > deadline) {
        expired = true;
        return;
      }
      const i = next++;
      for (const w of jobs.writesOf(i)) {
        // A measurement ends at once: a unit's remaining writes are not sent after stop().
        if (o.stop?.() ?? false) break;
        const s = performance.now();
        const out = await client.send(w);
        hist.recordMs(performance.now() - s);
        writes++;
        if (!fillSucceeded(w, out)) {
          failed++;
          const k = failureKind(w, out);
          failures[k] = (failures[k] ?? 0) + 1;
          break;
        }
      }
      done++;
      if (o.progress && performance.now() - lastProgress > 5_000) {
        lastProgress = performance.now();
        o.progress(done, jobs.count);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, jobs.count)) }, () => worker()));
  if (expired) throw new Error(`the writes did not finish within ${Math.round(o.deadlineMs / 1000)} s (${done} of ${jobs.count} done)`);
  const seconds = (performance.now() - t0) / 1000;
  return { units: done, writes, failed, failures, seconds: round(seconds, 3), writesPerSec: round(writes / Math.max(seconds, 1e-9), 1), latency: hist.summary() };
}

/** Fill `units` units (numbered from `first`) of the record mix. */
export function fillUnits(client: ForwardingClient, ctx: FillContext, first: number, units: number, o: FillOptions): Promise<FillStats> {
  return runWrites(client, { first, count: units, writesOf: (i) => unitWrites(ctx, i) }, o);
}

/** Write `count` authorization codes that expire at expMs (the sweep's work). */
export function fillExpiring(client: ForwardingClient, ctx: FillContext, first: number, count: number, expMs: number, o: FillOptions): Promise<FillStats> {
  return runWrites(client, { first, count, writesOf: (i) => [expiringWrite(ctx, i, expMs)] }, o);
}

/** Write `count` log-only KV puts (numbered from `first`): log entries without new records. */
export function fillBehind(client: ForwardingClient, ctx: FillContext, first: number, count: number, o: FillOptions): Promise<FillStats> {
  return runWrites(client, { first, count, writesOf: (i) => [behindWrite(ctx, i)] }, o);
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
