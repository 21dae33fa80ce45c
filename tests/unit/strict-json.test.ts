// The strict JSON parser behind safetensors headers (src/core/input-formats/strict-json.ts): RFC 8259 plus the
// refusals of serde_json, with duplicate keys and number literals kept visible to the caller.
import { describe, expect, it } from 'vitest';
import {
  JsonNumber,
  JsonObject,
  JsonSyntaxError,
  MAX_JSON_DEPTH,
  describeJsonValue,
  parseStrictJson,
  plainSafeInteger,
  type JsonValue,
} from '../../src/core/input-formats/strict-json.js';

/** The syntax error `text` raises (fails the test when it parses). */
function refusal(text: string): { reason: string; position: number } {
  try {
    parseStrictJson(text);
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    return { reason: e.message, position: e.position };
  }
  throw new Error(`${JSON.stringify(text)} parsed, but should have been refused`);
}

/** Plain JS value of a parse result, numbers as JS numbers, for comparing with JSON.parse. */
function plain(v: JsonValue): unknown {
  if (v instanceof JsonNumber) return Number(v.raw);
  if (v instanceof JsonObject) return Object.fromEntries(v.keys.map((k, i) => [k, plain(v.values[i] as JsonValue)]));
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

describe('strict JSON: documents', () => {
  it('parses what JSON.parse parses, to the same values', () => {
    const docs = [
      '{}',
      '[]',
      '{"a":[1,2,{"b":null}],"c":"x","d":true,"e":false}',
      ' \t\r\n{"n": -12.5e-3 , "z":0,"big":12345678901234567890} \n',
      '"just a string"',
      '42',
      'null',
      '[[[[]]]]',
      '{"":""}',
    ];
    for (const d of docs) expect(plain(parseStrictJson(d))).toEqual(JSON.parse(d));
  });

  it('keeps every key of an object in order, duplicates included', () => {
    const v = parseStrictJson('{"b":1,"a":2,"b":3}');
    expect(v).toBeInstanceOf(JsonObject);
    const o = v as JsonObject;
    expect(o.keys).toEqual(['b', 'a', 'b']);
    expect(o.values).toEqual([1, 2, 3]);
  });

  it('compares keys after unescaping (an escaped key is the same key)', () => {
    const o = parseStrictJson('{"a":1,"\\u0061":2}') as JsonObject;
    expect(o.keys).toEqual(['a', 'a']);
  });

  it('accepts only space, tab, CR and LF as whitespace, before and after the value', () => {
    expect(parseStrictJson(' \t\r\n[ 1 ,\t2 ]\r\n ')).toEqual([1, 2]);
    expect(refusal('\uFEFF{}')).toEqual({ reason: 'unexpected character "\uFEFF"', position: 0 });
    expect(refusal('{}\u0000\u0000')).toEqual({ reason: 'unexpected data after the JSON value', position: 2 });
    expect(refusal('\f{}').reason).toBe('unexpected character "\\f"');
    expect(refusal('{}\u00a0').reason).toBe('unexpected data after the JSON value');
  });

  it('refuses empty text, a second value and truncated documents', () => {
    expect(refusal('')).toEqual({ reason: 'unexpected end of JSON', position: 0 });
    expect(refusal('   ')).toEqual({ reason: 'unexpected end of JSON', position: 3 });
    expect(refusal('{} {}')).toEqual({ reason: 'unexpected data after the JSON value', position: 3 });
    expect(refusal('[1,2').reason).toBe("expected ',' or ']'");
    expect(refusal('{"a":1').reason).toBe("expected ',' or '}'");
    expect(refusal('{"a":').reason).toBe('unexpected end of JSON');
  });

  it('refuses object and array syntax errors with the position of the offending character', () => {
    expect(refusal('{"a" 1}')).toEqual({ reason: "expected ':'", position: 5 });
    expect(refusal('{1:2}')).toEqual({ reason: 'expected a string key', position: 1 });
    expect(refusal('{"a":1,}')).toEqual({ reason: 'expected a string key', position: 7 });
    expect(refusal('{"a":1 "b":2}')).toEqual({ reason: "expected ',' or '}'", position: 7 });
    expect(refusal('[1,]')).toEqual({ reason: 'unexpected character "]"', position: 3 });
    expect(refusal('[1 2]')).toEqual({ reason: "expected ',' or ']'", position: 3 });
  });

  it('reads the literals true, false and null exactly (case-sensitive, not truncated)', () => {
    expect(parseStrictJson('[true,false,null]')).toEqual([true, false, null]);
    expect(refusal('tru')).toEqual({ reason: 'invalid literal', position: 0 });
    expect(refusal('nul')).toEqual({ reason: 'invalid literal', position: 0 });
    expect(refusal('True').reason).toBe('unexpected character "T"');
    expect(refusal('NaN').reason).toBe('unexpected character "N"');
    expect(refusal('undefined').reason).toBe('unexpected character "u"');
  });
});

describe('strict JSON: numbers', () => {
  it('gives plain integers of up to 15 digits as JS numbers', () => {
    expect(parseStrictJson('0')).toBe(0);
    expect(parseStrictJson('7')).toBe(7);
    expect(parseStrictJson('999999999999999')).toBe(999999999999999);
  });

  it('keeps the literal text of every other number, so integer forms can be told apart', () => {
    for (const raw of ['-0', '-1', '1.0', '1e2', '1E2', '1e+2', '1e-2', '0.5', '0e0', '1234567890123456']) {
      const v = parseStrictJson(raw);
      expect(v, raw).toBeInstanceOf(JsonNumber);
      expect((v as JsonNumber).raw).toBe(raw);
    }
  });

  it('refuses leading zeros, bare signs, missing digits and a leading plus or dot', () => {
    expect(refusal('01')).toEqual({ reason: 'unexpected data after the JSON value', position: 1 });
    expect(refusal('[-01]').reason).toBe("expected ',' or ']'");
    expect(refusal('-')).toEqual({ reason: 'invalid number', position: 1 });
    expect(refusal('1.')).toEqual({ reason: 'invalid number', position: 2 });
    expect(refusal('1.e5').reason).toBe('invalid number');
    expect(refusal('1e')).toEqual({ reason: 'invalid number', position: 2 });
    expect(refusal('1e+').reason).toBe('invalid number');
    expect(refusal('+1').reason).toBe('unexpected character "+"');
    expect(refusal('.5').reason).toBe('unexpected character "."');
    expect(refusal('-.5').reason).toBe('invalid number');
  });

  it('refuses numbers beyond the f64 range, at the start of the number, as serde_json does', () => {
    expect(refusal('[1e400]')).toEqual({ reason: 'number out of range', position: 1 });
    expect(refusal('-1e400').reason).toBe('number out of range');
    expect(refusal(`1${'0'.repeat(400)}`).reason).toBe('number out of range');
    expect((parseStrictJson('1e308') as JsonNumber).raw).toBe('1e308');
    expect((parseStrictJson('1e-400') as JsonNumber).raw).toBe('1e-400'); // underflow is 0, not an error
  });

  it('plainSafeInteger: a non-negative integer literal up to 2^53-1, nothing else', () => {
    expect(plainSafeInteger(parseStrictJson('0'))).toBe(0);
    expect(plainSafeInteger(parseStrictJson('123'))).toBe(123);
    expect(plainSafeInteger(parseStrictJson('9007199254740991'))).toBe(Number.MAX_SAFE_INTEGER);
    for (const raw of ['9007199254740992', '18446744073709551615', '-0', '-1', '2.0', '2e0', '0.0']) {
      expect(plainSafeInteger(parseStrictJson(raw)), raw).toBeUndefined();
    }
    for (const text of ['"1"', 'null', 'true', '[1]', '{}']) {
      expect(plainSafeInteger(parseStrictJson(text)), text).toBeUndefined();
    }
  });
});

describe('strict JSON: strings', () => {
  it('decodes every escape RFC 8259 defines', () => {
    expect(parseStrictJson(String.raw`"\" \\ \/ \b \f \n \r \t \u0041 \u00e9 \u20AC"`)).toBe(
      '" \\ / \b \f \n \r \t A é €',
    );
  });

  it('joins a surrogate pair escape into one character', () => {
    expect(parseStrictJson(String.raw`"\ud83d\ude00"`)).toBe('😀');
    expect(parseStrictJson('"😀 raw"')).toBe('😀 raw');
  });

  it('refuses lone surrogate escapes as serde_json does', () => {
    expect(refusal(String.raw`"\ud800"`).reason).toBe('lone leading surrogate in \\u escape');
    expect(refusal(String.raw`"\ud800x"`).reason).toBe('lone leading surrogate in \\u escape');
    expect(refusal(String.raw`"\ud800\u0041"`).reason).toBe('lone leading surrogate in \\u escape');
    expect(refusal(String.raw`"\ud800\ud800"`).reason).toBe('lone leading surrogate in \\u escape');
    expect(refusal(String.raw`"\udc00"`).reason).toBe('lone trailing surrogate in \\u escape');
  });

  it('refuses unknown escapes and malformed \\u escapes, pointing at the bad character', () => {
    expect(refusal(String.raw`"a\x"`)).toEqual({ reason: 'invalid escape', position: 3 });
    expect(refusal(String.raw`"\U0041"`).reason).toBe('invalid escape');
    expect(refusal(String.raw`"\u12G4"`)).toEqual({ reason: 'invalid \\u escape', position: 5 });
    expect(refusal(String.raw`"\u12"`).reason).toBe('invalid \\u escape');
  });

  it('refuses raw control characters and unterminated strings; DEL and non-ASCII are text', () => {
    expect(refusal('"a\nb"')).toEqual({ reason: 'control character in string', position: 2 });
    expect(refusal('"\u0000"').reason).toBe('control character in string');
    expect(refusal('"\u001f"').reason).toBe('control character in string');
    expect(refusal('"abc')).toEqual({ reason: 'unterminated string', position: 4 });
    expect(refusal('"abc\\').reason).toBe('invalid escape');
    expect(parseStrictJson('"\u007f ü 漢"')).toBe('\u007f ü 漢');
  });
});

describe('strict JSON: nesting depth', () => {
  it(`accepts ${MAX_JSON_DEPTH} levels and refuses ${MAX_JSON_DEPTH + 1}, like serde_json's recursion limit`, () => {
    expect(MAX_JSON_DEPTH).toBe(127);
    expect(() => parseStrictJson('['.repeat(127) + ']'.repeat(127))).not.toThrow();
    expect(refusal('['.repeat(128) + ']'.repeat(128))).toEqual({
      reason: 'nesting deeper than 127 levels',
      position: 127,
    });
    expect(() => parseStrictJson(`${'{"a":'.repeat(127)}1${'}'.repeat(127)}`)).not.toThrow();
    expect(refusal('{"a":'.repeat(64) + '['.repeat(64) + ']'.repeat(64) + '}'.repeat(64)).reason).toBe(
      'nesting deeper than 127 levels',
    );
  });

  it('counts depth, not the number of containers: many siblings at one level are fine', () => {
    const wide = `[${Array.from({ length: 1000 }, () => '[[]]').join(',')}]`;
    expect(parseStrictJson(wide)).toHaveLength(1000);
  });

  it('refuses a deep document quickly instead of overflowing the stack', () => {
    expect(refusal('['.repeat(1_000_000)).reason).toBe('nesting deeper than 127 levels');
  });
});

describe('describeJsonValue', () => {
  it('names each kind of value briefly, cutting long text at 40 characters', () => {
    expect(describeJsonValue(undefined)).toBe('nothing');
    expect(describeJsonValue(null)).toBe('null');
    expect(describeJsonValue(true)).toBe('the boolean true');
    expect(describeJsonValue('abc')).toBe('the string "abc"');
    expect(describeJsonValue('x'.repeat(50))).toBe(`the string "${'x'.repeat(40)}…"`);
    expect(describeJsonValue(7)).toBe('the number 7');
    expect(describeJsonValue(parseStrictJson('2.50'))).toBe('the number 2.50');
    expect(describeJsonValue(parseStrictJson(`1${'0'.repeat(60)}`))).toBe(`the number 1${'0'.repeat(39)}…`);
    expect(describeJsonValue(parseStrictJson('[1,2,3]'))).toBe('an array of 3');
    expect(describeJsonValue(parseStrictJson('{"a":1}'))).toBe('an object');
  });
});
