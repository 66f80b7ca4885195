// Shared helpers of the storage tests: a temp data dir under os.tmpdir() removed after the test,
// entry builders, and raw access to a closed store's LevelDB for corruption tests.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { ClassicLevel } from 'classic-level';
import type { ConfState, Entry } from '../../../src/raft/types.ts';
import { resolveStorageConfig, type StorageConfig } from '../../../src/storage/config.ts';
import { LevelStore } from '../../../src/storage/level-store.ts';
import { LogStore } from '../../../src/storage/log-store.ts';
import { Snapshotter } from '../../../src/storage/snapshotter.ts';
import { StateStore } from '../../../src/storage/state-store.ts';

export async function tempDir(t: TestContext, name = 'raftauth-storage-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), name));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const enc = new TextEncoder();

export const ent = (index: number, term: number, data = `e${index}t${term}`): Entry => ({ index, term, type: 'normal', data: enc.encode(data) });

export function ents(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(ent(i, term));
  return out;
}

export const conf = (...voters: number[]): ConfState => ({ voters, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false });

export const bytes = (s: string): Uint8Array => enc.encode(s);
export const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b));

/** Flip one bit of the raw LevelDB value at `key` (the store must be closed). */
export async function flipRawByte(dataDir: string, key: Uint8Array, byteOffset: number): Promise<void> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dataDir, 'db'), { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  try {
    const v = await db.get(key);
    if (v === undefined) throw new Error(`no raw value at ${Buffer.from(key).toString('hex')}`);
    const copy = new Uint8Array(v);
    copy[byteOffset % copy.length]! ^= 0x01;
    await db.put(key, copy);
  } finally {
    await db.close();
  }
}

/** All raw keys of a closed store with the given ASCII prefix. */
export async function rawKeys(dataDir: string, prefix: string): Promise<Uint8Array[]> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dataDir, 'db'), { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  try {
    const p = enc.encode(prefix);
    const end = p.slice();
    end[end.length - 1]! += 1;
    return await db.keys({ gte: p, lt: end }).all();
  } finally {
    await db.close();
  }
}

/**
 * The modules behind DurableStorage, opened as its open() composes them, for tests of one module:
 * the shared LevelDB, the state store, the log store and the snapshotter. Close with `level.close()`.
 */
export async function openModules(dataDir: string, partial: Partial<StorageConfig> = {}): Promise<{ config: StorageConfig; level: LevelStore; state: StateStore; log: LogStore; snapshots: Snapshotter }> {
  const config = resolveStorageConfig(partial);
  const snapDir = join(dataDir, 'snap');
  await mkdir(snapDir, { recursive: true });
  const level = await LevelStore.open(dataDir);
  const snapMeta = await Snapshotter.readMeta(level);
  const state = await StateStore.load(level, config);
  const log = await LogStore.load(level, config, snapMeta);
  const snapshots = new Snapshotter({ level, config, snapDir, log, state }, snapMeta);
  return { config, level, state, log, snapshots };
}
