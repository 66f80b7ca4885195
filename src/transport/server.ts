// The server half of the peer transport: the Raft gRPC service behind our own TLS listener.
//
// Why our own tls.Server rather than grpc's ServerCredentials.createSsl: grpc-js performs the
// handshake inside its HTTP/2 server and only traces a refused handshake, but a peer whose
// certificate comes from another CA must be refused AND logged. So a node:tls server does the
// mutual-TLS handshake (logging 'tlsClientError'), and each authorized TLS socket is handed to
// grpc-js through Server.createConnectionInjector. grpc-js then sees an authorized TLSSocket and
// exposes the client certificate through call.getAuthContext().sslPeerCertificate, which every
// handler compares with the node id the request claims.
import * as grpc from '@grpc/grpc-js';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import * as tls from 'node:tls';
import type { Message, NodeId } from '../raft/types.ts';
import { PEER_ADDRESS, bytesView, decodeSnapshotHeader, u64 } from './codec.ts';
import { TransportError } from './errors.ts';
import type { TransportLimits } from './limits.ts';
import type { WireAck, WireSnapshotAck, WireSnapshotChunk } from './proto.ts';
import { raftFrameServiceDefinition } from './proto.ts';
import { decodeForwardFrame, decodeRaftFrame, encodeOutcomesFrame, frameData } from './frames.ts';
import type { ForwardOutcome, RaftBatch } from './frames.ts';
import { RAFT_ADDRESS_METADATA } from './peer-client.ts';

/** What every server call offers (grpc-js does not export ServerSurfaceCall from its index). */
type SurfaceCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getAuthContext' | 'getPeer' | 'getDeadline'>;
import type { TransportStats } from './stats.ts';
import { nodeIdFromPeerCertificate, serverTlsOptions } from './tls.ts';
import type { ForwardError, IncomingProposeRequest, ListenAddress, ProposeResult, SnapshotHeader, TlsMaterial, TransportHandler, TransportLogger } from './types.ts';

export interface PeerServerOptions {
  readonly id: NodeId;
  readonly listen: ListenAddress;
  readonly tls: TlsMaterial;
  readonly handler: TransportHandler;
  readonly limits: TransportLimits;
  readonly logger: TransportLogger;
  readonly stats: TransportStats;
}

/** A refusal with the gRPC status the caller sees. */
class Refusal extends Error {
  readonly status: grpc.status;
  /** True when the refusal was already logged with more context where it was decided. */
  readonly logged: boolean;

  constructor(
    status: grpc.status,
    message: string,
    logged = false,
  ) {
    super(message);
    this.status = status;
    this.logged = logged;
  }
}

function statusOf(e: unknown): { code: grpc.status; details: string } {
  if (e instanceof Refusal) return { code: e.status, details: e.message };
  if (e instanceof TransportError) {
    if (e.code === 'MALFORMED') return { code: grpc.status.INVALID_ARGUMENT, details: e.message };
    if (e.code === 'LIMIT_EXCEEDED') return { code: grpc.status.RESOURCE_EXHAUSTED, details: e.message };
  }
  return { code: grpc.status.INTERNAL, details: e instanceof Error ? e.message : String(e) };
}

export class PeerServer {
  private readonly opts: PeerServerOptions;
  private tls: TlsMaterial;
  private grpcServer: grpc.Server | null = null;
  private injector: ReturnType<grpc.Server['createConnectionInjector']> | null = null;
  private tlsServer: tls.Server | null = null;
  private readonly sockets = new Set<tls.TLSSocket>();
  /** The TCP sockets under every accepted connection, from accept to close (see start()). */
  private readonly rawSockets = new Set<Socket>();
  /** Bumped by start() and stop(): a connection event of an earlier start is one to close. */
  private generation = 0;
  /** Senders whose snapshot stream is being received (at most one per sender). */
  private readonly snapshotsReceiving = new Set<NodeId>();

  constructor(opts: PeerServerOptions) {
    this.opts = opts;
    this.tls = opts.tls;
  }

  /**
   * New TLS material (certificate rotation). New connections use it at once; established ones
   * keep the session they negotiated until they close.
   */
  updateTls(material: TlsMaterial): void {
    this.tls = material;
    this.tlsServer?.setSecureContext(serverTlsOptions(material, this.opts.limits.handshakeTimeoutMs));
  }

