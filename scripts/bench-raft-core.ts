// Throughput of the pure Raft core: a 3-node cluster in memory, no I/O, one process (one core).
// Each round the leader takes `--batch` proposals, then every node's Ready is "persisted" into a
// MemoryStorage, its messages delivered, its committed entries counted as applied. Prints JSON.
//
//   npm run bench:raft-core -- --entries 1000000 --batch 256 --size 64
import { parseArgs } from 'node:util';
import { RawNode } from '../src/raft/raw-node.ts';
import { MemoryStorage } from '../src/raft/memory-storage.ts';
import type { Message, NodeId } from '../src/raft/types.ts';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '500000' },
    batch: { type: 'string', default: '256' },
    size: { type: 'string', default: '64' },
    compactEvery: { type: 'string', default: '50000' },
  },
});
const totalEntries = Number(values.entries);
const batch = Number(values.batch);
const sizeBytes = Number(values.size);
const compactEvery = Number(values.compactEvery);
for (const [k, v] of Object.entries({ totalEntries, batch, sizeBytes, compactEvery })) {
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`--${k} must be a positive integer`);
}

let seed = 42;
const rng = (bound: number) => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % bound;
};

const ids: NodeId[] = [1, 2, 3];
const conf = { voters: ids, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
const nodes = new Map<NodeId, { node: RawNode; storage: MemoryStorage; applied: number }>();
for (const id of ids) {
  const storage = new MemoryStorage(conf);
  nodes.set(id, { node: new RawNode({ id, electionTick: 10, heartbeatTick: 1, storage, rng, maxInflightMsgs: 256 }), storage, applied: 0 });
}

let readies = 0;
let readiesWithEntries = 0;
let messages = 0;
let inflight: Message[] = [];

function pump(): void {
  for (;;) {
    let any = false;
    for (const n of nodes.values()) {
      if (!n.node.hasReady()) continue;
      any = true;
      const rd = n.node.ready();
      readies++;
      if (rd.entries.length > 0) readiesWithEntries++;
      n.storage.append(rd.entries);
      if (rd.hardState) n.storage.setHardState(rd.hardState);
      for (const m of rd.messages) inflight.push(m);
      messages += rd.messages.length;
      if (rd.committedEntries.length > 0) n.applied = rd.committedEntries[rd.committedEntries.length - 1]!.index;
      n.node.advance();
      if (n.applied - n.storage.firstIndex() > compactEvery) n.storage.compact(n.applied - 1000);
    }
    if (inflight.length === 0 && !any) return;
    const batchMsgs = inflight;
    inflight = [];
    for (const m of batchMsgs) nodes.get(m.to)!.node.step(m);
  }
}

const leader = nodes.get(1)!;
leader.node.campaign();
pump();
if (leader.node.status().softState.role !== 'leader') throw new Error('node 1 did not become leader');

const payload = new Uint8Array(sizeBytes).fill(7);
const startApplied = leader.applied;
const target = startApplied + totalEntries;
let proposals = 0;
let rounds = 0;
const t0 = process.hrtime.bigint();
while (proposals < totalEntries) {
  const n = Math.min(batch, totalEntries - proposals);
  for (let i = 0; i < n; i++) leader.node.propose(payload);
  proposals += n;
  rounds++;
  pump();
}
pump();
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
for (const [id, n] of nodes) {
  if (n.applied < target) throw new Error(`node ${id} applied ${n.applied}, expected at least ${target}`);
}
console.log(
  JSON.stringify({
    bench: 'raft-core',
    nodes: ids.length,
    entries: totalEntries,
    entryBytes: sizeBytes,
    batch,
    seconds: Number(seconds.toFixed(3)),
    entriesPerSecond: Math.round(totalEntries / seconds),
    proposalsPerReadyWithEntries: Number((totalEntries / (readiesWithEntries / ids.length)).toFixed(1)),
    proposalRounds: rounds,
    readies,
    messages,
    messagesPerEntry: Number((messages / totalEntries).toFixed(3)),
    heapUsedMiB: Math.round(process.memoryUsage().heapUsed / (1 << 20)),
  }),
);
