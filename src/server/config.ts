// A node's configuration: one YAML file per node, environment overrides on top, validated at start.
//
// Every key is declared once, in SPEC below, with its type, its range, its default and a comment
// saying what it does (node-oidc-provider `defaults.js` style). docs/config.md is generated from
// SPEC and those comments (`npm run docs:config`, scripts/docs-config.ts; a unit test fails while
// it is out of date). loadConfig refuses a bad
// configuration with a ConfigError whose message names the file and the key path, e.g.
//   config error in node1.yaml: raft.heartbeatTick must be an integer >= 1 and < raft.electionTick (got 10)
// Unknown keys and unknown sections are refused too: a misspelt key silently falling back to its
// default is how a cluster ends up running with settings nobody chose.
//
// Environment overrides: `RAFTAUTH_<SECTION>_<KEY>`, where KEY is the key's camelCase name in upper
// snake case: `http.port` → `RAFTAUTH_HTTP_PORT`, `raft.electionTick` → `RAFTAUTH_RAFT_ELECTION_TICK`,
// `cluster.initialMembers` → `RAFTAUTH_CLUSTER_INITIAL_MEMBERS`. String keys take the variable's
// text as is; every other key's text is read as a YAML value (`10`, `true`, `[{id: 1, …}]`) and then
// validated exactly like the file's value. A variable that starts with a section prefix
// (`RAFTAUTH_RAFT_…`) but names no key is refused, for the same reason as an unknown key.
// `RAFTAUTH_ALLOW_UNSAFE=1` is not an override: it is the switch that permits `unsafe.*` keys.
// `RAFTAUTH_ADMIN` and `RAFTAUTH_ADMIN_TOKEN` belong to the `raftauth` CLI and are ignored here.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { LOG_ENTRY_OVERHEAD_BYTES } from '../storage/config.ts';

export class ConfigError extends Error {
  /** The config file the error is about. */
  readonly file: string;
  /** Dotted key path (`raft.electionTick`), or '' for an error about the whole file. */
  readonly key: string;

  constructor(
    file: string,
    key: string,
    detail: string,
  ) {
    super(`config error in ${file}: ${detail}`);
    this.file = file;
    this.key = key;
    this.name = 'ConfigError';
  }
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface MemberConfig {
  readonly id: number;
  /** Where peers reach this member's Raft transport (gRPC over mTLS). */
  readonly raftAddress: HostPort;
  /** Where clients and other nodes reach this member's HTTP API. */
  readonly httpAddress: HostPort;
  /** Where operators reach this member's admin API (recorded in the member table for `raftauth status`); null: not given. */
  readonly adminAddress: HostPort | null;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface NodeConfig {
  /** Absolute path of the file the configuration was loaded from. */
  readonly file: string;
  readonly node: { readonly id: number; readonly dataDir: string; readonly zone: string | null };
  readonly cluster: { readonly initialMembers: readonly MemberConfig[]; readonly join: boolean };
  readonly raft: {
    readonly listen: HostPort;
    readonly tickMs: number;
    readonly electionTick: number;
    readonly heartbeatTick: number;
    readonly maxSizePerMsg: number;
    readonly maxInflightMsgs: number;
    readonly maxWritesInFlight: number;
    readonly preVote: boolean;
    readonly checkQuorum: boolean;
    readonly readOnly: 'safe' | 'leaseBased';
    readonly compactLogBytes: number;
    readonly snapshotCatchupEntries: number;
  };
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string };
  readonly http: {
    readonly listen: HostPort;
    /** Resolved: `auto` has become a number here. 0 = HTTP is served by the primary itself. */
    readonly workers: number;
    readonly bodyLimitBytes: number;
    readonly requestTimeoutMs: number;
    readonly shutdownDelayMs: number;
    readonly readyMaxApplyLag: number;
  };
  readonly admin: { readonly listen: HostPort | null; readonly tokenFile: string | null };
  readonly log: { readonly level: LogLevel };
  readonly oauth: {
    readonly issuer: string;
    readonly signingAlg: 'ES256' | 'EdDSA';
    readonly accessTokenTtlS: number;
    readonly idTokenTtlS: number;
    readonly codeTtlS: number;
    readonly refreshTokenIdleTtlS: number;
    readonly refreshTokenAbsoluteTtlS: number;
    readonly refreshGraceMs: number;
    readonly deviceCodeTtlS: number;
    readonly devicePollIntervalS: number;
    readonly sessionTtlS: number;
    readonly interactionTtlS: number;
    readonly keyRotationPeriodS: number;
    readonly allowPlainPkce: boolean;
    readonly requirePkceForConfidential: boolean;
    readonly formBodyLimitBytes: number;
    readonly passwordScryptLn: number;
  };
  readonly mfa: {
    readonly rpId: string;
    readonly rpName: string;
    readonly origins: readonly string[];
    readonly requiredScopes: readonly string[];
  };
  readonly crypto: { readonly masterKeyFile: string | null };
  readonly audit: { readonly retentionDays: number; readonly exportDir: string };
  readonly unsafe: { readonly ackBeforeCommit: boolean; readonly readWithoutReadIndex: boolean };
}

// ---------------------------------------------------------------------------------------------
// Field kinds. A field turns a raw value (from YAML or from an environment variable) into a typed
// value or throws FieldError with the text that follows the key path in the message.

class FieldError extends Error {}

interface Field<T> {
  /**
   * The default as it would be written in the file (it goes through parse like a given value, so
   * a default is validated too), null for "none", REQUIRED when the key must be given, or DERIVED
   * when it is computed from other keys.
   */
  readonly def: unknown;
  /** String fields take the environment variable's text as is; others parse it as YAML. */
  readonly envIsText: boolean;
  /** What the key takes, in words, with its range (the reference page, docs/config.md). */
  readonly type: string;
  parse(raw: unknown, ctx: ParseContext): T;
}

interface ParseContext {
  /** Directory of the config file: relative paths resolve against it. */
  readonly baseDir: string;
}

const REQUIRED = Symbol('required');
/** No fixed default: computed from other keys after they are read (see resolveDerived). */
const DERIVED = Symbol('derived');

function got(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return Array.isArray(v) ? 'a list' : 'a mapping';
  return String(v);
}

function int(min: number, max: number, def: number | typeof REQUIRED): Field<number> {
  return {
    def,
    envIsText: false,
    type: `integer, ${min} to ${max}`,
    parse(raw) {
      if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < min || raw > max) {
        throw new FieldError(`must be an integer >= ${min} and <= ${max} (got ${got(raw)})`);
      }
      return raw;
    },
  };
}

