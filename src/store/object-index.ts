// The LevelDB index (spec/FORMAT.md §8): where each object lives, plus cached commit bodies for fast log.
// It is a cache: everything in it is derived from packs, so it is rebuilt when missing, damaged or behind.
// LevelDB allows one process at a time, so every use is a short session (open, work, close) with retries:
// two committers interleave their sessions instead of one blocking the other for a whole commit.
import * as fs from 'node:fs/promises';
import { Level } from 'level';
import { CkvcError } from '../core/errors.js';
import { OBJECT_TYPE_CODE, objectTypeFromCode, type ObjectId, type ObjectType } from '../core/object-id.js';
import { isKnownCodec, MAX_OBJECT_BYTES, type CodecId, type PackEntry } from '../core/pack-format.js';
import { ioError } from './durable-fs.js';
import type { ObjectLocation, PackReader } from './pack-reader.js';
import type { StoreLayout } from './store-layout.js';

export const INDEX_VERSION = 1;
const K_OBJECT = 0x6f; // 'o' + id -> location
const K_PACK = 0x70; // 'p' + pack id -> object count
const K_COMMIT = 0x63; // 'c' + id -> commit body
const META_VERSION = Buffer.from('m:version');

type DB = Level<Buffer, Buffer>;

function key(kind: number, hex: string): Buffer {
  const b = Buffer.alloc(33);
  b[0] = kind;
  b.write(hex, 1, 'hex');
  return b;
}

function encodeLocation(packId: string, e: PackEntry): Buffer {
  const b = Buffer.alloc(52);
  b.write(packId, 0, 'hex');
  b.writeBigUInt64LE(BigInt(e.offset), 32);
  b.writeUInt32LE(e.storedLength, 40);
  b.writeUInt32LE(e.rawLength, 44);
  b[48] = OBJECT_TYPE_CODE[e.type];
  b[49] = e.codec;
  return b;
}

