// Which parts of an S3 remote's packs a fetch downloads into its scratch store (spec/S3.md §3): a pack whole when
// all of it is wanted, when it is small, or when what is wanted is most of its bytes; else its directory and then
// only the records asked for, with the delta bases they need from the same pack and, the first time a pack is
// read, every record that is not a chunk (commits, trees, recipes: what a filtered fetch walks). Either way the
// scratch store receives a bundle and verifies every object, as it would from any remote.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { CkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import { bad } from '../core/store-format/bundle-format.js';
import { CODECS, RECORD_HEADER_BYTES, type PackEntry } from '../core/store-format/pack-format.js';
import { parseDeltaHead } from '../core/store-format/codec/plane-codec.js';
import { ioError } from '../store/durable-fs.js';
import { writeStoredRecordsBundle } from './bundle-writer.js';
import type { Catalogue } from './s3-catalogue.js';
import type { S3Objects } from './s3-client.js';
import { s3Keys } from './s3-location.js';
import { RangesIgnored, readPackDirectory, readRecords, type PackDirectory } from './s3-pack-ranges.js';
import type { StoreService } from './store-service.js';

/** A pack this small is downloaded whole: its directory and ranges would cost more round trips than bytes. */
const WHOLE_PACK_BYTES = 2 * 1024 * 1024;
/** Ranges are read only when they take less than this share of a pack (by bytes). */
const RANGED_SHARE = 0.5;
/** Directories read ahead of the pack being fetched (as the catalogue's listings are read, 8 at a time). */
const DIRECTORY_CONCURRENCY = 8;
/**
 * TOC entries kept between the downloads of one command (a filtered plan, then its objects, read the same packs):
 * about 240 bytes each in memory, so about 60 MB; past it a directory is read again when needed.
 */
const KEPT_DIRECTORY_ENTRIES = 250_000;
/** FORMAT.md §4.3: a reader follows at most 64 bases for one record. */
const MAX_BASE_ROUNDS = 64;

/** A directory as read: 'small' for a pack to take whole, 'ignored' when the service ignored the Range. */
type Directory = PackDirectory | 'small' | 'ignored';

export class S3PackFetcher {
  /** Packs received whole. */
  private readonly whole = new Set<string>();
  /** Packs whose records other than chunks the scratch store holds (read by ranges). */
  private readonly described = new Set<string>();
  private readonly directories = new Map<string, PackDirectory | 'small'>();
  private keptEntries = 0;
  /** False once the service answered a range with the whole object (it ignores Range): packs come whole. */
  private ranges = true;
  /** Bytes downloaded: whole packs, directories and ranges. */
  bytes = 0;

  constructor(
    private readonly s3: S3Objects,
    private readonly url: string,
    private readonly catalogue: Catalogue,
    private readonly scratch: { service: StoreService; dir: string },
  ) {}