function bool(def: boolean): Field<boolean> {
  return {
    def,
    envIsText: false,
    type: 'true or false',
    parse(raw) {
      if (typeof raw !== 'boolean') throw new FieldError(`must be true or false (got ${got(raw)})`);
      return raw;
    },
  };
}

function oneOf<T extends string>(values: readonly T[], def: T): Field<T> {
  return {
    def,
    envIsText: true,
    type: `one of ${values.map((v) => `'${v}'`).join(', ')}`,
    parse(raw) {
      if (typeof raw !== 'string' || !(values as readonly string[]).includes(raw)) {
        throw new FieldError(`must be one of ${values.map((v) => `'${v}'`).join(', ')} (got ${got(raw)})`);
      }
      return raw as T;
    },
  };
}

const MAX_STRING_CHARS = 4096;

function text(def: string | null | typeof REQUIRED): Field<string | null> {
  return {
    def,
    envIsText: true,
    type: `string, 1 to ${MAX_STRING_CHARS} characters`,
    parse(raw) {
      if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_STRING_CHARS) {
        throw new FieldError(`must be a non-empty string of at most ${MAX_STRING_CHARS} characters (got ${got(raw)})`);
      }
      return raw;
    },
  };
}

function path(def: string | typeof REQUIRED | typeof DERIVED | null, mustBeFile: boolean): Field<string> {
  return {
    def,
    envIsText: true,
    type: mustBeFile ? 'path of an existing file' : 'path',
    parse(raw, ctx) {
      if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_STRING_CHARS) {
        throw new FieldError(`must be a non-empty path (got ${got(raw)})`);
      }
      const p = isAbsolute(raw) ? raw : resolve(ctx.baseDir, raw);
      // A missing certificate is found here, at start, with the key named, instead of as a TLS
      // failure on the first peer connection.
      if (mustBeFile && (!existsSync(p) || !statSync(p).isFile())) throw new FieldError(`must name an existing file (${p} is not one)`);
      return p;
    },
  };
}

/** `host:port` or `[v6addr]:port`. Port 0 (any free port) only where `allowPortZero`. */
export function parseHostPort(raw: unknown, allowPortZero: boolean): HostPort {
  const minPort = allowPortZero ? 0 : 1;
  const shape = `must be "host:port" with a port from ${minPort} to 65535`;
  if (typeof raw !== 'string') throw new FieldError(`${shape} (got ${got(raw)})`);
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(raw);
  if (!m) throw new FieldError(`${shape} (got ${got(raw)})`);
  const port = Number(m[3]);
  if (port < minPort || port > 65535) throw new FieldError(`${shape} (got ${got(raw)})`);
  return { host: m[1] ?? m[2]!, port };
}

function hostPort(def: typeof DERIVED | typeof REQUIRED | null, allowPortZero: boolean): Field<HostPort> {
  return { def, envIsText: true, type: allowPortZero ? '"host:port" or "[v6addr]:port" (port 0: any free port)' : '"host:port" or "[v6addr]:port"', parse: (raw) => parseHostPort(raw, allowPortZero) };
}

const MAX_MEMBERS = 64;

