// The summary of `npm run bench:oauth`: ratios between the systems measured in the same run, and
// issue 5's targets judged on them. Pure (unit-tested in summary.test.ts).
import type { LoadResult } from './load.ts';

export const GRANTS = ['client_credentials', 'refresh_token', 'authorization_code'] as const;
export type Grant = (typeof GRANTS)[number];
export type OAuthSystem = 'raftauth' | 'oidc-provider' | 'ceiling';

/** Every measured level: system → grant → one result per concurrency. */
export type Results = Partial<Record<OAuthSystem, Partial<Record<Grant, LoadResult[]>>>>;

/** etcd puts at one concurrency (from scripts/bench's runner). */
export interface EtcdLevel {
  readonly concurrency: number;
  readonly writesPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly failedRequests: number;
}

export interface Target {
  readonly target: string;
  readonly concurrency: number;
  /** null: not measured in this run (a system or level skipped). */
  readonly met: boolean | null;
  readonly detail: string;
}

export interface ClientCredentialsRatio {
  readonly concurrency: number;
  readonly raftauth: number | null;
  readonly oidcProvider: number | null;
  readonly ceiling: number | null;
  /** raftauth / oidc-provider requests per second. */
  readonly raftauthOverOidcProvider: number | null;
  /** raftauth / ceiling requests per second. */
  readonly raftauthOverCeiling: number | null;
}

export interface RefreshVsEtcd {
  readonly concurrency: number;
  readonly raftauthRefreshPerSec: number | null;
  readonly etcdPutsPerSec: number | null;
  readonly raftauthOverEtcd: number | null;
}

export interface Summary {
  readonly clientCredentials: ClientCredentialsRatio[];
  readonly refreshVsEtcd: RefreshVsEtcd[];
  /** raftauth / oidc-provider for every grant and level both measured. */
  readonly raftauthOverOidcProvider: { readonly grant: Grant; readonly concurrency: number; readonly ratio: number | null }[];
  readonly targets: Target[];
}

/** a / b to 3 decimals; null when either is missing or b is 0. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || !(b > 0)) return null;
  return Math.round((a / b) * 1000) / 1000;
}

export function levelOf(r: Results, s: OAuthSystem, g: Grant, c: number): LoadResult | undefined {
  return r[s]?.[g]?.find((l) => l.concurrency === c);
}

/**
 * Issue 5's targets, per concurrency: client_credentials ≥ 2× oidc-provider and ≥ 0.5× the
 * ceiling; refresh_token ≥ the etcd put rate. A raftauth level with any failed request does not
 * meet its target, whatever its rate (a fast server that drops requests is not faster).
 */
