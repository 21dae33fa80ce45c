// A strict JSON parser (RFC 8259, with serde_json's extra refusals), for headers that must mean the same to
// ckvc as to the Rust reader that wrote or will read them. Objects keep every key in order, so duplicates can
// be seen; numbers keep their literal text, so `1.0`, `1e2` and `-0` can be told apart from integers
// (serde_json refuses them as usize); lone UTF-16 surrogate escapes, non-finite numbers and nesting deeper
// than serde_json's recursion limit are refused like serde_json does. Pure code (no node: imports).

export class JsonNumber {
  constructor(readonly raw: string) {}
}

export class JsonObject {
  readonly keys: string[] = [];
  readonly values: JsonValue[] = [];
}

// A plain non-negative integer literal of at most 15 digits is a JS number; every other number literal is a
// JsonNumber holding its text.
export type JsonValue = null | boolean | string | number | JsonNumber | JsonValue[] | JsonObject;

/** Where (a UTF-16 index into the text) and why the text is not JSON. */
export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
  }
}

// serde_json starts with remaining_depth = 128 and fails when an opening bracket brings it to 0.
export const MAX_JSON_DEPTH = 127;

class JsonParser {
  private pos = 0;
  private depth = 0;

  constructor(private readonly text: string) {}

  parseDocument(): JsonValue {
    this.skipWs();
    const value = this.parseValue();
    this.skipWs();
    if (this.pos < this.text.length) this.error('unexpected data after the JSON value');
    return value;
  }

  private error(message: string): never {
    throw new JsonSyntaxError(message, this.pos);
  }

  private skipWs(): void {
    const t = this.text;
    let p = this.pos;
    for (;;) {
      const c = t.charCodeAt(p);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
      else break;
    }
    this.pos = p;
  }

  private parseValue(): JsonValue {
    const c = this.text.charCodeAt(this.pos);
    switch (c) {
      case 0x7b /* { */:
        return this.parseObject();
      case 0x5b /* [ */:
        return this.parseArray();
      case 0x22 /* " */:
        return this.parseString();
      case 0x74 /* t */:
        return this.parseLiteral('true', true);
      case 0x66 /* f */:
        return this.parseLiteral('false', false);
      case 0x6e /* n */:
        return this.parseLiteral('null', null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.parseNumber();
        if (Number.isNaN(c)) this.error('unexpected end of JSON');
        this.error(`unexpected character ${JSON.stringify(this.text[this.pos])}`);
    }
  }

  private parseLiteral<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.error('invalid literal');
    this.pos += word.length;
    return value;
  }

  private enter(): void {
    if (++this.depth > MAX_JSON_DEPTH) this.error(`nesting deeper than ${MAX_JSON_DEPTH} levels`);
  }

