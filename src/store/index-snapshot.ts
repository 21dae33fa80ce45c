// A read-only snapshot of the LevelDB index, read straight from its files (src/core/leveldb-format.ts) without
// opening the database: nothing is written, no lock is taken, and a store the user may only read can still use
// its index. LevelDB never changes a table file in place, so once every live table is open (a handle keeps a
// file readable after a concurrent compaction deletes it) and the write-ahead log is read, the snapshot is
// consistent; a MANIFEST that changed while it was being taken means a writer was busy, and it is taken again.
import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {
  decodeWriteBatch,
  LevelFormatError,
  logRecords,
  parseInternalKey,
  replayManifest,
  userKeyOf,
  type LevelEntry,
  type TableFile,
} from '../core/leveldb-format.js';
import {
  Block,
  blockContents,
  BLOCK_TRAILER_BYTES,
  BLOOM_FILTER_KEY,
  BloomFilters,
  decodeBlockHandle,
  decodeTableFooter,
  TABLE_FOOTER_BYTES,
  type BlockHandle,
} from '../core/leveldb-table.js';
import { ioError } from './durable-fs.js';

export type SnapshotOutcome =
  | { kind: 'ok'; snapshot: LevelSnapshot }
  | { kind: 'missing' }
  /** Damaged, or not a database this reader understands: only a rebuild helps. */
  | { kind: 'damaged'; reason: string }
  /** Cannot be read (permissions, I/O error), or writers kept changing it: not a reason to rebuild. */
  | { kind: 'unreadable'; reason: string };

const ATTEMPTS = 5;
const BLOCK_CACHE = 4096;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;

class Stale extends Error {}

class Table {
  private meta: { index: Block; filters: BloomFilters | undefined } | undefined;

  constructor(
    readonly file: TableFile,
    private readonly path: string,
    private readonly fh: fs.FileHandle,
    private readonly cache: Map<string, Block>,
  ) {}

  private readAt(offset: number, n: number): Buffer {
    const buf = Buffer.allocUnsafe(n);
    // Synchronous, as pack-reader's reads: a block is a few KiB, mostly in the page cache, and a thread-pool
    // round trip per lookup cost several times the read itself.
    let got: number;
    try {
      got = fsSync.readSync(this.fh.fd, buf, 0, n, offset);
    } catch (e) {
      throw ioError(e, 'read the index table', this.path);
    }
    if (got !== n) throw new LevelFormatError(`table ${this.file.number} is truncated`);
    return buf;
  }

  /** A block with its trailer. */
  private read(h: BlockHandle): Buffer {
    return this.readAt(h.offset, h.size + BLOCK_TRAILER_BYTES);
  }

  /** The index block and the Bloom filters, read once. */
  private load(): { index: Block; filters: BloomFilters | undefined } {
    if (!this.meta) {
      const size = fsSync.fstatSync(this.fh.fd).size;
      if (size < TABLE_FOOTER_BYTES) throw new LevelFormatError(`table ${this.file.number} is truncated`);
      const handles = decodeTableFooter(this.readAt(size - TABLE_FOOTER_BYTES, TABLE_FOOTER_BYTES));
      const index = new Block(blockContents(this.read(handles.index)));
      let filters: BloomFilters | undefined;
      for (const [k, v] of new Block(blockContents(this.read(handles.metaindex))).entries()) {
        if (k.toString('latin1') === BLOOM_FILTER_KEY)
          filters = new BloomFilters(blockContents(this.read(decodeBlockHandle(v))));
      }
      this.meta = { index, filters };
    }
    return this.meta;
  }

  private dataBlock(h: BlockHandle, keep: boolean): Block {
    const k = `${this.file.number}:${h.offset}`;
    const hit = this.cache.get(k);
    if (hit) {
      this.cache.delete(k);
      this.cache.set(k, hit);
      return hit;
    }
    const b = new Block(blockContents(this.read(h)));
    if (keep) {
      if (this.cache.size >= BLOCK_CACHE) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(k, b);
    }
    return b;
  }

