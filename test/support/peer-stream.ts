// One batch of raft messages sent on its own Stream call (src/transport/raft.proto), the way a
// node sends every batch, from a bare PeerClient: for tests that must send what a Transport never
// would (another identity, a batch over the receiver's limits). Resolves with the messages the
// peer acknowledged; rejects with the stream's TransportError (its grpcStatus says why).
import type { PeerClient, PeerStream } from '../../src/transport/peer-client.ts';
import type { Message } from '../../src/raft/types.ts';

export function sendOneBatch(client: PeerClient, msgs: readonly Message[]): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const stream: PeerStream = client.openStream({
      onAck: (messages) => {
        // cancel() without a reason reports nothing more: the Ack is the answer.
        stream.cancel();
        resolve(messages);
      },
      onDrain: () => undefined,
      onError: reject,
    });
    stream.write(msgs);
  });
}
