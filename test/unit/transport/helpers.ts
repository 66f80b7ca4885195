// Shared fixtures of the transport tests: a cluster PKI, a recording handler with an in-memory
// snapshot sink, a capturing logger, and waitFor (a condition with a deadline, never a sleep).
import { createClusterCa, issueNodeCert } from '../../../src/crypto/certs.ts';
import type { CertAndKey, ClusterCa } from '../../../src/crypto/certs.ts';
import { MemorySnapshotSink, receiveSnapshot } from '../../../src/transport/snapshot-sink.ts';
import type {
  IncomingProposeRequest,
  ProposeResult,
  SnapshotHeader,
  TlsMaterial,
  TransportHandler,
  TransportLogger,
} from '../../../src/transport/types.ts';
import type { Message, MsgSnap, NodeId } from '../../../src/raft/types.ts';

export interface Pki {
  readonly ca: ClusterCa;
  readonly nodes: ReadonlyMap<NodeId, CertAndKey>;
  tls(id: NodeId): TlsMaterial;
}

export async function makePki(ids: readonly NodeId[]): Promise<Pki> {
  const ca = await createClusterCa();
  const nodes = new Map<NodeId, CertAndKey>();
  for (const id of ids) nodes.set(id, await issueNodeCert(ca, id));
  return {
    ca,
    nodes,
    tls(id: NodeId): TlsMaterial {
      const n = nodes.get(id);
      if (n === undefined) throw new Error(`no certificate for node ${id}`);
      return { caPem: ca.certPem, certPem: n.certPem, keyPem: n.keyPem };
    },
  };
}

export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly obj: object;
  readonly msg: string;
}

export class CapturingLogger implements TransportLogger {
  readonly lines: LogLine[] = [];
  debug(obj: object, msg: string): void {
    this.lines.push({ level: 'debug', obj, msg });
  }
  info(obj: object, msg: string): void {
    this.lines.push({ level: 'info', obj, msg });
  }
  warn(obj: object, msg: string): void {
    this.lines.push({ level: 'warn', obj, msg });
  }
  error(obj: object, msg: string): void {
    this.lines.push({ level: 'error', obj, msg });
  }
  has(level: LogLine['level'], pattern: RegExp): boolean {
    return this.lines.some((l) => l.level === level && pattern.test(l.msg));
  }
}

/**
 * A TransportHandler that records everything. Snapshots go to a MemorySnapshotSink and, once the
 * stream is complete and verified, the MsgSnap is "stepped" by recording it.
 */
export class RecordingHandler implements TransportHandler {
  readonly received: { from: NodeId; msgs: readonly Message[] }[] = [];
  readonly snapshots: MsgSnap[] = [];
  readonly sinks: MemorySnapshotSink[] = [];
  sinkMaxBytes = 64 * 1024 * 1024;
  readonly unreachable: NodeId[] = [];
  /** Raft addresses peers announced on the streams they opened (onPeerAddress). */
  readonly announced: { from: NodeId; address: string }[] = [];
  readonly snapshotStatus: { id: NodeId; status: 'finished' | 'failure' }[] = [];
  readonly proposals: IncomingProposeRequest[] = [];
  proposeReply: (req: IncomingProposeRequest) => Promise<ProposeResult> = async (req) => ({ ok: true, result: req.command });

  messages(): Message[] {
    return this.received.flatMap((r) => r.msgs);
  }
  onMessages(from: NodeId, msgs: readonly Message[]): void {
    this.received.push({ from, msgs });
  }
  async onSnapshot(header: SnapshotHeader, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const sink = new MemorySnapshotSink(this.sinkMaxBytes);
    this.sinks.push(sink);
    this.snapshots.push(await receiveSnapshot(header, chunks, sink));
  }
  onPropose(req: IncomingProposeRequest): Promise<ProposeResult> {
    this.proposals.push(req);
    return this.proposeReply(req);
  }
  onPeerAddress(from: NodeId, address: string): void {
    this.announced.push({ from, address });
  }

  onUnreachable(id: NodeId): void {
    this.unreachable.push(id);
  }
  onSnapshotStatus(id: NodeId, status: 'finished' | 'failure'): void {
    this.snapshotStatus.push({ id, status });
  }
}

/** Waits until `cond()` holds, re-checking every few ms; fails with `what` after `timeoutMs`. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadlineMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Small, deterministic PRNG (mulberry32) for randomized tests that print and replay their seed. */
export function rng(seed: number): (bound: number) => number {
  let a = seed >>> 0;
  return (bound: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * bound | 0;
  };
}