function members(): Field<MemberConfig[]> {
  return {
    def: REQUIRED,
    envIsText: false,
    type: `list of 1 to ${MAX_MEMBERS} { id, raftAddress, httpAddress }`,
    parse(raw) {
      if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_MEMBERS) {
        throw new FieldError(`must be a list of 1 to ${MAX_MEMBERS} members { id, raftAddress, httpAddress, adminAddress? } (got ${got(raw)})`);
      }
      return raw.map((m: unknown, i) => {
        if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new FieldError(`[${i}] must be a mapping { id, raftAddress, httpAddress, adminAddress? } (got ${got(m)})`);
        const o = m as Record<string, unknown>;
        for (const k of Object.keys(o)) {
          if (k !== 'id' && k !== 'raftAddress' && k !== 'httpAddress' && k !== 'adminAddress') throw new FieldError(`[${i}].${k} is not a known key (expected id, raftAddress, httpAddress, adminAddress)`);
        }
        if (typeof o.id !== 'number' || !Number.isSafeInteger(o.id) || o.id < 1) throw new FieldError(`[${i}].id must be a positive integer (got ${got(o.id)})`);
        const sub = (k: 'raftAddress' | 'httpAddress' | 'adminAddress'): HostPort => {
          try {
            return parseHostPort(o[k], false);
          } catch (e) {
            throw new FieldError(`[${i}].${k} ${(e as Error).message}`);
          }
        };
        return { id: o.id, raftAddress: sub('raftAddress'), httpAddress: sub('httpAddress'), adminAddress: o.adminAddress === undefined ? null : sub('adminAddress') };
      });
    },
  };
}

const MAX_WORKERS = 64;

const workersField: Field<number> = {
  def: 'auto',
  envIsText: false,
  type: `'auto' or an integer, 0 to ${MAX_WORKERS}`,
  parse(raw) {
    // `auto`: one worker per core for TLS, parsing, signing and hashing, but no more than 4 — the
    // primary (raft, storage, apply) needs a core of its own, and beyond 4 the single primary is
    // the bottleneck anyway.
    if (raw === 'auto') return Math.min(availableParallelism(), 4);
    if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < 0 || raw > MAX_WORKERS) {
      throw new FieldError(`must be 'auto' or an integer >= 0 and <= ${MAX_WORKERS} (got ${got(raw)})`);
    }
    return raw;
  },
};

/**
 * RFC 8414 §2: the issuer is an https URL with no query or fragment. Plain http is accepted only
 * for loopback hosts (local clusters and tests). Stored without a trailing slash.
 */
const issuerField: Field<string> = {
  def: DERIVED,
  envIsText: true,
  type: 'URL: https, or http on a loopback host; no query or fragment',
  parse(raw) {
    if (typeof raw !== 'string' || raw.length > 2048) throw new FieldError(`must be an https URL (got ${got(raw)})`);
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new FieldError(`must be an absolute URL (got ${got(raw)})`);
    }
    if (u.search !== '' || u.hash !== '' || raw.includes('?') || raw.includes('#')) throw new FieldError('must have no query or fragment (RFC 8414 §2)');
    if (u.username !== '' || u.password !== '') throw new FieldError('must not contain credentials');
    const loopback = u.hostname === '127.0.0.1' || u.hostname === '[::1]' || u.hostname === 'localhost';
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) throw new FieldError(`must use https (http only for loopback hosts) (got ${got(raw)})`);
    return raw.replace(/\/+$/, '');
  },
};

/**
 * A list of strings: a YAML list, or one comma-separated string (what an environment variable
 * gives). Entries are trimmed; empty entries are dropped, so '' is the empty list.
 */
function stringList(what: string, def: string | typeof DERIVED, check: (s: string) => string | null): Field<string[]> {
  return {
    def,
    envIsText: true,
    type: `list of ${what}, or one comma-separated string (at most ${MAX_LIST_ITEMS})`,
    parse(raw) {
      let items: unknown[];
      if (typeof raw === 'string') items = raw.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
      else if (Array.isArray(raw)) items = raw;
      else throw new FieldError(`must be a list of ${what} or a comma-separated string (got ${got(raw)})`);
      if (items.length > MAX_LIST_ITEMS) throw new FieldError(`must have at most ${MAX_LIST_ITEMS} entries (got ${items.length})`);
      const out: string[] = [];
      for (const [i, x] of items.entries()) {
        if (typeof x !== 'string' || x.length === 0 || x.length > MAX_STRING_CHARS) throw new FieldError(`[${i}] must be a non-empty string of at most ${MAX_STRING_CHARS} characters (got ${got(x)})`);
        const why = check(x);
        if (why !== null) throw new FieldError(`[${i}] ${why} (got ${got(x)})`);
        if (!out.includes(x)) out.push(x);
      }
      return out;
    },
  };
}
const MAX_LIST_ITEMS = 100;

/** W3C WebAuthn §5.1.3 / HTML "valid domain": a lower-case host name without port (browsers refuse IP addresses as RP IDs). */
const rpIdField: Field<string> = {
  def: DERIVED,
  envIsText: true,
  type: 'lower-case domain name, no scheme or port',
  parse(raw) {
    if (typeof raw !== 'string' || raw.length > 253 || !/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(raw)) {
      throw new FieldError(`must be a lower-case domain name without scheme or port, e.g. auth.example.com or localhost (got ${got(raw)})`);
    }
    return raw;
  },
};

