// The bytes of a pickle as its opcodes' arguments: fixed-width integers, newline-ended text, UTF-8 strings and
// raw byte runs, each read from the current position; reading past the end refuses the pickle.
import { PickleNotUnderstood, type Value } from './pickle-values.js';

const latin1 = new TextDecoder('latin1');
const utf8 = new TextDecoder('utf-8', { fatal: true });

export class PickleReader {
  /** The offset of the next byte to read. */
  pos = 0;

  constructor(private readonly b: Uint8Array) {}

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.b.length)
      throw new PickleNotUnderstood(`the pickle ends inside an opcode at byte ${this.pos}`);
  }

  byte(): number {
    this.need(1);
    return this.b[this.pos++]!;
  }

  uint(n: number): number {
    this.need(n);
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + this.b[this.pos + i]!;
    this.pos += n;
    return v;
  }

  int32(): number {
    const v = this.uint(4);
    return v >= 0x80000000 ? v - 0x100000000 : v;
  }

  /** Little-endian two's complement of n bytes (LONG1/LONG4); beyond 2^53 only the sign and size matter here. */
  long(n: number): number {
    this.need(n);
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + this.b[this.pos + i]!;
    if (n > 0 && this.b[this.pos + n - 1]! & 0x80) v -= 256 ** n;
    this.pos += n;
    return v;
  }

  /** Skips n raw bytes and says where they were. */
  rawBytes(n: number): Value {
    this.need(n);
    const start = this.pos;
    this.pos += n;
    return { k: 'bytes', start, end: this.pos };
  }

  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  line(): string {
    const end = this.b.indexOf(0x0a, this.pos);
    if (end < 0) throw new PickleNotUnderstood('a text opcode has no newline');
    const s = latin1.decode(this.b.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }

  /** n bytes as Latin-1 text (protocol 0-2 byte strings). */
  latin1(n: number): string {
    return latin1.decode(this.bytes(n));
  }

  text(n: number): string {
    const raw = this.bytes(n);
    try {
      return utf8.decode(raw);
    } catch {
      throw new PickleNotUnderstood('a string is not UTF-8');
    }
  }
}
