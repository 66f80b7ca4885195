// Loads raft.proto, which sits beside this module (npm run build copies it to dist/transport/), and
// exposes the gRPC service definition plus the TypeScript shapes of the wire messages as
// @grpc/proto-loader presents them (camelCase fields, uint64 as decimal strings on decode, enums as
// names, bytes as Buffer, oneof arms named by a virtual field).
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

// The single binary (scripts/build-binary.ts) has no files beside it: its bundler replaces this
// identifier with raft.proto parsed at build time (protobufjs JSON, keepCase false).
declare const RAFTAUTH_EMBEDDED_RAFT_PROTO: Parameters<typeof protoLoader.fromJSON>[0] | undefined;
const embedded = typeof RAFTAUTH_EMBEDDED_RAFT_PROTO === 'undefined' ? undefined : RAFTAUTH_EMBEDDED_RAFT_PROTO;

export const PROTO_PATH = embedded ? '(embedded) raft.proto' : fileURLToPath(new URL('./raft.proto', import.meta.url));
export const SERVICE_NAME = 'raftauth.raft.v1.Raft';

// longs: String keeps uint64 exact so the codec can refuse values beyond 2^53 instead of
// silently rounding them (a rounded index or term would corrupt the log).
const LOAD_OPTIONS: protoLoader.Options = { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true };
const packageDefinition = embedded ? protoLoader.fromJSON(embedded, LOAD_OPTIONS) : protoLoader.loadSync(PROTO_PATH, LOAD_OPTIONS);

const service = packageDefinition[SERVICE_NAME];
if (service === undefined || !('Send' in service)) throw new Error(`${SERVICE_NAME} missing from ${PROTO_PATH}`);
export const raftServiceDefinition = service as grpc.ServiceDefinition;

const rawBytes = (b: Buffer): Buffer => b;

/**
 * The service as nodes serve and call it: Stream's requests and ProposeStream's requests and
 * responses are Frames whose bytes src/transport/frames.ts encodes and decodes itself (a Frame is
 * built with its protobuf key and length already in place), so gRPC passes them through as they
 * are. The other methods keep proto-loader's protobuf (de)serializers.
 */
export const raftFrameServiceDefinition: grpc.ServiceDefinition = {
  ...raftServiceDefinition,
  Stream: { ...raftServiceDefinition.Stream!, requestSerialize: rawBytes, requestDeserialize: rawBytes },
  ProposeStream: { ...raftServiceDefinition.ProposeStream!, requestSerialize: rawBytes, requestDeserialize: rawBytes, responseSerialize: rawBytes, responseDeserialize: rawBytes },
};

/** A client constructor for the Raft service (methods send, snapshot, propose, readIndex). */
export const RaftClient = grpc.makeGenericClientConstructor(raftServiceDefinition, 'Raft');

/** A uint64 as written (number or decimal string) and as read (decimal string). */
export type WireU64 = number | string;

export interface WireEntry {
  term: WireU64;
  index: WireU64;
  type: 'ENTRY_TYPE_NORMAL' | 'ENTRY_TYPE_CONF_CHANGE';
  data: Uint8Array;
}

export interface WireConfState {
  voters: WireU64[];
  learners: WireU64[];
  votersOutgoing: WireU64[];
  learnersNext: WireU64[];
  autoLeave: boolean;
}

export interface WireSnapshotMetadata {
  index: WireU64;
  term: WireU64;
  confState: WireConfState | null;
}

export interface WireApp {
  logTerm: WireU64;
  index: WireU64;
  entries: WireEntry[];
  commit: WireU64;
}
export interface WireAppResp {
  index: WireU64;
  reject: boolean;
  rejectHint: WireU64;
  logTerm: WireU64;
}
export interface WireVote {
  logTerm: WireU64;
  index: WireU64;
  transfer: boolean;
}
export interface WireVoteResp {
  reject: boolean;
}
export interface WireHeartbeat {
  commit: WireU64;
  hasContext: boolean;
  context: string;
}
export interface WireHeartbeatResp {
  hasContext: boolean;
  context: string;
}
export type WireTimeoutNow = Record<string, never>;
export interface WireReadIndexMsg {
  context: string;
}
export interface WireReadIndexRespMsg {
  context: string;
  index: WireU64;
}
export interface WireTransferLeader {
  transferee: WireU64;
}

/** The oneof arms of RaftMessage.body, by field name. */
export interface WireBodies {
  app: WireApp;
  appResp: WireAppResp;
  vote: WireVote;
  preVote: WireVote;
  voteResp: WireVoteResp;
  preVoteResp: WireVoteResp;
  heartbeat: WireHeartbeat;
  heartbeatResp: WireHeartbeatResp;
  timeoutNow: WireTimeoutNow;
  readIndex: WireReadIndexMsg;
  readIndexResp: WireReadIndexRespMsg;
  transferLeader: WireTransferLeader;
}
export type WireBodyName = keyof WireBodies;