/** An exact web origin (scheme://host[:port]), https or http on a loopback host, as the browser writes it in clientDataJSON. */
function originProblem(s: string): string | null {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return 'must be an origin like https://auth.example.com';
  }
  if (u.origin !== s) return `must be exactly an origin (scheme://host[:port], no path or trailing slash; did you mean ${u.origin}?)`;
  const loopback = u.hostname === '127.0.0.1' || u.hostname === '[::1]' || u.hostname === 'localhost';
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) return 'must use https (http only for loopback hosts)';
  return null;
}

/** RFC 6749 §3.3 scope-token. */
function scopeProblem(s: string): string | null {
  return /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s) ? null : 'is not a scope token (RFC 6749 §3.3)';
}

const KiB = 1024;
const MiB = 1024 * KiB;

// ---------------------------------------------------------------------------------------------
// Every key, its default and what it is for.

const SPEC = {
  node: {
    /** This node's Raft id: a positive integer, unique in the cluster, never reused by another node. Required. */
    id: int(1, 2 ** 31 - 1, REQUIRED),
    /** Directory of the node's LevelDB store (raft log, hard state, snapshots, state). Relative paths resolve against the config file's directory. Required. */
    dataDir: path(REQUIRED, false),
    /** Failure zone (rack, availability zone) this node runs in; informational, reported in status. Default: none. */
    zone: text(null),
  },
  cluster: {
    /**
     * The members the cluster starts with: a list of `{ id, raftAddress: "host:port", httpAddress: "host:port" }`,
     * and it must contain this node. Required. On bootstrap (join: false) every node of the new
     * cluster lists the same members. A node added later sets join: true and lists itself plus at
     * least one existing member to contact (any member; the leader need not be among them).
     * Optional per member: `adminAddress: "host:port"`, its admin API, recorded in the replicated
     * member table so `raftauth status` given one node reaches every member's admin API; give it
     * the same in every node's list (the founding members must write identical tables).
     */
    initialMembers: members(),
    /** true: this node joins an existing cluster (as a learner, caught up by snapshot) instead of bootstrapping one. Default false. */
    join: bool(false),
  },
  raft: {
    /** Address the Raft transport listens on. Default: this node's raftAddress in cluster.initialMembers. */
    listen: hostPort(DERIVED, true),
    /** Length of one Raft tick in milliseconds; election and heartbeat timeouts are counted in ticks. Default 100. */
    tickMs: int(1, 10_000, 100),
    /**
     * Election timeout in ticks: a follower that hears from no leader for this long (randomized
     * to [electionTick, 2·electionTick), Raft paper §5.2) starts an election. Default 10 (1 s at 100 ms ticks).
     */
    electionTick: int(2, 1_000, 10),
    /** Ticks between leader heartbeats. Must be below electionTick (etcd recommends a tenth). Default 1. */
    heartbeatTick: int(1, 1_000, 1),
    /** Upper bound in bytes of the entries in one append message (flow control, etcd MaxSizePerMsg). Default 1 MiB. */
    maxSizePerMsg: int(1, 16 * MiB, 1 * MiB),
    /** Append messages in flight to one follower before the leader waits for acknowledgements (pipelining window). Default 256. */
    maxInflightMsgs: int(1, 65_536, 256),
    /**
     * Storage writes (one per Raft Ready) in flight at once (asynchronous storage writes,
     * docs/write-path.md). With 1 the node still steps messages and gathers proposals while a write
     * is fsynced, and hands them out together once it is done; more hands out more, smaller
     * batches (more CPU per write, measured on 2 cores). Default 1.
     */
    maxWritesInFlight: int(1, 1_000, 1),
    /** Pre-vote (dissertation §9.6): a partitioned node cannot disrupt the cluster by bumping the term when it returns. Default true. */
    preVote: bool(true),
    /** Check quorum (dissertation §6.2): a leader that cannot reach a majority for an election timeout steps down. Default true. */
    checkQuorum: bool(true),
    /**
     * How linearizable reads are served (dissertation §6.4): 'safe' = ReadIndex, confirmed by a
     * heartbeat round; 'leaseBased' = leader lease, no round trip but relies on bounded clock drift
     * (and requires checkQuorum). Default 'safe'.
     */
    readOnly: oneOf(['safe', 'leaseBased'] as const, 'safe'),
    /**
     * Compact the log once its entries cost more than this many bytes (data plus 128 bytes each);
     * bounds the log on disk and in memory. Compaction copies no state; each node compacts at its
     * own point within +25% of this, so members never compact at the same moment. The leader keeps the
     * log a lagging member still needs up to twice this. Default 16 MiB.
     */
    compactLogBytes: int(1024, 4 * 1024 * 1024 * 1024, 16 * 1024 * 1024),
    /** Entries kept behind a compaction so a slightly lagging follower catches up from the log, not from a state file. At most compactLogBytes / 256. Default 5 000. */
    snapshotCatchupEntries: int(1, 100_000_000, 5_000),
  },
  tls: {
    /** PEM file of the cluster CA that signs every node certificate (mutual TLS between peers). Required. */
    ca: path(REQUIRED, true),
    /** PEM file of this node's certificate; it must name this node's id. Required. */
    cert: path(REQUIRED, true),
    /** PEM file of this node's private key. Required. */
    key: path(REQUIRED, true),
  },
  http: {
    /** Address the HTTP API listens on. Default: this node's httpAddress in cluster.initialMembers. */
    listen: hostPort(DERIVED, true),
    /** HTTP worker processes: 'auto' = min(cpus, 4); 0 = serve HTTP in the primary process; N = exactly N. Default 'auto'. */
    workers: workersField,
    /** Largest request body accepted; a larger one is answered 413 before it is read completely. Default 64 KiB. */
    bodyLimitBytes: int(1, 16 * MiB, 64 * KiB),
    /** Deadline of a request against the node; a client's x-request-timeout-ms may only shorten it. Default 5000. */
    requestTimeoutMs: int(1, 600_000, 5_000),
    /**
     * On SIGTERM the node first reports not ready (/readyz 503) and keeps serving for this long, so
     * a load balancer checking /readyz takes it out of rotation before its listeners close (closing a
     * listener resets connections still in the accept queue). At least two health-check intervals
     * of your balancer. Default 1000.
     */
    shutdownDelayMs: int(0, 60_000, 1_000),
    /**
     * /readyz answers 503 while the applied index is more than this many entries behind the commit
     * index: a node replaying a backlog would hold every linearizable read until the replay is
     * done, so a load balancer should send traffic elsewhere meanwhile. Default 1000.
     */
    readyMaxApplyLag: int(0, 100_000_000, 1000),
  },
  admin: {
    /**
     * Address of the admin API (status, membership, leadership transfer), served by the primary
     * process. Keep it on loopback or a management network. Default: none (no admin API).
     */
    listen: hostPort(null, true),
    /** File holding the admin bearer token (at least 32 characters). Required when admin.listen is set. */
    tokenFile: path(null, true),
  },
  log: {
    /** pino level: 'fatal', 'error', 'warn', 'info', 'debug', 'trace' or 'silent'. Default 'info'. */
    level: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
  },
  oauth: {
    /**
     * The issuer identifier (RFC 8414 §2, OIDC Discovery §3): the URL clients reach the cluster at,
     * normally the load balancer's. Every node of a cluster must use the same one: it is in every
     * token and in the metadata. https, or http for loopback hosts. Default: http://<http.listen>
     * (only right for a one-node cluster on loopback).
     */
    issuer: issuerField,
    /** JWS algorithm of access and ID tokens: 'ES256' (P-256) or 'EdDSA' (Ed25519). Default 'ES256'. */
    signingAlg: oneOf(['ES256', 'EdDSA'] as const, 'ES256'),
    /** Lifetime of access tokens (JWT, RFC 9068). Resource servers cannot learn of a revocation before it ends. Default 600. */
    accessTokenTtlS: int(30, 86_400, 600),
    /** Lifetime of ID tokens. Default 3600. */
    idTokenTtlS: int(30, 86_400, 3_600),
    /** Lifetime of authorization codes (RFC 6749 §4.1.2 recommends at most 10 minutes). Default 60. */
    codeTtlS: int(5, 600, 60),
    /** A refresh token not used for this long expires (each rotation starts a new period). Default 14 days. */
    refreshTokenIdleTtlS: int(60, 5 * 365 * 86_400, 14 * 86_400),
    /** No refresh token of a grant lives longer than this after the grant, however often it is rotated. Default 90 days. */
    refreshTokenAbsoluteTtlS: int(60, 5 * 365 * 86_400, 90 * 86_400),
    /**
     * A rotated refresh token presented again within this window gets the same successor pair back
     * instead of revoking its family (a client that lost the response, or several instances of one
     * client). 0 disables the grace. Default 2000.
     */
    refreshGraceMs: int(0, 60_000, 2_000),
    /** Lifetime of device codes (RFC 8628 §3.2 expires_in). Default 600. */
    deviceCodeTtlS: int(60, 3_600, 600),
    /** Minimum seconds between device-code polls (RFC 8628 §3.2 interval). Default 5. */
    devicePollIntervalS: int(1, 60, 5),
    /** Lifetime of a login session. Default 8 hours. */
    sessionTtlS: int(60, 30 * 86_400, 8 * 3_600),
    /** How long a pending authorization request (login and consent pages) stays valid. Default 600. */
    interactionTtlS: int(60, 3_600, 600),
    /** Rotate the signing keys automatically this long after the active key became active. Default 30 days. */
    keyRotationPeriodS: int(3_600, 5 * 365 * 86_400, 30 * 86_400),
    /** Accept PKCE `plain` (RFC 7636 §4.2 allows it only when S256 is impossible). Default false. */
    allowPlainPkce: bool(false),
    /** Require PKCE from confidential clients too (RFC 9700 §2.1.1). Public clients always need it. Default true. */
    requirePkceForConfidential: bool(true),
    /** Largest form body on OAuth endpoints. Default 16 KiB. */
    formBodyLimitBytes: int(1 * KiB, 1 * MiB, 16 * KiB),
    /** scrypt cost of new password hashes, N = 2^ln (r 8, p 1; OWASP: ln 17). Default 17. */
    passwordScryptLn: int(10, 20, 17),
  },
  mfa: {
    /**
     * WebAuthn Relying Party ID (W3C WebAuthn §5.1.3): the domain passkeys and security keys are
     * bound to. Every node must use the same one, and changing it later orphans every registered
     * credential. It must be the origins' host or a parent domain of it; browsers refuse IP
     * addresses (use localhost for local tests). Default: the hostname of oauth.issuer.
     */
    rpId: rpIdField,
    /** Relying Party name the authenticator shows when a credential is created. Default 'raftauth'. */
    rpName: text('raftauth'),
    /**
     * Origins the browser may run the WebAuthn ceremonies on (clientDataJSON.origin must be one
     * exactly, W3C WebAuthn §7.1 step 9): a list, or a comma-separated string. Default: the
     * origin of oauth.issuer.
     */
    origins: stringList('origins', DERIVED, originProblem),
    /**
     * Scopes whose request requires a second factor, whatever the client or user: a list or a
     * comma-separated string, e.g. 'admin, payments:write'. Default '' (none).
     */
    requiredScopes: stringList('scope tokens', '', scopeProblem),
  },
  crypto: {
    /**
     * File with the master key(s) that wrap the cluster's data keys (one base64url key of 32
     * bytes per line, the current key first; mode 0600). The environment variable
     * RAFTAUTH_MASTER_KEY (the same text) takes precedence. With neither, the node serves no OAuth.
     */
    masterKeyFile: path(null, true),
  },
  audit: {
    /**
     * Audit records older than this many days are exported to audit.exportDir and then deleted
     * from the replicated log, leaving a checkpoint signed by the active signing key so the rest of
     * the chain stays verifiable (docs/audit.md). The leader does it, a bounded batch per minute.
     * Default 365.
     */
    retentionDays: int(1, 36_500, 365),
    /**
     * Directory the leader writes expired audit records to before compacting them
     * (`audit-<fromSeq>-<toSeq>.jsonl`, fsynced, mode 0600). Each file is written by whichever node
     * was leader at the time: collect from every node, or point every node at the same durable
     * storage. Relative paths resolve against the config file's directory. Default:
     * <node.dataDir>/audit-export.
     */
    exportDir: path(DERIVED, false),
  },
  unsafe: {
    // Debug switches that break safety on purpose. Turning any on is refused unless the environment
    // has RAFTAUTH_ALLOW_UNSAFE=1, so a test setting cannot leak into production unnoticed.
    /**
     * ackBeforeCommit: answer a write as soon as the leader has appended it, before it is
     * committed or applied. A write so answered can be lost with its leader. For negative controls
     * of the partition suite only (its checker must catch the lost writes).
     */
    ackBeforeCommit: bool(false),
    /**
     * readWithoutReadIndex: serve linearizable reads from local state without confirming
     * leadership (§6.4), so a deposed leader or a lagging follower answers stale data. For negative
     * controls only.
     */
    readWithoutReadIndex: bool(false),
  },
} as const;