  /**
   * This table's newest entry for `key`, as LevelDB's Table::InternalGet finds it: the block the index points
   * at holds it if the table does (a separator never falls between two entries of one key), and the block's
   * Bloom filter can say at once that it does not.
   */
  get(key: Buffer): LevelEntry | undefined {
    const { index, filters } = this.load();
    const at = index.seek(key);
    if (!at) return undefined;
    const handle = decodeBlockHandle(at[1]);
    if (filters && !filters.mayContain(handle.offset, key)) return undefined;
    const e = this.dataBlock(handle, true).seek(key);
    return e && userKeyOf(e[0]).equals(key) ? entry(e[0], e[1], this.file.number) : undefined;
  }

  /** Entries in internal-key order from the first whose user key is >= `from`. */
  *entries(from: Buffer): Generator<LevelEntry> {
    for (const [, handle] of this.load().index.entries(from)) {
      for (const [ikey, value] of this.dataBlock(decodeBlockHandle(handle), false).entries(from))
        yield entry(ikey, value, this.file.number);
    }
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}

function entry(ikey: Buffer, value: Buffer, table: number): LevelEntry {
  const k = parseInternalKey(ikey);
  if (k.type > 1) throw new LevelFormatError(`unknown entry type ${k.type} in table ${table}`);
  return { key: k.user, seq: k.seq, value: k.type === 1 ? value : undefined };
}

const inRange = (f: TableFile, key: Buffer) =>
  Buffer.compare(userKeyOf(f.smallest), key) <= 0 && Buffer.compare(key, userKeyOf(f.largest)) <= 0;

/** The tables of one level. Level 0's may overlap (newest first); a deeper level's are disjoint and sorted. */
class Level {
  readonly all: Table[];

  constructor(
    private readonly tables: Table[],
    private readonly overlapping: boolean,
  ) {
    this.all = tables;
    if (overlapping) tables.sort((a, b) => b.file.number - a.file.number);
    else tables.sort((a, b) => Buffer.compare(a.file.smallest, b.file.smallest));
  }

  candidates(key: Buffer): Table[] {
    if (this.overlapping) return this.tables.filter((t) => inRange(t.file, key));
    let lo = 0;
    let hi = this.tables.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (Buffer.compare(userKeyOf(this.tables[mid]!.file.largest), key) < 0) lo = mid + 1;
      else hi = mid;
    }
    const t = this.tables[lo];
    return t && inRange(t.file, key) ? [t] : [];
  }
}

/** Several sorted sources merged: for each key, only its newest entry. */
function* merge(sources: Iterator<LevelEntry>[]): Generator<LevelEntry> {
  const heads = sources.map((s) => s.next());
  let last: Buffer | undefined;
  for (;;) {
    let best = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i]!;
      if (h.done) continue;
      const b = best < 0 ? undefined : (heads[best]!.value as LevelEntry);
      const c = b ? Buffer.compare(h.value.key, b.key) : -1;
      if (c < 0 || (c === 0 && h.value.seq > b!.seq)) best = i;
    }
    if (best < 0) return;
    const e = heads[best]!.value as LevelEntry;
    heads[best] = sources[best]!.next();
    if (last?.equals(e.key)) continue;
    last = e.key;
    yield e;
  }
}

export class LevelSnapshot {
  private readonly memKeys: Buffer[];

  private readonly levels: Level[] = [];

  private constructor(
    private readonly tables: Table[],
    private readonly mem: Map<string, LevelEntry>,
  ) {
    this.memKeys = [...mem.values()].map((e) => e.key).sort(Buffer.compare);
    const depth = Math.max(-1, ...tables.map((t) => t.file.level));
    for (let l = 0; l <= depth; l++)
      this.levels.push(
        new Level(
          tables.filter((t) => t.file.level === l),
          l === 0,
        ),
      );
  }

