// Loads raft.proto, which sits beside this module (npm run build copies it to dist/transport/), and
// exposes the gRPC service definition plus the TypeScript shapes of the wire messages as
// @grpc/proto-loader presents them (camelCase fields, uint64 as decimal strings on decode, enums as
// names, bytes as Buffer, oneof arms named by a virtual field).
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
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
if (service === undefined || !('Stream' in service)) throw new Error(`${SERVICE_NAME} missing from ${PROTO_PATH}`);
export const raftServiceDefinition = service as grpc.ServiceDefinition;

const rawBytes = (b: Buffer): Buffer => b;

/**
 * The service as nodes serve and call it: Stream's requests and ProposeStream's requests and
 * responses are Frames whose bytes src/transport/frames.ts encodes and decodes itself (a Frame is
 * built with its protobuf key and length already in place), so gRPC passes them through as they
 * are. Snapshot keeps proto-loader's protobuf (de)serializers.
 */
export const raftFrameServiceDefinition: grpc.ServiceDefinition = {
  ...raftServiceDefinition,
  Stream: { ...raftServiceDefinition.Stream!, requestSerialize: rawBytes, requestDeserialize: rawBytes },
  ProposeStream: { ...raftServiceDefinition.ProposeStream!, requestSerialize: rawBytes, requestDeserialize: rawBytes, responseSerialize: rawBytes, responseDeserialize: rawBytes },
};

/** A uint64 as written (number or decimal string) and as read (decimal string). */
export type WireU64 = number | string;

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

export interface WireAck {
  accepted: number;
  /** Batches this Ack covers. */
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

/**
 * Serialize/deserialize with the service's own codecs, to check the codec against real protobuf
 * bytes in tests.
 */
export const wireCodecs = {
  snapshotChunk: {
    encode: (c: WireSnapshotChunk): Buffer => snapshotMethod().requestSerialize(c),
    decode: (buf: Buffer): WireSnapshotChunk => snapshotMethod().requestDeserialize(buf) as WireSnapshotChunk,
  },
};

function snapshotMethod(): grpc.MethodDefinition<unknown, unknown> {
  const m = raftServiceDefinition.Snapshot;
  if (m === undefined) throw new Error(`method Snapshot missing from ${SERVICE_NAME}`);
  return m;
}
