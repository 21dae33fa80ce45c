// Python's float repr (what `json.dump` writes for a float), from JavaScript's own shortest round-trip digits:
// both languages pick the shortest digit string that reads back as the same double, the nearest one when
// several are that short (ECMA-262 Number::toString, Python's dtoa mode 0), so only the layout differs.
// Python writes plain decimals when 1e-4 <= |x| < 1e16 and `d.ddde±XX` (two exponent digits at least)
// otherwise; JavaScript switches at other bounds, so the digits are re-laid out here (spec/JSON.md §3).

const PLAIN_MIN = 1e-4;
const PLAIN_LIMIT = 1e16;

/** repr(x) as Python 3 writes it, with json's spellings of the non-finite values. */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const a = x < 0 ? -x : x;
  const s = String(x);
  // In this range JavaScript writes plain decimals too (its exponent form starts below 1e-6 and at 1e21).
  if (a >= PLAIN_MIN && a < PLAIN_LIMIT) return s.includes('.') ? s : `${s}.0`;
  const { digits, exponent } = decimalDigits(x < 0 ? s.slice(1) : s);
  const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const e = exponent < 0 ? -exponent : exponent;
  return `${x < 0 ? '-' : ''}${mantissa}e${exponent < 0 ? '-' : '+'}${e < 10 ? '0' : ''}${e}`;
}

/**
 * The significant digits of a positive finite number as JavaScript wrote it (`1.5e-7`, `0.00001`,
 * `12345678901234567000`), without leading or trailing zeros, and the exponent of the first one.
 */
function decimalDigits(s: string): { digits: string; exponent: number } {
  const e = s.indexOf('e');
  if (e >= 0) return { digits: s.slice(0, e).replace('.', ''), exponent: Number(s.slice(e + 1)) };
  const dot = s.indexOf('.');
  const intPart = dot < 0 ? s : s.slice(0, dot);
  if (intPart !== '0') {
    const all = intPart + (dot < 0 ? '' : s.slice(dot + 1));
    return { digits: all.replace(/0+$/, ''), exponent: intPart.length - 1 };
  }
  const frac = s.slice(dot + 1);
  const lead = frac.length - frac.replace(/^0+/, '').length;
  return { digits: frac.slice(lead), exponent: -lead - 1 };
}
