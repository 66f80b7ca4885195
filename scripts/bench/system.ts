// What the benchmark needs of a system under test: its endpoints, how a put is spelled, who the
// leader is, and how to kill a member. raftauth and etcd each implement it (raftauth.ts, etcd.ts);
// the workload (workload.ts) only sees this.
import type { Answer, Endpoint, HttpCall } from './client.ts';

/**
 * The prototype's variants (proto.ts, README "Prototype"): the thinnest write path with raftauth's
 * process model and transport, and the same with one piece dropped, each a system of its own.
 */
export const PROTO_SYSTEMS = ['proto', 'proto-noworker', 'proto-notls', 'proto-noworker-notls'] as const;
export type ProtoSystemName = (typeof PROTO_SYSTEMS)[number];
export const SYSTEM_NAMES = ['etcd', 'raftauth', ...PROTO_SYSTEMS] as const;
export type SystemName = (typeof SYSTEM_NAMES)[number];

export function isProtoSystem(name: string): name is ProtoSystemName {
  return (PROTO_SYSTEMS as readonly string[]).includes(name);
}

/** What a prototype variant drops: the HTTP worker (the primary serves HTTP) and/or TLS on the peer streams. */
export function protoVariant(name: ProtoSystemName): { readonly worker: boolean; readonly tls: boolean } {
  return { worker: !name.includes('noworker'), tls: !name.includes('notls') };
}

export interface SystemUnderTest {
  readonly name: SystemName;
  /** Version string of the server software. */
  readonly version: string;
  /** Settings that decide the numbers (timeouts, fsync, workers), copied into the report. */
  readonly settings: Record<string, unknown>;
  /** The client's timeout of one attempt in the failover phase (see client.ts for why it differs between systems). */
  readonly attemptTimeoutMs: number;
  /** Client endpoints, one per member, in member order. */
  readonly endpoints: readonly Endpoint[];
  /** A put of `value` under `key`, for one attempt that has `budgetMs`. */
  putCall(key: string, value: string, budgetMs: number): HttpCall;
  /** Whether an HTTP answer to putCall is a success. */
  putOk(a: Answer): boolean;
  /** The current leader's endpoint index, waiting up to timeoutMs for one that every live member agrees on. */
  leader(timeoutMs: number): Promise<number>;
  /**
   * The highest raft term among the live members (each election, even a failed one, raises it):
   * read before and after a level, it shows whether the level ran under one leader.
   */
  term(): Promise<number>;
  /** CPU seconds used so far by every process of every live member (membersCpuSeconds); null where /proc is missing. */
  cpuSeconds(): number | null;
  /** The same split by process kind (membersCpuByKind); null where /proc is missing. */
  cpuSecondsByKind(): { readonly primary: number; readonly workers: number } | null;
  /** kill -9 the member behind endpoint `i` (with its whole process group) and wait until it is gone. */
  kill(i: number): Promise<void>;
  /** Stop every member and remove its data (bounded). */
  stop(): Promise<void>;
}
