// `raftauth recover --force-new-cluster --config node.yaml`: the documented way back when a
// majority of the cluster is lost for good (src/ops/backup.ts forceNewCluster does the work).
//
// Procedure (docs, and the usage text below):
//  1. Stop every surviving node. Pick the one with the highest applied index (`raftauth status`
//     before it went down, or the `recovered …` line this command prints: it reports the index).
//  2. On it: `raftauth recover --force-new-cluster --config node.yaml`. Its data directory becomes
//     a one-node cluster holding everything it had committed; the old directory is kept beside it.
//  3. Start it normally. Add members one by one: `raftauth members add ID --raft H:P --http H:P`,
//     start each with `cluster.join: true` and an EMPTY data directory, then `members promote ID`.
//     Never start an old member's data directory again: it still believes in the old cluster.
import type { StorageConfig } from '../../storage/config.ts';
import type { MemberAddress } from '../../node/members.ts';
import { CliError, EXIT_OK, UsageError, flag, parse, requiredStr } from '../args.ts';
import type { CliIo } from '../io.ts';
import { nodeEnv } from './start.ts';
import { resolve } from 'node:path';

export const RECOVER_USAGE = `usage: raftauth recover --force-new-cluster --config node.yaml
  Run on a STOPPED node when a majority of the cluster is lost for good. Applies the node's
  committed entries, then rewrites its data directory (node.dataDir) as a one-node cluster of this
  node with all its committed data; the old directory is kept as <dataDir>.before-recover-<time>.
  Then: start the node normally; add members with \`raftauth members add\` and start each with
  cluster.join: true and an empty data directory; promote them. Never restart a lost member's old
  data directory: re-add it as a new, empty node.`;

export interface NodeConfigFacts {
  readonly id: number;
  readonly dataDir: string;
  readonly members: ReadonlyMap<number, MemberAddress>;
  readonly storage: Partial<StorageConfig>;
}

/** The facts of a node config a backup command needs (config errors are command-line errors: exit 2). */
export async function loadNodeConfig(file: string, io: CliIo): Promise<NodeConfigFacts> {
  // Loaded only for the commands that read a node config (the others need no YAML parser).
  const { memberAddressesOf, loadConfig, ConfigError } = await import('../../server/config.ts');
  let c;
  try {
    c = loadConfig(file, nodeEnv(io.env));
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
  return {
    id: c.node.id,
    dataDir: c.node.dataDir,
    members: memberAddressesOf(c.cluster.initialMembers),
    storage: { compactLogBytes: c.raft.compactLogBytes, snapshotCatchupEntries: c.raft.snapshotCatchupEntries },
  };
}

export async function recoverCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, { 'force-new-cluster': { type: 'boolean' }, config: { type: 'string' } }, 0);
  // The flag is required on purpose: this rewrites the membership, and must never run by accident.
  if (!flag(values, 'force-new-cluster')) throw new UsageError('recover needs --force-new-cluster (the only recovery there is, and it must be asked for by name)');
  const cfg = await loadNodeConfig(resolve(io.cwd, requiredStr(values, 'config')), io);
  const fallback = cfg.members.get(cfg.id);
  // Loaded only for this command: the others need none of the node's code (LevelDB).
  const { BackupError, forceNewCluster } = await import('../../ops/backup.ts');
  try {
    const r = await forceNewCluster({ nodeId: cfg.id, dataDir: cfg.dataDir, storage: cfg.storage, ...(fallback ? { fallbackAddress: fallback } : {}) });
    io.out(
      `recovered node ${cfg.id}: applied ${r.entriesApplied} committed entries (applied ${r.appliedBefore} -> commit ${r.commit}; ` +
        `${Math.max(0, r.lastIndex - r.commit)} uncommitted entries dropped), ${r.records} records\n` +
        `${cfg.dataDir} is now a one-node cluster of node ${cfg.id} (raft ${r.address.raftAddress}, http ${r.address.httpAddress})\n` +
        `the old data directory is kept in ${r.backupDir}\n` +
        `next: start the node; add members with \`raftauth members add\`, start them with cluster.join: true and empty data directories, then promote them\n`,
    );
    return EXIT_OK;
  } catch (e) {
    if (e instanceof BackupError) throw new CliError(e.message);
    throw e;
  }
}
