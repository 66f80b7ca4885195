// The OAuth server's side of the primary process: what the node does for the HTTP workers.
//  - cache tables: after each applied batch, the `clients`, `signing_keys` and `data_keys` tables
//    are rebuilt from state when their keyspaces changed, and pushed to every worker;
//  - bootstrap (leader only): create the data key and the first signing keys if the cluster has
//    none (idempotent in apply: two leaders racing create one ring);
//  - rotation (leader only): rotate the signing keys when the active one is older than the period;
//  - sweep (leader only): delete expired codes, tokens, sessions (tokens domain `sweep`);
//  - audit retention (leader only): export and compact audit records older than the retention
//    age, leaving a signed checkpoint (src/audit/retention.ts).
import type { ApplyResult } from '../node/api.ts';
import { unpackValue } from '../state/command.ts';
import { EXPIRY_KEYSPACE, MAX_SWEEP_KEYS, tokens } from '../state/tokens.ts';
import { must } from '../state/contract.ts';
import type { HousekeepingNode, Outcome } from '../state/contract.ts';
import { keys } from '../state/keys.ts';
import { dataKeys } from '../state/crypto-keys.ts';
import type { SigningAlg, SigningKeyRing } from '../state/oauth-ops.ts';
import { MasterKeyRing, newDataKey, unwrapRing } from '../crypto/seal.ts';
import type { Sealer } from '../crypto/seal.ts';
import { SigningKeys, generateSigningKey } from '../crypto/signing-keys.ts';
import { auditRetentionRound } from '../audit/retention.ts';
import { DATA_KEYS_TABLE, RING_KEY, SIGNING_KEYS_TABLE } from '../crypto/runtime.ts';
import { DEFAULT_OAUTH_CONFIG } from '../oauth/config.ts';
import type { OAuthConfig } from '../oauth/config.ts';
import type { NodeConfig } from './config.ts';
import type { Logger } from './log.ts';
import { AdminRefusal, statusOfCode } from '../ops/admin-oauth.ts';
import { DEFAULT_READ_CACHE_LIMITS } from './read-cache.ts';
import { MAX_IPC_MESSAGE_BYTES } from './ipc.ts';
import type { RotateSigningKeys } from '../ops/admin-oauth.ts';

/** The environment variable holding the master key text (wins over crypto.masterKeyFile). */
export const MASTER_KEY_ENV = 'RAFTAUTH_MASTER_KEY';

/** The node's master key ring, or null when none is configured (the node then serves no OAuth). */
export function loadMasterKey(config: Pick<NodeConfig, 'crypto'>, env: Readonly<Record<string, string | undefined>> = process.env): MasterKeyRing | null {
  const text = env[MASTER_KEY_ENV];
  if (text === undefined && config.crypto.masterKeyFile === null) return null;
  return MasterKeyRing.load({ file: config.crypto.masterKeyFile, env: text });
}

/** The OAuth layer's view of the node's `oauth` configuration section (and its `mfa` section, when given). */
export function oauthConfigOf(o: NodeConfig['oauth'], mfa?: NodeConfig['mfa']): OAuthConfig {
  return {
    ...DEFAULT_OAUTH_CONFIG,
    issuer: o.issuer,
    signingAlg: o.signingAlg,
    accessTokenTtlS: o.accessTokenTtlS,
    idTokenTtlS: o.idTokenTtlS,
    codeTtlS: o.codeTtlS,
    refreshTokenIdleTtlS: o.refreshTokenIdleTtlS,
    refreshTokenAbsoluteTtlS: o.refreshTokenAbsoluteTtlS,
    refreshGraceMs: o.refreshGraceMs,
    deviceCodeTtlS: o.deviceCodeTtlS,
    devicePollIntervalS: o.devicePollIntervalS,
    sessionTtlS: o.sessionTtlS,
    interactionTtlS: o.interactionTtlS,
    keyRotationPeriodS: o.keyRotationPeriodS,
    allowPlainPkce: o.allowPlainPkce,
    requirePkceForConfidential: o.requirePkceForConfidential,
    formBodyLimitBytes: o.formBodyLimitBytes,
    passwordScrypt: { ln: o.passwordScryptLn, r: 8, p: 1 },
    ...(mfa !== undefined ? { mfa: { rpId: mfa.rpId, rpName: mfa.rpName, origins: [...mfa.origins], requiredScopes: [...mfa.requiredScopes] } } : {}),
  };
}

