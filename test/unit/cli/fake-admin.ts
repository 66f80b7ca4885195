// A fake admin API for CLI tests: a node:http server on 127.0.0.1 that checks the bearer token,
// records every request and answers with the test's function.
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export const TOKEN = 't'.repeat(43);

export interface Req {
  method: string;
  url: string;
  body: unknown;
}
export type Answer = { status: number; body: unknown };

export async function fakeAdmin(answer: (r: Req) => Answer): Promise<{ url: string; requests: Req[]; server: Server }> {
  const requests: Req[] = [];
  const server = createServer((req, res) => {
    let s = '';
    req.on('data', (c) => (s += c));
    req.on('end', () => {
      const r: Req = { method: req.method!, url: req.url!, body: s ? JSON.parse(s) : undefined };
      requests.push(r);
      const a = req.headers.authorization === `Bearer ${TOKEN}` ? answer(r) : { status: 401, body: { error: 'UNAUTHORIZED', message: 'no' } };
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}
