// One node of the write-path prototype (README "Prototype"): raftauth's process model and peer
// transport with nothing else — no raft core, no elections (node 1 leads, always), no sessions,
// no OAuth, no log compaction. It exists to measure the ceiling of that process model and
// transport on this machine, beside etcd and raftauth in `npm run bench:replication`.
//
//  - HTTP (node:http): PUT /v1/kv/:key {"value": "…"} → 200 {} once the write is fsynced on a
//    majority and applied on the leader; GET /v1/status → {id, role, leader, term} (503 until the
//    node's peer streams are up). Served by one HTTP worker forked with node:cluster, as raftauth's
//    shipped config, or by the primary itself when the config says worker: false.
//  - IPC (worker ↔ primary): as src/server/ipc.ts, `serialization: 'advanced'`, every message of
//    one event-loop turn in ONE channel message — here one Buffer (wire.ts `writes`/`outcomes`).
//  - Peers: @grpc/grpc-js bidirectional streams with raw-bytes serializers, over mutual TLS as
//    src/transport does (a node:tls server handing authorized sockets to grpc-js, the client
//    checking the node id in the server's certificate), or plain TCP when tlsDir is null.
//    A follower forwards the writes of one turn as one frame on its Forward stream; the leader
//    answers on it. The leader sends each entry on an Append stream to each follower.
//  - Leader: every write of one turn becomes ONE log entry, sent to both followers and appended
//    with one fsynced LevelDB batch in parallel (a storage actor: one batch in flight, the entries
//    that arrive meanwhile go in the next). An entry commits once it is fsynced here and on one
//    follower; committed entries are applied (one unsynced batch in flight, in order), then each
//    write is answered.
//  - Follower: one fsynced batch in flight holding every entry received meanwhile plus the applies
//    of entries the leader's commit index now covers; then acks the highest index it holds.
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { ClassicLevel } from 'classic-level';
import { channelCredentials, serverTlsOptions } from '../../../src/transport/tls.ts';
import type { TlsMaterial } from '../../../src/transport/types.ts';
import {
  PROTO_CONFIG_ENV, WireError, decodeAck, decodeAppend, decodeEntry, decodeItem, decodeOutcomes, decodeWrites,
  encodeAck, encodeAppend, encodeEntry, encodeItem, encodeOutcomes, encodeWrites, logKey, parseNodeConfig, stateKey,
} from './wire.ts';
import type { ProtoNodeConfig } from './wire.ts';

type Done = (ok: boolean) => void;
type Submit = (item: Buffer, done: Done) => void;
type Op = { type: 'put'; key: Buffer; value: Buffer };
type Db = ClassicLevel<Buffer, Buffer>;
type Stream = grpc.ClientDuplexStream<Buffer, Buffer> | grpc.ServerDuplexStream<Buffer, Buffer>;

const LEADER = 1;
/** Longest request body read; a put is well under it. */
const MAX_BODY_BYTES = 128 * 1024;
/** Deadline of a put without x-request-timeout-ms, and the most it may ask for. */
const DEFAULT_TIMEOUT_MS = 5_000;
/** How often expired requests are answered 503 TIMEOUT (a coarse sweep, not a timer per request). */
const SWEEP_MS = 50;
/** Peers must be reachable within this at start. */
const CONNECT_TIMEOUT_MS = 60_000;
const raw = (b: Buffer): Buffer => b;
const method = (name: string): grpc.MethodDefinition<Buffer, Buffer> => ({
  path: `/raftauth.proto.v1.Proto/${name}`, requestStream: true, responseStream: true,
  requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw,
});
const SERVICE = { Append: method('Append'), Forward: method('Forward') } as const;