export const CLIENTS_TABLE = 'clients';

type Write = (domain: string, op: string, args: unknown) => Promise<ApplyResult>;
type Read = (domain: string, op: string, args: unknown) => Promise<ApplyResult>;

/** A refusal from apply (its DomainError code) or a missing key ring, met by the primary's or the admin API's key work. */
export class OAuthStateError extends Error {
  readonly code: string;

  constructor(
    code: string,
    message: string,
  ) {
    super(message);
    this.code = code;
    this.name = 'OAuthStateError';
  }
}

/** A state stub's value, or its refusal or error as an OAuthStateError with the same code. */
function value<T>(o: Outcome<T, string>, what: string): T {
  if (o.kind !== 'ok') throw new OAuthStateError(o.code, `${what}: ${o.code} ${o.message}`);
  return o.value;
}

/** Make sure the cluster has a data key and signing keys. Runs on the leader; safe to repeat. */
export async function ensureOAuthState(write: Write, read: Read, master: MasterKeyRing, alg: SigningAlg, nowMs: number): Promise<{ sealer: Sealer; ring: SigningKeyRing }> {
  // The typed stubs over the caller's write and read (the leader's housekeeping, or a test's node).
  const leader: HousekeepingNode = { housekeeping: (domain, op, args) => write(domain, op, args) };
  const client = { node: { read: (req: { domain: string; op: string; args: unknown }) => read(req.domain, req.op, req.args) }, requestTimeoutMs: HOUSEKEEPING_TIMEOUT_MS };
  let dk = value(await dataKeys.read.ring(client, {}), 'reading the data keys');
  if (!dk) {
    const { id, key } = newDataKey();
    const { masterKid, wrapped } = master.wrap(key, id);
    value(await dataKeys.leader.init(leader, { key: { id, masterKid, wrapped, createdAt: nowMs } }, HOUSEKEEPING_TIMEOUT_MS), 'creating the data key');
    dk = value(await dataKeys.read.ring(client, {}), 'reading the data keys');
    if (!dk) throw new Error('the data key ring is missing after its creation');
  }
  const sealer = unwrapRing(dk, master);
  let ring = value(await keys.read.ring(client, {}), 'reading the signing keys');
  if (!ring) {
    const active = generateSigningKey(alg, sealer, nowMs, 'active');
    const next = generateSigningKey(alg, sealer, nowMs, 'next');
    value(await keys.leader.init(leader, { active, next }, HOUSEKEEPING_TIMEOUT_MS), 'creating the signing keys');
    ring = value(await keys.read.ring(client, {}), 'reading the signing keys');
    if (!ring) throw new Error('the signing key ring is missing after its creation');
  }
  return { sealer, ring };
}

/** Keyspaces whose change requires a table to be re-pushed. */
export const CACHE_KEYSPACES: Readonly<Record<string, string>> = { clients: CLIENTS_TABLE, 'sys.keys': SIGNING_KEYS_TABLE, 'sys.dk': DATA_KEYS_TABLE };

