// `raftauth audit …`: the replicated audit log through the admin API (src/ops/admin-audit.ts).
//
// query and export are served by any node (after a ReadIndex barrier). verify asks every node
// named by the connection options (cluster.json, --admin list) to check its own copy, because
// tampering with one node's disk shows only on that node.
import { CliError, EXIT_FAILURE, EXIT_OK, UsageError, flag, parse, parsePositiveInt, str } from '../args.ts';
import type { OptionValues } from '../args.ts';
import { describeError } from '../admin-client.ts';
import type { CliIo } from '../io.ts';
import { formatTable } from '../table.ts';
import { CONNECTION_OPTIONS } from './cluster.ts';
import { call, connect, isoTime, notePage, printJson, repeated } from './clients.ts';

/** Records per page of `export` (each at most 4 KiB: a page stays under the client's 1 MiB answer limit). */
const EXPORT_PAGE = 200;
const MAX_LIMIT = 1_000;

export const AUDIT_USAGE = `usage:
  raftauth audit query [--from T] [--to T] [--sub SUB] [--client ID] [--type TYPE]... [--after SEQ] [--limit N] [--json]
      records in seq order (a table, or --json); T: milliseconds since the epoch or an RFC 3339
      date-time (2026-11-23T12:00:00Z); --to is exclusive; the next page starts at --after
  raftauth audit export [--from T] [--to T] [--sub SUB] [--client ID] [--type TYPE]... > audit.jsonl
      every matching record as JSON Lines (RFC 8785 canonical JSON, one record per line)
  raftauth audit verify [--json]
      every node checks its own copy of the chain; names the first broken record per node;
      exit code 1 if any node's chain does not verify or a node does not answer
  (every subcommand takes the connection options)`;

const FILTER_OPTIONS = {
  from: { type: 'string' },
  to: { type: 'string' },
  sub: { type: 'string' },
  client: { type: 'string' },
  type: { type: 'string', multiple: true },
} as const;

function filterQuery(v: OptionValues): URLSearchParams {
  const q = new URLSearchParams();
  for (const [opt, param] of [
    ['from', 'from'],
    ['to', 'to'],
    ['sub', 'sub'],
    ['client', 'client_id'],
  ] as const) {
    const x = str(v, opt);
    if (x !== undefined) {
      if (x === '') throw new UsageError(`--${opt} needs a value`);
      q.set(param, x);
    }
  }
  const types = repeated(v, 'type').flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean);
  if (types.length > 0) q.set('type', types.join(','));
  return q;
}

interface Row {
  seq: number;
  ts: number;
  type: string;
  sub: string | null;
  clientId: string | null;
  ip: string | null;
  details: Record<string, unknown>;
}

function formatRecords(rows: readonly Row[]): string {
  if (rows.length === 0) return 'no records\n';
  return formatTable(
    ['SEQ', 'TIME', 'TYPE', 'SUB', 'CLIENT', 'IP', 'DETAILS'],
    rows.map((r) => [r.seq, isoTime(r.ts), r.type, r.sub, r.clientId, r.ip, Object.entries(r.details).map(([k, x]) => `${k}=${String(x)}`).join(' ')]),
  );
}

interface VerifyAnswer {
  node: number;
  ok: boolean;
  records?: number;
  head?: { seq: number; hash: string } | null;
  firstBroken?: number;
  why?: string;
}

export async function auditCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const sub = argv[0];
  const rest = argv.slice(1);
  switch (sub) {
    case 'query': {
      const { values } = parse(rest, { ...CONNECTION_OPTIONS, ...FILTER_OPTIONS, after: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } }, 0);
      const q = filterQuery(values);
      const after = str(values, 'after');
      if (after !== undefined) q.set('after', after);
      const limit = parsePositiveInt(str(values, 'limit'), '--limit', MAX_LIMIT);
      if (limit !== undefined) q.set('limit', String(limit));
      const qs = q.toString();
      const r = await call(connect(values, io), 'GET', `/admin/v1/audit${qs ? `?${qs}` : ''}`);
      if (flag(values, 'json')) printJson(io, r);
      else {
        io.out(formatRecords(r.records as Row[]));
        notePage(io, typeof r.next === 'number' ? String(r.next) : null, 'raftauth audit query');
      }
      return EXIT_OK;
    }
    case 'export': {
      const { values } = parse(rest, { ...CONNECTION_OPTIONS, ...FILTER_OPTIONS }, 0);
      const c = connect(values, io);
      const q = filterQuery(values);
      q.set('limit', String(EXPORT_PAGE));
      let n = 0;
      for (;;) {
        const r = await call(c, 'GET', `/admin/v1/audit?${q.toString()}`);
        // The API's records are plain JSON; the line is their JSON text, as the export endpoint writes it.
        for (const rec of r.records as Row[]) io.out(`${canonicalLine(rec)}\n`);
        n += (r.records as Row[]).length;
        if (typeof r.next !== 'number') break;
        q.set('after', String(r.next));
      }
      io.err(`${n} record(s) exported\n`);
      return EXIT_OK;
    }
    case 'verify': {
      const { values } = parse(rest, { ...CONNECTION_OPTIONS, json: { type: 'boolean' } }, 0);
      const c = connect(values, io);
      const results = await Promise.all(
        c.endpoints.map(async (url) => {
          try {
            const r = await c.request(url, 'GET', '/admin/v1/audit/verify');
            if (r.status !== 200) return { url, error: describeError(r) };
            return { url, answer: r.body as VerifyAnswer };
          } catch (e) {
            if (e instanceof CliError) return { url, error: e.message };
            throw e;
          }
        }),
      );
      const bad = results.filter((x) => !x.answer?.ok).length;
      if (flag(values, 'json')) printJson(io, results);
      else {
        io.out(
          formatTable(
            ['NODE', 'ADMIN', 'CHAIN', 'RECORDS', 'HEAD', 'FIRST_BROKEN', 'WHY'],
            results.map((x) =>
              x.answer
                ? [x.answer.node, x.url, x.answer.ok ? 'ok' : 'BROKEN', x.answer.records ?? null, x.answer.head?.seq ?? null, x.answer.firstBroken ?? null, x.answer.why ?? null]
                : [null, x.url, 'unreachable', null, null, null, x.error ?? null],
            ),
          ),
        );
      }
      return bad === 0 ? EXIT_OK : EXIT_FAILURE;
    }
    case undefined:
      throw new UsageError('audit needs a subcommand: query, export or verify');
    default:
      throw new UsageError(`unknown audit subcommand ${JSON.stringify(sub)} (expected query, export or verify)`);
  }
}

/** RFC 8785 canonical JSON of a record read back from the API (the same line the export endpoint writes). */
function canonicalLine(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalLine).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalLine(o[k])}`)
    .join(',')}}`;
}