  private parseObject(): JsonObject {
    this.enter();
    this.pos++; // {
    const obj = new JsonObject();
    this.skipWs();
    if (this.text.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      this.depth--;
      return obj;
    }
    for (;;) {
      if (this.text.charCodeAt(this.pos) !== 0x22) this.error('expected a string key');
      obj.keys.push(this.parseString());
      this.skipWs();
      if (this.text.charCodeAt(this.pos) !== 0x3a) this.error("expected ':'");
      this.pos++;
      this.skipWs();
      obj.values.push(this.parseValue());
      this.skipWs();
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        this.skipWs();
      } else if (c === 0x7d) {
        this.pos++;
        this.depth--;
        return obj;
      } else {
        this.error("expected ',' or '}'");
      }
    }
  }

  private parseArray(): JsonValue[] {
    this.enter();
    this.pos++; // [
    const arr: JsonValue[] = [];
    this.skipWs();
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      this.depth--;
      return arr;
    }
    for (;;) {
      arr.push(this.parseValue());
      this.skipWs();
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        this.skipWs();
      } else if (c === 0x5d) {
        this.pos++;
        this.depth--;
        return arr;
      } else {
        this.error("expected ',' or ']'");
      }
    }
  }

  private parseString(): string {
    const t = this.text;
    let p = this.pos + 1; // after the opening quote
    let start = p;
    let out = '';
    for (;;) {
      const c = t.charCodeAt(p);
      if (c === 0x22) {
        this.pos = p + 1;
        return out === '' ? t.slice(start, p) : out + t.slice(start, p);
      }
      if (c === 0x5c) {
        out += t.slice(start, p);
        this.pos = p;
        out += this.parseEscape();
        p = this.pos;
        start = p;
        continue;
      }
      if (Number.isNaN(c)) {
        this.pos = p;
        this.error('unterminated string');
      }
      if (c < 0x20) {
        this.pos = p;
        this.error('control character in string');
      }
      p++;
    }
  }

  // At a backslash; consumes the escape and returns the text it stands for.
  private parseEscape(): string {
    const t = this.text;
    const c = t.charCodeAt(this.pos + 1);
    this.pos += 2;
    switch (c) {
      case 0x22:
        return '"';
      case 0x5c:
        return '\\';
      case 0x2f:
        return '/';
      case 0x62:
        return '\b';
      case 0x66:
        return '\f';
      case 0x6e:
        return '\n';
      case 0x72:
        return '\r';
      case 0x74:
        return '\t';
      case 0x75: {
        const u = this.readHex4();
        if (u >= 0xdc00 && u <= 0xdfff) this.error('lone trailing surrogate in \\u escape');
        if (u >= 0xd800 && u <= 0xdbff) {
          if (t.charCodeAt(this.pos) !== 0x5c || t.charCodeAt(this.pos + 1) !== 0x75) {
            this.error('lone leading surrogate in \\u escape');
          }
          this.pos += 2;
          const low = this.readHex4();
          if (low < 0xdc00 || low > 0xdfff) this.error('lone leading surrogate in \\u escape');
          return String.fromCharCode(u, low);
        }
        return String.fromCharCode(u);
      }
      default:
        this.pos -= 1;
        this.error('invalid escape');
    }
  }

  private readHex4(): number {
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.text.charCodeAt(this.pos + i);
      let d: number;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
      else {
        this.pos += i;
        this.error('invalid \\u escape');
      }
      v = v * 16 + d;
    }
    this.pos += 4;
    return v;
  }

  private parseNumber(): number | JsonNumber {
    const t = this.text;
    const start = this.pos;
    let p = start;
    // fast path: up to 15 digits, no sign, fraction or exponent (always a safe integer)
    let c = t.charCodeAt(p);
    if (c >= 0x31 && c <= 0x39) {
      let v = 0;
      do {
        v = v * 10 + (c - 0x30);
        c = t.charCodeAt(++p);
      } while (c >= 0x30 && c <= 0x39);
      if (p - start <= 15 && c !== 0x2e && c !== 0x65 && c !== 0x45) {
        this.pos = p;
        return v;
      }
      p = start;
    } else if (c === 0x30) {
      c = t.charCodeAt(p + 1);
      if (c !== 0x2e && c !== 0x65 && c !== 0x45 && !(c >= 0x30 && c <= 0x39)) {
        this.pos = p + 1;
        return 0;
      }
    }
    const digits = (): void => {
      const s = p;
      while (p < t.length && t.charCodeAt(p) >= 0x30 && t.charCodeAt(p) <= 0x39) p++;
      if (p === s) {
        this.pos = p;
        this.error('invalid number');
      }
    };
    if (t.charCodeAt(p) === 0x2d) p++;
    if (t.charCodeAt(p) === 0x30) p++;
    else digits();
    if (t.charCodeAt(p) === 0x2e) {
      p++;
      digits();
    }
    const e = t.charCodeAt(p);
    if (e === 0x65 || e === 0x45) {
      p++;
      const s = t.charCodeAt(p);
      if (s === 0x2b || s === 0x2d) p++;
      digits();
    }
    const raw = t.slice(start, p);
    this.pos = p;
    // serde_json refuses numbers outside the f64 range ("number out of range"); JSON.parse gives Infinity.
    if (!Number.isFinite(Number(raw))) {
      this.pos = start;
      this.error('number out of range');
    }
    return new JsonNumber(raw);
  }
}

/** Parses one JSON value surrounded only by JSON whitespace; throws JsonSyntaxError otherwise. */
export function parseStrictJson(text: string): JsonValue {
  return new JsonParser(text).parseDocument();
}

/**
 * A non-negative integer written as one (no sign, fraction or exponent) that fits a JS safe integer, as
 * serde_json reads a usize (limited to 2^53-1); undefined for anything else.
 */
export function plainSafeInteger(v: JsonValue): number | undefined {
  if (typeof v === 'number') return v;
  if (!(v instanceof JsonNumber)) return undefined;
  const raw = v.raw;
  if (raw.length > 16) return undefined;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
  }
  if (raw.length > 1 && raw.charCodeAt(0) === 0x30) return undefined; // cannot happen in valid JSON
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A short phrase for error messages ("the string \"abc\"", "an array of 3"); long text is cut at 40. */
export function describeJsonValue(v: JsonValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'boolean') return `the boolean ${v}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number') return `the number ${v}`;
  if (v instanceof JsonNumber) return `the number ${v.raw.length > 40 ? `${v.raw.slice(0, 40)}…` : v.raw}`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return 'an object';
}
