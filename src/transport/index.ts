// Public surface of the peer transport.
export { Transport } from './transport.ts';
export type { TransportOptions } from './transport.ts';
export { PeerClient } from './peer-client.ts';
export type { TransportObserver } from './peer-client.ts';
export { TransportError } from './errors.ts';
export type { TransportErrorCode } from './errors.ts';
export { DEFAULT_LIMITS, resolveLimits } from './limits.ts';
export type { TransportLimits } from './limits.ts';
export type { TransportStats } from './stats.ts';
export { snapMessage, snapshotHeaderOf } from './codec.ts';
export { MemorySnapshotSink, receiveSnapshot } from './snapshot-sink.ts';
export type { SnapshotSink } from './snapshot-sink.ts';
export type * from './types.ts';
