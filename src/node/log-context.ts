// Log correlation: every line a node logs carries its Raft term (the node id is a base binding of
// the logger already, src/server/log.ts). The term changes while the node runs, so it cannot be a
// fixed binding: a pino child with a `log` formatter reads the current term for each line. Reading
// it is a field read (the driver's last status), so it costs nothing per line worth measuring.
//
// A logger that is not pino (the tests' silent loggers) is returned unchanged.

/** The smallest shape of a pino logger this needs. */
interface ChildCapable {
  child(bindings: Record<string, unknown>, options: { formatters: { log: (obj: Record<string, unknown>) => Record<string, unknown> } }): unknown;
}

function isChildCapable(l: unknown): l is ChildCapable {
  return typeof l === 'object' && l !== null && typeof (l as { child?: unknown }).child === 'function';
}

/**
 * A child of `logger` whose every line has `term: term()` (omitted while term() is null: the term
 * is not known yet, e.g. before the store is open). A term the caller logs explicitly wins.
 */
export function withTerm<L>(logger: L, term: () => number | null): L {
  if (!isChildCapable(logger)) return logger;
  return logger.child(
    {},
    {
      formatters: {
        log: (obj) => {
          if ('term' in obj) return obj;
          const t = term();
          return t === null ? obj : { term: t, ...obj };
        },
      },
    },
  ) as L;
}
