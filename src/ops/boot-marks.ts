// Boot phases of this process, for the debug log (docs/operations.md, "Boot time"). Each mark is the
// time since the process started, in ms: performance.now() counts from the process's time origin,
// so the first mark also shows what node itself took before our entry module ran. A node's primary
// logs its marks once every initial HTTP worker listens (src/server/process.ts), a worker once it
// listens (src/server/worker.ts), each at debug level as "boot phases".
//
// Marks are few and fixed (one per phase of a start); the list is bounded anyway, so a phase
// marked in a loop by mistake cannot grow it.

/** Most marks kept per process. */
export const MAX_BOOT_MARKS = 32;

const marks: [string, number][] = [];

/** Record that `phase` was reached now. */
export function bootMark(phase: string): void {
  if (marks.length < MAX_BOOT_MARKS) marks.push([phase, Math.round(performance.now())]);
}

/**
 * The marks so far, in order, as { phase: ms since the process started }; `node bootstrap` is
 * node's own start-up (performance.nodeTiming), before any of our code ran.
 */
export function bootMarks(): Record<string, number> {
  return { 'node bootstrap': Math.round(performance.nodeTiming.bootstrapComplete), ...Object.fromEntries(marks) };
}