  /**
   * Makes the scratch store hold every one of `ids`; with `described`, also every record other than a chunk of
   * every pack (what a filtered plan walks).
   */
  async download(ids: ObjectId[], opts: { described?: boolean } = {}): Promise<void> {
    const byPack = new Map<string, ObjectId[]>();
    if (opts.described)
      for (const p of this.catalogue.packs) if (!this.described.has(p) && !this.whole.has(p)) byPack.set(p, []);
    for (const id of ids) {
      const p = this.catalogue.pack.get(id);
      if (p === undefined)
        throw new CkvcError('CKVC_REMOTE', `${this.url} lists no pack holding ${id.slice(0, 16)}`, { id });
      if (this.whole.has(p)) continue;
      // Only a pack read in part holds some of its objects here: the others are wanted whole or not at all.
      if (this.described.has(p) && (await this.scratch.service.store.has(id))) continue;
      const list = byPack.get(p);
      if (list) list.push(id);
      else byPack.set(p, [id]);
    }
    // Wanted whole: no directory needed. Otherwise the directory decides, by bytes: counts say little (a tensor's
    // bias or an optimizer's step count is a chunk like a megabyte of its weights).
    const todo = [...byPack].filter(([p, want]) => want.length || !this.described.has(p));
    const ranged = (p: string, want: ObjectId[]) => this.ranges && want.length !== this.catalogue.idsOf.get(p)!.length;
    // Directories are read a few packs ahead of the one being fetched, so a fetch of a few tensors out of hundreds
    // of packs waits for round trips in parallel; at most that many are read for nothing when a pack fails.
    const ahead = new Map<string, Promise<Directory>>();
    let next = 0;
    for (const [p, want] of todo) {
      for (; next < todo.length && ahead.size < DIRECTORY_CONCURRENCY; next++) {
        const [q, w] = todo[next]!;
        if (!ranged(q, w) || this.directories.has(q)) continue;
        const reading = this.readDirectory(q);
        reading.catch(() => {}); // reported when its pack's turn comes
        ahead.set(q, reading);
      }
      const reading = ahead.get(p);
      ahead.delete(p);
      const dir = !ranged(p, want) ? 'whole' : (this.directories.get(p) ?? (await reading!));
      if (dir === 'whole' || dir === 'small' || dir === 'ignored' || !this.ranges) await this.wholePack(p);
      else await this.fromPack(p, want, dir);
      if (reading) await this.keep(p, reading);
    }
  }

  private async readDirectory(p: string): Promise<Directory> {
    try {
      const listing = this.catalogue.idsOf.get(p)!;
      const dir = await readPackDirectory(this.s3, this.key(p), listing, this.where(p), WHOLE_PACK_BYTES);
      this.bytes += dir.bytesRead;
      return 'records' in dir ? dir : 'small';
    } catch (e) {
      if (!(e instanceof RangesIgnored)) throw e;
      this.ranges = false;
      return 'ignored';
    }
  }

  /** Keeps a directory for the command's next download while the kept ones stay under their bound. */
  private async keep(p: string, reading: Promise<Directory>): Promise<void> {
    const dir = await reading;
    if (dir === 'ignored') return;
    const entries = dir === 'small' ? 0 : dir.records.size;
    if (this.keptEntries + entries > KEPT_DIRECTORY_ENTRIES) return;
    this.keptEntries += entries;
    this.directories.set(p, dir);
  }

  private key(p: string): string {
    return s3Keys(this.s3.loc).pack(p);
  }

  private where(p: string): string {
    return `pack ${p.slice(0, 12)} of ${this.url}`;
  }

  private async fromPack(p: string, want: ObjectId[], dir: PackDirectory): Promise<void> {
    const first = !this.described.has(p);
    const included = new Map<ObjectId, PackEntry>();
    for (const id of want) included.set(id, dir.records.get(id)!);
    if (first) for (const e of dir.records.values()) if (e.type !== 'chunk') included.set(e.id, e);
    let bytes = 0;
    for (const e of included.values()) bytes += RECORD_HEADER_BYTES + e.storedLength;
    if (bytes >= dir.header.packLength * RANGED_SHARE) return this.wholePack(p);
    if (included.size === 0) {
      this.described.add(p); // a pack of chunks alone: nothing to read for the plan
      return;
    }
    try {
      await this.ranged(p, dir, included, first);
    } catch (e) {
      if (!(e instanceof RangesIgnored)) throw e;
      this.ranges = false; // it honoured Range for the directory, not now: whole packs from here on
      await this.wholePack(p);
    }
  }

  private async wholePack(p: string): Promise<void> {
    const key = this.key(p);
    const where = this.where(p);
    const got = await this.s3.open(key);
    if (!got)
      throw new CkvcError(
        'CKVC_REMOTE',
        `${where} is missing (s3://${this.s3.loc.bucket}/${key}) though index.json lists it`,
        { url: this.url, key },
      );
    // The object's length bounds what is read (a header claiming more is refused before a byte of the pack is
    // kept), and the pack must hold exactly what its listing names (the listing is what fetches plan with).
    await this.scratch.service.receiveObjects(got.body, where, { bytes: got.size, ids: this.catalogue.idsOf.get(p)! });
    this.whole.add(p);
    this.bytes += got.size;
  }

