// The JSON readers (json-arrays.ts, json-numeric-nesting.ts, python-float-read.ts) index a file's bytes directly
// rather than a latin1 string of them: the string was one more copy of the whole file per commit, made outside
// V8's heap, and a byte of a Uint8Array loads faster than a character of such a string (reading the bench's
// snapshots, spec/JSON.md's series, takes 15% less CPU). Offsets are byte offsets either way. These are the few
// places a piece of the text is compared with, or becomes, a string: layout punctuation and number tokens.

/** Bytes [start, end) of `t` as a string of the same code units (latin1). */
export function latin1Text(t: Uint8Array, start: number, end: number): string {
  return Buffer.from(t.buffer, t.byteOffset + start, end - start).toString('latin1');
}

/** Whether `t` holds the code units of `s` (single-byte characters) from `p` on. */
export function startsWithText(t: Uint8Array, p: number, s: string): boolean {
  if (p + s.length > t.length) return false;
  for (let i = 0; i < s.length; i++) if (t[p + i] !== s.charCodeAt(i)) return false;
  return true;
}