  /** Reads the database in `dir`; writers may be using it meanwhile. */
  static async load(dir: string): Promise<SnapshotOutcome> {
    let last = '';
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      try {
        return await LevelSnapshot.attempt(dir);
      } catch (e) {
        if (e instanceof LevelFormatError) return { kind: 'damaged', reason: e.message };
        if (!(e instanceof Stale)) return { kind: 'unreadable', reason: `${errno(e) ?? (e as Error).message}` };
        last = e.message;
        await sleep(5 + 20 * attempt);
      }
    }
    return { kind: 'unreadable', reason: `it kept changing while being read (${last})` };
  }

  private static async attempt(dir: string): Promise<SnapshotOutcome> {
    const current = await fs.readFile(path.join(dir, 'CURRENT'), 'latin1').catch((e) => {
      if (errno(e) === 'ENOENT') return undefined;
      throw e;
    });
    if (current === undefined) return { kind: 'missing' };
    const m = /^(MANIFEST-\d+)\n$/.exec(current);
    if (!m) throw new LevelFormatError('CURRENT does not name a MANIFEST');
    const manifestFile = path.join(dir, m[1]!);
    const manifest = await readOrStale(manifestFile);
    const version = replayManifest(logRecords(manifest, true));
    const tables: Table[] = [];
    const cache = new Map<string, Block>();
    try {
      for (const f of version.files) {
        const name = String(f.number).padStart(6, '0');
        let file = path.join(dir, `${name}.ldb`);
        const fh = await fs
          .open(file, 'r')
          .catch((e) => {
            if (errno(e) !== 'ENOENT') throw e;
            file = path.join(dir, `${name}.sst`); // what LevelDB before 1.14 wrote
            return fs.open(file, 'r');
          })
          .catch((e) => {
            if (errno(e) === 'ENOENT') throw new Stale(`table ${name} is gone`);
            throw e;
          });
        tables.push(new Table(f, file, fh, cache));
      }
      const mem = new Map<string, LevelEntry>();
      const logs = (await fs.readdir(dir))
        .map((n) => /^(\d+)\.log$/.exec(n))
        .filter((x) => x !== null)
        .map((x) => Number(x[1]))
        .filter((n) => n >= version.logNumber || n === version.prevLogNumber)
        .sort((a, b) => a - b);
      for (const n of logs) {
        for (const rec of logRecords(await readOrStale(path.join(dir, `${String(n).padStart(6, '0')}.log`)), false)) {
          for (const e of decodeWriteBatch(rec)) {
            const k = e.key.toString('latin1');
            if ((mem.get(k)?.seq ?? -1) < e.seq) mem.set(k, e);
          }
        }
      }
      // A compaction that finished meanwhile may have moved log entries into a table this snapshot lacks.
      const again = await fs.readFile(path.join(dir, 'CURRENT'), 'latin1').catch(() => '');
      const size = (await fs.stat(manifestFile).catch(() => undefined))?.size;
      if (again !== current || size !== manifest.length) throw new Stale('the MANIFEST changed');
      return { kind: 'ok', snapshot: new LevelSnapshot(tables, mem) };
    } catch (e) {
      await Promise.all(tables.map((t) => t.close()));
      throw e;
    }
  }

  /** The value of `key`, looked up as LevelDB does: the log, then level 0 newest first, then each deeper level. */
  async get(key: Buffer): Promise<Buffer | undefined> {
    const inMem = this.mem.get(key.toString('latin1'));
    if (inMem) return inMem.value;
    for (const level of this.levels) {
      for (const t of level.candidates(key)) {
        const e = t.get(key);
        if (e) return e.value; // the newest entry decides, a deletion included
      }
    }
    return undefined;
  }

  /** Live entries with gte <= key < lt, in key order. */
  async *range(gte: Buffer, lt: Buffer): AsyncGenerator<[Buffer, Buffer]> {
    const sources: Iterator<LevelEntry>[] = [];
    const mem = this.memKeys
      .filter((k) => Buffer.compare(k, gte) >= 0 && Buffer.compare(k, lt) < 0)
      .map((k) => this.mem.get(k.toString('latin1'))!);
    sources.push(mem[Symbol.iterator]());
    // Level 0 tables may overlap, one source each; the tables of a deeper level do not, so they are read in turn.
    const overlaps = (t: Table) =>
      Buffer.compare(userKeyOf(t.file.largest), gte) >= 0 && Buffer.compare(userKeyOf(t.file.smallest), lt) < 0;
    for (const [l, level] of this.levels.entries()) {
      const tables = level.all.filter(overlaps);
      if (l === 0) for (const t of tables) sources.push(t.entries(gte));
      else
        sources.push(
          (function* () {
            for (const t of tables) yield* t.entries(gte);
          })(),
        );
    }
    for (const e of merge(sources)) {
      if (Buffer.compare(e.key, lt) >= 0) return;
      if (e.value) yield [e.key, e.value];
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.tables.map((t) => t.close()));
  }
}

async function readOrStale(p: string): Promise<Buffer> {
  try {
    return await fs.readFile(p);
  } catch (e) {
    if (errno(e) === 'ENOENT') throw new Stale(`${path.basename(p)} is gone`);
    throw e;
  }
}
