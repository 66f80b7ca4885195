// Mutual TLS for peer traffic (DESIGN principle 5). Both directions check two things:
//   1. the peer's certificate chains to the cluster CA (OpenSSL, during the handshake), and
//   2. the certificate names the node the peer claims to be (or that we meant to call).
// (1) alone would let any node of the cluster impersonate any other.
import * as grpc from '@grpc/grpc-js';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { ConnectionOptions, PeerCertificate, TlsOptions } from 'node:tls';
import { nodeIdFromCert } from '../crypto/node-identity.ts';
import type { NodeId } from '../raft/types.ts';
import { TransportError } from './errors.ts';
import type { TlsMaterial } from './types.ts';

/** The PEM certificates of a bundle, in order. */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** TLS 1.3 only: every peer is this program, so there is no old client to accommodate. */
export const TLS_MIN_VERSION = 'TLSv1.3';

/**
 * Refuses local TLS material that cannot work: a key that does not match the certificate, a
 * certificate not issued by the CA, or one that names another node. Caught at start-up rather
 * than as an opaque handshake failure on every peer.
 */
export function checkOwnTlsMaterial(id: NodeId, tls: TlsMaterial): void {
  let cert: X509Certificate;
  let cas: X509Certificate[];
  try {
    cert = new X509Certificate(tls.certPem);
    cas = splitPem(tls.caPem).map((pem) => new X509Certificate(pem));
  } catch (e) {
    throw new TransportError('TLS_CONFIG', `cannot parse certificate or CA: ${(e as Error).message}`, { cause: e });
  }
  if (cas.length === 0) throw new TransportError('TLS_CONFIG', 'no cluster CA certificate');
  if (!cas.every((ca) => ca.ca)) throw new TransportError('TLS_CONFIG', 'a cluster CA certificate is not a CA');
  // caPem may hold several CAs (old and new during a CA rotation); ours must be one of them.
  if (!cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))) {
    throw new TransportError('TLS_CONFIG', 'the node certificate was not issued by the cluster CA');
  }
  let key;
  try {
    key = createPrivateKey(tls.keyPem);
  } catch (e) {
    throw new TransportError('TLS_CONFIG', `cannot parse private key: ${(e as Error).message}`, { cause: e });
  }
  if (!cert.checkPrivateKey(key)) throw new TransportError('TLS_CONFIG', 'the private key does not match the node certificate');
  let named: NodeId;
  try {
    named = nodeIdFromCert(cert);
  } catch (e) {
    throw new TransportError('TLS_CONFIG', `node certificate: ${(e as Error).message}`, { cause: e });
  }
  if (named !== id) throw new TransportError('TLS_CONFIG', `the node certificate names node ${named}, but this is node ${id}`);
  const nowMs = Date.now();
  if (Date.parse(cert.validTo) <= nowMs || Date.parse(cert.validFrom) > nowMs) {
    throw new TransportError('TLS_CONFIG', `the node certificate is not valid now (${cert.validFrom} .. ${cert.validTo})`);
  }
}

/**
 * Options for the server's own tls.Server. A client certificate is requested and OpenSSL verifies
 * it against the cluster CA (only), but an unverified client is not cut off inside the handshake:
 * with TLS 1.3 that surfaces as a bare "socket hang up" that names neither the peer nor the
 * reason. The server instead refuses every socket whose `authorized` is false right after the
 * handshake, logging OpenSSL's authorizationError (PeerServer, 'secureConnection').
 */
export function serverTlsOptions(tls: TlsMaterial, handshakeTimeoutMs: number): TlsOptions {
  return {
    ca: tls.caPem,
    cert: tls.certPem,
    key: tls.keyPem,
    requestCert: true,
    rejectUnauthorized: false,
    handshakeTimeout: handshakeTimeoutMs,
    minVersion: TLS_MIN_VERSION,
    ALPNProtocols: ['h2'],
  };
}

/** Certificates already read, by their DER bytes; cleared when full (a cluster has a handful). */
const MAX_CACHED_CERT_IDS = 256;
const certIdCache = new Map<string, NodeId | null>();

/**
 * The node id named by a peer certificate, or null when it names none (or not exactly one).
 * Parsing the certificate was a quarter of a leader's CPU when every forwarded write and every
 * batch was a call of its own, so the answer is remembered by the certificate's exact DER bytes:
 * the same bytes always name the same node, and the TLS handshake has already verified them.
 */
export function nodeIdFromPeerCertificate(cert: PeerCertificate | null | undefined): NodeId | null {
  if (cert === undefined || cert === null || !Buffer.isBuffer(cert.raw) || cert.raw.length === 0) return null;
  const key = cert.raw.toString('latin1');
  const cached = certIdCache.get(key);
  if (cached !== undefined) return cached;
  let id: NodeId | null;
  try {
    id = nodeIdFromCert(new X509Certificate(cert.raw));
  } catch {
    id = null;
  }
  if (certIdCache.size >= MAX_CACHED_CERT_IDS) certIdCache.clear();
  certIdCache.set(key, id);
  return id;
}

/**
 * Channel credentials for calling node `expectedId`: our certificate as the client certificate,
 * the cluster CA as the only root, and a server identity check that replaces the host name check.
 * The host name check is replaced, not added to, because peers are addressed by IP or by names
 * that may move between nodes; the node id is what we mean to reach (etcd checks the same way
 * with its peer certificates' SANs). `onRefused` is told about a mismatch before the handshake fails.
 */
export function channelCredentials(tls: TlsMaterial, expectedId: NodeId, onRefused: (reason: string, presentedId: NodeId | null) => void): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(Buffer.from(tls.caPem), Buffer.from(tls.keyPem), Buffer.from(tls.certPem), {
    rejectUnauthorized: true,
    checkServerIdentity: (_host: string, cert: PeerCertificate): Error | undefined => {
      const presented = nodeIdFromPeerCertificate(cert);
      if (presented === expectedId) return undefined;
      const reason = presented === null ? `server certificate names no node; expected node ${expectedId}` : `server certificate names node ${presented}; expected node ${expectedId}`;
      onRefused(reason, presented);
      return new Error(reason);
    },
  });
}

/**
 * Options of a plain node:tls client that calls node `expectedId` the way the gRPC channel does
 * (channelCredentials): our certificate, the cluster CA only, TLS 1.3, ALPN h2, the node id checked
 * instead of the host name. Used by the peer client's reachability probe (peer-client.ts).
 */
export function probeTlsOptions(tls: TlsMaterial, expectedId: NodeId, servername: string): ConnectionOptions {
  return {
    ca: tls.caPem,
    cert: tls.certPem,
    key: tls.keyPem,
    minVersion: TLS_MIN_VERSION,
    ALPNProtocols: ['h2'],
    servername,
    rejectUnauthorized: true,
    checkServerIdentity: (_host: string, cert: PeerCertificate): Error | undefined =>
      nodeIdFromPeerCertificate(cert) === expectedId ? undefined : new Error(`server certificate does not name node ${expectedId}`),
  };
}