  /** Binds and serves; resolves with the bound port (useful with port 0). */
  async start(): Promise<number> {
    if (this.grpcServer !== null) throw new TransportError('STOPPED', 'server already started');
    const { limits, logger, stats } = this.opts;
    const server = new grpc.Server({
      'grpc.max_receive_message_length': limits.maxMessageBytes,
      'grpc.max_send_message_length': limits.maxMessageBytes,
      'grpc.keepalive_time_ms': limits.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': limits.keepaliveTimeoutMs,
    });
    server.addService(raftFrameServiceDefinition, {
      Stream: (call: grpc.ServerDuplexStream<Buffer, WireAck>) => {
        this.onStream(call);
      },
      Snapshot: (call: grpc.ServerReadableStream<WireSnapshotChunk, WireSnapshotAck>, cb: grpc.sendUnaryData<WireSnapshotAck>) => {
        this.onSnapshot(call).then((ack) => cb(null, ack), (e: unknown) => cb(this.fail('Snapshot', call, e)));
      },
      ProposeStream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        this.onProposeStream(call);
      },
    });
    // The TLS is ours (below), so grpc's HTTP/2 server behind the injector must not add its own.
    const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    const tlsServer = tls.createServer(serverTlsOptions(this.tls, limits.handshakeTimeoutMs));
    tlsServer.maxConnections = limits.maxInboundConnections;
    // Every accepted connection from its first byte, handshake or not: stop() must close those still
    // in their handshake too, or the listener's close would wait for them (a peer's reconnect or
    // TLS probe accepted just before stop() and authenticated after it used to hang stop()).
    const generation = ++this.generation;
    tlsServer.on('connection', (raw: Socket) => {
      stats.acceptedConnections++;
      if (this.generation !== generation) {
        raw.destroy();
        return;
      }
      this.rawSockets.add(raw);
      raw.on('close', () => this.rawSockets.delete(raw));
    });
    tlsServer.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
      stats.refusedHandshakes++;
      logger.warn({ peer: describePeer(socket), err: err.message }, 'peer TLS handshake failed');
    });
    tlsServer.on('secureConnection', (socket: tls.TLSSocket) => {
      // Authenticated after stop() began: the injector is gone, and nothing would close it.
      if (this.generation !== generation) {
        socket.destroy();
        return;
      }
      if (!socket.authorized) {
        // No client certificate, or one that does not chain to the cluster CA.
        stats.refusedHandshakes++;
        const cert = socket.getPeerCertificate();
        logger.warn(
          { peer: describePeer(socket), reason: String(socket.authorizationError), subject: cert?.subject?.CN, issuer: cert?.issuer?.CN, san: cert?.subjectaltname },
          'refused a peer connection: its certificate is missing or not issued by the cluster CA',
        );
        socket.destroy();
        return;
      }
      if (socket.alpnProtocol !== 'h2') {
        stats.refusedHandshakes++;
        logger.warn({ peer: describePeer(socket), alpn: socket.alpnProtocol }, 'refused a peer connection: not HTTP/2');
        socket.destroy();
        return;
      }
      // Raft messages are small and latency-bound: no Nagle delay on this side either (grpc-js
      // sets TCP_NODELAY on the sockets it opens; this server accepts them itself).
      socket.setNoDelay(true);
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      // A reset from a vanished peer is normal; without a listener it would crash the process.
      socket.on('error', (e) => logger.debug({ peer: describePeer(socket), err: e.message }, 'peer connection error'));
      injector.injectConnection(socket);
    });
    await new Promise<void>((resolve, reject) => {
      tlsServer.once('error', reject);
      tlsServer.listen({ host: this.opts.listen.host, port: this.opts.listen.port }, () => {
        tlsServer.off('error', reject);
        resolve();
      });
    });
    tlsServer.on('error', (e) => logger.error({ err: e.message }, 'peer listener error'));
    this.grpcServer = server;
    this.injector = injector;
    this.tlsServer = tlsServer;
    const port = (tlsServer.address() as AddressInfo).port;
    logger.info({ id: this.opts.id, host: this.opts.listen.host, port }, 'peer transport listening');
    return port;
  }

  /** Stops accepting, cancels calls in progress, closes every connection. */
  async stop(): Promise<void> {
    const { grpcServer, tlsServer, injector } = this;
    if (grpcServer === null || tlsServer === null || injector === null) return;
    this.grpcServer = null;
    this.tlsServer = null;
    this.injector = null;
    this.generation++;
    const closed = new Promise<void>((resolve) => tlsServer.close(() => resolve()));
    injector.destroy();
    grpcServer.forceShutdown();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    for (const s of this.rawSockets) s.destroy();
    this.rawSockets.clear();
    await closed;
  }

  /**
   * The status a failed call answers with. Identity refusals were logged where they were
   * decided; anything else a peer provoked (malformed, over a limit) is a warning, and an
   * INTERNAL error is ours and logged as an error.
   */
  private fail(rpc: string, call: SurfaceCall, e: unknown): Partial<grpc.StatusObject> {
    const { code, details } = statusOf(e);
    if (!(e instanceof Refusal && e.logged)) {
      const log = { rpc, peer: call.getPeer(), status: grpc.status[code], err: details };
      if (code === grpc.status.INTERNAL) this.opts.logger.error(log, 'peer request failed');
      else this.opts.logger.warn(log, 'peer request refused');
    }
    return { code, details, metadata: new grpc.Metadata() };
  }

  // ---- authentication ------------------------------------------------------------------------

  /**
   * The node id in the client's certificate, which must equal `claimed`. A mismatch is a node
   * with a valid certificate speaking for another node: refused and logged.
   */
  private authenticate(call: SurfaceCall, claimedWire: unknown, rpc: string): NodeId {
    const { logger, stats } = this.opts;
    const certId = nodeIdFromPeerCertificate(peerCertificateOf(call));
    if (certId === null) {
      stats.refusedIdentity++;
      logger.warn({ rpc, peer: call.getPeer() }, 'refused a peer request: its certificate names no node');
      throw new Refusal(grpc.status.UNAUTHENTICATED, 'client certificate names no node', true);
    }
    let claimed: NodeId;
    try {
      claimed = u64(claimedWire as string, 'from');
    } catch {
      claimed = -1;
    }
    if (claimed !== certId) {
      stats.refusedIdentity++;
      logger.warn({ rpc, peer: call.getPeer(), certNode: certId, claimedNode: String(claimedWire) }, 'refused a peer request: it claims another node id than its certificate names');
      throw new Refusal(grpc.status.PERMISSION_DENIED, `certificate names node ${certId}, request claims node ${String(claimedWire)}`, true);
    }
    return certId;
  }

  private checkAddressedToUs(to: number, what: string): void {
    if (to !== this.opts.id) throw new Refusal(grpc.status.FAILED_PRECONDITION, `${what} is for node ${to}, this is node ${this.opts.id}`);
  }

  // ---- Stream ---------------------------------------------------------------------------------

  /**
   * A peer's stream of batches (rpc Stream). The peer is authenticated once, by its first batch:
   * every later batch arrives on the same TLS connection, so the certificate cannot change, but
   * each batch's `from` and `to` are still checked. Batches reach the node
   * in the order sent; a handler that returns a promise pauses the stream until it settles. Acks
   * are coalesced: everything handed over before the event loop turns is acknowledged at once.
   * The first refusal ends the stream with its status (nothing after it is delivered).
   */
  private onStream(call: grpc.ServerDuplexStream<Buffer, WireAck>): void {
    const { handler } = this.opts;
    let from: NodeId | null = null;
    let ended = false;
    let ackMessages = 0;
    let ackBatches = 0;
    let ackScheduled = false;
    const flushAck = (): void => {
      ackScheduled = false;
      if (ended || ackBatches === 0) return;
      const ack: WireAck = { accepted: ackMessages, batches: ackBatches };
      ackMessages = 0;
      ackBatches = 0;
      call.write(ack);
    };
    const delivered = (n: number): void => {
      ackMessages += n;
      ackBatches++;
      if (!ackScheduled) {
        ackScheduled = true;
        setImmediate(flushAck);
      }
    };
    const refuse = (e: unknown): void => {
      if (ended) return;
      ended = true;
      const status = this.fail('Stream', call, e);
      call.emit('error', status);
    };
    call.on('data', (frame: Buffer) => {
      if (ended) return;
      let msgs: Message[];
      try {
        const batch = decodeRaftFrame(frameData(frame), this.frameLimits());
        // The certificate is read once, on the first batch; a later batch may not claim another id.
        if (from === null) {
          from = this.authenticate(call, batch.from, 'Stream');
          this.announcedAddress(from, call);
        } else if (batch.from !== from) this.authenticate(call, batch.from, 'Stream');
        msgs = this.checkFrame(batch);
      } catch (e) {
        // A batch over a limit (too many messages, an entry too large) counts as a refused batch.
        if (e instanceof TransportError && e.code === 'LIMIT_EXCEEDED') this.opts.stats.refusedBatches++;
        refuse(e);
        return;
      }
      if (msgs.length === 0) {
        delivered(0);
        return;
      }
      let r: void | Promise<void>;
      try {
        r = handler.onMessages(from, msgs);
      } catch (e) {
        refuse(e);
        return;
      }
      if (r instanceof Promise) {
        call.pause();
        r.then(
          () => {
            delivered(msgs.length);
            call.resume();
          },
          (e: unknown) => refuse(e),
        );
      } else delivered(msgs.length);
    });
    call.on('end', () => {
      if (ended) return;
      ended = true;
      flushAck();
      call.end();
    });
    // A cancelled call (the peer went away or gave up on it): nothing to answer.
    call.on('cancelled', () => {
      ended = true;
    });
    call.on('error', () => {
      ended = true;
    });
  }

  private frameLimits(): { maxMessagesPerBatch: number; maxEntryBytes: number; maxContextBytes: number } {
    const { limits } = this.opts;
    return { maxMessagesPerBatch: limits.maxMessagesPerBatch, maxEntryBytes: limits.maxBatchBytes, maxContextBytes: limits.maxSessionIdChars * 4 };
  }

  /**
   * A Stream frame's batch from its authenticated sender. The frame carries one sender and one
   * receiver for all its messages, so no message can speak for a third node; the receiver must be
   * us.
   */
  private checkFrame(batch: RaftBatch): Message[] {
    const { stats } = this.opts;
    this.checkAddressedToUs(batch.to, 'batch');
    stats.receivedBatches++;
    stats.receivedMessages += batch.messages.length;
    return batch.messages as Message[];
  }

  /**
   * The raft address an authenticated peer announced when it opened its stream, handed to the
   * node (which uses it only while it has no address of its own for that peer). A missing,
   * repeated or malformed value is ignored: it is a hint, and the stream works without it.
   */
  private announcedAddress(from: NodeId, call: grpc.ServerDuplexStream<Buffer, WireAck>): void {
    const values = call.metadata.get(RAFT_ADDRESS_METADATA);
    if (values.length !== 1) return;
    const a = values[0];
    if (typeof a !== 'string' || !PEER_ADDRESS.test(a)) {
      this.opts.logger.warn({ peer: from, address: String(a).slice(0, 100) }, 'ignored a malformed raft address announced by a peer');
      return;
    }
    this.opts.handler.onPeerAddress?.(from, a);
  }

  // ---- Snapshot ---------------------------------------------------------------------------------

  private async onSnapshot(call: grpc.ServerReadableStream<WireSnapshotChunk, WireSnapshotAck>): Promise<WireSnapshotAck> {
    const { limits, logger, stats, handler } = this.opts;
    const it = call[Symbol.asyncIterator]() as AsyncIterator<WireSnapshotChunk>;
    const first = await it.next();
    if (first.done === true || first.value.kind !== 'header') throw new TransportError('MALFORMED', 'a snapshot stream must start with its header');
    const wireHeader = first.value.header;
    this.authenticate(call, wireHeader?.from, 'Snapshot');
    const header: SnapshotHeader = decodeSnapshotHeader(wireHeader);
    this.checkAddressedToUs(header.to, 'snapshot');
    // A leader sends one snapshot at a time to a follower (its progress is in state snapshot), so a
    // second stream from the same sender is stale or a bug; refusing it keeps one sink per sender.
    if (this.snapshotsReceiving.has(header.from)) throw new TransportError('LIMIT_EXCEEDED', `already receiving a snapshot from node ${header.from}`);
    if (this.snapshotsReceiving.size >= limits.maxConcurrentSnapshotReceives) {
      throw new TransportError('LIMIT_EXCEEDED', `already receiving ${this.snapshotsReceiving.size} snapshots (maxConcurrentSnapshotReceives)`);
    }
    this.snapshotsReceiving.add(header.from);
    let receivedBytes = 0;
    let verified = false;
    async function* chunks(): AsyncGenerator<Uint8Array, void, undefined> {
      const hash = createHash('sha256');
      for (;;) {
        const r = await it.next();
        if (r.done === true) throw new TransportError('MALFORMED', `snapshot stream ended after ${receivedBytes} bytes without its trailer`);
        const c = r.value;
        if (c.kind === 'data') {
          const data = bytesView(c.data, 'data');
          if (data.length > limits.maxSnapshotChunkBytes) throw new TransportError('LIMIT_EXCEEDED', `snapshot chunk of ${data.length} bytes exceeds maxSnapshotChunkBytes ${limits.maxSnapshotChunkBytes}`);
          receivedBytes += data.length;
          if (receivedBytes > limits.maxSnapshotBytes) throw new TransportError('LIMIT_EXCEEDED', `snapshot exceeds maxSnapshotBytes ${limits.maxSnapshotBytes}`);
          hash.update(data);
          yield data;
        } else if (c.kind === 'trailer' && c.trailer) {
          const total = u64(c.trailer.totalBytes, 'trailer.totalBytes');
          const digest = hash.digest();
          const sent = bytesView(c.trailer.sha256, 'trailer.sha256');
          if (total !== receivedBytes) throw new TransportError('MALFORMED', `snapshot trailer says ${total} bytes, received ${receivedBytes}`);
          if (sent.length !== digest.length || !timingSafeEqual(sent, digest)) throw new TransportError('MALFORMED', 'snapshot SHA-256 mismatch');
          const end = await it.next();
          if (end.done !== true) throw new TransportError('MALFORMED', 'data after the snapshot trailer');
          verified = true;
          return;
        } else {
          throw new TransportError('MALFORMED', `unexpected snapshot chunk ${String(c.kind)}`);
        }
      }
    }
    try {
      await handler.onSnapshot(header, chunks());
      // A handler that stops reading early has not stored the snapshot: a bug on our side.
      if (!verified) throw new Refusal(grpc.status.INTERNAL, 'snapshot handler returned before the whole stream was received and verified');
      stats.receivedSnapshots++;
      logger.info({ from: header.from, index: header.metadata.index, term: header.metadata.term, bytes: receivedBytes }, 'received snapshot');
      return { receivedBytes };
    } catch (e) {
      stats.failedSnapshotReceives++;
      logger.warn({ from: header.from, index: header.metadata.index, bytes: receivedBytes, err: (e as Error).message }, 'snapshot receive failed');
      throw e;
    } finally {
      this.snapshotsReceiving.delete(header.from);
    }
  }

  // ---- forwarding ---------------------------------------------------------------------------

  /** The local deadline of a forwarded write: its relative timeout, capped at maxForwardTimeoutMs. */
  private deadlineMs(timeoutMsWire: number): { timeoutMs: number; deadlineMs: number } {
    const timeoutMs = Math.min(u64(timeoutMsWire, 'timeoutMs'), this.opts.limits.maxForwardTimeoutMs);
    return { timeoutMs, deadlineMs: Date.now() + timeoutMs };
  }

  /**
   * A peer's stream of forwarded writes (rpc ProposeStream). Each request Frame carries the writes
   * the peer forwarded during one turn of its event loop; each is checked (checkPropose) and handed
   * to the node. Outcomes known during one turn of this event loop leave together in one response
   * Frame, each under its write's id. The peer is authenticated by its first frame (the
   * certificate cannot change on one connection); a later frame claiming another id, or a
   * malformed one, ends the stream.
   */
  private onProposeStream(call: grpc.ServerDuplexStream<Buffer, Buffer>): void {
    const { limits } = this.opts;
    let from: NodeId | null = null;
    let ended = false;
    let halfClosed = false;
    let inFlight = 0;
    let out: ForwardOutcome[] = [];
    let flushScheduled = false;
    const flush = (): void => {
      flushScheduled = false;
      if (out.length === 0) return;
      const outcomes = out;
      out = [];
      if (!ended) call.write(encodeOutcomesFrame(outcomes));
      maybeEnd();
    };
    const answer = (o: ForwardOutcome): void => {
      out.push(o);
      if (out.length >= limits.maxForwardsPerFrame) flush();
      else if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    };
    call.on('data', (frame: Buffer) => {
      if (ended) return;
      let incoming: { readonly id: number; readonly req: IncomingProposeRequest }[];
      try {
        const f = decodeForwardFrame(frameData(frame), limits);
        if (from === null) from = this.authenticate(call, f.from, 'ProposeStream');
        else if (f.from !== from) this.authenticate(call, f.from, 'ProposeStream');
        const sender = from;
        incoming = f.items.map((it) => {
          const { timeoutMs, deadlineMs } = this.deadlineMs(it.timeoutMs);
          return { id: it.id, req: this.checkPropose(sender, { sessionId: it.sessionId, seq: it.seq, command: it.command }, timeoutMs, deadlineMs) };
        });
      } catch (e) {
        ended = true;
        call.emit('error', this.fail('ProposeStream', call, e));
        return;
      }
      for (const { id, req } of incoming) {
        if (inFlight >= limits.maxForwardsInFlightPerStream) {
          answer({ id, ok: false, error: { code: 'PROPOSAL_DROPPED', leaderHint: 0, message: `more than ${limits.maxForwardsInFlightPerStream} forwarded writes in flight from node ${from}` } });
          continue;
        }
        inFlight++;
        void this.propose(req).then((result) => {
          inFlight--;
          answer(result.ok ? { id, ok: true, result: result.result } : { id, ok: false, error: result.error });
        });
      }
    });
    // The peer half-closed: answer what is in flight, then end the stream.
    const maybeEnd = (): void => {
      if (ended || !halfClosed || inFlight > 0 || out.length > 0) return;
      ended = true;
      call.end();
    };
    call.on('end', () => {
      halfClosed = true;
      maybeEnd();
    });
    call.on('cancelled', () => {
      ended = true;
    });
    call.on('error', () => {
      ended = true;
    });
  }

  /** A forwarded write checked: the session id, the command and its size, the seq. Throws a refusal. */
  private checkPropose(from: NodeId, req: { readonly sessionId: string; readonly seq: number; readonly command: Uint8Array }, timeoutMs: number, deadlineMs: number): IncomingProposeRequest {
    const { limits } = this.opts;
    if (typeof req.sessionId !== 'string' || req.sessionId.length === 0 || req.sessionId.length > limits.maxSessionIdChars) {
      throw new TransportError('MALFORMED', `sessionId must be 1..${limits.maxSessionIdChars} characters`);
    }
    const command = bytesView(req.command, 'command');
    if (command.length > limits.maxCommandBytes) throw new TransportError('LIMIT_EXCEEDED', `command of ${command.length} bytes exceeds maxCommandBytes ${limits.maxCommandBytes}`);
    const seq = u64(req.seq, 'seq');
    return { from, sessionId: req.sessionId, seq, command, timeoutMs, deadlineMs };
  }

  /** The handler's outcome for a forwarded write; never throws. */
  private async propose(req: IncomingProposeRequest): Promise<ProposeResult> {
    try {
      return await this.opts.handler.onPropose(req);
    } catch (e) {
      this.opts.logger.error({ from: req.from, err: (e as Error).message }, 'propose handler failed');
      return { ok: false, error: internal(e) };
    }
  }
}

function describePeer(socket: tls.TLSSocket): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
}

function internal(e: unknown): ForwardError {
  return { code: 'INTERNAL', leaderHint: 0, message: e instanceof Error ? e.message : String(e) };
}

/**
 * The client certificate of a call, or null. grpc-js (1.14) reads it from the HTTP/2 session's
 * socket when asked, and its getAuthContext() throws a TypeError (`peerCertificate.raw` of null)
 * once that socket has lost its handle, i.e. the connection is already gone. Such a call cannot be
 * authenticated and is refused like one without a certificate.
 */
export function peerCertificateOf(call: Pick<SurfaceCall, 'getAuthContext'>): tls.PeerCertificate | null {
  try {
    return call.getAuthContext().sslPeerCertificate ?? null;
  } catch {
    return null;
  }
}
