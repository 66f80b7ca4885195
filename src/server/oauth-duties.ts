// The primary's OAuth duties (one of startServer's collaborators, process.ts): with a master key
// and a node that offers the hooks (RaftNode does), an OAuthPrimary (oauth-node.ts) keeps the
// workers' OAuth read-cache tables current and, while this node leads, creates the cluster's keys,
// rotates them on schedule, sweeps expired codes, tokens and sessions, and applies the audit
// retention. Without a master key the node serves no OAuth endpoints, which is logged.
//
// The master key is loaded first (loadOAuthKeys), before the node opens its store, so that a bad
// key file fails the start at once.
import type { NodeApi } from '../node/api.ts';
import type { MasterKeyRing } from '../crypto/seal.ts';
import type { OAuthConfig } from '../oauth/config.ts';
import type { NodeConfig } from './config.ts';
import type { Logger } from './log.ts';
import { OAuthPrimary, loadMasterKey, oauthConfigOf } from './oauth-node.ts';
import type { OAuthNodeHooks } from './oauth-node.ts';
import type { CachePublisher } from './read-cache.ts';

/** The master key and the OAuth configuration, both null when the node has no master key. */
export interface OAuthKeys {
  readonly master: MasterKeyRing | null;
  readonly oauthConfig: OAuthConfig | null;
}

/** Loads the master key (crypto.masterKeyFile or RAFTAUTH_MASTER_KEY); throws on a bad key file. */
export function loadOAuthKeys(config: NodeConfig, env: Readonly<Record<string, string | undefined>> = process.env): OAuthKeys {
  const master = loadMasterKey(config, env);
  return { master, oauthConfig: master ? oauthConfigOf(config.oauth, config.mfa) : null };
}

/** A node as the OAuth duties see it: the hooks are optional (a stand-in node may lack them). */
export type OAuthDutiesNode = Pick<NodeApi, 'read'> & Partial<Pick<OAuthNodeHooks, 'onStateChange' | 'scanState' | 'isLeader' | 'housekeeping'>>;

/** The node's OAuth hooks, or null when it lacks any of them. */
export function oauthHooks(node: OAuthDutiesNode): OAuthNodeHooks | null {
  const { onStateChange, scanState, isLeader, housekeeping } = node;
  if (!onStateChange || !scanState || !isLeader || !housekeeping) return null;
  return {
    onStateChange: onStateChange.bind(node),
    scanState: scanState.bind(node),
    isLeader: isLeader.bind(node),
    housekeeping: housekeeping.bind(node),
    read: (req) => node.read(req),
  };
}

export interface OAuthDutiesOptions {
  readonly keys: OAuthKeys;
  readonly node: OAuthDutiesNode;
  readonly cache: CachePublisher;
  readonly audit: NodeConfig['audit'];
  readonly log: Logger;
}

/**
 * Starts the duties: resolves once the OAuth tables are first published. Returns the running
 * OAuthPrimary, or null when there is none to run (no master key: logged; no hooks: a stand-in
 * node). Stop it with stop().
 */
export async function startOAuthDuties(o: OAuthDutiesOptions): Promise<OAuthPrimary | null> {
  const { master, oauthConfig } = o.keys;
  const hooks = oauthHooks(o.node);
  if (master && oauthConfig && hooks) {
    const primary = new OAuthPrimary({ node: hooks, publish: (t, e) => void o.cache.publish(t, e), master, config: oauthConfig, log: o.log, audit: o.audit });
    await primary.start();
    return primary;
  }
  if (!master) o.log.warn('no master key (crypto.masterKeyFile or RAFTAUTH_MASTER_KEY): this node serves no OAuth endpoints');
  return null;
}