type Spec = typeof SPEC;
type SectionName = keyof Spec;
const SECTIONS = Object.keys(SPEC) as SectionName[];

/** `electionTick` → `ELECTION_TICK`. */
export function envName(section: string, key: string): string {
  return `RAFTAUTH_${section.toUpperCase()}_${key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`;
}

/** One key of the configuration as the reference page (docs/config.md) lists it. */
export interface ConfigKeyInfo {
  readonly section: string;
  readonly key: string;
  /** What the key takes, with its range. */
  readonly type: string;
  /** The default as written in a file ('600', "'auto'", 'true'), or 'required', 'none', or 'derived' (computed from other keys: the key's description says how). */
  readonly default: string;
  /** The environment variable that overrides it. */
  readonly env: string;
  /** true: the variable's text is the value as is; false: it is read as YAML first. */
  readonly envIsText: boolean;
}

/** Every key of SPEC, in its order (sections, then keys), for the reference page. */
export function configKeys(): ConfigKeyInfo[] {
  const out: ConfigKeyInfo[] = [];
  for (const section of SECTIONS) {
    for (const [key, f] of Object.entries(SPEC[section] as Record<string, Field<unknown>>)) {
      const def = f.def === REQUIRED ? 'required' : f.def === DERIVED ? 'derived' : f.def === null ? 'none' : typeof f.def === 'string' ? `'${f.def}'` : String(f.def);
      out.push({ section, key, type: f.type, default: def, env: envName(section, key), envIsText: f.envIsText });
    }
  }
  return out;
}

