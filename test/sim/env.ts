// Integer settings of the simulation tests from the environment, validated: a value that is not a
// whole number in range is refused with an error naming the variable, never read as 0 or NaN (a
// seed count of NaN ran no seed at all, and the suite passed).

/** Largest seed count per mix accepted from the environment (a 9-mix soak of 100,000 runs). */
export const MAX_SEEDS_PER_MIX = 100_000;

/**
 * `env[name]` as an integer in [min, max], or `fallback` when unset. Only decimal digits are
 * accepted: no sign, exponent, fraction or surrounding space.
 */
export function intFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined) return fallback;
  const n = /^[0-9]{1,15}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}
