// JSON as Python's `json` module writes it by default: the bare tokens NaN, Infinity and -Infinity are allowed
// as values (a diverged loss is logged as NaN). Everything else is strict JSON.
const NON_FINITE: Record<string, number> = {
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  '-Infinity': Number.NEGATIVE_INFINITY,
};
const MARK = '\u0000ckvc-nonfinite:';

/** JSON.parse, with NaN / Infinity / -Infinity outside strings read as those numbers. Throws as JSON.parse. */
export function parsePythonJson(text: string): unknown {
  let rewritten = '';
  let inString = false;
  let changed = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      rewritten += c;
      if (c === '\\') rewritten += text[++i] ?? '';
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    const token = ['-Infinity', 'Infinity', 'NaN'].find((t) => text.startsWith(t, i));
    if (token) {
      rewritten += JSON.stringify(MARK + token);
      i += token.length - 1;
      changed = true;
      continue;
    }
    rewritten += c;
  }
  if (!changed) return JSON.parse(text);
  const revive = (_k: string, v: unknown) =>
    typeof v === 'string' && v.startsWith(MARK) ? NON_FINITE[v.slice(MARK.length)] : v;
  return JSON.parse(rewritten, revive);
}

/** A metric value as typed on a command line: a number, or nan / inf / -inf / infinity in any case; else undefined. */
export function parseMetricText(raw: string): number | undefined {
  const t = raw.trim().toLowerCase();
  if (t === 'nan') return Number.NaN;
  if (t === 'inf' || t === '+inf' || t === 'infinity' || t === '+infinity') return Number.POSITIVE_INFINITY;
  if (t === '-inf' || t === '-infinity') return Number.NEGATIVE_INFINITY;
  const v = t === '' ? Number.NaN : Number(t);
  return Number.isFinite(v) ? v : undefined;
}