function fatal(what: string, e: unknown): never {
  process.stderr.write(`proto node: ${what}: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
}

/** Runs `flush` once at the end of this event-loop turn, however many times it is asked. */
function perTurn(flush: () => void): () => void {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    setImmediate(() => {
      queued = false;
      flush();
    });
  };
}

/** Writes and their answers batched per turn on one channel (IPC or a Forward stream). */
class Outbox {
  private ids: number[] = [];
  private oks: boolean[] = [];
  private readonly kick: () => void;
  constructor(send: (frame: Buffer) => void) {
    this.kick = perTurn(() => {
      const f = encodeOutcomes(this.ids, this.oks);
      this.ids = [];
      this.oks = [];
      send(f);
    });
  }
  answer(id: number, ok: boolean): void {
    this.ids.push(id);
    this.oks.push(ok);
    this.kick();
  }
}

/** Sends writes on a channel, per turn, and routes the outcomes back by id. */
class Forwarder {
  private nextId = 1;
  private readonly pending = new Map<number, Done>();
  private ids: number[] = [];
  private items: Buffer[] = [];
  private bytes = 0;
  private readonly kick: () => void;
  constructor(send: (frame: Buffer) => void) {
    this.kick = perTurn(() => {
      const f = encodeWrites(this.ids, this.items, this.bytes);
      this.ids = [];
      this.items = [];
      this.bytes = 0;
      send(f);
    });
  }
  readonly submit: Submit = (item, done) => {
    const id = this.nextId;
    this.nextId = id >= 0xffff_ffff ? 1 : id + 1;
    this.pending.set(id, done);
    this.ids.push(id);
    this.items.push(item);
    this.bytes += item.length;
    this.kick();
  };
  outcomes(frame: Buffer): void {
    decodeOutcomes(frame, (id, ok) => {
      const d = this.pending.get(id);
      this.pending.delete(id);
      d?.(ok);
    });
  }
}

/** What the leader keeps of an entry until it is applied. */
interface Pending {
  readonly entry: Buffer;
  readonly waiters: Done[];
}

class Leader {
  private readonly db: Db;
  private readonly followers: Stream[] = [];
  private items: Buffer[] = [];
  private waiters: Done[] = [];
  private bytes = 0;
  private last = 0;
  private durable = 0;
  private commit = 0;
  private applied = 0;
  private readonly match = new Map<Stream, number>();
  private readonly log = new Map<number, Pending>();
  private appendQueue: { index: number; entry: Buffer }[] = [];
  private appending = false;
  private applying = false;
  private readonly kick: () => void;

  constructor(db: Db) {
    this.db = db;
    this.kick = perTurn(() => this.flush());
  }

  addFollower(s: grpc.ClientDuplexStream<Buffer, Buffer>): void {
    this.followers.push(s);
    this.match.set(s, 0);
    s.on('data', (b: Buffer) => {
      const i = decodeAck(b);
      if (i > this.match.get(s)!) this.match.set(s, i);
      this.advance();
    });
  }

  readonly submit: Submit = (item, done) => {
    this.items.push(item);
    this.waiters.push(done);
    this.bytes += item.length;
    this.kick();
  };

  private flush(): void {
    const entry = encodeEntry(this.items, this.bytes);
    const index = ++this.last;
    this.log.set(index, { entry, waiters: this.waiters });
    this.items = [];
    this.waiters = [];
    this.bytes = 0;
    const frame = encodeAppend(index, this.commit, entry);
    for (const f of this.followers) f.write(frame);
    this.appendQueue.push({ index, entry });
    this.append();
  }

  /** The storage actor: one fsynced batch in flight, holding every entry made since the last one. */
  private append(): void {
    if (this.appending || this.appendQueue.length === 0) return;
    const q = this.appendQueue;
    this.appendQueue = [];
    this.appending = true;
    const ops: Op[] = q.map((e) => ({ type: 'put', key: logKey(e.index), value: e.entry }));
    rawBatch(this.db, ops, true).then(() => {
      this.appending = false;
      this.durable = q[q.length - 1]!.index;
      this.advance();
      this.append();
    }, (e: unknown) => fatal('log append', e));
  }

  private advance(): void {
    let best = 0;
    for (const m of this.match.values()) best = Math.max(best, m);
    const c = Math.min(this.durable, best);
    if (c > this.commit) this.commit = c;
    this.apply();
  }

  /** Applies committed entries, in order, one unsynced batch in flight; then answers their writes. */
  private apply(): void {
    if (this.applying || this.applied >= this.commit) return;
    const from = this.applied + 1;
    const to = this.commit;
    const ops: Op[] = [];
    const waiters: Done[] = [];
    for (let i = from; i <= to; i++) {
      const p = this.log.get(i)!;
      this.log.delete(i);
      for (const it of decodeEntry(p.entry)) ops.push(putOf(it));
      waiters.push(...p.waiters);
    }
    this.applying = true;
    rawBatch(this.db, ops, false).then(() => {
      this.applying = false;
      this.applied = to;
      for (const w of waiters) w(true);
      this.apply();
    }, (e: unknown) => fatal('apply', e));
  }
}

class Follower {
  private readonly db: Db;
  private readonly stream: grpc.ServerDuplexStream<Buffer, Buffer>;
  private queue: { index: number; entry: Buffer }[] = [];
  private unapplied = new Map<number, Buffer>();
  private commit = 0;
  private applied = 0;
  private writing = false;

  constructor(db: Db, stream: grpc.ServerDuplexStream<Buffer, Buffer>) {
    this.db = db;
    this.stream = stream;
    stream.on('data', (b: Buffer) => {
      const a = decodeAppend(b);
      this.queue.push({ index: a.index, entry: a.entry });
      if (a.commit > this.commit) this.commit = a.commit;
      this.write();
    });
  }

  private write(): void {
    if (this.writing || this.queue.length === 0) return;
    const q = this.queue;
    this.queue = [];
    const ops: Op[] = q.map((e) => ({ type: 'put', key: logKey(e.index), value: e.entry }));
    for (const e of q) this.unapplied.set(e.index, e.entry);
    // Applies ride in the same batch: entries the leader's commit covers (received before or now).
    for (; this.applied < this.commit && this.unapplied.has(this.applied + 1); this.applied++) {
      for (const it of decodeEntry(this.unapplied.get(this.applied + 1)!)) ops.push(putOf(it));
      this.unapplied.delete(this.applied + 1);
    }
    this.writing = true;
    rawBatch(this.db, ops, true).then(() => {
      this.writing = false;
      this.stream.write(encodeAck(q[q.length - 1]!.index));
      this.write();
    }, (e: unknown) => fatal('follower append', e));
  }
}

function putOf(item: Buffer): Op {
  const { key, value } = decodeItem(item);
  return { type: 'put', key: stateKey(key), value };
}

/** classic-level's own batch, as src/storage/level-store.ts uses it: the public one clones every operation. */
function rawBatch(db: Db, ops: Op[], sync: boolean): Promise<void> {
  return (db as unknown as { _batch(o: Op[], x: { sync: boolean }): Promise<void> })._batch(ops, { sync });
}

function tlsMaterial(c: ProtoNodeConfig): TlsMaterial | null {
  if (c.tlsDir === null) return null;
  const r = (f: string): string => readFileSync(`${c.tlsDir}/${f}`, 'utf8');
  return { caPem: r('ca.crt'), certPem: r(`node${c.id}.crt`), keyPem: r(`node${c.id}.key`) };
}

async function serveGrpc(c: ProtoNodeConfig, t: TlsMaterial | null, impl: grpc.UntypedServiceImplementation): Promise<void> {
  const server = new grpc.Server();
  server.addService(SERVICE, impl);
  const port = c.peerPorts[c.id - 1]!;
  if (t === null) {
    await new Promise<number>((res, rej) => server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
    return;
  }
  // As src/transport/server.ts: our own mutual-TLS listener, authorized sockets handed to grpc-js.
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const tlsServer = tls.createServer(serverTlsOptions(t, 10_000));
  tlsServer.on('secureConnection', (s: tls.TLSSocket) => {
    if (!s.authorized || s.alpnProtocol !== 'h2') return void s.destroy();
    s.setNoDelay(true);
    s.on('error', () => undefined);
    injector.injectConnection(s);
  });
  await new Promise<void>((res) => tlsServer.listen(port, '127.0.0.1', res));
}

async function connect(c: ProtoNodeConfig, t: TlsMaterial | null, peer: number): Promise<grpc.Client> {
  const creds = t === null ? grpc.credentials.createInsecure() : channelCredentials(t, peer, (reason) => process.stderr.write(`proto node: refused node ${peer}: ${reason}\n`));
  const client = new grpc.Client(`127.0.0.1:${c.peerPorts[peer - 1]}`, creds, {
    'grpc.ssl_target_name_override': `node-${peer}.raftauth`,
    'grpc.use_local_subchannel_pool': 1,
    'grpc.enable_retries': 0,
  });
  await new Promise<void>((res, rej) => client.waitForReady(Date.now() + CONNECT_TIMEOUT_MS, (e) => (e ? rej(e) : res())));
  return client;
}

const onBroken = (what: string) => (e?: Error) => fatal(`${what} stream ended`, e ?? 'end');

/** The primary: storage, peers, and either the HTTP worker or HTTP itself. */
async function primary(c: ProtoNodeConfig): Promise<void> {
  const db: Db = new ClassicLevel<Buffer, Buffer>(c.dataDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const t = tlsMaterial(c);
  let submit: Submit;
  let ready = false;
  let onReady = (): void => {};
  if (c.id === LEADER) {
    const leader = new Leader(db);
    submit = leader.submit;
    await serveGrpc(c, t, {
      Forward: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        const out = new Outbox((f) => call.write(f));
        call.on('data', (b: Buffer) => decodeWrites(b, (id, item) => leader.submit(item, (ok) => out.answer(id, ok))));
        call.on('error', () => undefined);
      },
      Append: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => call.destroy(new Error('node 1 leads')),
    });
    for (let peer = 1; peer <= c.peerPorts.length; peer++) {
      if (peer === LEADER) continue;
      const s = (await connect(c, t, peer)).makeBidiStreamRequest(SERVICE.Append.path, raw, raw);
      s.on('error', onBroken(`append to node ${peer}`));
      s.on('end', onBroken(`append to node ${peer}`));
      leader.addFollower(s);
    }
  } else {
    await serveGrpc(c, t, {
      Append: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        call.on('error', onBroken('append from the leader'));
        new Follower(db, call);
      },
      Forward: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => call.destroy(new Error(`node ${LEADER} leads`)),
    });
    const s = (await connect(c, t, LEADER)).makeBidiStreamRequest(SERVICE.Forward.path, raw, raw);
    const fwd = new Forwarder((f) => s.write(f));
    s.on('data', (b: Buffer) => fwd.outcomes(b));
    s.on('error', onBroken('forward to the leader'));
    s.on('end', onBroken('forward to the leader'));
    submit = fwd.submit;
  }
  if (!c.worker) {
    serveHttp(c, submit, () => ready);
  } else {
    cluster.setupPrimary({ execArgv: process.execArgv, serialization: 'advanced' });
    const w = cluster.fork();
    const out = new Outbox((f) => w.send(f));
    w.on('message', (m: unknown) => {
      if (!Buffer.isBuffer(m) && !(m instanceof Uint8Array)) return; // node:cluster's own messages
      const b = Buffer.isBuffer(m) ? m : Buffer.from(m.buffer, m.byteOffset, m.byteLength);
      decodeWrites(b, (id, item) => submit(item, (ok) => out.answer(id, ok)));
    });
    w.on('exit', (code, sig) => fatal('HTTP worker exited', `code ${code} signal ${sig}`));
    let listening = false;
    const tell = (): void => void (listening && ready && w.send({ protoReady: true }));
    w.on('listening', () => {
      listening = true;
      tell();
    });
    onReady = tell;
  }
  ready = true;
  onReady();
}

/** The HTTP worker: HTTP in, writes over IPC to the primary, one channel message per turn each way. */
function worker(c: ProtoNodeConfig): void {
  let ready = false;
  const fwd = new Forwarder((f) => process.send!(f));
  process.on('message', (m: unknown) => {
    if (Buffer.isBuffer(m) || m instanceof Uint8Array) fwd.outcomes(Buffer.isBuffer(m) ? m : Buffer.from(m.buffer, m.byteOffset, m.byteLength));
    else if (typeof m === 'object' && m !== null && (m as { protoReady?: unknown }).protoReady === true) ready = true;
  });
  process.on('disconnect', () => process.exit(0));
  serveHttp(c, fwd.submit, () => ready);
}

function serveHttp(c: ProtoNodeConfig, submit: Submit, ready: () => boolean): void {
  const json = (res: ServerResponse, status: number, body: unknown): void => {
    const b = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b) }).end(b);
  };
  const deadlines = new Map<ServerResponse, number>();
  setInterval(() => {
    const now = performance.now();
    for (const [res, at] of deadlines) {
      if (at > now) continue;
      deadlines.delete(res);
      json(res, 503, { error: 'TIMEOUT', message: 'no answer within the request deadline' });
    }
  }, SWEEP_MS).unref();
  const put = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    let key: string;
    let value: unknown;
    try {
      key = decodeURIComponent(req.url!.slice('/v1/kv/'.length));
      value = (JSON.parse(body.toString('utf8')) as { value?: unknown } | null)?.value;
    } catch {
      return json(res, 400, { error: 'INVALID_REQUEST', message: 'the key must be URL-encoded and the body a JSON object' });
    }
    if (typeof value !== 'string') return json(res, 400, { error: 'INVALID_REQUEST', message: 'value must be a string' });
    const h = req.headers['x-request-timeout-ms'];
    if (h !== undefined && (typeof h !== 'string' || !/^[0-9]{1,9}$/.test(h) || Number(h) < 1)) return json(res, 400, { error: 'INVALID_REQUEST', message: 'x-request-timeout-ms must be a positive integer' });
    let item: Buffer;
    try {
      item = encodeItem(key, value);
    } catch (e) {
      if (e instanceof WireError) return json(res, 400, { error: 'INVALID_REQUEST', message: e.message });
      throw e;
    }
    deadlines.set(res, performance.now() + Math.min(h === undefined ? DEFAULT_TIMEOUT_MS : Number(h), DEFAULT_TIMEOUT_MS));
    submit(item, (ok) => {
      if (!deadlines.delete(res)) return; // already answered TIMEOUT
      if (ok) json(res, 200, {});
      else json(res, 503, { error: 'UNAVAILABLE', message: 'the write was not committed' });
    });
  };
  createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/v1/status') {
      req.resume();
      if (!ready()) return json(res, 503, { error: 'UNAVAILABLE', message: 'peers not connected yet' });
      return json(res, 200, { id: c.id, role: c.id === LEADER ? 'leader' : 'follower', leader: LEADER, term: 1 });
    }
    if (req.method !== 'PUT' || !req.url?.startsWith('/v1/kv/')) {
      req.resume();
      return json(res, 404, { error: 'NOT_FOUND', message: 'only PUT /v1/kv/:key and GET /v1/status' });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (b: Buffer) => {
      size += b.length;
      if (size <= MAX_BODY_BYTES) chunks.push(b);
    });
    req.on('end', () => (size > MAX_BODY_BYTES ? json(res, 413, { error: 'INVALID_REQUEST', message: `body over ${MAX_BODY_BYTES} bytes` }) : put(req, res, Buffer.concat(chunks))));
  }).listen(c.httpPort, '127.0.0.1');
}

const config = parseNodeConfig(process.env[PROTO_CONFIG_ENV]);
// A clean exit on SIGTERM, so that --cpu-prof writes its profile (the benchmark stops nodes so when
// BENCH_RAFTAUTH_NODE_ARGS is set); the worker follows when its IPC channel closes.
process.on('SIGTERM', () => process.exit(0));
if (cluster.isPrimary) primary(config).catch((e: unknown) => fatal('start', e));
else worker(config);
