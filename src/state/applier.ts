// The state machine as the node's applier (node/applier.ts ApplierFactory). The node does not
// construct the state machine (DESIGN "Layers": node defines the applier, state implements it);
// whoever composes a node — the server (src/server/start-node.ts), the offline restore
// (src/ops/backup.ts), a test — passes this factory.
import type { ApplierFactory } from '../node/applier.ts';
import { StateMachine } from './machine.ts';
import type { Domain } from './machine.ts';
import { SESSION_LIMITS } from './sessions.ts';
import type { SessionConfig } from './sessions.ts';
import { kvDomain } from './kv.ts';

/** The state machine over the node's applied state, with the kv domain and `domains` registered. */
export function stateApplier(domains: readonly Domain[] = [], sessionConfig: SessionConfig = SESSION_LIMITS): ApplierFactory {
  return (reader) => {
    const sm = new StateMachine(reader, sessionConfig);
    sm.register(kvDomain);
    for (const d of domains) sm.register(d);
    return sm;
  };
}
