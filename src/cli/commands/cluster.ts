// Admin commands against a running cluster: status, members list|add|promote|remove,
// transfer-leader. They speak to the nodes' admin APIs through AdminClient (admin-client.ts).
import type { MemberStatus, NodeStatus } from '../../node/api.ts';
import { clientFromArgs, describeError } from '../admin-client.ts';
import type { AdminClient } from '../admin-client.ts';
import { CliError, EXIT_FAILURE, EXIT_OK, UsageError, flag, list, parse, parseHostPortArg, parseNodeId, parsePositiveInt, str } from '../args.ts';
import type { OptionSpec, OptionValues } from '../args.ts';
import type { CliIo } from '../io.ts';
import { formatTable } from '../table.ts';

/** Longest --timeout-ms accepted: 10 minutes. */
const MAX_TIMEOUT_MS = 600_000;
/** Poll interval while waiting for a leadership transfer to complete. */
const TRANSFER_POLL_MS = 100;

export const CONNECTION_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  admin: { type: 'string', multiple: true },
  'token-file': { type: 'string' },
  cluster: { type: 'string' },
  config: { type: 'string' },
  'timeout-ms': { type: 'string' },
};

export const CONNECTION_USAGE = `connection options (every admin command):
  --admin URL         a node's admin API (repeatable or comma-separated); default $RAFTAUTH_ADMIN,
                      else the node of --config, else every node of the cluster.json (--cluster, or
                      ./.raftauth/local/cluster.json). The other members are found through the
                      admin addresses in the replicated member table.
  --token-file FILE   the admin bearer token; default $RAFTAUTH_ADMIN_TOKEN (the token itself),
                      else the admin.tokenFile of --config, else admin.token beside the cluster.json
  --config FILE       a node's config: its admin API (admin.listen), its admin token file, and the
                      members' adminAddress in cluster.initialMembers
  --cluster FILE      a cluster.json written by npm start (maps node ids to admin URLs)
  --timeout-ms N      deadline of the command, retries included (default 20000)`;

function client(v: OptionValues, io: CliIo): AdminClient {
  return clientFromArgs(
    {
      admin: list(v, 'admin'),
      tokenFile: str(v, 'token-file'),
      clusterFile: str(v, 'cluster'),
      configFile: str(v, 'config'),
      timeoutMs: parsePositiveInt(str(v, 'timeout-ms'), '--timeout-ms', MAX_TIMEOUT_MS),
    },
    io.env,
    io.cwd,
  );
}

// ---------------------------------------------------------------------------------------------
// status

export interface MemberRow {
  readonly id: number;
  /**
   * The node's own view of its role; 'unreachable' when its admin API did not answer; 'unknown'
   * when no admin URL is known for it (its member record has no admin address, and neither the
   * command line nor a config or cluster.json gave one), so it was not asked.
   */
  readonly role: string;
  readonly voter: boolean;
  readonly term: number | null;
  readonly commit: number | null;
  readonly applied: number | null;
  /** The leader's match index for the node (replicated up to here), from the leader's progress. */
  readonly match: number | null;
  /** Entries the node has yet to apply to reach the leader's commit index (from match when the node did not answer). */
  readonly lag: number | null;
  /** The raftauth version the node's admin API reported; null when it did not answer or reports none (an older build). */
  readonly version: string | null;
}

export interface StatusReport {
  /** 0 when no reachable node knows a leader. */
  readonly leader: number;
  readonly term: number;
  readonly members: readonly MemberRow[];
  /** Admin URLs that did not answer, with why. */
  readonly unreachable: readonly { url: string; error: string }[];
}

/**
 * Merge the nodes' own statuses into one view (pure: tested on its own). `id` of a result: the
 * node its URL belongs to when known; a failed URL of unknown node may be any silent member's.
 */