  /**
   * Reads `included` and the delta bases they need from the pack, round by round (a base is known once its delta
   * is read), into a file, then hands them to the scratch store as one bundle. A base the scratch store holds
   * already is not read again: the bundle is thin on it. A base outside the pack refuses it, as it would whole:
   * each pack must verify on its own (S3.md §4).
   */
  private async ranged(
    p: string,
    dir: PackDirectory,
    included: Map<ObjectId, PackEntry>,
    first: boolean,
  ): Promise<void> {
    const key = this.key(p);
    const where = this.where(p);
    const file = path.join(this.scratch.dir, `ranges-${p.slice(0, 16)}`);
    const fh = await fs.open(file, 'w+').catch((e) => {
      throw ioError(e, 'create', file);
    });
    try {
      const read: { entry: PackEntry; at: number }[] = [];
      const outside = new Set<ObjectId>();
      const considered = new Set<ObjectId>();
      let end = 0;
      let round = [...included.values()];
      for (let depth = 0; round.length; depth++) {
        if (depth > MAX_BASE_ROUNDS) throw bad(where, `has a chain of delta bases over ${MAX_BASE_ROUNDS} long`);
        const next: PackEntry[] = [];
        this.bytes += await readRecords(this.s3, key, dir, round, where, {
          // Its place in the file is taken before anything waits: several ranges arrive at once.
          place: (entry) => {
            read.push({ entry, at: end });
            end += entry.storedLength;
            return end - entry.storedLength;
          },
          write: (piece, at) =>
            fh.write(piece, 0, piece.length, at).then(
              () => {},
              (e) => {
                throw ioError(e, 'write', file);
              },
            ),
          done: async (entry, head) => {
            const base = entry.codec === CODECS.xorPlanes ? parseDeltaHead(head, where).baseId : undefined;
            if (base === undefined || included.has(base) || considered.has(base)) return;
            considered.add(base); // before the look-up waits: another record of this round may share the base
            const there = dir.records.get(base);
            if (!there)
              throw bad(
                where,
                `has a delta record ${entry.id.slice(0, 16)} on ${base.slice(0, 16)}, which is not in the pack`,
              );
            if (await this.scratch.service.store.has(base)) outside.add(base);
            else {
              included.set(base, there);
              next.push(there);
            }
          },
        });
        round = next;
      }
      read.sort((a, b) => a.entry.offset - b.entry.offset);
      const content = {
        // Every commit of the pack travels the first time (records other than chunks), so these still hold.
        pruned: first ? dir.header.pruned : [],
        labels: first ? (dir.header.labels ?? []) : [],
        shallow: first ? (dir.header.shallow ?? []) : [],
        bases: [...outside].filter((b) => !included.has(b)),
      };
      const pipe = new PassThrough({ highWaterMark: 1024 * 1024 });
      const records = read.map(({ entry, at }) => ({
        entry,
        read: async () => {
          const b = Buffer.allocUnsafe(entry.storedLength);
          await fh.read(b, 0, b.length, at);
          return b;
        },
      }));
      const writing = writeStoredRecordsBundle(content, records, pipe).then(
        () => {
          pipe.end();
        },
        (e) => {
          pipe.destroy(e as Error);
          throw e;
        },
      );
      try {
        await Promise.all([writing, this.scratch.service.receiveObjects(pipe, where, { ids: [...included.keys()] })]);
      } catch (e) {
        pipe.destroy(); // a refused bundle: the writer must not wait for a reader that has gone
        throw e;
      }
      this.described.add(p);
    } finally {
      await fh.close().catch(() => {});
      await fs.rm(file, { force: true }).catch(() => {});
    }
  }
}
