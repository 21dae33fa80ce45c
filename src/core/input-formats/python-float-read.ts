// Reads numbers Python's float repr wrote (spec/JSON.md §3) straight from the text's bytes, without a string per
// number. A number is accepted only when its text is exactly pythonFloatRepr of its value. The fast path proves that
// without rendering: the text must be laid out as Python lays out its own digits, and those digits must be the
// shortest that read back as the double, and the nearest of that length. Both are settled with exact
// products of doubles (Dekker's two-product), so no big integers are needed: with D the digits as an integer and
// 10^q the place of the last one, r = D - x·10^-q in units of that place tells whether D rounds to x, and
// r - d, r + 10 - d (d the last digit) and r ∓ 1 whether a shorter or a nearer string would too. Whatever the fast
// path cannot decide with a wide margin (ties, interval ends, subnormals, q beyond ±22, NaN, Infinity) falls back
// to rendering the double and comparing strings, so the fast path only ever saves time, never changes a verdict.
import { latin1Text } from './json-text-bytes.js';
import { pythonFloatRepr } from './python-float-repr.js';

const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`)); // exact doubles up to 1e22
const SPLIT = 134217729; // 2^27 + 1, Veltkamp's splitter
/** In units of the last digit; the error of the arithmetic below is about 1e-14 of that. */
const EPS = 1e-9;

const bits = new Float64Array(1);
const words = new Uint32Array(bits.buffer);
const LO = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;
const HI = 1 - LO;

/** The rounding error of a * b: a * b = (a * b rounded) + twoProductError(a, b) exactly, for normal products. */
function twoProductError(a: number, b: number, p: number): number {
  let t = SPLIT * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLIT * b;
  const bh = t - (t - b);
  const bl = b - bh;
  return al * bl - (p - ah * bh - al * bh - ah * bl);
}

/**
 * The digits of a number's text: integer D exactly as the two doubles DIGITS[0] + DIGITS[1], their count, the
 * last one and its place q. The doubles sit in a typed array, not in object fields or module variables: V8 boxes
 * a double kept in either (and one passed to or returned from a call it does not inline): boxes made per number
 * read were two thirds of a JSON commit's garbage (34 of 50 MB per 18 MB of text).
 */
const DIGITS = new Float64Array(2);
interface Digits {
  n: number;
  last: number;
  q: number;
}
const digits: Digits = { n: 0, last: 0, q: 0 };

/**
 * Stores D = head · 10^(n - 9) + tail (n > 9) or head exactly as hi + lo, and q from E, the first digit's place.
 * The product is exact without a two-product: head < 10^9 < 2^30 and 10^(n-9) = 5^(n-9) · 2^(n-9) with
 * 5^8 < 2^19, so head · 10^(n-9) needs at most 49 significant bits; and prod >= 10^(n-1) > tail, so the rounding
 * error of prod + tail is tail - (sum - prod) exactly (Dekker's fast two-sum).
 */
function setDigits(head: number, tail: number, n: number, last: number, exp: number): void {
  const prod = head * POW10[n > 9 ? n - 9 : 0]!;
  const sum = prod + tail;
  DIGITS[0] = sum;
  DIGITS[1] = tail - (sum - prod);
  digits.n = n;
  digits.last = last;
  digits.q = exp - n + 1;
}

// Reads of the text past its end give undefined (typed as a number by the `!`s below): arithmetic makes it NaN,
// and every test of a byte below fails for it as for a delimiter, which is how the end of the text must count.

/** After a number: a delimiter, whitespace or another control character, or the end of the text (undefined). */
function endsToken(c: number): boolean {
  return c === 0x2c || c === 0x5d || c === 0x7d || !(c > 0x20);
}

/** What readLayout found: the token's end (when it could tell), read by scanNumberToken. */
let layoutEnd = 0;

function isDigitAt(t: Uint8Array, p: number): boolean {
  const d = t[p]! - 0x30;
  return d >= 0 && d <= 9;
}

/**
 * Reads the number text from `s` (after any sign) up to the delimiter that ends it: 0 when it is laid out as Python
 * lays out a finite non-zero float (digits read), 1 for a zero written `0.0`, 2 for digits alone (an integer
 * literal), -1 when the fast path cannot tell. layoutEnd is the token's end unless -1.
 *
 * The layout is read first and the digits only once the form is known: one simple loop per run of digits, then
 * one over the significant ones (between the first and the last non-zero digit), instead of one loop tracking
 * leading, pending and trailing zeros at every character, which took a third more of the reader's time.
 */
function readLayout(t: Uint8Array, s: number): -1 | 0 | 1 | 2 {
  let p = s;
  while (isDigitAt(t, p)) p++;
  const intLen = p - s;
  let dot = -1;
  if (t[p] === 0x2e) {
    dot = p++;
    while (isDigitAt(t, p)) p++;
    if (t[p] === 0x2e) return -1;
  }
  if (intLen === 0 || (intLen > 1 && t[s] === 0x30) || dot === p - 1) return -1;
  const hasFrac = dot >= 0;
  // Python ends a fraction with a non-zero digit, except the single "0" of an integral value in plain form.
  const fracTrailingZero = hasFrac && t[p - 1] === 0x30;
  const c = t[p]!;
  // The first significant digit, after `lead` zeros; at p when there is none.
  let f = s;
  let lead = 0;
  for (; ; f++) {
    const e = t[f];
    if (e === 0x30) lead++;
    else if (e !== 0x2e) break;
  }
  // The place of the first significant digit, E (spec/JSON.md §3).
  let exp: number;
  if (endsToken(c)) {
    layoutEnd = p;
    if (!hasFrac) return 2;
    if (f === p) return intLen === 1 && p === dot + 2 ? 1 : -1; // "0.0"
    if (intLen === 1 && t[s] === 0x30) {
      if (lead > 4 || fracTrailingZero) return -1; // below 1e-4 Python writes an exponent
      exp = -lead;
    } else {
      if (intLen > 16 || (fracTrailingZero && p !== dot + 2)) return -1; // from 1e16 on: exponent form
      exp = intLen - 1;
    }
  } else {
    // Exponent form: one non-zero digit, optionally '.' and digits ending non-zero, 'e', a sign, two digits or more.
    if (intLen !== 1 || t[s] === 0x30 || fracTrailingZero || c !== 0x65 || f === p) return -1;
    exp = readExponent(t, p + 1);
    if (Number.isNaN(exp) || (exp >= -4 && exp < 16)) return -1;
  }
  // The last significant digit: zeros after it (and a dot) are not (`100.0` is the digit 1, E = 2).
  let l = p - 1;
  while (t[l] === 0x30 || t[l] === 0x2e) l--;
  const n = l - f + 1 - (dot > f && dot < l ? 1 : 0);
  if (n > 17) return -1; // Python never needs more than 17
  let head = 0;
  let tail = 0;
  for (let q = f, k = 0; q <= l; q++) {
    const d = t[q]! - 0x30;
    if (d < 0) continue; // the dot
    if (k++ < 9) head = head * 10 + d;
    else tail = tail * 10 + d;
  }
  setDigits(head, tail, n, t[l]! - 0x30, exp);
  return 0;
}

/** The exponent written from `p` as Python writes it (a sign, then two digits, or three not led by 0) up to the
 * token's end, which it puts in layoutEnd; NaN for anything else. */
function readExponent(t: Uint8Array, p: number): number {
  const sign = t[p]!;
  if (sign !== 0x2b && sign !== 0x2d) return NaN;
  let exp = 0;
  let q = p + 1;
  for (; ; q++) {
    const d = t[q]! - 0x30;
    if (!(d >= 0 && d <= 9)) break;
    exp = exp * 10 + d;
  }
  const len = q - p - 1;
  if (len < 2 || len > 3 || (len === 3 && t[p + 1] === 0x30) || !endsToken(t[q]!)) return NaN;
  layoutEnd = q;
  return sign === 0x2d ? -exp : exp;
}

/**
 * Puts the double whose repr is `digits` (negated when `negative`) into out[i] and returns true, or returns false
 * when the fast path cannot prove one: the digits must lie strictly inside its rounding interval, and neither a
 * shorter string nor a nearer one of the same length may.
 */
function provenValue(out: Float64Array, i: number, negative: boolean): boolean {
  const hi = DIGITS[0]!;
  const lo = DIGITS[1]!;
  const { n, last, q } = digits;
  if (q < -22 || q > 22 || (q > 0 && n > 15)) return false;
  const scale = POW10[q < 0 ? -q : q]!;
  let x = q < 0 ? hi / scale : hi * scale;
  for (let attempt = 0; attempt < 3; attempt++) {
    // r = D - x·10^-q, in units of the last digit.
    let r: number;
    if (q < 0) {
      const b = x * scale;
      r = hi - b + (lo - twoProductError(x, scale, b));
    } else {
      const a = hi * scale;
      r = (a - x + twoProductError(hi, scale, a)) / scale + lo;
    }
    bits[0] = x;
    const exponent = (words[HI]! >>> 20) & 0x7ff;
    if (exponent < 60 || exponent > 2000) return false; // near subnormal or overflow: not worth the care
    const powerOfTwo = (words[HI]! & 0xfffff) === 0 && words[LO] === 0;
    words[HI] = (exponent - 53) << 20; // half an ulp of x
    words[LO] = 0;
    const half = bits[0];
    const up = q < 0 ? half * scale : half / scale;
    const down = powerOfTwo ? up / 2 : up;
    // The interval widened by the arithmetic's error: a string whose distance from D (like r, in units of the
    // last digit) lies outside it clearly does not read back as x. Tested inline rather than in a helper: a call
    // V8 does not inline boxes its double arguments (see DIGITS), and this function is past its inlining budget.
    const lower = -down - EPS;
    const upper = up + EPS;
    // The neighbours of x are x + ulp and x - ulp (x - ulp / 2 at a power of two), both exact: x is normal.
    if (r > upper) x += 2 * half;
    else if (r < lower) x -= powerOfTwo ? half : 2 * half;
    else if (r > up - EPS || r < -down + EPS)
      return false; // on the interval's end: who wins the tie decides
    else {
      // One digit fewer: the two neighbours of D on that grid; any shorter string in the interval means one of
      // them is.
      const below = r - last;
      const above = r + 10 - last;
      if (n > 1 && (!(below < lower || below > upper) || !(above < lower || above > upper))) return false;
      // As many digits: the neighbour on x's side, when it is as near or nearer and reads back as x too.
      if (r > EPS && Math.abs(r - 1) <= r + EPS && !(r - 1 < lower || r - 1 > upper)) return false;
      if (r < -EPS && Math.abs(r + 1) <= -r + EPS && !(r + 1 < lower || r + 1 > upper)) return false;
      out[i] = negative ? -x : x;
      return true;
    }
  }
  return false;
}

/** End of the number token at p: the next delimiter, whitespace or other control character (spec/JSON.md §2). */
export function numberTokenEnd(t: Uint8Array, p: number): number {
  for (p++; p < t.length; p++) {
    const d = t[p]!;
    if (d === 0x2c || d === 0x5d || d === 0x7d || d <= 0x20) break;
  }
  return p;
}

/** scanNumberToken's verdicts. */
export const NO_NUMBER = -1;
export const OTHER_TOKEN = 0;
export const PYTHON_FLOAT = 1;
/** No '.', exponent, NaN or Infinity: the array may be I64 (its tokens are read as integers later). */
export const INTEGER_TOKEN = 2;

/** The end of the token scanNumberToken read last. */
export const scanned = { end: 0 };

/** '.', 'e', 'E', 'I' (Infinity), 'N' (NaN): a token with one is not an integer literal. */
function notIntChar(c: number): boolean {
  return c === 0x2e || c === 0x65 || c === 0x45 || c === 0x49 || c === 0x4e;
}

/**
 * Reads the number token starting at `start` (a digit, '-', or NaN / Infinity first; NO_NUMBER otherwise), its
 * end into scanned.end: PYTHON_FLOAT, with its double in out[i], when the text is exactly Python's repr of that
 * double (json's spellings for the non-finite values); INTEGER_TOKEN for an integer literal; else OTHER_TOKEN.
 * One pass over the digits in the common case; whatever the fast path cannot tell is rendered and compared.
 */
export function scanNumberToken(t: Uint8Array, start: number, out: Float64Array, i: number): number {
  const c = t[start]!;
  const negative = c === 0x2d;
  if (!((c >= 0x30 && c <= 0x39) || negative || c === 0x4e || c === 0x49)) return NO_NUMBER;
  const layout = readLayout(t, negative ? start + 1 : start);
  if (layout >= 0) {
    scanned.end = layoutEnd;
    if (layout === 2) return INTEGER_TOKEN;
    if (layout === 1) {
      out[i] = negative ? -0 : 0;
      return PYTHON_FLOAT;
    }
    if (provenValue(out, i, negative)) return PYTHON_FLOAT;
  }
  const end = numberTokenEnd(t, start);
  scanned.end = end;
  let intLike = true;
  for (let q = start; q < end && intLike; q++) if (notIntChar(t[q]!)) intLike = false;
  if (intLike) return INTEGER_TOKEN;
  const text = latin1Text(t, start, end);
  const x = Number(text);
  out[i] = x;
  return pythonFloatRepr(x) === text ? PYTHON_FLOAT : OTHER_TOKEN;
}

/**
 * Reads the number at text[start, end) into out[i] when the text is exactly Python's repr of that double
 * (json's spellings for the non-finite values); false otherwise. `end` is where the token ends (numberTokenEnd).
 */
export function readPythonFloat(t: Uint8Array, start: number, end: number, out: Float64Array, i: number): boolean {
  return scanNumberToken(t, start, out, i) === PYTHON_FLOAT && scanned.end === end;
}