export function buildStatusReport(results: readonly { url: string; id?: number | null; status: NodeStatus | null; error: string | null }[]): StatusReport {
  const statuses = results.flatMap((r) => (r.status ? [r.status] : []));
  const unreachable = results.flatMap((r) => (r.status ? [] : [{ url: r.url, error: r.error ?? 'no answer' }]));
  const failedIds = new Set(results.flatMap((r) => (r.status === null && r.id != null ? [r.id] : [])));
  const unattributedFailure = results.some((r) => r.status === null && r.id == null);
  // Two nodes may both say "leader" for a moment (an old leader that has not heard of the new
  // term); the higher term is the real one (Raft paper §5.1).
  const leaders = statuses.filter((s) => s.role === 'leader').sort((a, b) => b.term - a.term);
  const leaderStatus = leaders[0] ?? null;
  const term = Math.max(0, ...statuses.map((s) => s.term));
  const leader = leaderStatus?.id ?? statuses.filter((s) => s.term === term && s.leader !== 0)[0]?.leader ?? 0;
  const membership = leaderStatus ?? statuses.filter((s) => s.term === term)[0] ?? null;
  const voters = new Set(membership?.voters ?? []);
  const ids = new Set<number>([...(membership?.voters ?? []), ...(membership?.learners ?? []), ...statuses.map((s) => s.id)]);
  const progress = new Map<number, MemberStatus>((leaderStatus?.members ?? []).map((m) => [m.id, m]));
  const members = [...ids]
    .sort((a, b) => a - b)
    .map((id): MemberRow => {
      const own = statuses.find((s) => s.id === id) ?? null;
      const match = progress.get(id)?.match ?? null;
      const reached = own?.applied ?? match;
      return {
        id,
        role: own ? own.role : failedIds.has(id) || unattributedFailure ? 'unreachable' : 'unknown',
        voter: voters.has(id),
        term: own?.term ?? null,
        commit: own?.commit ?? null,
        applied: own?.applied ?? null,
        match,
        lag: leaderStatus && reached !== null ? Math.max(0, leaderStatus.commit - reached) : null,
        version: typeof own?.version === 'string' ? own.version : null,
      };
    });
  return { leader, term, members, unreachable };
}

export function formatStatus(r: StatusReport): string {
  const head = `leader: ${r.leader === 0 ? 'none known' : r.leader}  term: ${r.term}\n`;
  const table = formatTable(
    ['ID', 'ROLE', 'VOTER', 'TERM', 'COMMIT', 'APPLIED', 'MATCH', 'LAG', 'VERSION'],
    r.members.map((m) => [m.id, m.role, m.voter, m.term, m.commit, m.applied, m.match, m.lag, m.version]),
  );
  const errs = r.unreachable.map((u) => `unreachable: ${u.url}: ${u.error}\n`).join('');
  const unknown = r.members.filter((m) => m.role === 'unknown').map((m) => m.id);
  const hint =
    unknown.length === 0
      ? ''
      : `no admin URL known for node${unknown.length === 1 ? '' : 's'} ${unknown.join(', ')}: pass --admin URL, or --config with a node config that lists their adminAddress ` +
        '(their member records predate admin addresses, or were added without --admin-address)\n';
  return head + table + errs + hint;
}

/** Some member answered: the command could report on the cluster. */
const anyAnswered = (r: StatusReport): boolean => r.members.some((m) => m.term !== null);

export const STATUS_USAGE = `usage: raftauth status [--json] [connection options]
  Every member: role, voter, term, commit and applied index, the leader's match index, LAG
  (entries behind the leader's commit index) and VERSION (the raftauth version it runs). Exit 1
  when no node answers.`;

export async function statusCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, { ...CONNECTION_OPTIONS, json: { type: 'boolean' } }, 0);
  const c = client(values, io);
  const report = buildStatusReport(await c.statusAll());
  io.out(flag(values, 'json') ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
  return anyAnswered(report) ? EXIT_OK : EXIT_FAILURE;
}

// ---------------------------------------------------------------------------------------------
// members

export const MEMBERS_USAGE = `usage:
  raftauth members list [--json]
  raftauth members add --id N --raft-address HOST:PORT --http-address HOST:PORT [--admin-address HOST:PORT]
      adds node N as a learner (it catches up without voting; start it with cluster.join: true);
      --admin-address records its admin API in the member table, so status finds it
  raftauth members promote N      makes learner N a voter
  raftauth members remove N       removes voter or learner N
  (each takes the connection options; changes are sent to the leader)`;

function idArg(values: OptionValues, positionals: readonly string[], what: string): number {
  const fromFlag = str(values, 'id');
  if (fromFlag !== undefined && positionals.length > 0) throw new UsageError(`give the node id once (--id or ${what})`);
  return parseNodeId(fromFlag ?? positionals[0], 'the node id');
}

async function change(c: AdminClient, method: 'POST' | 'DELETE', path: string, body: unknown, io: CliIo, ok: (s: NodeStatus | null) => string): Promise<number> {
  const r = await c.onLeader(method, path, body);
  if (r.status >= 200 && r.status < 300) {
    io.out(ok(((r.body as { status?: NodeStatus } | null)?.status) ?? null));
    return EXIT_OK;
  }
  throw new CliError(`${r.url} refused: ${describeError(r)}`);
}

