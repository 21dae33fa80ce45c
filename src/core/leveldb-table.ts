// LevelDB table files (.ldb; leveldb's doc/table_format.md, table/*.cc, util/bloom.cc, util/hash.cc): footer,
// blocks with prefix-compressed keys and restart points, and the Bloom filters that let a lookup skip a table.
// Pure functions over bytes, like leveldb-format.ts.
import { fixed32, LevelFormatError, maskedCrc, snappyDecompress, varint } from './leveldb-format.js';

const fail = (what: string): never => {
  throw new LevelFormatError(what);
};

export const TABLE_FOOTER_BYTES = 48;
const TABLE_MAGIC_LO = 0x8b80fb57;
const TABLE_MAGIC_HI = 0xdb477524;
export const BLOCK_TRAILER_BYTES = 5;

export interface BlockHandle {
  offset: number;
  size: number;
}

function blockHandle(b: Uint8Array, pos: number): [BlockHandle, number] {
  const [offset, p1] = varint(b, pos);
  const [size, p2] = varint(b, p1);
  return [{ offset, size }, p2];
}

export const decodeBlockHandle = (b: Uint8Array): BlockHandle => blockHandle(b, 0)[0];

/** The footer's handles of the metaindex block (which names the filter block) and the index block. */
export function decodeTableFooter(f: Uint8Array): { metaindex: BlockHandle; index: BlockHandle } {
  if (f.length !== TABLE_FOOTER_BYTES || fixed32(f, 40) !== TABLE_MAGIC_LO || fixed32(f, 44) !== TABLE_MAGIC_HI)
    fail('not a table file (bad footer magic)');
  const [metaindex, p] = blockHandle(f, 0);
  return { metaindex, index: blockHandle(f, p)[0] };
}

/** The metaindex key of the filter classic-level writes (a Bloom filter of user keys, 10 bits per key). */
export const BLOOM_FILTER_KEY = 'filter.leveldb.BuiltinBloomFilter2';

