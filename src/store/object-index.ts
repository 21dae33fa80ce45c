// The index (spec/FORMAT.md §8): where each object lives, plus cached commit bodies for fast log. It is a
// cache: everything in it is derived from packs, so it is rebuilt when missing, damaged or behind.
//
// Two ways in. Read commands see a snapshot of its files read directly (index-view.ts): opening LevelDB writes
// even to look (a new MANIFEST, log and LOG) and needs write access, so a read that opened it would change the
// store and fail on one the user may only read. Writers, and a read that finds the index in need of a rebuild
// on a store it may write, open LevelDB. LevelDB allows one process at a time, so every use of it is a short
// session (open, work, close) with retries: two committers interleave instead of one blocking the other.
import * as fs from 'node:fs/promises';
import { CkvcError } from '../core/errors.js';
import { INDEX_VERSION, META_VERSION } from '../core/store-format/index-keys.js';
import { LevelFormatError } from '../core/leveldb-format.js';
import type { ObjectId, ObjectType } from '../core/store-format/object-id.js';
import type { PackEntry } from '../core/store-format/pack-format.js';
import { ioError } from './durable-fs.js';
import { faultPoint } from './fault-injection.js';
import { flushBigWriteAheadLog, LevelSession, type DB } from './index-level.js';
import { LevelSnapshot } from './index-snapshot.js';
import { IndexReadView, ViewSession } from './index-view.js';
import type { IndexTotals } from './index-totals.js';
import type { ObjectLocation, PackReader } from './pack-reader.js';
import { listPackIds, type StoreLayout } from './store-layout.js';
import { commonJsExports } from '../core/commonjs-exports.js';

export { INDEX_VERSION } from '../core/store-format/index-keys.js';
export { listPackIds } from './store-layout.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface IndexedPack {
  packId: string;
  entries: PackEntry[];
  /**
   * Objects of the pack the store already held: their index entries keep naming the copy the store had, the one
   * its own deltas were built and verified on (a received copy may be encoded on another chain).
   */
  keepIndexed?: ReadonlySet<ObjectId>;
}

export type { IndexTotals } from './index-totals.js';

export interface IndexSession {
  locate(ids: ObjectId[]): Promise<(ObjectLocation | undefined)[]>;
  commitBody(id: ObjectId): Promise<Buffer | undefined>;
  /** A branch's metric summary entries as stored (core/store-format/branch-summary.ts decodes them). */
  summaryTip(branch: string): Promise<Buffer | undefined>;
  summaryMetrics(branch: string, metrics: string[]): Promise<(Buffer | undefined)[]>;
  /** The names of the metrics a branch's summary has entries for, in key order, at most `limit`. */
  summaryMetricNames(branch: string, limit: number): Promise<string[]>;
  /** Stores the tip entry and the given metrics' entries at once; `clear` drops the branch's other entries. */
  writeSummary(branch: string, tip: Uint8Array, metrics: Map<string, Uint8Array>, clear: boolean): Promise<void>;
  /** Packs whose every object is indexed. */
  indexedPacks(): Promise<Set<string>>;
  /** Objects of the given types whose hex ID starts with `prefix`, at most `limit`. */
  findByPrefix(prefix: string, types: ObjectType[], limit?: number): Promise<{ id: ObjectId; type: ObjectType }[]>;
  /** Per object type: how many, their raw (uncompressed) bytes and their stored bytes. */
  totals(): Promise<IndexTotals>;
  /** Every location the index gives in one of `packIds` (a whole scan: for repair's salvage, FORMAT.md §10.1). */
  locationsIn(packIds: ReadonlySet<string>): Promise<ObjectLocation[]>;
  addPack(pack: IndexedPack, commitBodies: Map<ObjectId, Uint8Array>): Promise<void>;
  replacePacks(
    added: IndexedPack[],
    removed: IndexedPack[],
    gone: Set<ObjectId>,
    relocate: ObjectLocation[],
  ): Promise<void>;
}

/** How long an idle open index stays open for the next session of this process before it is closed. */
const LINGER_MS = 25;

/** Open failures that say nothing about the index's state: the index is not deleted for these. */
const NOT_DAMAGE: [RegExp, string][] = [
  [/Permission denied/, 'EACCES'],
  [/Operation not permitted/, 'EPERM'],
  [/Read-only file system/, 'EROFS'],
  [/No space left/, 'ENOSPC'],
  [/Input\/output error/, 'EIO'],
  [/Too many open files/, 'EMFILE'],
];

