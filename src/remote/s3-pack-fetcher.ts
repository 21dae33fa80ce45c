// Which parts of an S3 remote's packs a fetch downloads into its scratch store (spec/S3.md §3): a pack whole when
// most of it is wanted (or it is small), else its directory and then only the records asked for, with the delta
// bases they need from the same pack and, the first time a pack is read, every record that is not a chunk
// (commits, trees, recipes: what a filtered fetch walks). Either way the scratch store receives a bundle and
// verifies every object, as it would from any remote.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { CkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import { bad } from '../core/store-format/bundle-format.js';
import { RECORD_HEADER_BYTES, type PackEntry } from '../core/store-format/pack-format.js';
import { ioError } from '../store/durable-fs.js';
import { writeStoredRecordsBundle } from './bundle-writer.js';
import type { Catalogue } from './s3-catalogue.js';
import type { S3Objects } from './s3-client.js';
import { s3Keys } from './s3-location.js';
import { deltaBase, RangesIgnored, readPackDirectory, readRecords, type PackDirectory } from './s3-pack-ranges.js';
import type { StoreService } from './store-service.js';

/** A pack this small is downloaded whole: its directory and ranges would cost more round trips than bytes. */
const WHOLE_PACK_BYTES = 2 * 1024 * 1024;
/** Ranges are read only when they take less than this share of a pack (by bytes). */
const RANGED_SHARE = 0.5;
/** Directories read at once (as the catalogue's listings are). */
const DIRECTORY_CONCURRENCY = 8;
/** FORMAT.md §4.3: a reader follows at most 64 bases for one record. */
const MAX_BASE_ROUNDS = 64;

export class S3PackFetcher {
  /** Packs received whole. */
  private readonly whole = new Set<string>();
  /** Packs whose records other than chunks the scratch store holds (read by ranges). */
  private readonly described = new Set<string>();
  /** undefined: a pack small enough to download whole (its first read said how large it is). */
  private readonly directories = new Map<string, PackDirectory | undefined>();
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
    if (opts.described) for (const p of this.catalogue.packs) if (!this.described.has(p)) byPack.set(p, []);
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
    const whole = (p: string, want: ObjectId[]) => !this.ranges || want.length === this.catalogue.idsOf.get(p)!.length;
    // The directories first, several at a time (two requests each): a fetch reading a few tensors out of hundreds
    // of packs waits for round trips, not bytes.
    const unread = [...byPack].filter(([p, want]) => !whole(p, want) && !this.directories.has(p)).map(([p]) => p);
    await Promise.all(
      Array.from({ length: Math.min(DIRECTORY_CONCURRENCY, unread.length) }, async () => {
        for (let p = unread.shift(); p !== undefined && this.ranges; p = unread.shift()) await this.directory(p);
      }),
    );
    for (const [p, want] of byPack) {
      if (this.whole.has(p)) continue;
      const dir = whole(p, want) ? undefined : this.directories.get(p);
      if (dir) await this.fromPack(p, want, dir);
      else await this.wholePack(p);
    }
  }

  private async directory(p: string): Promise<void> {
    try {
      const listing = this.catalogue.idsOf.get(p)!;
      const dir = await readPackDirectory(this.s3, this.key(p), listing, this.where(p), WHOLE_PACK_BYTES);
      this.bytes += dir.bytesRead;
      this.directories.set(p, 'records' in dir ? dir : undefined);
    } catch (e) {
      if (!(e instanceof RangesIgnored)) throw e;
      this.ranges = false;
    }
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
    await this.ranged(p, dir, included, first);
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
   * already is not read again: the bundle is thin on it.
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
      let at = 0;
      let round = [...included.values()];
      for (let depth = 0; round.length; depth++) {
        if (depth > MAX_BASE_ROUNDS) throw bad(where, `has a chain of delta bases over ${MAX_BASE_ROUNDS} long`);
        const next: PackEntry[] = [];
        this.bytes += await readRecords(this.s3, key, dir, round, where, async (entry, body) => {
          // Its place in the file is taken before the write waits: several ranges arrive at once.
          const place = at;
          at += body.length;
          read.push({ entry, at: place });
          await fh.write(body, 0, body.length, place).catch((e) => {
            throw ioError(e, 'write', file);
          });
          const base = deltaBase(entry, body);
          if (base === undefined || included.has(base) || considered.has(base)) return;
          considered.add(base); // before the look-up waits: another record of this round may share the base
          const there = dir.records.get(base);
          if (there && !(await this.scratch.service.store.has(base))) {
            included.set(base, there);
            next.push(there);
          } else {
            // Held here already, or nowhere: then the scratch store refuses the bundle, naming it.
            outside.add(base);
          }
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
