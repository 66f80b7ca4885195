// `raftauth snapshot save|restore`: back up a running cluster to a file, and make the nodes of a
// new cluster from such a file. The work is done by src/ops/backup.ts; this is the command line.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { MemberAddress } from '../../node/members.ts';
import { CliError, EXIT_OK, UsageError, list, parse, parsePositiveInt, requiredStr, str } from '../args.ts';
import { DEFAULT_CLUSTER_FILE, readClusterFile } from '../cluster-file.ts';
import type { CliIo } from '../io.ts';
import { loadNodeConfig } from './recover.ts';

/** Longest --timeout-ms accepted for a save: 1 hour (a large state over a slow disk). */
const MAX_SAVE_TIMEOUT_MS = 3_600_000;
const DEFAULT_SAVE_TIMEOUT_MS = 120_000;

export const SNAPSHOT_USAGE = `usage:
  raftauth snapshot save --out FILE [--admin URL] [--token-file FILE] [--cluster FILE] [--timeout-ms N]
      Back up a running cluster: any node (the first --admin URL that answers) makes a snapshot of
      the state after a linearizable barrier (every write acknowledged before the command is in it)
      and streams it; the file is verified (CRC per frame, SHA-256 of the whole) and written
      atomically with mode 0600. FILE must not exist.
      --admin / --token-file / --cluster as for the other admin commands (default $RAFTAUTH_ADMIN,
      $RAFTAUTH_ADMIN_TOKEN, ./.raftauth/local/cluster.json); --timeout-ms default ${DEFAULT_SAVE_TIMEOUT_MS}.
  raftauth snapshot restore --file FILE --config node.yaml
      Make this node's data directory (node.dataDir, which must be missing or empty) the store of a
      node of a NEW cluster holding the backup's state. Run it for every node of the new cluster,
      each with its own config; the members are cluster.initialMembers (the same list in every
      config). Client sessions of the old cluster are dropped. Then start the nodes as usual.`;

function endpointsAndToken(values: Record<string, unknown>, io: CliIo): { urls: string[]; token: string } {
  const v = values as Record<string, string | boolean | string[] | undefined>;
  let urls = list(v, 'admin');
  if (urls.length === 0 && io.env.RAFTAUTH_ADMIN) urls = io.env.RAFTAUTH_ADMIN.split(',').map((s) => s.trim()).filter(Boolean);
  const clusterOpt = str(v, 'cluster');
  const clusterPath = clusterOpt !== undefined ? resolve(io.cwd, clusterOpt) : urls.length === 0 && existsSync(resolve(io.cwd, DEFAULT_CLUSTER_FILE)) ? resolve(io.cwd, DEFAULT_CLUSTER_FILE) : null;
  if (clusterPath !== null && urls.length === 0) {
    try {
      urls = readClusterFile(clusterPath).nodes.map((n) => n.admin);
    } catch (e) {
      throw new CliError((e as Error).message);
    }
  }
  if (urls.length === 0) throw new UsageError('no admin URL: pass --admin URL, set RAFTAUTH_ADMIN, or use --cluster FILE');
  for (const u of urls) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new UsageError(`not a URL: ${JSON.stringify(u)} (expected e.g. http://127.0.0.1:19001)`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`admin URL must be http(s): ${u}`);
  }
  const tokenFileOpt = str(v, 'token-file');
  const besideCluster = clusterPath !== null ? join(dirname(clusterPath), 'admin.token') : null;
  const tokenFile = tokenFileOpt ?? (io.env.RAFTAUTH_ADMIN_TOKEN ? undefined : besideCluster !== null && existsSync(besideCluster) ? besideCluster : undefined);
  let token: string | undefined;
  if (tokenFile !== undefined) {
    try {
      token = readFileSync(resolve(io.cwd, tokenFile), 'utf8').trim();
    } catch (e) {
      throw new CliError(`cannot read the admin token file: ${(e as Error).message}`);
    }
  } else token = io.env.RAFTAUTH_ADMIN_TOKEN?.trim();
  if (!token) throw new UsageError('no admin token: pass --token-file FILE or set RAFTAUTH_ADMIN_TOKEN');
  return { urls, token };
}

async function save(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parse(
    argv,
    { out: { type: 'string' }, admin: { type: 'string', multiple: true }, 'token-file': { type: 'string' }, cluster: { type: 'string' }, 'timeout-ms': { type: 'string' } },
    0,
  );
  const out = resolve(io.cwd, requiredStr(values, 'out'));
  const timeoutMs = parsePositiveInt(str(values, 'timeout-ms'), '--timeout-ms', MAX_SAVE_TIMEOUT_MS) ?? DEFAULT_SAVE_TIMEOUT_MS;
  const { urls, token } = endpointsAndToken(values, io);
  const { saveBackup } = await import('../../ops/backup.ts');
  const r = await saveBackup({ adminUrls: urls, token, outPath: out, timeoutMs });
  io.out(`saved ${r.path}: ${r.bytes} bytes, ${r.records} records, index ${r.metadata.index} term ${r.metadata.term}, from node ${r.nodeId} (${r.url})\n`);
  return EXIT_OK;
}

async function restore(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, { file: { type: 'string' }, config: { type: 'string' } }, 0);
  const file = resolve(io.cwd, requiredStr(values, 'file'));
  const config = await loadNodeConfig(resolve(io.cwd, requiredStr(values, 'config')), io);
  const members = new Map<number, MemberAddress>(config.members);
  const { restoreBackup } = await import('../../ops/backup.ts');
  const r = await restoreBackup({ file, nodeId: config.id, dataDir: config.dataDir, members, storage: config.storage });
  io.out(
    `restored node ${config.id} into ${config.dataDir}: ${r.records} records (backup of index ${r.source.index} term ${r.source.term}; ` +
      `${r.droppedRecords} member/session records dropped); new cluster voters ${r.confState.voters.join(', ')}\n` +
      `next: restore the same file on every other member, then start the nodes (raftauth start --config …)\n`,
  );
  return EXIT_OK;
}

export async function snapshotCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === 'save') return await save(rest, io);
    if (sub === 'restore') return await restore(rest, io);
  } catch (e) {
    // Loaded only when needed: the other commands need none of the node's code (LevelDB).
    const { BackupError } = await import('../../ops/backup.ts');
    if (e instanceof BackupError) throw new CliError(e.message);
    throw e;
  }
  throw new UsageError(sub === undefined ? 'snapshot needs a subcommand: save or restore' : `unknown snapshot subcommand ${JSON.stringify(sub)}`);
}