/** LevelDB's hash (util/hash.cc), murmur-like. */
function levelHash(b: Uint8Array, seed: number): number {
  const m = 0xc6a4a793;
  let h = (seed ^ Math.imul(b.length, m)) >>> 0;
  let i = 0;
  for (; i + 4 <= b.length; i += 4) {
    h = Math.imul((h + fixed32(b, i)) >>> 0, m) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  const rest = b.length - i;
  if (rest > 0) {
    if (rest === 3) h = (h + (b[i + 2]! << 16)) >>> 0;
    if (rest >= 2) h = (h + (b[i + 1]! << 8)) >>> 0;
    h = Math.imul((h + b[i]!) >>> 0, m) >>> 0;
    h = (h ^ (h >>> 24)) >>> 0;
  }
  return h;
}

/**
 * A table's filter block: for each 2^lg bytes of data-block offsets, a Bloom filter of the user keys in the
 * blocks starting there. A "no" is certain; a "yes" may be wrong (~1%).
 */
export class BloomFilters {
  private readonly offsets: number;
  private readonly count: number;
  private readonly lg: number;

  constructor(private readonly data: Buffer) {
    if (data.length < 5) fail('filter block too short');
    this.lg = data[data.length - 1]!;
    this.offsets = fixed32(data, data.length - 5);
    if (this.offsets > data.length - 5) fail('bad filter block');
    this.count = (data.length - 5 - this.offsets) / 4;
  }

  mayContain(blockOffset: number, userKey: Uint8Array): boolean {
    const i = Math.floor(blockOffset / 2 ** this.lg);
    if (i >= this.count) return true;
    const start = fixed32(this.data, this.offsets + 4 * i);
    const limit = fixed32(this.data, this.offsets + 4 * i + 4);
    if (start > limit || limit > this.offsets) return true; // malformed: LevelDB treats it as a match too
    const f = this.data.subarray(start, limit);
    if (f.length < 2) return false;
    const bits = (f.length - 1) * 8;
    const k = f[f.length - 1]!;
    if (k > 30) return true; // reserved encodings
    let h = levelHash(userKey, 0xbc9f1d34);
    const delta = ((h >>> 17) | (h << 15)) >>> 0;
    for (let j = 0; j < k; j++) {
      const bit = h % bits;
      if ((f[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
      h = (h + delta) >>> 0;
    }
    return true;
  }
}

/** Checks a block's trailer (type, masked CRC of data + type) and returns its uncompressed contents. */
export function blockContents(raw: Buffer): Buffer {
  const n = raw.length - BLOCK_TRAILER_BYTES;
  if (n < 0) fail('block shorter than its trailer');
  const data = raw.subarray(0, n);
  if (maskedCrc(raw.subarray(0, n + 1)) !== fixed32(raw, n + 1)) fail('block checksum mismatch');
  if (raw[n] === 0) return data;
  if (raw[n] === 1) return snappyDecompress(data);
  return fail(`unknown block compression ${raw[n]}`);
}

const EMPTY: Buffer = Buffer.alloc(0);

/** Whether the `n` bytes of `b` at `at` sort before `from` (bytewise, a prefix first). */
function below(b: Buffer, at: number, n: number, from: Buffer): boolean {
  const m = Math.min(n, from.length);
  for (let i = 0; i < m; i++) if (b[at + i] !== from[i]) return b[at + i]! < from[i]!;
  return n < from.length;
}

/** A decoded block: sorted entries, keys prefix-compressed against the previous key. */
export class Block {
  private readonly restarts: number[] = [];
  private readonly end: number;
  /**
   * The key being scanned past, assembled in place (entries before the one sought are compared here, never
   * copied: an index lookup skips up to a restart interval of them, and the copies were most of its time).
   */
  private static scratch = Buffer.allocUnsafe(64);

  constructor(private readonly data: Buffer) {
    if (data.length < 4) fail('block too short');
    const n = fixed32(data, data.length - 4);
    this.end = data.length - 4 - 4 * n;
    if (n === 0 || this.end < 0) fail('bad block restart array');
    for (let i = 0; i < n; i++) {
      const r = fixed32(data, this.end + 4 * i);
      if (r >= this.end && !(r === 0 && this.end === 0)) fail('restart point out of range');
      this.restarts.push(r);
    }
  }

  // The last entry header read (header()): fields rather than an object, as lookups read thousands of them.
  private shared = 0;
  private at = 0;
  private unshared = 0;
  private vlen = 0;

  /** Reads the header of the entry at `pos`: how much of the previous key it shares, where the rest is. */
  private header(pos: number, prevLength: number): void {
    const d = this.data;
    // Each of the three is one byte when under 128 (keys here are 33 + 8 bytes, values a few dozen).
    if (pos < this.end && d[pos]! < 0x80) this.shared = d[pos++]!;
    else [this.shared, pos] = varint(d, pos);
    if (pos < this.end && d[pos]! < 0x80) this.unshared = d[pos++]!;
    else [this.unshared, pos] = varint(d, pos);
    if (pos < this.end && d[pos]! < 0x80) this.vlen = d[pos++]!;
    else [this.vlen, pos] = varint(d, pos);
    this.at = pos;
    if (this.shared > prevLength || pos + this.unshared + this.vlen > this.end) fail('block entry out of range');
  }

  private entryAt(pos: number, prev: Buffer): { key: Buffer; value: Buffer; next: number } {
    this.header(pos, prev.length);
    const { shared, at, unshared, vlen } = this;
    const key =
      shared === 0
        ? this.data.subarray(at, at + unshared)
        : Buffer.concat([prev.subarray(0, shared), this.data.subarray(at, at + unshared)]);
    return { key, value: this.data.subarray(at + unshared, at + unshared + vlen), next: at + unshared + vlen };
  }

  /** The first entry (internal key, value) whose user key is >= `from`, if any. */
  seek(from: Buffer): [Buffer, Buffer] | undefined {
    const found = this.find(from);
    return found && [found.key, found.value];
  }

  /**
   * The first entry whose user key is >= `from` (its key copied out) and where the next entry starts. Not a
   * generator, and comparing bytes in loops rather than through Buffer's compare: a point lookup (two seeks, the
   * index block's and a data block's) runs these a few times per object located, mostly in V8's interpreter in a
   * short-lived command, where a generator's set-up and Buffer.compare's argument checks cost more than the
   * search (34 µs a lookup, 58 ms of a 98.8 MB checkout).
   */
  private find(from: Buffer): { key: Buffer; value: Buffer; next: number } | undefined {
    // The last restart point whose key's user part is < from: every entry before it is too small.
    let lo = 0;
    let hi = this.restarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      this.header(this.restarts[mid]!, 0);
      const { at, unshared } = this;
      if (unshared < 8) fail('block key shorter than its sequence number');
      if (below(this.data, at, unshared - 8, from)) lo = mid;
      else hi = mid - 1;
    }
    let pos = this.restarts[lo]!;
    // Past the entries below `from`, each key assembled in the scratch buffer; the first one at or after it is
    // copied out.
    let key = Block.scratch;
    let length = 0;
    while (pos < this.end) {
      this.header(pos, length);
      const { shared, at, unshared, vlen } = this;
      length = shared + unshared;
      if (length > key.length) {
        const bigger = Buffer.allocUnsafe(Math.max(length, 2 * key.length));
        key.copy(bigger, 0, 0, shared);
        Block.scratch = key = bigger;
      }
      // Byte loops: the pieces are a few dozen bytes, where Buffer's copy and compare cost more in their calls.
      const d = this.data;
      for (let i = 0; i < unshared; i++) key[shared + i] = d[at + i]!;
      pos = at + unshared + vlen;
      if (length < 8) fail('block key shorter than its sequence number');
      if (below(key, 0, length - 8, from)) continue;
      return { key: Buffer.from(key.subarray(0, length)), value: d.subarray(at + unshared, pos), next: pos };
    }
    return undefined;
  }

  /** Entries (internal key, value) from the first whose user key is >= `from` (all, without it). */
  *entries(from?: Buffer): Generator<[Buffer, Buffer], undefined> {
    let pos = 0;
    let prev = EMPTY;
    if (from) {
      const found = this.find(from);
      if (!found) return;
      yield [found.key, found.value];
      pos = found.next;
      prev = found.key;
    }
    while (pos < this.end) {
      const e = this.entryAt(pos, prev);
      pos = e.next;
      prev = e.key;
      yield [e.key, e.value];
    }
  }
}
