// A read-only snapshot of the LevelDB index, read straight from its files (src/core/leveldb-format.ts) without
// opening the database: nothing is written, no lock is taken, and a store the user may only read can still use
// its index. LevelDB never changes a table file in place, so once every live table is open (a handle keeps a
// file readable after a concurrent compaction deletes it) and the write-ahead log is read, the snapshot is
// consistent; a MANIFEST that changed while it was being taken means a writer was busy, and it is taken again.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {
  Block, blockContents, BLOCK_TRAILER_BYTES, decodeBlockHandle, decodeTableFooter, decodeWriteBatch, LevelFormatError, logRecords, parseInternalKey,
  replayManifest, TABLE_FOOTER_BYTES, userKeyOf, type BlockHandle, type LevelEntry, type TableFile,
} from '../core/leveldb-format.js';

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
  private index: Block | undefined;

  constructor(readonly file: TableFile, private readonly fh: fs.FileHandle, private readonly cache: Map<string, Block>) {}

  private async read(h: BlockHandle): Promise<Buffer> {
    const n = h.size + BLOCK_TRAILER_BYTES;
    const buf = Buffer.allocUnsafe(n);
    const { bytesRead } = await this.fh.read(buf, 0, n, h.offset);
    if (bytesRead !== n) throw new LevelFormatError(`table ${this.file.number} is truncated`);
    return buf;
  }

  private async indexBlock(): Promise<Block> {
    if (!this.index) {
      const size = (await this.fh.stat()).size;
      if (size < TABLE_FOOTER_BYTES) throw new LevelFormatError(`table ${this.file.number} is truncated`);
      const footer = Buffer.alloc(TABLE_FOOTER_BYTES);
      await this.fh.read(footer, 0, TABLE_FOOTER_BYTES, size - TABLE_FOOTER_BYTES);
      this.index = new Block(blockContents(await this.read(decodeTableFooter(footer))));
    }
    return this.index;
  }

  private async dataBlock(h: BlockHandle, keep: boolean): Promise<Block> {
    const k = `${this.file.number}:${h.offset}`;
    const hit = this.cache.get(k);
    if (hit) {
      this.cache.delete(k);
      this.cache.set(k, hit);
      return hit;
    }
    const b = new Block(blockContents(await this.read(h)));
    if (keep) {
      if (this.cache.size >= BLOCK_CACHE) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(k, b);
    }
    return b;
  }

  /** Entries in internal-key order from the first whose user key is >= `from`. `keep` caches the blocks read. */
  async *entries(from: Buffer, keep: boolean): AsyncGenerator<LevelEntry> {
    for (const [, handle] of (await this.indexBlock()).entries(from)) {
      for (const [ikey, value] of (await this.dataBlock(decodeBlockHandle(handle), keep)).entries(from)) {
        const k = parseInternalKey(ikey);
        if (k.type > 1) throw new LevelFormatError(`unknown entry type ${k.type} in table ${this.file.number}`);
        yield { key: k.user, seq: k.seq, value: k.type === 1 ? value : undefined };
      }
    }
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}

const inRange = (f: TableFile, key: Buffer) => Buffer.compare(userKeyOf(f.smallest), key) <= 0 && Buffer.compare(key, userKeyOf(f.largest)) <= 0;

/** Several sorted sources merged: for each key, only its newest entry. */
async function* merge(sources: AsyncIterator<LevelEntry>[]): AsyncGenerator<LevelEntry> {
  const heads = await Promise.all(sources.map((s) => s.next()));
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
    heads[best] = await sources[best]!.next();
    if (last && last.equals(e.key)) continue;
    last = e.key;
    yield e;
  }
}

export class LevelSnapshot {
  private readonly memKeys: Buffer[];

  private constructor(private readonly tables: Table[], private readonly mem: Map<string, LevelEntry>) {
    this.memKeys = [...mem.values()].map((e) => e.key).sort(Buffer.compare);
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
        const fh = await fs.open(path.join(dir, `${name}.ldb`), 'r').catch((e) => {
          if (errno(e) === 'ENOENT') return fs.open(path.join(dir, `${name}.sst`), 'r');
          throw e;
        }).catch((e) => {
          if (errno(e) === 'ENOENT') throw new Stale(`table ${name} is gone`);
          throw e;
        });
        tables.push(new Table(f, fh, cache));
      }
      const mem = new Map<string, LevelEntry>();
      const logs = (await fs.readdir(dir)).map((n) => /^(\d+)\.log$/.exec(n)).filter((x) => x !== null).map((x) => Number(x[1]))
        .filter((n) => n >= version.logNumber || n === version.prevLogNumber).sort((a, b) => a - b);
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

  async get(key: Buffer): Promise<Buffer | undefined> {
    const inMem = this.mem.get(key.toString('latin1'));
    if (inMem) return inMem.value; // the log is newer than every table
    let best: LevelEntry | undefined;
    for (const t of this.tables) {
      if (!inRange(t.file, key)) continue;
      const first = await t.entries(key, true).next();
      if (!first.done && first.value.key.equals(key) && (!best || first.value.seq > best.seq)) best = first.value;
    }
    return best?.value;
  }

  /** Live entries with gte <= key < lt, in key order. */
  async *range(gte: Buffer, lt: Buffer): AsyncGenerator<[Buffer, Buffer]> {
    const sources: AsyncIterator<LevelEntry>[] = [];
    const mem = this.memKeys.filter((k) => Buffer.compare(k, gte) >= 0 && Buffer.compare(k, lt) < 0).map((k) => this.mem.get(k.toString('latin1'))!);
    sources.push(mem[Symbol.iterator]() as unknown as AsyncIterator<LevelEntry>);
    // Level 0 tables may overlap, one source each; the tables of a deeper level do not, so they are read in turn.
    const overlapping = this.tables.filter((t) => Buffer.compare(userKeyOf(t.file.largest), gte) >= 0 && Buffer.compare(userKeyOf(t.file.smallest), lt) < 0);
    for (const t of overlapping.filter((x) => x.file.level === 0)) sources.push(t.entries(gte, false));
    const levels = [...new Set(overlapping.map((t) => t.file.level))].filter((l) => l > 0);
    for (const l of levels) {
      const files = overlapping.filter((t) => t.file.level === l).sort((a, b) => Buffer.compare(a.file.smallest, b.file.smallest));
      sources.push((async function* () { for (const t of files) yield* t.entries(gte, false); })());
    }
    for await (const e of merge(sources.map((s) => wrapSync(s)))) {
      if (Buffer.compare(e.key, lt) >= 0) return;
      if (e.value) yield [e.key, e.value];
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.tables.map((t) => t.close()));
  }
}

/** A sync iterator used where an async one is expected. */
function wrapSync(it: AsyncIterator<LevelEntry> | Iterator<LevelEntry>): AsyncIterator<LevelEntry> {
  return { next: async () => it.next() };
}

async function readOrStale(p: string): Promise<Buffer> {
  try {
    return await fs.readFile(p);
  } catch (e) {
    if (errno(e) === 'ENOENT') throw new Stale(`${path.basename(p)} is gone`);
    throw e;
  }
}
