// What a node's primary process runs (the NodeFactory of `raftauth start --config node.yaml`,
// src/cli/commands/start.ts): the replicated node (src/node/node.ts) and the admin API. HTTP is
// served from node:cluster workers (src/server/process.ts).
import { readFileSync } from 'node:fs';
import { formatHostPort, memberAddressesOf } from './config.ts';
import type { NodeConfig } from './config.ts';
import type { Logger } from './log.ts';
import { RaftNode } from '../node/node.ts';
import { oauthDomains } from '../state/oauth-domains.ts';
import { stateApplier } from '../state/applier.ts';
import { adminKeyRotation, loadMasterKey, oauthConfigOf } from './oauth-node.ts';
import type { MemberAddress } from '../node/members.ts';
import type { WrapWrites } from '../storage/durable-storage.ts';
import { StorageError } from '../storage/errors.ts';

/**
 * Crash injection for the cluster tests: RAFTAUTH_TEST_CRASH_AFTER_INSTALL_BATCHES=N makes the node
 * die after loading N batches of a received snapshot (before the atomic flip). Refused unless
 * RAFTAUTH_ALLOW_UNSAFE=1, like every unsafe switch. It wraps the store's batch writes (the store
 * itself has no fault branches; unit tests use test/support/faulty-storage.ts the same way).
 */
function storageCrashFromEnv(env: NodeJS.ProcessEnv): WrapWrites | undefined {
  const raw = env.RAFTAUTH_TEST_CRASH_AFTER_INSTALL_BATCHES;
  if (raw === undefined) return undefined;
  if (env.RAFTAUTH_ALLOW_UNSAFE !== '1') throw new Error('RAFTAUTH_TEST_CRASH_AFTER_INSTALL_BATCHES is an unsafe test switch; it is refused unless RAFTAUTH_ALLOW_UNSAFE=1');
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error('RAFTAUTH_TEST_CRASH_AFTER_INSTALL_BATCHES must be a positive integer');
  return (write) => {
    let loaded = 0; // batches of the current install
    return async (w) => {
      await write(w);
      if (w.purpose === 'install-flip') loaded = 0;
      // Thrown after the batch is durable, as a crash right after it: the store stops and cleans nothing up.
      if (w.purpose === 'install-load' && ++loaded >= n) throw new StorageError('SIMULATED_CRASH', `fault injection: the store stopped after ${loaded} batches of a snapshot install (RAFTAUTH_TEST_CRASH_AFTER_INSTALL_BATCHES)`);
    };
  };
}

export async function startNode(config: NodeConfig, logger: Logger): Promise<RaftNode> {
  const wrapStorageWrites = storageCrashFromEnv(process.env);
  const initialMembers: Map<number, MemberAddress> = memberAddressesOf(config.cluster.initialMembers);
  const node = await RaftNode.start({
    id: config.node.id,
    dataDir: config.node.dataDir,
    initialMembers,
    join: config.cluster.join,
    raftListen: { host: config.raft.listen.host, port: config.raft.listen.port },
    tls: { caPem: readFileSync(config.tls.ca, 'utf8'), certPem: readFileSync(config.tls.cert, 'utf8'), keyPem: readFileSync(config.tls.key, 'utf8') },
    tickMs: config.raft.tickMs,
    electionTick: config.raft.electionTick,
    heartbeatTick: config.raft.heartbeatTick,
    preVote: config.raft.preVote,
    checkQuorum: config.raft.checkQuorum,
    readOnly: config.raft.readOnly,
    maxSizePerMsg: config.raft.maxSizePerMsg,
    maxInflightMsgs: config.raft.maxInflightMsgs,
    maxWritesInFlight: config.raft.maxWritesInFlight,
    storage: { compactLogBytes: config.raft.compactLogBytes, snapshotCatchupEntries: config.raft.snapshotCatchupEntries },
    ...(wrapStorageWrites ? { wrapStorageWrites } : {}),
    logger,
    applier: stateApplier(oauthDomains()),
    unsafe: { ackBeforeCommit: config.unsafe.ackBeforeCommit, readWithoutReadIndex: config.unsafe.readWithoutReadIndex },
  });
  if (config.admin.listen !== null && config.admin.tokenFile !== null) {
    try {
      const master = loadMasterKey(config);
      const oauthConfig = oauthConfigOf(config.oauth, config.mfa);
      const oauth = master ? { master, config: oauthConfig, log: logger, rotateSigningKeys: adminKeyRotation(node, master, oauthConfig, logger) } : undefined;
      // Loaded only when the admin API is on: the admin app (fastify and its routes) is not part of a
      // node that has none (docs/operations.md, "Boot time").
      const { buildAdminApp } = await import('../ops/admin.ts');
      const app = buildAdminApp({ node, token: readFileSync(config.admin.tokenFile, 'utf8').trim(), ...(oauth ? { oauth } : {}) });
      await app.listen({ host: config.admin.listen.host, port: config.admin.listen.port });
      node.onStop(() => app.close());
      logger.info({ admin: formatHostPort(config.admin.listen) }, 'admin API listening');
    } catch (e) {
      await node.stop();
      throw e;
    }
  }
  return node;
}
