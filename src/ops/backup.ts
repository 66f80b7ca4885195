// Backups and disaster recovery, usable without the CLI (src/cli/commands/snapshot.ts and
// recover.ts are thin shells around these functions):
//
//  - saveBackup: fetch a snapshot of a running cluster from any node's admin API
//    (GET /admin/v1/snapshot: a ReadIndex barrier, then the state at that node's applied index) and
//    write it to a file atomically (temp file 0600, fsync, verify, link into place, never
//    overwriting).
//  - restoreBackup: make the data directory of one node of a NEW cluster from a backup file. Every
//    node of the new cluster restores the same file with the same member list, and so gets the same
//    bootstrap snapshot (index 1, term 1) — they agree on the state without talking, exactly as the
//    founding members of a fresh cluster agree on the empty one (src/node/node.ts start()).
//  - forceNewCluster: the way back when a majority is lost for good (etcd's --force-new-cluster):
//    keep this node's committed data and make it a one-node cluster, to which members are then
//    added (raftauth members add, nodes started with cluster.join: true).
//
// What is carried over: every state record, except
//  - the member table (sys.members), replaced by the new cluster's members;
//  - on restore only, client sessions (sys.sessions, sys.results, and their index in sys.meta):
//    the sessions of the old cluster's processes are meaningless to the new one. A recovered node
//    keeps them, so a client retrying across the recovery is still answered exactly once (§6.3 of
//    the Raft dissertation).
import { constants as fsConstants, existsSync } from 'node:fs';
import { cp, link, mkdir, open as fsOpen, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { ConfState, Entry, NodeId, SnapshotMetadata } from '../raft/types.ts';
import { DurableStorage } from '../storage/durable-storage.ts';
import type { StorageConfig } from '../storage/config.ts';
import { resolveStorageConfig } from '../storage/config.ts';
import { StorageError } from '../storage/errors.ts';
import { readSnapshotFile, snapshotLimits, syncDir } from '../storage/snapshot-format.ts';
import type { SnapshotRecord } from '../storage/snapshot-format.ts';
import { stateApplier } from '../state/applier.ts';
import type { Domain } from '../state/machine.ts';
import { MEMBERS_KEYSPACE, memberRecord, validateAddress } from '../node/members.ts';
import type { MemberAddress } from '../node/members.ts';
import { prepareEntries } from '../node/applier.ts';

/**
 * Largest backup restore or recovery holds in memory. restoreBackup and forceNewCluster keep the
 * whole record set in memory and DurableStorage.bootstrap writes it as ONE LevelDB batch; both are
 * fine for the state sizes of an authorization server (tokens are hashes, a few hundred bytes each)
 * and are the first thing to change for a bigger state (a streaming bootstrap in the store).
 */
export const MAX_RESTORE_BYTES = 512 * 1024 * 1024;
/** Committed entries applied per storage write while recovering (bounds one batch's memory). */
const RECOVER_APPLY_BATCH_ENTRIES = 1000;
/** Bytes of entries read from the log per page while recovering. */
const RECOVER_READ_BYTES = 16 * 1024 * 1024;
/** Largest error body read from an admin API answer. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

const SESSION_KEYSPACES = new Set(['sys.sessions', 'sys.results']);
const SYS_META = 'sys.meta';
/** The session index in sys.meta (src/state/sessions.ts): dropped with the sessions. */
const SESSION_INDEX_KEY = 'sessions.index';

export type BackupErrorCode =
  /** The backup file (or the bytes a node sent) is malformed, truncated, damaged or too large. */
  | 'INVALID_BACKUP'
  /** The node did not give a backup (unreachable, refused, no leader, token refused). */
  | 'SAVE_FAILED'
  /** A file or directory in the way: the output exists, the data directory is not empty. */
  | 'EXISTS'
  /** The request cannot be carried out as asked (bad member list, no store to recover, …). */
  | 'INVALID_REQUEST';

/** A handled failure of a backup operation; the CLI prints the message and exits 1. */
export class BackupError extends Error {
  readonly code: BackupErrorCode;

  constructor(
    code: BackupErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
    this.name = 'BackupError';
  }
}

export interface VerifiedBackup {
  readonly metadata: SnapshotMetadata;
  readonly records: readonly SnapshotRecord[];
  readonly bytes: number;
}

/** Limits for reading a backup file: the store's frame limits and at most maxBytes in all. */
function readLimits(storage: Partial<StorageConfig>, maxBytes: number): ReturnType<typeof snapshotLimits> {
  const c = resolveStorageConfig(storage);
  return { ...snapshotLimits(c), maxSnapshotBytes: Math.min(maxBytes, c.maxSnapshotBytes) };
}

/**
 * Read a backup file and check all of it (frame CRCs, record order, record count, SHA-256 of the
 * body) before anything is done with it; a defect throws INVALID_BACKUP naming what is wrong.
 */
export async function verifyBackupFile(path: string, opts: { storage?: Partial<StorageConfig>; maxBytes?: number } = {}): Promise<VerifiedBackup> {
  const maxBytes = opts.maxBytes ?? MAX_RESTORE_BYTES;
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (e) {
    throw new BackupError('INVALID_REQUEST', `cannot read the backup file ${path}: ${(e as Error).message}`);
  }
  if (size > maxBytes) throw new BackupError('INVALID_BACKUP', `${path} is ${size} bytes, more than the ${maxBytes} a restore accepts`);
  let metadata: SnapshotMetadata | null = null;
  const records: SnapshotRecord[] = [];
  try {
    for await (const item of readSnapshotFile(path, readLimits(opts.storage ?? {}, maxBytes))) {
      if (item.kind === 'header') metadata = item.meta;
      else if (item.kind === 'records') for (const r of item.records) records.push(r);
    }
  } catch (e) {
    if (e instanceof StorageError && e.code === 'SNAPSHOT_INVALID') throw new BackupError('INVALID_BACKUP', `${path} is not a valid backup: ${e.message}`, { cause: e });
    throw e;
  }
  if (metadata === null) throw new BackupError('INVALID_BACKUP', `${path} has no header`);
  return { metadata, records, bytes: size };
}

// ---------------------------------------------------------------------------------------------
// save

export interface SaveOptions {
  /** Admin API base URLs (http://127.0.0.1:19001); tried in order until one gives a backup. */
  readonly adminUrls: readonly string[];
  readonly token: string;
  /** Where the backup goes. Must not exist. */
  readonly outPath: string;
  /** Deadline per node for the whole transfer. */
  readonly timeoutMs: number;
  /** Largest backup accepted (default MAX_RESTORE_BYTES: a backup that cannot be restored is no backup). */
  readonly maxBytes?: number;
  readonly storage?: Partial<StorageConfig>;
}

export interface SaveResult {
  readonly path: string;
  readonly url: string;
  readonly nodeId: number;
  readonly metadata: SnapshotMetadata;
  readonly bytes: number;
  readonly records: number;
}

/** Fetch a backup from the first node that gives one, verify it and write it to outPath. */
export async function saveBackup(opts: SaveOptions): Promise<SaveResult> {
  if (opts.adminUrls.length === 0) throw new BackupError('INVALID_REQUEST', 'no admin URL');
  const out = resolve(opts.outPath);
  if (existsSync(out)) throw new BackupError('EXISTS', `${out} exists; choose another file (a backup never overwrites one)`);
  const errors: string[] = [];
  for (const url of opts.adminUrls) {
    try {
      return await saveFrom(url, out, opts);
    } catch (e) {
      if (e instanceof BackupError && e.code === 'EXISTS') throw e;
      errors.push(`${url}: ${(e as Error).message}`);
    }
  }
  throw new BackupError('SAVE_FAILED', `no node gave a backup:\n  ${errors.join('\n  ')}`);
}

async function saveFrom(url: string, out: string, opts: SaveOptions): Promise<SaveResult> {
  const maxBytes = opts.maxBytes ?? MAX_RESTORE_BYTES;
  const base = new URL(url).origin;
  let res: Response;
  try {
    res = await fetch(`${base}/admin/v1/snapshot`, { headers: { authorization: `Bearer ${opts.token}` }, signal: AbortSignal.timeout(opts.timeoutMs) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new BackupError('SAVE_FAILED', `cannot reach the admin API: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
  }
  if (res.status !== 200) {
    const text = (await res.text()).slice(0, MAX_ERROR_BODY_BYTES);
    let why = `HTTP ${res.status}`;
    try {
      const b = JSON.parse(text) as { error?: string; message?: string };
      why = `${b.error ?? why}: ${b.message ?? ''}`;
    } catch {
      // not JSON: the status says enough
    }
    throw new BackupError('SAVE_FAILED', why);
  }
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) throw new BackupError('SAVE_FAILED', `the backup is ${declared} bytes, over the ${maxBytes}-byte limit`);
  const nodeId = Number(res.headers.get('x-raftauth-node-id'));
  const index = Number(res.headers.get('x-raftauth-snapshot-index'));
  if (!res.body) throw new BackupError('SAVE_FAILED', 'empty answer');

  // Temp file beside the target (same file system, so the link is atomic), created exclusively, 0600.
  const tmp = join(dirname(out), `.${basename(out)}.${process.pid}.${Date.now()}.tmp`);
  const fh = await fsOpen(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  let bytes = 0;
  try {
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        bytes += chunk.length;
        if (bytes > maxBytes) throw new BackupError('SAVE_FAILED', `the backup exceeds ${maxBytes} bytes`);
        let off = 0;
        while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (Number.isFinite(declared) && bytes !== declared) throw new BackupError('SAVE_FAILED', `received ${bytes} bytes, the node announced ${declared}`);
    const v = await verifyBackupFile(tmp, { maxBytes, ...(opts.storage ? { storage: opts.storage } : {}) });
    if (Number.isFinite(index) && v.metadata.index !== index) throw new BackupError('INVALID_BACKUP', `the file holds index ${v.metadata.index}, the node announced ${index}`);
    // link() fails if `out` appeared meanwhile: never overwrite a file.
    try {
      await link(tmp, out);
    } catch (e) {
      if ((e as { code?: string }).code === 'EEXIST') throw new BackupError('EXISTS', `${out} exists; choose another file (a backup never overwrites one)`);
      throw e;
    }
    await unlink(tmp);
    await syncDir(dirname(out));
    return { path: out, url: base, nodeId, metadata: v.metadata, bytes, records: v.records.length };
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// restore

export interface RestoreOptions {
  readonly file: string;
  readonly nodeId: NodeId;
  readonly dataDir: string;
  /** The members of the new cluster (cluster.initialMembers of the node configs); must include nodeId. */
  readonly members: ReadonlyMap<NodeId, MemberAddress>;
  readonly storage?: Partial<StorageConfig>;
  readonly maxBytes?: number;
}

export interface RestoreResult {
  /** The metadata of the backup (the old cluster's index, term and configuration). */
  readonly source: SnapshotMetadata;
  readonly confState: ConfState;
  readonly records: number;
  readonly droppedRecords: number;
}

/** The state of the new cluster: the backup's records, minus what does not carry over, plus the new member table. */
export function carryOverRecords(records: readonly SnapshotRecord[], members: ReadonlyMap<NodeId, MemberAddress>, keepSessions: boolean): { records: SnapshotRecord[]; dropped: number } {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const out: SnapshotRecord[] = [];
  let dropped = 0;
  for (const r of records) {
    const isSession = SESSION_KEYSPACES.has(r.keyspace) || (r.keyspace === SYS_META && dec.decode(r.key) === SESSION_INDEX_KEY);
    if (r.keyspace === MEMBERS_KEYSPACE || (!keepSessions && isSession)) {
      dropped++;
      continue;
    }
    out.push(r);
  }
  for (const [id, a] of members) out.push({ keyspace: MEMBERS_KEYSPACE, key: enc.encode(String(id)), value: memberRecord(a) });
  return { records: out, dropped };
}

function validateMembers(members: ReadonlyMap<NodeId, MemberAddress>, nodeId: NodeId): NodeId[] {
  if (!members.has(nodeId)) throw new BackupError('INVALID_REQUEST', `node ${nodeId} is not among the new cluster's members (${[...members.keys()].join(', ')})`);
  for (const [id, a] of members) {
    if (!Number.isSafeInteger(id) || id <= 0) throw new BackupError('INVALID_REQUEST', `member id ${id} is not a positive integer`);
    try {
      validateAddress(a, `member ${id}`);
    } catch (e) {
      throw new BackupError('INVALID_REQUEST', (e as Error).message);
    }
  }
  return [...members.keys()].sort((a, b) => a - b);
}

/** True if `dir` is missing or an empty directory. */
async function isEmptyDir(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return true;
    throw e;
  }
}

/** Write a new store in `dataDir` bootstrapped with `records` and the configuration `voters`. */
async function writeBootstrappedStore(dataDir: string, voters: NodeId[], records: readonly SnapshotRecord[], storage: Partial<StorageConfig>): Promise<ConfState> {
  const confState: ConfState = { voters, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  const st = await DurableStorage.open(dataDir, { config: storage });
  try {
    if (!(await st.bootstrap(confState, records))) throw new BackupError('EXISTS', `${dataDir} already holds a store`);
  } finally {
    await st.close();
  }
  return confState;
}

/**
 * Make `dataDir` the store of node `nodeId` of a new cluster restored from a backup file. Refuses a
 * data directory that is not empty, and a backup that fails any check (nothing is written then).
 */
export async function restoreBackup(opts: RestoreOptions): Promise<RestoreResult> {
  const voters = validateMembers(opts.members, opts.nodeId);
  const dataDir = resolve(opts.dataDir);
  if (!(await isEmptyDir(dataDir))) throw new BackupError('EXISTS', `the data directory ${dataDir} is not empty: a restore makes a new node and never writes over a store`);
  const storage = opts.storage ?? {};
  const backup = await verifyBackupFile(opts.file, { storage, ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}) });
  const { records, dropped } = carryOverRecords(backup.records, opts.members, false);
  const existed = existsSync(dataDir);
  try {
    const confState = await writeBootstrappedStore(dataDir, voters, records, storage);
    return { source: backup.metadata, confState, records: records.length, droppedRecords: dropped };
  } catch (e) {
    // Leave the directory as it was found (missing or empty), so the restore can simply be rerun.
    if (existed) for (const name of await readdir(dataDir).catch(() => [] as string[])) await rm(join(dataDir, name), { recursive: true, force: true });
    else await rm(dataDir, { recursive: true, force: true });
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// recover --force-new-cluster

export interface ForceNewClusterOptions {
  readonly nodeId: NodeId;
  readonly dataDir: string;
  /** This node's addresses if the member table has none for it (normally it has). */
  readonly fallbackAddress?: MemberAddress;
  readonly storage?: Partial<StorageConfig>;
  /** State-machine domains beyond kv (the node's own set: entries must apply exactly as on the node). */
  readonly domains?: readonly Domain[];
  /** Suffix of the backup directory's name (default: the current time, ISO 8601 without colons). */
  readonly timestamp?: string;
  readonly maxBytes?: number;
}

export interface ForceNewClusterResult {
  /** The untouched copy of the data directory as it was before the recovery. */
  readonly backupDir: string;
  /** The store's applied and commit index before the recovery. */
  readonly appliedBefore: number;
  readonly commit: number;
  readonly lastIndex: number;
  readonly term: number;
  /** Committed entries applied by the recovery (applied+1 .. commit). */
  readonly entriesApplied: number;
  readonly records: number;
  readonly address: MemberAddress;
}

/**
 * Turn the stopped node's store into a one-node cluster of this node, keeping its committed data.
 *
 *  1. Open the store (its LevelDB lock proves the node is not running) and copy the data directory
 *     to `<dataDir>.before-recover-<timestamp>`, untouched.
 *  2. Apply the committed but unapplied entries (applied+1 .. hardState.commit) through the same
 *     state machine as the node, so nothing committed is lost. Entries after the commit index are
 *     dropped: this node cannot know whether they were committed (they may never have been).
 *  3. Take a snapshot at that index and read its records back (verified).
 *  4. Write a new store bootstrapped with those records and a one-voter configuration (this node;
 *     the member table reduced to its entry) beside the old one, then swap the directories.
 *
 * The old members' data directories must never be started again with this cluster: they hold a
 * configuration in which they are voters. Re-add them as new nodes with empty data directories.
 */
export async function forceNewCluster(opts: ForceNewClusterOptions): Promise<ForceNewClusterResult> {
  const dataDir = resolve(opts.dataDir);
  const storage = opts.storage ?? {};
  if (!existsSync(join(dataDir, 'db'))) throw new BackupError('INVALID_REQUEST', `${dataDir} holds no store (no db directory): nothing to recover`);
  const stamp = opts.timestamp ?? new Date().toISOString().replace(/[:]/g, '').replace(/\.\d+Z$/, 'Z');
  const backupDir = `${dataDir}.before-recover-${stamp}`;
  const newDir = `${dataDir}.recover-new-${stamp}`;
  const oldDir = `${dataDir}.recover-old-${stamp}`;
  for (const d of [backupDir, newDir, oldDir]) if (existsSync(d)) throw new BackupError('EXISTS', `${d} exists; remove it or wait a second and run again`);

  let st: DurableStorage;
  try {
    st = await DurableStorage.open(dataDir, { config: storage });
  } catch (e) {
    if (e instanceof StorageError && e.code === 'LOCKED') throw new BackupError('INVALID_REQUEST', `the store in ${dataDir} is in use: stop the node first`, { cause: e });
    throw e;
  }
  let snapRecords: SnapshotRecord[];
  let appliedBefore: number;
  let commit: number;
  let lastIndex: number;
  let term: number;
  let entriesApplied = 0;
  try {
    const hs = st.hardState;
    appliedBefore = st.applied;
    commit = hs.commit;
    lastIndex = st.lastIndex();
    term = hs.term;
    if (hs.term === 0 && st.snapshotMetadata.index === 0) throw new BackupError('INVALID_REQUEST', `the store in ${dataDir} is empty: nothing to recover`);
    // The store is locked by us and nothing writes to it: copy it as it is.
    await cp(dataDir, backupDir, { recursive: true, errorOnExist: true, force: false });

    // 2. Apply what is committed and not yet applied, exactly as the node's driver would.
    const sm = stateApplier(opts.domains ?? [])({ get: (ks, k) => st.getSync(ks, k) });
    let next = st.applied + 1;
    while (next <= commit) {
      const hi = Math.min(commit + 1, next + RECOVER_APPLY_BATCH_ENTRIES);
      const entries: Entry[] = st.entries(next, hi, RECOVER_READ_BYTES);
      if (entries.length === 0) throw new BackupError('INVALID_REQUEST', `entry ${next} (at or below the commit index ${commit}) is missing from the log`);
      const batch = sm.applyEntries(prepareEntries(entries));
      await st.commit({ state: batch.changes, applied: batch.applied }, { sync: true });
      entriesApplied += entries.length;
      next = batch.applied + 1;
    }

    // 3. The whole state at the commit index, read back through the verifying parser.
    const index = st.applied;
    // A state file at that index (an existing one is the same state and is kept).
    const { path: file } = await st.writeStateFile({ index, term: st.term(index), confState: st.confState });
    snapRecords = [...(await verifyBackupFile(file, { storage, ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}) })).records];
  } finally {
    await st.close();
  }

  // 4. This node's addresses: the member table's (current) entry, else the given one.
  const dec = new TextDecoder();
  const own = snapRecords.find((r) => r.keyspace === MEMBERS_KEYSPACE && dec.decode(r.key) === String(opts.nodeId));
  let address: MemberAddress;
  try {
    address = own ? validateAddress(JSON.parse(dec.decode(own.value)), `member ${opts.nodeId}`) : validateAddress(opts.fallbackAddress, `member ${opts.nodeId}`);
  } catch (e) {
    throw new BackupError('INVALID_REQUEST', `no usable address for node ${opts.nodeId} in the member table or the config: ${(e as Error).message}`);
  }
  const { records } = carryOverRecords(snapRecords, new Map([[opts.nodeId, address]]), true);
  try {
    await mkdir(newDir, { recursive: false, mode: 0o700 });
    await writeBootstrappedStore(newDir, [opts.nodeId], records, storage);
  } catch (e) {
    await rm(newDir, { recursive: true, force: true });
    throw e;
  }
  // Swap. A crash between the two renames leaves no `dataDir`, the complete new store in newDir and
  // the untouched copy in backupDir: rename newDir to dataDir by hand (or rerun from the backup).
  await rename(dataDir, oldDir);
  await rename(newDir, dataDir);
  await syncDir(dirname(dataDir));
  await rm(oldDir, { recursive: true, force: true });
  return { backupDir, appliedBefore, commit, lastIndex, term, entriesApplied, records: records.length, address };
}
