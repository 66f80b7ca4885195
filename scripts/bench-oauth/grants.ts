// The three measured grants, the same for every token server: client_credentials (static request),
// refresh_token (each virtual client rotates its own family in a loop), authorization_code
// (pre-minted codes exchanged with PKCE until the window ends or the codes run out).
import { Pool } from '../bench/client.ts';
import type { HttpCall } from '../bench/client.ts';
import { LoadAccumulator, runLoad } from './load.ts';
import type { LoadResult, RequestSource } from './load.ts';
import { clientCredentialsCall, codeCall, refreshCall } from './target.ts';
import type { MintedCode, TokenServer } from './target.ts';

export interface LevelTiming {
  readonly warmupMs: number;
  readonly measureMs: number;
  readonly requestTimeoutMs: number;
}

/** Concurrency of the set-up requests (minting, first exchanges): enough to be quick, not a load test. */
export const SETUP_CONCURRENCY = 16;

/**
 * client_credentials on several servers at one concurrency, interleaved: each is warmed up, then
 * the measured time of each is cut into `rounds` slices taken in turn (the order rotating every
 * round), so that every server sees the same mix of the machine's moments. Each server still
 * gets `measureMs` in total; its slices add up in one result. A fresh pool per slice: an idle
 * keep-alive socket may be closed by the server (Node's default keepAliveTimeout is 5 s) and its
 * reuse would show as an error of the server.
 */
export async function benchClientCredentialsRounds(servers: readonly TokenServer[], concurrency: number, t: LevelTiming, rounds: number): Promise<LoadResult[]> {
  const accs = servers.map(() => new LoadAccumulator());
  const slice = async (i: number, warmupMs: number, measureMs: number): Promise<LoadResult> => {
    const s = servers[i]!;
    const call = clientCredentialsCall(s.ccAuthorization);
    const pool = new Pool(s.endpoints, concurrency);
    try {
      return await runLoad(pool, { next: () => call }, concurrency, warmupMs, measureMs, t.requestTimeoutMs, accs[i]);
    } finally {
      pool.close();
    }
  };
  for (let i = 0; i < servers.length; i++) await slice(i, t.warmupMs, 0);
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < servers.length; j++) await slice((j + r) % servers.length, 0, t.measureMs / rounds);
  }
  return accs.map((a) => a.result(concurrency));
}

/** The JOSE header of a JWT (to check that a server really issues ES256 JWT access tokens). */
export function jwtHeader(token: unknown): Record<string, unknown> | null {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    return JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** One token request outside the measurement: its 200 body, or an error quoting the answer. */
async function tokenRequest(pool: Pool, i: number, call: HttpCall, timeoutMs: number, what: string): Promise<Record<string, unknown>> {
  const a = await pool.attempt(i % pool.endpoints.length, call, timeoutMs);
  if (a.status !== 200) throw new Error(`${what}: HTTP ${a.status} ${a.body.slice(0, 300)}`);
  return JSON.parse(a.body) as Record<string, unknown>;
}

/** A sample token response of each grant, for the report: what was signed and returned. */
export async function sampleResponse(s: TokenServer, call: HttpCall, timeoutMs: number): Promise<{ accessTokenHeader: Record<string, unknown> | null; fields: string[] }> {
  const pool = new Pool(s.endpoints, 1);
  try {
    const body = await tokenRequest(pool, 0, call, timeoutMs, `${s.system} sample request`);
    return { accessTokenHeader: jwtHeader(body.access_token), fields: Object.keys(body).sort() };
  } finally {
    pool.close();
  }
}

/** Refresh-token families: `n` codes minted and exchanged; returns each family's current refresh token. */
export async function makeFamilies(s: TokenServer, n: number, timeoutMs: number): Promise<string[]> {
  const codes = await s.mintCodes(n, SETUP_CONCURRENCY);
  const pool = new Pool(s.endpoints, SETUP_CONCURRENCY);
  const out: string[] = [];
  try {
    let next = 0;
    const worker = async () => {
      while (next < codes.length) {
        const i = next++;
        const body = await tokenRequest(pool, i, codeCall(s.webAuthorization!, codes[i]!), timeoutMs, `${s.system}: exchanging a code for a refresh-token family`);
        if (typeof body.refresh_token !== 'string') throw new Error(`${s.system}: the code exchange returned no refresh_token (fields ${Object.keys(body).join(', ')})`);
        out.push(body.refresh_token);
      }
    };
    await Promise.all(Array.from({ length: SETUP_CONCURRENCY }, () => worker()));
  } finally {
    pool.close();
  }
  return out;
}

export interface RefreshLevel extends LoadResult {
  /** Families that were revoked during the level (answered invalid_grant) and replaced by a spare. */
  readonly familiesLost: number;
}

/**
 * Client c rotates families[c] in a loop (each answer's refresh_token replaces it). A request
 * without an answer is sent again with the same token: raftauth's grace window answers it with the
 * same successor. A family answered invalid_grant is lost (revoked): the client takes a spare from
 * the end of `families` (beyond the clients), or stops.
 */
export async function benchRefresh(s: TokenServer, families: (string | null)[], concurrency: number, t: LevelTiming): Promise<RefreshLevel> {
  const auth = s.webAuthorization!;
  let spare = families.length - 1;
  let lost = 0;
  const source: RequestSource = {
    next: (c) => {
      const rt = families[c];
      return rt ? refreshCall(auth, rt) : null;
    },
    answered: (c, _call, a) => {
      if (a.status === 200) {
        const rt = (JSON.parse(a.body) as { refresh_token?: unknown }).refresh_token;
        if (typeof rt === 'string') families[c] = rt;
        return;
      }
      if (a.status === 400 && a.body.includes('invalid_grant')) {
        lost++;
        families[c] = null;
        while (spare >= concurrency && families[c] === null) {
          families[c] = families[spare]!;
          families[spare--] = null;
        }
      }
    },
  };
  const pool = new Pool(s.endpoints, concurrency);
  try {
    const r = await runLoad(pool, source, concurrency, t.warmupMs, t.measureMs, t.requestTimeoutMs);
    return { ...r, familiesLost: lost };
  } finally {
    pool.close();
  }
}

export interface CodeLevel extends LoadResult {
  readonly codesMinted: number;
  readonly mintSeconds: number;
}

/** Exchange `codes` (popped from the end) at `concurrency`; the level ends early if they run out. */
export async function benchCodeExchange(s: TokenServer, codes: MintedCode[], concurrency: number, t: LevelTiming, mintSeconds: number): Promise<CodeLevel> {
  const auth = s.webAuthorization!;
  const minted = codes.length;
  const source: RequestSource = {
    next: () => {
      const c = codes.pop();
      return c ? codeCall(auth, c) : null;
    },
  };
  const pool = new Pool(s.endpoints, concurrency);
  try {
    const r = await runLoad(pool, source, concurrency, t.warmupMs, t.measureMs, t.requestTimeoutMs);
    return { ...r, codesMinted: minted, mintSeconds };
  } finally {
    pool.close();
  }
}

/** Most codes minted for one level (memory, and minting time: each is a replicated write on raftauth). */
export const MAX_CODES = 200_000;

/**
 * Codes to mint for one exchange level: enough for warm-up plus window at the expected rate, plus
 * one per client; at least 200, at most MAX_CODES.
 */
export function codesNeeded(expectedPerSec: number, warmupMs: number, measureMs: number, concurrency: number): number {
  const n = Math.ceil(Math.max(expectedPerSec, 1) * ((warmupMs + measureMs) / 1000)) + concurrency;
  return Math.min(MAX_CODES, Math.max(200, n));
}