export class ObjectIndex {
  /** undecided until the first session: 'view' reads the files, 'level' opens LevelDB. */
  private backend: 'undecided' | 'view' | 'level' = 'undecided';
  private deciding: Promise<void> | undefined;
  private view: IndexReadView | undefined;
  private viewSynced = false;
  /** Views replaced while a session may still be using them; closed with the index. */
  private readonly retired: IndexReadView[] = [];
  /** This (read) process opens LevelDB only to repair the index: if it cannot, it reads the packs instead. */
  private repairing = false;
  /** The view found the index damaged: LevelDB must not trust it even if it opens. */
  private discard = false;
  private synced = false;
  private db: DB | undefined;
  private opening: Promise<DB> | undefined;
  private users = 0;
  private closeTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly layout: StoreLayout,
    private readonly packs: PackReader,
    private readonly readCommitBodies: (packId: string, entries: PackEntry[]) => Promise<Map<ObjectId, Uint8Array>>,
  ) {}

  /** The index folder, for messages. */
  get location(): string {
    return this.layout.indexDir;
  }

  /** From now on this process writes the index: its sessions open LevelDB. */
  forWriting(): void {
    this.backend = 'level';
    this.repairing = false;
  }

  /**
   * Runs `fn` with the index; `sync` forces a check that every pack on disk is indexed. Back-to-back LevelDB
   * sessions of one process share one opening (a log walk is one session per commit); the database is closed
   * LINGER_MS after the last one ends, so other processes get their turn.
   */
  async session<T>(fn: (s: IndexSession) => Promise<T>, opts: { sync?: boolean } = {}): Promise<T> {
    if (this.backend !== 'level') {
      let view: IndexReadView | undefined;
      try {
        view = await this.readView(opts.sync);
        if (view) {
          return await fn(
            new ViewSession(view, (w) => {
              this.forWriting();
              return this.session(w);
            }),
          );
        }
      } catch (e) {
        const suspect = view ?? this.view;
        if (!(e instanceof LevelFormatError) || !suspect) throw e;
        await this.distrust(suspect); // damage found in a table: the session is run again without it
        return this.session(fn, opts);
      }
    }
    return this.levelSession(fn, opts);
  }

  private async readView(sync: boolean | undefined): Promise<IndexReadView | undefined> {
    if (this.backend === 'undecided')
      await (this.deciding ??= this.decide(true).finally(() => (this.deciding = undefined)));
    if (this.backend !== 'view') return undefined;
    const view = this.view!;
    if (this.viewSynced && !sync) return view;
    if ((await view.sync()) === 'gone') {
      this.retire(view);
      return this.readView(false);
    }
    this.viewSynced = true;
    return view;
  }

  /** Chooses how this process reads: the index's files, LevelDB to repair them, or the packs alone. */
  private async decide(retryIfGone: boolean): Promise<void> {
    const out = await LevelSnapshot.load(this.layout.indexDir);
    let repair = out.kind === 'damaged' || (out.kind === 'missing' && (await listPackIds(this.layout)).size > 0);
    if (out.kind === 'ok') {
      const view = new IndexReadView(this.layout, this.packs, out.snapshot);
      let state: 'ok' | 'gone' | 'other version' | 'damaged';
      try {
        const v = await out.snapshot.get(META_VERSION);
        state = v === undefined || Number(v.toString()) !== INDEX_VERSION ? 'other version' : await view.sync();
      } catch (e) {
        if (!(e instanceof LevelFormatError)) throw e;
        state = 'damaged';
      }
      if (state === 'ok') return this.use(view, true);
      await view.close();
      // Packs it names are gone: a gc may have finished after the snapshot was taken, so take it again once.
      if (state === 'gone' && retryIfGone) return this.decide(false);
      this.discard ||= state === 'damaged';
      repair = true;
    }
    if (repair && !(await this.writeProblem('repair the index'))) {
      this.backend = 'level';
      this.repairing = true;
      this.discard ||= out.kind === 'damaged';
      return;
    }
    this.use(new IndexReadView(this.layout, this.packs, undefined), false);
  }

  private use(view: IndexReadView, synced: boolean): void {
    this.view = view;
    this.viewSynced = synced;
    this.backend = 'view';
  }

  private retire(view: IndexReadView): void {
    this.retired.push(view);
    if (this.view === view) this.view = undefined;
    this.backend = 'undecided';
  }

  private async distrust(view: IndexReadView): Promise<void> {
    this.retire(view);
    if (!(await this.writeProblem('repair the index'))) {
      this.backend = 'level';
      this.repairing = true;
      this.discard = true;
    } else this.use(new IndexReadView(this.layout, this.packs, undefined), false);
  }

  /** Why this process cannot change the index (a CKVC_IO naming the folder), or undefined if it can. */
  private async writeProblem(action: string): Promise<CkvcError | undefined> {
    for (const p of [this.layout.root, this.layout.indexDir]) {
      try {
        await fs.access(p, fs.constants.W_OK);
      } catch (e) {
        if (p === this.layout.indexDir && (e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        return ioError(e, action, p);
      }
    }
    return undefined;
  }

  private async levelSession<T>(fn: (s: IndexSession) => Promise<T>, opts: { sync?: boolean }): Promise<T> {
    if (this.closeTimer) {
      clearTimeout(this.closeTimer);
      this.closeTimer = undefined;
    }
    this.users++;
    try {
      if (!this.db) {
        this.opening ??= this.openDb().finally(() => (this.opening = undefined));
        try {
          this.db = await this.opening;
        } catch (e) {
          if (!this.repairing || !(e instanceof CkvcError && e.code === 'CKVC_IO')) throw e;
          // Could not repair it (not ours to write after all): read the packs instead.
          this.repairing = false;
          this.use(new IndexReadView(this.layout, this.packs, undefined), false);
          return this.session(fn, opts);
        }
      }
      const db = this.db;
      const s = new LevelSession(db);
      if (!this.synced || opts.sync) {
        await this.syncWithPacks(s, db);
        this.synced = true;
      }
      return await fn(s);
    } finally {
      if (--this.users === 0 && this.db) {
        this.closeTimer = setTimeout(() => void this.closeDb(), LINGER_MS);
        this.closeTimer.unref();
      }
    }
  }

  /** Closes everything now (LevelDB only if no session is running). */
  async close(): Promise<void> {
    const views = [...this.retired.splice(0), ...(this.view ? [this.view] : [])];
    if (this.backend === 'view') this.backend = 'undecided';
    this.view = undefined;
    await Promise.all(views.map((v) => v.close()));
    await this.closeDb();
  }

  /**
   * Closes LevelDB when no session uses it. A close already under way (the linger timer's: moving a big log
   * into a table, then closing) is waited for, so that after close() nothing of this process holds the index's
   * lock or still writes there; openDb waits for it too.
   */
  private async closeDb(): Promise<void> {
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.closeTimer = undefined;
    if (this.users > 0) return;
    if (!this.db) return this.closing;
    const db = this.db;
    this.db = undefined;
    const closing: Promise<void> = (async () => {
      await flushBigWriteAheadLog(db, this.layout.indexDir);
      await db.close();
    })().finally(() => {
      if (this.closing === closing) this.closing = undefined;
    });
    this.closing = closing;
    return closing;
  }

  private async openDb(): Promise<DB> {
    await this.closing?.catch(() => {}); // a failed close was reported to whoever closed
    const deadline = Date.now() + Number(process.env.CKVC_LOCK_TIMEOUT_MS ?? 30_000);
    let delay = 2;
    let rebuilt = false;
    if (this.discard) {
      await this.removeIndex();
      this.discard = false;
      rebuilt = true;
    }
    // Loaded here, not at start-up: read commands use the hand-written view and never open LevelDB.
    const { Level: LevelDb } = commonJsExports(await import('level'));
    for (;;) {
      const db: DB = new LevelDb<Buffer, Buffer>(this.layout.indexDir, {
        keyEncoding: 'buffer',
        valueEncoding: 'buffer',
      });
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
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        const code = cause?.code ?? (e as { code?: string }).code;
        const message = cause?.message ?? (e as Error).message;
        if (code === 'LEVEL_LOCKED') {
          if (Date.now() > deadline) {
            throw new CkvcError(
              'CKVC_LOCKED',
              `the index ${this.layout.indexDir} stayed locked by another ckvc process; retry when it has finished`,
              { path: this.layout.indexDir },
            );
          }
          await sleep(delay + Math.random() * delay);
          delay = Math.min(delay * 2, 40);
          continue;
        }
        const notDamage = NOT_DAMAGE.find(([re]) => re.test(message ?? ''));
        if (notDamage)
          throw ioError(
            Object.assign(new Error(message), { code: notDamage[1] }),
            'open the index',
            this.layout.indexDir,
          );
        const cannotWrite = await this.writeProblem('open the index');
        if (cannotWrite) throw cannotWrite;
        if (rebuilt) throw ioError(Object.assign(new Error(message), { code }), 'open the index', this.layout.indexDir);
        // Damaged beyond opening: it is only a cache, so start it afresh from the packs.
        await this.removeIndex();
        rebuilt = true;
      }
    }
  }

  private async removeIndex(): Promise<void> {
    await fs.rm(this.layout.indexDir, { recursive: true, force: true }).catch((e) => {
      throw ioError(e, 'delete the damaged index', this.layout.indexDir);
    });
    this.synced = false;
  }

  private async syncWithPacks(s: LevelSession, db: DB): Promise<void> {
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
      const toc = await this.packs.readTocIfSound(packId);
      if (!toc) continue; // damaged (verify reports it), or deleted since the listing
      // A copy of an object indexed already does not replace it (a received pack found before its import indexed it).
      const located = await s.locate(toc.entries.map((e) => e.id));
      const keepIndexed = new Set(toc.entries.filter((_, i) => located[i]).map((e) => e.id));
      await s.addPack({ packId, entries: toc.entries, keepIndexed }, await this.readCommitBodies(packId, toc.entries));
      faultPoint('reindex.pack');
    }
  }

  /** `ckvc index rebuild`: deletes the index and builds it again from the packs. */
  async rebuild(): Promise<{ packs: number; objects: number }> {
    const problem = await this.writeProblem('rebuild the index in');
    if (problem) throw problem;
    this.forWriting();
    await this.close();
    await this.removeIndex();
    faultPoint('reindex.cleared');
    return this.session(async (s) => {
      const totals = await s.totals();
      return { packs: (await s.indexedPacks()).size, objects: [...totals.values()].reduce((a, b) => a + b.count, 0) };
    });
  }
}
