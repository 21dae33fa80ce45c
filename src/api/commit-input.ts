// Validation of what a user passes to commit, done before any data is read so that bad input changes nothing.
import { CkvcError } from '../core/errors.js';
import { parseMetricText } from '../core/python-json.js';

/** Parses KEY=VALUE metrics: numbers, NaN and ±Infinity included (a diverged loss is recorded as such). */
export function parseMetrics(input: string[] | Record<string, number> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  const pairs: [string, unknown][] = Array.isArray(input)
    ? input.map((s) => {
        const eq = s.indexOf('=');
        if (eq <= 0)
          throw new CkvcError(
            'CKVC_BAD_METRIC',
            `metric ${JSON.stringify(s)} is not KEY=NUMBER (e.g. --metric loss=0.31)`,
            { metric: s },
          );
        return [s.slice(0, eq), s.slice(eq + 1)];
      })
    : Object.entries(input ?? {});
  for (const [k, raw] of pairs) {
    const v = typeof raw === 'number' ? raw : typeof raw === 'string' ? parseMetricText(raw) : undefined;
    if (v === undefined) {
      // Number('1e999') is Infinity: a number, too large for a 64-bit float, which is not what "inf" means.
      const tooLarge = typeof raw === 'string' && raw.trim() !== '' && Number.isNaN(Number(raw)) === false;
      const why = tooLarge
        ? 'which is beyond the range of a 64-bit float (about ±1.8e308; inf is written "inf")'
        : 'which is not a number (nan, inf and -inf are allowed)';
      throw new CkvcError('CKVC_BAD_METRIC', `metric "${k}" has value ${JSON.stringify(raw)}, ${why}`, {
        metric: k,
        value: raw,
      });
    }
    if (k === '__proto__')
      throw new CkvcError('CKVC_BAD_METRIC', 'a metric cannot be named "__proto__"', { metric: k });
    if (!/^[A-Za-z0-9_./:-]{1,128}$/.test(k))
      throw new CkvcError(
        'CKVC_BAD_METRIC',
        `metric name ${JSON.stringify(k)} may only use letters, digits and _ . / : -`,
        { metric: k },
      );
    // A repeated key kept its last value without a word: say so instead (as for an option given twice).
    if (Object.hasOwn(out, k))
      throw new CkvcError(
        'CKVC_BAD_METRIC',
        `metric "${k}" is given twice (${out[k]} and ${v}); give each metric once`,
        { metric: k },
      );
    out[k] = v;
  }
  return out;
}

export function parseLabels(input: string[] | Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const pairs: [string, string][] = Array.isArray(input)
    ? input.map((s) => {
        const eq = s.indexOf('=');
        if (eq <= 0)
          throw new CkvcError('CKVC_BAD_ARGUMENT', `label ${JSON.stringify(s)} is not KEY=VALUE`, { label: s });
        return [s.slice(0, eq), s.slice(eq + 1)];
      })
    : Object.entries(input ?? {});
  for (const [k, v] of pairs) {
    if (typeof v !== 'string')
      throw new CkvcError('CKVC_BAD_ARGUMENT', `label "${k}" must have a string value`, { label: k });
    // A JS object key with special meaning: it would be dropped or change the prototype, never stored.
    if (k === '__proto__')
      throw new CkvcError('CKVC_BAD_ARGUMENT', 'a label cannot be named "__proto__"', { label: k });
    out[k] = v;
  }
  return out;
}

export function parseCount(value: unknown, what: string, least = 0, why = ''): number | undefined {
  if (value === undefined) return undefined;
  const n =
    typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < least)
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `${what} must be a whole number >= ${least}${why ? ` (${why})` : ''}, got ${JSON.stringify(value)}`,
      { [what]: value },
    );
  return n;
}