export function summarize(results: Results, etcd: readonly EtcdLevel[] | null, levels: readonly number[]): Summary {
  const clientCredentials: ClientCredentialsRatio[] = [];
  const refreshVsEtcd: RefreshVsEtcd[] = [];
  const targets: Target[] = [];
  const rps = (l: LoadResult | undefined) => (l ? l.requestsPerSec : null);
  const errNote = (l: LoadResult | undefined) => (l && l.errorCount > 0 ? `; raftauth had ${l.errorCount} failed requests ${JSON.stringify(l.errors)}` : '');
  for (const c of levels) {
    const ra = levelOf(results, 'raftauth', 'client_credentials', c);
    const op = levelOf(results, 'oidc-provider', 'client_credentials', c);
    const ce = levelOf(results, 'ceiling', 'client_credentials', c);
    clientCredentials.push({
      concurrency: c,
      raftauth: rps(ra),
      oidcProvider: rps(op),
      ceiling: rps(ce),
      raftauthOverOidcProvider: ratio(rps(ra), rps(op)),
      raftauthOverCeiling: ratio(rps(ra), rps(ce)),
    });
    {
      const name = 'client_credentials: raftauth >= 2x oidc-provider';
      targets.push(
        ra && op
          ? { target: name, concurrency: c, met: ra.errorCount === 0 && ra.requestsPerSec >= 2 * op.requestsPerSec, detail: `${ra.requestsPerSec} vs ${op.requestsPerSec} req/s (x${ratio(ra.requestsPerSec, op.requestsPerSec)})${errNote(ra)}` }
          : { target: name, concurrency: c, met: null, detail: 'not measured' },
      );
    }
    {
      const name = 'client_credentials: raftauth >= 0.5x the bare node:http ceiling';
      targets.push(
        ra && ce
          ? { target: name, concurrency: c, met: ra.errorCount === 0 && ra.requestsPerSec >= 0.5 * ce.requestsPerSec, detail: `${ra.requestsPerSec} vs ${ce.requestsPerSec} req/s (x${ratio(ra.requestsPerSec, ce.requestsPerSec)})${errNote(ra)}` }
          : { target: name, concurrency: c, met: null, detail: 'not measured' },
      );
    }
    const rr = levelOf(results, 'raftauth', 'refresh_token', c);
    const ep = etcd?.find((e) => e.concurrency === c);
    refreshVsEtcd.push({ concurrency: c, raftauthRefreshPerSec: rps(rr), etcdPutsPerSec: ep ? ep.writesPerSec : null, raftauthOverEtcd: ratio(rps(rr), ep?.writesPerSec) });
    {
      const name = 'refresh_token: raftauth >= etcd put rate at the same concurrency';
      targets.push(
        rr && ep
          ? { target: name, concurrency: c, met: rr.errorCount === 0 && rr.requestsPerSec >= ep.writesPerSec, detail: `${rr.requestsPerSec} refreshes/s vs ${ep.writesPerSec} etcd puts/s (x${ratio(rr.requestsPerSec, ep.writesPerSec)})${errNote(rr)}` }
          : { target: name, concurrency: c, met: null, detail: 'not measured' },
      );
    }
  }
  const raftauthOverOidcProvider = GRANTS.flatMap((g) =>
    levels.flatMap((c) => {
      const a = levelOf(results, 'raftauth', g, c);
      const b = levelOf(results, 'oidc-provider', g, c);
      return a && b ? [{ grant: g, concurrency: c, ratio: ratio(a.requestsPerSec, b.requestsPerSec) }] : [];
    }),
  );
  return { clientCredentials, refreshVsEtcd, raftauthOverOidcProvider, targets };
}

/** A short table for humans (stderr). */
export function humanTable(results: Results, etcd: readonly EtcdLevel[] | null, s: Summary): string {
  const pad = (x: string | number, w: number) => String(x).padStart(w);
  const lines = [`${'system'.padEnd(14)}${'grant'.padEnd(20)}${pad('conc', 5)}${pad('req/s', 9)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('errors', 8)}`];
  for (const [sys, grants] of Object.entries(results)) {
    for (const [g, ls] of Object.entries(grants ?? {})) {
      for (const l of ls ?? []) lines.push(`${sys.padEnd(14)}${g.padEnd(20)}${pad(l.concurrency, 5)}${pad(l.requestsPerSec.toFixed(0), 9)}${pad(l.latency.p50Ms.toFixed(2), 9)}${pad(l.latency.p99Ms.toFixed(2), 9)}${pad(l.errorCount, 8)}`);
    }
  }
  for (const e of etcd ?? []) lines.push(`${'etcd'.padEnd(14)}${'put'.padEnd(20)}${pad(e.concurrency, 5)}${pad(e.writesPerSec.toFixed(0), 9)}${pad(e.p50Ms.toFixed(2), 9)}${pad(e.p99Ms.toFixed(2), 9)}${pad(e.failedRequests, 8)}`);
  for (const t of s.targets) lines.push(`[${t.met === null ? 'n/a' : t.met ? 'MET' : 'NOT MET'}] c${t.concurrency} ${t.target}: ${t.detail}`);
  return lines.join('\n') + '\n';
}