/** Build a cache table from state entries of its keyspace (values msgpack). */
export function cacheTable(table: string, entries: Iterable<readonly [string, Uint8Array]>): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [k, v] of entries) {
    if ((table === SIGNING_KEYS_TABLE || table === DATA_KEYS_TABLE) && k !== RING_KEY) continue;
    out.push([k, unpackValue(v)]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The primary's OAuth duties.

/** What the primary needs of the node for its OAuth duties (RaftNode implements it). */
export interface OAuthNodeHooks {
  onStateChange(listener: (keyspaces: ReadonlySet<string> | null) => void): () => void;
  scanState(keyspace: string, opts: { gte?: string; lt?: string; limit: number }): Promise<{ key: Uint8Array; value: Uint8Array }[]>;
  isLeader(): boolean;
  housekeeping(domain: string, op: string, args: unknown, timeoutMs: number): Promise<ApplyResult>;
  read(req: { domain: string; op: string; args: unknown; timeoutMs: number; consistency?: 'linearizable' | 'local' }): Promise<ApplyResult>;
}

export interface OAuthPrimaryOptions {
  readonly node: OAuthNodeHooks;
  readonly publish: (table: string, entries: [string, unknown][]) => void;
  readonly master: MasterKeyRing;
  readonly config: Pick<OAuthConfig, 'signingAlg' | 'keyRotationPeriodS' | 'accessTokenTtlS' | 'idTokenTtlS'>;
  readonly log: Logger;
  readonly now?: () => number;
  /** How often the leader checks bootstrap, rotation and the sweep. Default 1000 ms. */
  readonly tickMs?: number;
  /** Sweep period. Default 30 s; a round that stopped at its bound is followed by another at the next tick. */
  readonly sweepEveryMs?: number;
  /** Bounds of the sweep (default SWEEP_BATCH keys per command, SWEEP_MAX_BATCHES_PER_ROUND commands per round). */
  readonly sweep?: { readonly batch: number; readonly maxBatchesPerRound: number };
  /** Most entries of a cache table (default CACHE_TABLE_LIMIT; tests lower it). */
  readonly cacheTableLimit?: number;
  /** Most bytes of a cache table (default CACHE_TABLE_MAX_BYTES; tests lower it). */
  readonly cacheTableMaxBytes?: number;
  /** Audit retention (config `audit`); absent: records are kept forever. */
  readonly audit?: { readonly retentionDays: number; readonly exportDir: string; readonly everyMs?: number };
}

/**
 * Keys per sweep command (at most the tokens domain's MAX_SWEEP_KEYS, which apply enforces), and
 * sweep commands per round: a bound on the leader's work per round and on each entry's size.
 */
export const SWEEP_BATCH = MAX_SWEEP_KEYS;
export const SWEEP_MAX_BATCHES_PER_ROUND = 20;
/** How often the sweep reads the expiry index from its beginning rather than from where it left off. */
export const SWEEP_FULL_RESCAN_MS = 10 * 60_000;
/**
 * Most entries of a cache table (the read cache's own bound, which publish enforces). Of the tables
 * only `clients` can come near it (the key rings are one record each); nothing of the users,
 * tokens, sessions or audit records is cached. A rebuild reads at most this many records plus one
 * (to tell an overflow), so its cost does not grow with the keyspace.
 */
export const CACHE_TABLE_LIMIT = DEFAULT_READ_CACHE_LIMITS.maxEntriesPerTable;
/**
 * Most bytes of a cache table's entries (keys and msgpack values as stored; the IPC message that
 * carries the table re-encodes the same values the same way). A whole table travels to each worker
 * in one IPC message of at most MAX_IPC_MESSAGE_BYTES: a bigger one could not be sent at all, and
 * the workers would go on answering from the table before it — a deleted client still
 * authenticating there. A quarter of the message is left for the envelope and per-entry framing.
 */
export const CACHE_TABLE_MAX_BYTES = (MAX_IPC_MESSAGE_BYTES / 4) * 3;
/** Framing per entry counted against CACHE_TABLE_MAX_BYTES besides its key and value (a 2-array and a string header). */
const CACHE_ENTRY_OVERHEAD_BYTES = 8;
/** Clock skew allowed to resource servers when judging a retired key's last tokens. */
const RETIRE_SKEW_MS = 60_000;
const HOUSEKEEPING_TIMEOUT_MS = 10_000;

const dec = new TextDecoder();

/** What a rotation did: the ring's new version, the key that became active and the new next key. */
export interface RotationOutcome {
  readonly version: number;
  readonly active: string;
  readonly next: string;
}

type RotationNode = Pick<OAuthNodeHooks, 'read' | 'housekeeping'>;
type RotationConfig = Pick<OAuthConfig, 'signingAlg' | 'accessTokenTtlS' | 'idTokenTtlS'>;

/**
 * Rotate the signing keys now, from the cluster's current ring (linearizable reads): the next key
 * becomes active, the active one retires, a fresh next key is added. Used by the leader's schedule
 * and by the admin API (`raftauth keys rotate`). CONFLICT from apply if the ring changed meanwhile.
 * `meta` is the audit meta of the keys.rotated record: the admin's address when an admin asked.
 */
export async function rotateSigningKeys(
  node: RotationNode,
  master: MasterKeyRing,
  config: RotationConfig,
  log: Logger,
  nowMs: number,
  why = 'requested',
  meta: { readonly ip: string | null } | null = null,
): Promise<RotationOutcome> {
  const client = { node, requestTimeoutMs: HOUSEKEEPING_TIMEOUT_MS };
  const dk = value(await dataKeys.read.ring(client, {}), 'reading the data keys');
  const ring = value(await keys.read.ring(client, {}), 'reading the signing keys');
  if (!dk || !ring) throw new OAuthStateError('NOT_READY', 'the cluster has no keys yet (the leader creates them once it runs with a master key)');
  return rotateRing(node, unwrapRing(dk, master), ring, config, log, why, nowMs, meta);
}

/**
 * The admin API's trigger for a rotation (`raftauth keys rotate`; src/ops/admin-oauth.ts
 * RotateSigningKeys): rotateSigningKeys with the admin's address as the record's meta, and a
 * refusal it meets (CONFLICT, NOT_READY, …) as the admin API's answer for that code.
 */
export function adminKeyRotation(node: RotationNode, master: MasterKeyRing, config: RotationConfig, log: Logger): RotateSigningKeys {
  return async (nowMs, meta) => {
    try {
      return await rotateSigningKeys(node, master, config, log, nowMs, 'requested', meta);
    } catch (e) {
      if (e instanceof OAuthStateError) throw new AdminRefusal(statusOfCode(e.code), e.code, e.message);
      throw e;
    }
  };
}

async function rotateRing(node: RotationNode, sealer: Sealer, ring: SigningKeyRing, config: RotationConfig, log: Logger, why: string, nowMs: number, meta: { readonly ip: string | null } | null = null): Promise<RotationOutcome> {
  const next = generateSigningKey(config.signingAlg, sealer, nowMs, 'next');
  // A retired key stays in the JWKS until every token it signed has expired (plus skew).
  const retainMs = Math.max(config.accessTokenTtlS, config.idTokenTtlS) * 1000 + RETIRE_SKEW_MS;
  const r = await keys.leader.rotate(node, { expectVersion: ring.version, next, retainMs, ...(meta !== null ? { meta: { ip: meta.ip } } : {}) }, HOUSEKEEPING_TIMEOUT_MS);
  const v = value(r, 'rotating the signing keys');
  const active = ring.keys.find((k) => k.state === 'next')!.kid;
  log.info({ why, active, next: next.kid, version: v.version }, 'signing keys rotated');
  return { version: v.version, active, next: next.kid };
}

/**
 * The primary's OAuth duties: keep the workers' read-cache tables current, and on the leader
 * create the keys, rotate them on schedule and sweep expired records. Every leader action is a
 * housekeeping command that apply makes idempotent (init only if absent, rotate by version,
 * sweep re-checks expiry), so a deposed leader racing its successor does no harm.
 */
export class OAuthPrimary {
  private readonly o: OAuthPrimaryOptions;
  private unsubscribe: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly dirty = new Set<string>();
  private rebuilding: Promise<void> | null = null;
  private busy = false;
  private bootstrapped = false;
  private lastSweep = 0;
  /** The last sweep stopped at its bound with expired keys left: the next round sweeps again at once. */
  private sweepBehind = false;
  /**
   * The last index key this leader proposed to sweep (null: none yet this term): every key up to
   * it has been handed to apply, which deleted it or found it not deletable. The next round starts
   * after it instead of at the index's beginning, where the deleted entries lie as LevelDB
   * tombstones until a compaction and would be stepped over again by every round.
   */
  private sweepFloor: string | null = null;
  private lastFullSweep = 0;
  private readonly sweepBatch: number;
  private readonly sweepMaxBatches: number;
  private lastAuditRetention = 0;
  private readonly now: () => number;

  constructor(o: OAuthPrimaryOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
    this.sweepBatch = o.sweep?.batch ?? SWEEP_BATCH;
    this.sweepMaxBatches = o.sweep?.maxBatchesPerRound ?? SWEEP_MAX_BATCHES_PER_ROUND;
    // Apply refuses a sweep of more than MAX_SWEEP_KEYS keys (INVALID_ARGUMENT): never propose one.
    if (!Number.isSafeInteger(this.sweepBatch) || this.sweepBatch < 1 || this.sweepBatch > MAX_SWEEP_KEYS) throw new Error(`sweep.batch must be 1..${MAX_SWEEP_KEYS}`);
    if (!Number.isSafeInteger(this.sweepMaxBatches) || this.sweepMaxBatches < 1) throw new Error('sweep.maxBatchesPerRound must be a positive integer');
  }

  async start(): Promise<void> {
    this.unsubscribe = this.o.node.onStateChange((keyspaces) => {
      for (const ks of keyspaces ?? Object.keys(CACHE_KEYSPACES)) if (CACHE_KEYSPACES[ks]) this.dirty.add(ks);
      if (this.dirty.size > 0) void this.rebuild();
    });
    for (const ks of Object.keys(CACHE_KEYSPACES)) this.dirty.add(ks);
    await this.rebuild();
    this.timer = setInterval(() => void this.leaderRound(), this.o.tickMs ?? 1_000);
  }

  stop(): void {
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Rebuild every dirty table; changes arriving meanwhile are picked up by the next loop turn. */
  private rebuild(): Promise<void> {
    this.rebuilding ??= (async () => {
      try {
        while (this.dirty.size > 0) {
          const ks = this.dirty.values().next().value as string;
          this.dirty.delete(ks);
          const table = CACHE_KEYSPACES[ks]!;
          try {
            const limit = this.o.cacheTableLimit ?? CACHE_TABLE_LIMIT;
            const maxBytes = this.o.cacheTableMaxBytes ?? CACHE_TABLE_MAX_BYTES;
            const recs = await this.o.node.scanState(ks, { limit });
            // The records that fit the byte bound, in key order.
            let kept = 0;
            let bytes = 0;
            for (const r of recs) {
              bytes += r.key.length + r.value.length + CACHE_ENTRY_OVERHEAD_BYTES;
              if (bytes > maxBytes) break;
              kept++;
            }
            const over = kept < recs.length || (recs.length === limit && (await this.o.node.scanState(ks, { gte: `${dec.decode(recs[limit - 1]!.key)}\u0000`, limit: 1 })).length > 0);
            if (over) {
              // Past a bound the table holds the first records in key order; the others are found by
              // lookupClient's read through the node (src/oauth/clients.ts), one ReadIndex each.
              this.o.log.error({ table, entries: kept, limit, maxBytes, lastCached: kept > 0 ? dec.decode(recs[kept - 1]!.key) : null }, 'read-cache table over its bound: the records after the first ones are not cached');
            }
            this.o.publish(table, cacheTable(table, recs.slice(0, kept).map((r) => [dec.decode(r.key), r.value] as const)));
          } catch (e) {
            this.o.log.error({ err: e, table }, 'cannot rebuild a read-cache table');
          }
        }
      } finally {
        this.rebuilding = null;
      }
    })();
    return this.rebuilding;
  }

  /** One round of the leader's duties (the timer runs it every tickMs; tests call it directly). A follower does nothing. */
  async leaderRound(): Promise<void> {
    if (!this.o.node.isLeader()) {
      // What this node knew of the index as leader is not to be trusted in a later term: the next
      // time it leads, the sweep starts from the index's beginning.
      this.sweepFloor = null;
      this.sweepBehind = false;
      return;
    }
    if (this.busy) return;
    this.busy = true;
    try {
      const write = (domain: string, op: string, args: unknown) => this.o.node.housekeeping(domain, op, args, HOUSEKEEPING_TIMEOUT_MS);
      // Once the keys exist, this node's own applied state is enough to watch them (no ReadIndex each second).
      const consistency = this.bootstrapped ? ('local' as const) : ('linearizable' as const);
      const read = (domain: string, op: string, args: unknown) => this.o.node.read({ domain, op, args, timeoutMs: HOUSEKEEPING_TIMEOUT_MS, consistency });
      const { sealer, ring } = await ensureOAuthState(write, read, this.o.master, this.o.config.signingAlg, this.now());
      if (!this.bootstrapped) {
        this.bootstrapped = true;
        this.o.log.info({ keys: ring.keys.map((k) => `${k.kid}:${k.state}`) }, 'OAuth keys ready');
      }
      const active = ring.keys.find((k) => k.state === 'active');
      if (active?.activatedAt != null && this.now() - active.activatedAt >= this.o.config.keyRotationPeriodS * 1000) {
        await this.rotate(sealer, ring, 'scheduled');
      }
      if (this.sweepBehind || this.now() - this.lastSweep >= (this.o.sweepEveryMs ?? 30_000)) {
        this.lastSweep = this.now();
        await this.sweep();
      }
      const audit = this.o.audit;
      if (audit && this.now() - this.lastAuditRetention >= (audit.everyMs ?? 60_000)) {
        this.lastAuditRetention = this.now();
        const signingKey = SigningKeys.fromRing(ring, sealer).active();
        await auditRetentionRound(this.o.node, { retentionDays: audit.retentionDays, exportDir: audit.exportDir, now: this.now(), signingKey, log: this.o.log });
      }
    } catch (e) {
      this.o.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'OAuth leader duties failed; retrying');
    } finally {
      this.busy = false;
    }
  }

  /** Rotate the signing keys now (also `raftauth keys rotate`). Returns the new ring's version. */
  rotateNow(): Promise<RotationOutcome> {
    return rotateSigningKeys(this.o.node, this.o.master, this.o.config, this.o.log, this.now());
  }

  private rotate(sealer: Sealer, ring: SigningKeyRing, why: string): Promise<RotationOutcome> {
    return rotateRing(this.o.node, sealer, ring, this.o.config, this.o.log, why, this.now());
  }

  /**
   * Delete expired records: read the expiry index (tokens.ts: `<exp>|<keyspace>|<key>`, in exp
   * order) from where the last round stopped (sweepFloor; from its start in a new term and every
   * SWEEP_FULL_RESCAN_MS) up to now, and propose its keys in batches. The cost is what it touches:
   * the index entries that are due and, in apply, their records — never the live records, whose
   * entries sort after `now` and are not read, nor again the entries deleted before. At most sweep.batch keys per command and
   * sweep.maxBatchesPerRound commands per round; a round that reached the bound leaves
   * `sweepBehind` set, so the next round (one tick later, not sweepEveryMs) goes on, and a backlog
   * of any size is worked off at up to batch × maxBatchesPerRound records a tick.
   */
  async sweep(): Promise<number> {
    const upTo = String(this.now()).padStart(15, '0');
    let deleted = 0;
    // From the floor, or from the beginning: the first round of a term, and every
    // SWEEP_FULL_RESCAN_MS, so an entry that was stored below the floor after it passed (a record
    // whose expiry a worker with a slow clock made already past, a clock stepped back) is not kept
    // for longer than that.
    const full = this.sweepFloor === null || this.now() - this.lastFullSweep >= SWEEP_FULL_RESCAN_MS;
    if (full) this.lastFullSweep = this.now();
    let gte: string | undefined = full ? undefined : `${this.sweepFloor!}\u0000`;
    let behind = false;
    for (let i = 0; ; i++) {
      if (i === this.sweepMaxBatches) {
        behind = true;
        break;
      }
      const recs = await this.o.node.scanState(EXPIRY_KEYSPACE, { ...(gte !== undefined ? { gte } : {}), lt: `${upTo}|`, limit: this.sweepBatch });
      if (recs.length === 0) break;
      const keys = recs.map((r) => dec.decode(r.key));
      const v = must(await tokens.leader.sweep(this.o.node, { keys }, HOUSEKEEPING_TIMEOUT_MS), 'sweeping');
      deleted += v.deleted;
      this.sweepFloor = keys[keys.length - 1]!;
      if (recs.length < this.sweepBatch) break;
      gte = `${this.sweepFloor}\u0000`;
    }
    this.sweepBehind = behind;
    if (deleted > 0) this.o.log.info({ deleted, behind }, 'swept expired OAuth records');
    return deleted;
  }
}
