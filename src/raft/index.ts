// Public surface of the pure Raft core.
export { RawNode } from './raw-node.ts';
export type { ProposalId } from './raw-node.ts';
export { MemoryStorage } from './memory-storage.ts';
export { encodeConfChange, decodeConfChange, nextConfState, isJoint, isVoter, allMembers } from './confchange.ts';
export { RaftError, RaftInvariantError } from './errors.ts';
export type { RaftErrorCode } from './errors.ts';
export { emptyConfState, entrySize } from './util.ts';
export * from './types.ts';