/** Written: exactly one arm set. Read: every arm present (null when unset) and `body` names the set one. */
export type WireRaftMessage = {
  from: WireU64;
  to: WireU64;
  term: WireU64;
  body?: WireBodyName;
} & { [K in WireBodyName]?: WireBodies[K] | null };

export interface WireMessageBatch {
  from: WireU64;
  to: WireU64;
  messages: WireRaftMessage[];
}

export interface WireAck {
  accepted: number;
  /** Stream only: batches this Ack covers (0 on a Send answer). */
  batches: number;
}

export interface WireSnapshotHeader {
  from: WireU64;
  to: WireU64;
  term: WireU64;
  metadata: WireSnapshotMetadata | null;
}

export interface WireSnapshotTrailer {
  totalBytes: WireU64;
  sha256: Uint8Array;
}

export interface WireSnapshotChunk {
  kind?: 'header' | 'data' | 'trailer';
  header?: WireSnapshotHeader | null;
  data?: Uint8Array | null;
  trailer?: WireSnapshotTrailer | null;
}

export interface WireSnapshotAck {
  receivedBytes: WireU64;
}

export type WireForwardErrorCode =
  | 'FORWARD_ERROR_CODE_UNSPECIFIED'
  | 'FORWARD_ERROR_CODE_NOT_LEADER'
  | 'FORWARD_ERROR_CODE_TIMEOUT'
  | 'FORWARD_ERROR_CODE_PROPOSAL_DROPPED'
  | 'FORWARD_ERROR_CODE_UNAVAILABLE'
  | 'FORWARD_ERROR_CODE_INTERNAL';

export interface WireForwardError {
  code: WireForwardErrorCode;
  leaderHint: WireU64;
  message: string;
}

export interface WireProposeRequest {
  from: WireU64;
  sessionId: string;
  seq: WireU64;
  command: Uint8Array;
  timeoutMs: WireU64;
  /** ProposeStream only (0 on a Propose call). */
  id?: WireU64;
}

export interface WireProposeResponse {
  outcome?: 'result' | 'error';
  result?: Uint8Array | null;
  error?: WireForwardError | null;
  /** ProposeStream only: the request's id. */
  id?: WireU64;
}

export interface WireReadIndexRequest {
  from: WireU64;
  timeoutMs: WireU64;
}

export interface WireReadIndexResponse {
  outcome?: 'index' | 'error';
  index?: WireU64 | null;
  error?: WireForwardError | null;
}

type MethodName = 'Send' | 'Snapshot' | 'Propose' | 'ReadIndex';

function method(name: MethodName): grpc.MethodDefinition<unknown, unknown> {
  const m = raftServiceDefinition[name];
  if (m === undefined) throw new Error(`method ${name} missing from ${SERVICE_NAME}`);
  return m;
}

/**
 * Serialize/deserialize with the service's own codecs. Used to size messages exactly in tests
 * and to check the codec against real protobuf bytes.
 */
export const wireCodecs = {
  batch: {
    encode: (b: WireMessageBatch): Buffer => method('Send').requestSerialize(b),
    decode: (buf: Buffer): WireMessageBatch => method('Send').requestDeserialize(buf) as WireMessageBatch,
  },
  snapshotChunk: {
    encode: (c: WireSnapshotChunk): Buffer => method('Snapshot').requestSerialize(c),
    decode: (buf: Buffer): WireSnapshotChunk => method('Snapshot').requestDeserialize(buf) as WireSnapshotChunk,
  },
  proposeRequest: {
    encode: (r: WireProposeRequest): Buffer => method('Propose').requestSerialize(r),
    decode: (buf: Buffer): WireProposeRequest => method('Propose').requestDeserialize(buf) as WireProposeRequest,
  },
  proposeResponse: {
    encode: (r: WireProposeResponse): Buffer => method('Propose').responseSerialize(r),
    decode: (buf: Buffer): WireProposeResponse => method('Propose').responseDeserialize(buf) as WireProposeResponse,
  },
  readIndexRequest: {
    encode: (r: WireReadIndexRequest): Buffer => method('ReadIndex').requestSerialize(r),
    decode: (buf: Buffer): WireReadIndexRequest => method('ReadIndex').requestDeserialize(buf) as WireReadIndexRequest,
  },
  readIndexResponse: {
    encode: (r: WireReadIndexResponse): Buffer => method('ReadIndex').responseSerialize(r),
    decode: (buf: Buffer): WireReadIndexResponse => method('ReadIndex').responseDeserialize(buf) as WireReadIndexResponse,
  },
};