const describeMembers = (s: NodeStatus | null): string => (s ? `voters: ${s.voters.join(', ') || '-'}; learners: ${s.learners.join(', ') || '-'}\n` : '');

export async function membersCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const sub = argv[0];
  const rest = argv.slice(1);
  switch (sub) {
    case 'list': {
      const { values } = parse(rest, { ...CONNECTION_OPTIONS, json: { type: 'boolean' } }, 0);
      const report = buildStatusReport(await client(values, io).statusAll());
      const rows = report.members.map((m) => ({ id: m.id, kind: m.voter ? 'voter' : 'learner', role: m.role, match: m.match }));
      if (flag(values, 'json')) io.out(`${JSON.stringify({ leader: report.leader, members: rows }, null, 2)}\n`);
      else io.out(formatTable(['ID', 'KIND', 'ROLE', 'MATCH'], rows.map((r) => [r.id, r.kind, r.role, r.match])));
      return anyAnswered(report) ? EXIT_OK : EXIT_FAILURE;
    }
    case 'add': {
      const { values } = parse(rest, { ...CONNECTION_OPTIONS, id: { type: 'string' }, 'raft-address': { type: 'string' }, 'http-address': { type: 'string' }, 'admin-address': { type: 'string' } }, 0);
      const id = parseNodeId(str(values, 'id'), '--id');
      const admin = str(values, 'admin-address');
      const body = {
        id,
        raftAddress: parseHostPortArg(str(values, 'raft-address'), '--raft-address'),
        httpAddress: parseHostPortArg(str(values, 'http-address'), '--http-address'),
        ...(admin !== undefined ? { adminAddress: parseHostPortArg(admin, '--admin-address') } : {}),
      };
      return change(client(values, io), 'POST', '/admin/v1/members', body, io, (s) => `node ${id} added as a learner; promote it once it has caught up: raftauth members promote ${id}\n${describeMembers(s)}`);
    }
    case 'promote': {
      const { values, positionals } = parse(rest, { ...CONNECTION_OPTIONS, id: { type: 'string' } }, 1);
      const id = idArg(values, positionals, 'N');
      return change(client(values, io), 'POST', `/admin/v1/members/${id}/promote`, undefined, io, (s) => `node ${id} promoted to voter\n${describeMembers(s)}`);
    }
    case 'remove': {
      const { values, positionals } = parse(rest, { ...CONNECTION_OPTIONS, id: { type: 'string' } }, 1);
      const id = idArg(values, positionals, 'N');
      return change(client(values, io), 'DELETE', `/admin/v1/members/${id}`, undefined, io, (s) => `node ${id} removed\n${describeMembers(s)}`);
    }
    case undefined:
      throw new UsageError('members needs a subcommand: list, add, promote or remove');
    default:
      throw new UsageError(`unknown members subcommand ${JSON.stringify(sub)} (expected list, add, promote or remove)`);
  }
}

// ---------------------------------------------------------------------------------------------
// transfer-leader

export const TRANSFER_USAGE = `usage: raftauth transfer-leader N [--no-wait] [connection options]
  Asks the leader to hand leadership to voter N (Raft dissertation §3.10) and waits until N leads
  (exit 1 if it does not within --timeout-ms).`;

export async function transferLeaderCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { ...CONNECTION_OPTIONS, to: { type: 'string' }, 'no-wait': { type: 'boolean' } }, 1);
  const fromFlag = str(values, 'to');
  if (fromFlag !== undefined && positionals.length > 0) throw new UsageError('give the target once (--to N or N)');
  const to = parseNodeId(fromFlag ?? positionals[0], 'the target node id');
  const c = client(values, io);
  const r = await c.onLeader('POST', '/admin/v1/leader/transfer', { to });
  if (r.status < 200 || r.status >= 300) throw new CliError(`${r.url} refused: ${describeError(r)}`);
  if (flag(values, 'no-wait')) {
    io.out(`leadership transfer to node ${to} requested\n`);
    return EXIT_OK;
  }
  const deadline = Date.now() + c.timeoutMs;
  for (;;) {
    const report = buildStatusReport(await c.statusAll());
    if (report.leader === to) {
      io.out(`node ${to} is the leader (term ${report.term})\n`);
      return EXIT_OK;
    }
    if (Date.now() >= deadline) throw new CliError(`node ${to} did not become the leader within ${c.timeoutMs} ms (leader: ${report.leader || 'none known'})`);
    await new Promise((res) => setTimeout(res, TRANSFER_POLL_MS));
  }
}