/** A damaged entry reads as a miss (the caller then re-syncs from the packs), never as a wild read. */
function decodeLocation(id: ObjectId, b: Buffer): ObjectLocation | undefined {
  const type = b.length === 52 ? objectTypeFromCode(b[48]!) : undefined;
  if (!type || !isKnownCodec(b[49]!)) return undefined;
  const storedLength = b.readUInt32LE(40);
  const rawLength = b.readUInt32LE(44);
  if (storedLength > MAX_OBJECT_BYTES || rawLength > MAX_OBJECT_BYTES) return undefined;
  return {
    packId: b.subarray(0, 32).toString('hex'),
    entry: { id, type, offset: Number(b.readBigUInt64LE(32)), storedLength, rawLength, codec: b[49] as CodecId },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface IndexedPack {
  packId: string;
  entries: PackEntry[];
}

export class IndexSession {
  constructor(private readonly db: DB) {}

  async locate(ids: ObjectId[]): Promise<(ObjectLocation | undefined)[]> {
    if (ids.length === 0) return [];
    const vals = await this.db.getMany(ids.map((id) => key(K_OBJECT, id)));
    return vals.map((v, i) => (v ? decodeLocation(ids[i]!, v) : undefined));
  }

  async addPack(pack: IndexedPack, commitBodies: Map<ObjectId, Uint8Array>): Promise<void> {
    const batch = this.db.batch();
    for (const e of pack.entries) batch.put(key(K_OBJECT, e.id), encodeLocation(pack.packId, e));
    for (const [id, body] of commitBodies) batch.put(key(K_COMMIT, id), Buffer.from(body));
    batch.put(key(K_PACK, pack.packId), Buffer.from(String(pack.entries.length)));
    await batch.write();
  }

  /**
   * gc's index update, in one atomic batch: index the new packs, forget the deleted ones (their `p` keys, the
   * `o` keys still pointing into them, the cached bodies of commits in `gone`), and point every object in
   * `relocate` at its surviving copy (its entry may have named a deleted pack though a kept pack has it too).
   */
  async replacePacks(added: IndexedPack[], removed: IndexedPack[], gone: Set<ObjectId>, relocate: ObjectLocation[]): Promise<void> {
    const batch = this.db.batch();
    for (const pack of added) {
      for (const e of pack.entries) batch.put(key(K_OBJECT, e.id), encodeLocation(pack.packId, e));
      batch.put(key(K_PACK, pack.packId), Buffer.from(String(pack.entries.length)));
    }
    for (const pack of removed) {
      const vals = await this.db.getMany(pack.entries.map((e) => key(K_OBJECT, e.id)));
      pack.entries.forEach((e, i) => {
        const v = vals[i];
        if (v && v.subarray(0, 32).toString('hex') === pack.packId) batch.del(key(K_OBJECT, e.id));
        if (e.type === 'commit' && gone.has(e.id)) batch.del(key(K_COMMIT, e.id));
      });
      batch.del(key(K_PACK, pack.packId));
    }
    for (const l of relocate) batch.put(key(K_OBJECT, l.entry.id), encodeLocation(l.packId, l.entry));
    await batch.write();
  }

  async commitBody(id: ObjectId): Promise<Buffer | undefined> {
    return (await this.db.get(key(K_COMMIT, id))) ?? undefined;
  }

  async indexedPacks(): Promise<Set<string>> {
    const out = new Set<string>();
    for await (const k of this.db.keys({ gte: Buffer.from([K_PACK]), lt: Buffer.from([K_PACK + 1]) })) out.add(k.subarray(1).toString('hex'));
    return out;
  }

  /** Objects of the given types whose hex ID starts with `prefix`, at most `limit`. */
  async findByPrefix(prefix: string, types: ObjectType[], limit = 10): Promise<{ id: ObjectId; type: ObjectType }[]> {
    const even = prefix.length % 2 === 0 ? prefix : prefix.slice(0, -1);
    const lo = Buffer.concat([Buffer.from([K_OBJECT]), Buffer.from(even, 'hex')]);
    const hi = Buffer.from(lo);
    // Upper bound: the next key after every key starting with lo.
    let i = hi.length - 1;
    while (i >= 0 && hi[i] === 0xff) i--;
    const upper = i < 0 ? Buffer.from([K_OBJECT + 1]) : Buffer.concat([hi.subarray(0, i), Buffer.from([hi[i]! + 1])]);
    const out: { id: ObjectId; type: ObjectType }[] = [];
    for await (const [k, v] of this.db.iterator({ gte: lo, lt: upper })) {
      const id = k.subarray(1).toString('hex');
      if (!id.startsWith(prefix)) continue;
      const loc = decodeLocation(id, v);
      if (loc && types.includes(loc.entry.type)) out.push({ id, type: loc.entry.type });
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Per object type: how many, their raw (uncompressed) bytes and their stored bytes. */
  async totals(): Promise<Map<ObjectType, { count: number; rawBytes: number; storedBytes: number }>> {
    const out = new Map<ObjectType, { count: number; rawBytes: number; storedBytes: number }>();
    for await (const v of this.db.values({ gte: Buffer.from([K_OBJECT]), lt: Buffer.from([K_OBJECT + 1]) })) {
      const t = objectTypeFromCode(v[48]!);
      if (!t) continue;
      const cur = out.get(t) ?? { count: 0, rawBytes: 0, storedBytes: 0 };
      cur.count++;
      cur.rawBytes += v.readUInt32LE(44);
      cur.storedBytes += v.readUInt32LE(40);
      out.set(t, cur);
    }
    return out;
  }
}

/** How long an idle open index stays open for the next session of this process before it is closed. */
const LINGER_MS = 25;

export class ObjectIndex {
  private synced = false;
  private db: DB | undefined;
  private opening: Promise<DB> | undefined;
  private users = 0;
  private closeTimer: NodeJS.Timeout | undefined;

  constructor(private readonly layout: StoreLayout, private readonly packs: PackReader, private readonly readCommitBodies: (packId: string, entries: PackEntry[]) => Promise<Map<ObjectId, Uint8Array>>) {}

  /** The index folder, for messages. */
  get location(): string {
    return this.layout.indexDir;
  }

  /**
   * Runs `fn` with the index open; `sync` forces a check that every pack on disk is indexed. Back-to-back
   * sessions of one process share one opening (a log walk is one session per commit); the database is closed
   * LINGER_MS after the last one ends, so other processes get their turn.
   */
  async session<T>(fn: (s: IndexSession) => Promise<T>, opts: { sync?: boolean } = {}): Promise<T> {
    if (this.closeTimer) {
      clearTimeout(this.closeTimer);
      this.closeTimer = undefined;
    }
    this.users++;
    try {
      if (!this.db) {
        this.opening ??= this.openDb().finally(() => (this.opening = undefined));
        this.db = await this.opening;
      }
      const db = this.db;
      const s = new IndexSession(db);
      if (!this.synced || opts.sync) {
        await this.syncWithPacks(s, db);
        this.synced = true;
      }
      return await fn(s);
    } finally {
      if (--this.users === 0 && this.db) {
        this.closeTimer = setTimeout(() => void this.close(), LINGER_MS);
        this.closeTimer.unref();
      }
    }
  }

  /** Closes the database now if no session is running. */
  async close(): Promise<void> {
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.closeTimer = undefined;
    if (this.users > 0 || !this.db) return;
    const db = this.db;
    this.db = undefined;
    await db.close();
  }

  private async openDb(): Promise<DB> {
    const deadline = Date.now() + Number(process.env.CKVC_LOCK_TIMEOUT_MS ?? 30_000);
    let delay = 2;
    for (let rebuilt = false; ;) {
      const db: DB = new Level<Buffer, Buffer>(this.layout.indexDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      try {
        await db.open();
        const v = await db.get(META_VERSION);
        if (v === undefined || Number(v.toString()) !== INDEX_VERSION) {
          await db.clear();
          await db.put(META_VERSION, Buffer.from(String(INDEX_VERSION)));
          this.synced = false;
        }
        return db;
      } catch (e) {
        await db.close().catch(() => {});
        const code = (e as { cause?: { code?: string } }).cause?.code ?? (e as { code?: string }).code;
        if (code === 'LEVEL_LOCKED') {
          if (Date.now() > deadline) {
            throw new CkvcError('CKVC_LOCKED', `the index ${this.layout.indexDir} stayed locked by another ckvc process; retry when it has finished`, { path: this.layout.indexDir });
          }
          await sleep(delay + Math.random() * delay);
          delay = Math.min(delay * 2, 40);
          continue;
        }
        if (!rebuilt) {
          // Damaged beyond opening: it is only a cache, so start it afresh from the packs.
          await fs.rm(this.layout.indexDir, { recursive: true, force: true });
          this.synced = false;
          rebuilt = true;
          continue;
        }
        throw ioError(e, 'open the index', this.layout.indexDir);
      }
    }
  }

  private async syncWithPacks(s: IndexSession, db: DB): Promise<void> {
    const onDisk = await listPackIds(this.layout);
    const indexed = await s.indexedPacks();
    if ([...indexed].some((p) => !onDisk.has(p))) {
      // A pack went away (gc, or damage): its entries cannot be told apart cheaply, so rebuild from scratch.
      await db.clear();
      await db.put(META_VERSION, Buffer.from(String(INDEX_VERSION)));
      indexed.clear();
    }
    for (const packId of onDisk) {
      if (indexed.has(packId)) continue;
      let toc;
      try {
        toc = await this.packs.readToc(packId);
      } catch (e) {
        if (e instanceof CkvcError && (e.code === 'CKVC_CORRUPT_PACK' || e.code === 'CKVC_UNSUPPORTED_VERSION')) continue; // verify reports it
        throw e;
      }
      await s.addPack({ packId, entries: toc.entries }, await this.readCommitBodies(packId, toc.entries));
    }
  }

  async rebuild(): Promise<{ packs: number; objects: number }> {
    await this.close();
    await fs.rm(this.layout.indexDir, { recursive: true, force: true });
    this.synced = false;
    return this.session(async (s) => {
      const totals = await s.totals();
      return { packs: (await s.indexedPacks()).size, objects: [...totals.values()].reduce((a, b) => a + b.count, 0) };
    });
  }
}

export async function listPackIds(layout: StoreLayout): Promise<Set<string>> {
  try {
    return new Set((await fs.readdir(layout.packsDir)).filter((n) => /^[0-9a-f]{64}\.pack$/.test(n)).map((n) => n.slice(0, 64)));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
    throw ioError(e, 'list', layout.packsDir);
  }
}
