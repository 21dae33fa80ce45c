// Durations on the command line (`gc --grace 30m`): a number with a unit, or 0.
import { CkvcError } from './errors.js';

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

export function parseDuration(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)?\s*$/.exec(text);
  if (!m || (m[2] === undefined && Number(m[1]) !== 0)) {
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `${what} must be a duration such as 30m, 2h, 7d or 0, got ${JSON.stringify(text)}`,
      { [what]: text },
    );
  }
  return Math.round(Number(m[1]) * UNIT_MS[m[2] ?? 'ms']!);
}
