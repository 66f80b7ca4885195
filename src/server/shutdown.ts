// Bounded graceful close of an HTTP app: stop accepting, let in-flight requests finish, and after
// drainMs cut whatever is still open — a stuck client must not hold a node's shutdown forever.
import type { FastifyInstance } from 'fastify';

export async function closeHttp(app: FastifyInstance, drainMs: number): Promise<void> {
  // fastify's close stops the listener, answers 503 to new requests on kept-alive connections and
  // closes idle ones (forceCloseConnections: 'idle'), then waits for in-flight requests.
  const cut = setTimeout(() => app.server.closeAllConnections(), drainMs);
  try {
    await app.close();
  } finally {
    clearTimeout(cut);
  }
}