/** The environment variable that permits `unsafe.*` switches. */
export const ALLOW_UNSAFE_ENV = 'RAFTAUTH_ALLOW_UNSAFE';

/** Variables of the `raftauth` CLI (admin URL and token), ignored by the node's config loader. */
const CLI_ENV = new Set(['RAFTAUTH_ADMIN', 'RAFTAUTH_ADMIN_TOKEN']);
/** Largest config file read. */
const MAX_CONFIG_FILE_BYTES = 1 * MiB;

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Read, override and validate a node's configuration. Throws ConfigError naming the key.
 * @param file path of the YAML file
 * @param env environment to take RAFTAUTH_* overrides from
 */
export function loadConfig(file: string, env: Env = process.env): NodeConfig {
  let body: string;
  try {
    const st = statSync(file);
    if (st.size > MAX_CONFIG_FILE_BYTES) throw new Error(`larger than ${MAX_CONFIG_FILE_BYTES} bytes`);
    body = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, '', `cannot read the file: ${(e as Error).message}`);
  }
  return parseConfig(body, file, env);
}

/** As loadConfig, for text already read (`file` names it in messages and anchors relative paths). */
export function parseConfig(body: string, file: string, env: Env = process.env): NodeConfig {
  const doc = parseDocument(body, { uniqueKeys: true, prettyErrors: true, strict: true });
  if (doc.errors.length > 0) throw new ConfigError(file, '', `invalid YAML: ${doc.errors[0]!.message}`);
  const root: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  if (typeof root !== 'object' || root === null || Array.isArray(root)) throw new ConfigError(file, '', 'the file must be a YAML mapping of sections');
  const ctx: ParseContext = { baseDir: dirname(resolve(file)) };
  // Raw values: the file's, then environment overrides on top. Remember where each came from, so
  // a message about an overridden key names the variable too.
  const raw = new Map<string, { value: unknown; from: string | null }>();
  const label = (key: string): string => {
    const r = raw.get(key);
    return r?.from ? `${key} (from ${r.from})` : key;
  };
  const fail = (key: string, detail: string): never => {
    throw new ConfigError(file, key, `${label(key)} ${detail}`);
  };
  for (const [section, body] of Object.entries(root as Record<string, unknown>)) {
    if (!SECTIONS.includes(section as SectionName)) fail(section, `is not a known section (known: ${SECTIONS.join(', ')})`);
    if (body === null) continue;
    if (typeof body !== 'object' || Array.isArray(body)) fail(section, `must be a mapping (got ${got(body)})`);
    const spec = SPEC[section as SectionName] as Record<string, Field<unknown>>;
    for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
      if (!Object.hasOwn(spec, key)) fail(`${section}.${key}`, `is not a known key (known in ${section}: ${Object.keys(spec).join(', ')})`);
      raw.set(`${section}.${key}`, { value, from: null });
    }
  }
  const envKeys = new Map<string, [SectionName, string]>();
  for (const section of SECTIONS) for (const key of Object.keys(SPEC[section])) envKeys.set(envName(section, key), [section, key]);
  for (const [name, text] of Object.entries(env)) {
    if (text === undefined || !name.startsWith('RAFTAUTH_')) continue;
    const target = envKeys.get(name);
    if (!target) {
      // The CLI's own variables share the admin prefix; they are not node config.
      if (CLI_ENV.has(name)) continue;
      if (SECTIONS.some((s) => name.startsWith(`RAFTAUTH_${s.toUpperCase()}_`))) {
        throw new ConfigError(file, name, `environment variable ${name} names no config key`);
      }
      continue;
    }
    const [section, key] = target;
    const field = (SPEC[section] as Record<string, Field<unknown>>)[key]!;
    let value: unknown = text;
    if (!field.envIsText) {
      const d = parseDocument(text, { strict: true });
      value = d.errors.length > 0 ? text : d.toJS({ maxAliasCount: 100 });
    }
    raw.set(`${section}.${key}`, { value, from: name });
  }

  // Parse every key.
  const out: Record<string, Record<string, unknown>> = {};
  for (const section of SECTIONS) {
    out[section] = {};
    for (const [key, f] of Object.entries(SPEC[section] as Record<string, Field<unknown>>)) {
      const path = `${section}.${key}`;
      const r = raw.get(path);
      let value = r?.value;
      if (value === undefined || value === null) {
        if (f.def === REQUIRED) fail(path, 'is required');
        if (f.def === DERIVED) continue;
        if (f.def === null) {
          out[section][key] = null;
          continue;
        }
        value = f.def;
      }
      try {
        out[section][key] = f.parse(value, ctx);
      } catch (e) {
        if (!(e instanceof FieldError)) throw e;
        fail(path, e.message);
      }
    }
  }

  const c = out as unknown as { -readonly [S in keyof NodeConfig]: Record<string, unknown> };
  const raft = c.raft as { electionTick: number; heartbeatTick: number; compactLogBytes: number; snapshotCatchupEntries: number; readOnly: string; checkQuorum: boolean };
  if (raft.heartbeatTick >= raft.electionTick) {
    // A leader must heartbeat several times per election timeout, or followers start elections
    // against a healthy leader (Raft paper §5.2: broadcastTime ≪ electionTimeout).
    fail('raft.heartbeatTick', `must be an integer >= 1 and < raft.electionTick (got ${raft.heartbeatTick}, raft.electionTick is ${raft.electionTick})`);
  }
  if (raft.snapshotCatchupEntries * LOG_ENTRY_OVERHEAD_BYTES * 2 > raft.compactLogBytes) {
    // The kept entries must fit in half the budget, or a compaction could leave the log over it.
    fail('raft.snapshotCatchupEntries', `must be at most raft.compactLogBytes / ${LOG_ENTRY_OVERHEAD_BYTES * 2} (got ${raft.snapshotCatchupEntries}, raft.compactLogBytes is ${raft.compactLogBytes})`);
  }
  if (raft.readOnly === 'leaseBased' && !raft.checkQuorum) {
    // A lease is only sound if a leader that lost its majority stops acting as leader (§6.4.1).
    fail('raft.readOnly', `'leaseBased' requires raft.checkQuorum: true`);
  }

  if (c.admin.listen !== null && c.admin.tokenFile === null) fail('admin.tokenFile', 'is required when admin.listen is set');

  const id = c.node.id as number;
  const ms = c.cluster.initialMembers as MemberConfig[];
  const seenIds = new Set<number>();
  const seenAddrs = new Set<string>();
  for (const [i, m] of ms.entries()) {
    if (seenIds.has(m.id)) fail('cluster.initialMembers', `[${i}].id ${m.id} appears twice`);
    seenIds.add(m.id);
    for (const a of [m.raftAddress, m.httpAddress, ...(m.adminAddress ? [m.adminAddress] : [])]) {
      const k = `${a.host}:${a.port}`;
      if (seenAddrs.has(k)) fail('cluster.initialMembers', `[${i}] reuses the address ${k}`);
      seenAddrs.add(k);
    }
  }
  const self = ms.find((m) => m.id === id);
  if (!self) fail('cluster.initialMembers', `must contain this node (node.id ${id})`);
  if (c.cluster.join === true && ms.length < 2) {
    fail('cluster.initialMembers', 'must list this node and at least one existing member when cluster.join is true');
  }
  c.raft.listen ??= self!.raftAddress;
  c.http.listen ??= self!.httpAddress;
  c.oauth.issuer ??= `http://${formatHostPort(c.http.listen as HostPort)}`;
  {
    // WebAuthn defaults from the issuer: the RP is where users sign in.
    const issuer = new URL(c.oauth.issuer as string);
    c.mfa.rpId ??= issuer.hostname.replace(/^\[|\]$/g, '');
    c.mfa.origins ??= [issuer.origin];
    const rpId = c.mfa.rpId as string;
    for (const o of c.mfa.origins as string[]) {
      const host = new URL(o).hostname;
      // W3C WebAuthn §5.1.3: the RP ID must be the origin's effective domain or a registrable suffix of it.
      if (host !== rpId && !host.endsWith(`.${rpId}`)) fail('mfa.origins', `${o} is not on mfa.rpId ${rpId} or a subdomain of it (W3C WebAuthn §5.1.3)`);
    }
  }
  {
    const o = c.oauth as { refreshTokenIdleTtlS: number; refreshTokenAbsoluteTtlS: number };
    if (o.refreshTokenIdleTtlS > o.refreshTokenAbsoluteTtlS) {
      fail('oauth.refreshTokenIdleTtlS', `must not exceed oauth.refreshTokenAbsoluteTtlS (got ${o.refreshTokenIdleTtlS}, oauth.refreshTokenAbsoluteTtlS is ${o.refreshTokenAbsoluteTtlS})`);
    }
  }

  c.audit.exportDir ??= resolve(c.node.dataDir as string, 'audit-export');

  const unsafe = c.unsafe as Record<string, boolean>;
  const enabled = Object.keys(unsafe).filter((k) => unsafe[k] === true);
  if (enabled.length > 0 && env[ALLOW_UNSAFE_ENV] !== '1') {
    fail(`unsafe.${enabled[0]}`, `is an unsafe debug switch; it is refused unless the environment has ${ALLOW_UNSAFE_ENV}=1`);
  }

  return { file: resolve(file), ...(c as unknown as Omit<NodeConfig, 'file'>) };
}

/** The members of cluster.initialMembers as the member table records them (node/members.ts MemberAddress). */
export function memberAddressesOf(members: readonly MemberConfig[]): Map<number, { raftAddress: string; httpAddress: string; adminAddress?: string }> {
  return new Map(
    members.map((m) => [m.id, { raftAddress: formatHostPort(m.raftAddress), httpAddress: formatHostPort(m.httpAddress), ...(m.adminAddress ? { adminAddress: formatHostPort(m.adminAddress) } : {}) }]),
  );
}

/** `host:port` for logs and URLs (IPv6 hosts bracketed). */
export function formatHostPort(a: HostPort): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
