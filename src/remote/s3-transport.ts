// A remote kept as objects in an S3 bucket (spec/S3.md). Nothing runs on the far side, so this client does the
// store side's work itself: it answers refs/has/plan from refs.json and the pack listings, downloads packs into a
// scratch store (received and verified like any bundle) and hands the objects asked for to the local store as a
// bundle from there, so fetch uses the one receiving path of every remote. Pushed batches become immutable packs.
import { randomBytes, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { CkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import { storeParents } from '../store/ancestry.js';
import { ioError } from '../store/durable-fs.js';
import { removedIfInterrupted } from '../store/interrupt-cleanup.js';
import { ObjectStore } from '../store/object-store.js';
import { createStore } from '../store/store-layout.js';
import { checkRefChanges, type RefChange } from './request-body.js';
import { loadCatalogue, packName, publishPack, readRefs, refsBody, replacing, type Catalogue } from './s3-catalogue.js';
import { S3Objects } from './s3-client.js';
import { S3PackFetcher } from './s3-pack-fetcher.js';
import { parseS3Url, s3Keys, s3Url } from './s3-location.js';
import { uploadStagedPack } from './s3-upload.js';
import { judgeRefChanges, StoreService } from './store-service.js';
import type { Plan, RemoteRefUpdate, Transport } from './transport.js';

/** A push batch's stored bytes (PROTOCOL.md §4 step 3), the bound of an S3 pack but for one larger record. */
const PACK_BOUND_BYTES = 64 * 1024 * 1024;

export interface S3RemoteSettings {
  /** The remote's name in this store, for advice (absent for a URL given directly). */
  name?: string;
  /** The user promised that one writer at a time pushes here (spec/S3.md §5). */
  singleWriter?: boolean;
  /** The remembered answer of the conditional-write probe, if one was made. */
  conditionalWrites?: boolean;
  /** Keeps the probe's answer in the store's remote config. */
  remember(conditionalWrites: boolean): Promise<void>;
}

export class S3Transport implements Transport {
  private catalogue?: Promise<Catalogue>;
  private scratch?: Promise<{ service: StoreService; dir: string }>;
  private fetcher?: Promise<S3PackFetcher>;
  private fetched?: S3PackFetcher;
  private forgetScratch?: () => void;
  /** refs.json as this command last read it. */
  private listed?: Record<string, ObjectId>;
  private conditional?: boolean;

  private constructor(
    readonly url: string,
    private readonly s3: S3Objects,
    private readonly store: ObjectStore,
    private readonly settings: S3RemoteSettings,
  ) {}

  static async open(url: string, store: ObjectStore, settings: S3RemoteSettings): Promise<S3Transport> {
    const loc = parseS3Url(url);
    return new S3Transport(s3Url(loc), await S3Objects.connect(loc, s3Url(loc)), store, settings);
  }

  async refs(): Promise<Record<string, ObjectId>> {
    this.listed = (await readRefs(this.s3)).value;
    return this.listed;
  }

  private known(): Promise<Catalogue> {
    this.catalogue ??= loadCatalogue(this.s3);
    return this.catalogue;
  }

  async has(ids: ObjectId[]): Promise<boolean[]> {
    const c = await this.known();
    return ids.map((id) => c.pack.has(id));
  }

  /** Never thin: each pack in the bucket must verify on its own (spec/S3.md §4), so none builds on another. */
  async chains(): Promise<undefined> {
    return undefined;
  }

  /**
   * Everything the remote holds: with no server to walk the graph, fetch drops what the local store has. With a
   * filter the graph is walked here, in the scratch store the packs are downloaded into (spec/S3.md §3).
   */
  async plan(wants: ObjectId[], haves: ObjectId[], filter?: string[]): Promise<Plan> {
    const c = await this.known();
    const missing = wants.find((w) => !c.pack.has(w));
    if (missing)
      throw new CkvcError(
        'CKVC_UNKNOWN_REVISION',
        `${this.url} lists no object ${missing.slice(0, 16)} in its packs though a ref names it; ` +
          'the remote is incomplete (a push may be under way): fetch again',
        { id: missing },
      );
    if (filter) return (await this.download([], { described: true })).plan(wants, haves, filter);
    // A fetch of some branches (some of the remote's tips neither wanted nor held) walks as a filtered plan does,
    // from the records other than chunks: everything the remote holds would bring every branch.
    const have = new Set(haves);
    const want = new Set(wants);
    // The refs the fetch chose its wants from (read once more only when it did not ask for them first).
    const tips = Object.entries(this.listed ?? (await this.refs())).filter(
      ([n]) => n.startsWith('refs/heads/') || n.startsWith('refs/tags/'),
    );
    if (tips.some(([, id]) => !want.has(id) && !have.has(id)))
      return (await this.download([], { described: true })).plan(wants, haves);
    // Pack by pack in publication order, each object a share of its pack's 64 MiB bound (S3.md §3): the fetch's
    // batches then end where packs do, and a fetch killed part way keeps the packs it promoted, each whole.
    const objects: ObjectId[] = [];
    const sizes: number[] = [];
    for (const p of c.packs) {
      const ids = c.idsOf.get(p)!.filter((id) => c.pack.get(id) === p);
      const share = Math.floor(PACK_BOUND_BYTES / Math.max(1, ids.length));
      for (const id of ids) {
        objects.push(id);
        sizes.push(share);
      }
    }
    return { objects, prerequisites: [], unwalked: true, sizes };
  }

  private scratchStore(): Promise<{ service: StoreService; dir: string }> {
    this.scratch ??= (async () => {
      const dir = path.join(this.store.layout.tmpDir, `s3-fetch-${process.pid}-${randomBytes(4).toString('hex')}`);
      // Registered before it exists: a Ctrl-C while packs download must not leave them in tmp/ (192 MiB once).
      this.forgetScratch = removedIfInterrupted(dir);
      const { root } = await createStore(dir).catch((e) => {
        throw ioError(e, 'create', dir);
      });
      return { service: new StoreService(await ObjectStore.open(root)), dir };
    })();
    return this.scratch;
  }

  /** Downloads `ids` (and, `described`, every pack's records other than chunks) into the scratch store. */
  private async download(ids: ObjectId[], opts: { described?: boolean } = {}): Promise<StoreService> {
    this.fetcher ??= (async () =>
      new S3PackFetcher(this.s3, this.url, await this.known(), await this.scratchStore()))();
    this.fetched = await this.fetcher;
    await this.fetched.download(ids, opts);
    return (await this.scratchStore()).service;
  }

  /** Bytes of packs, directories and ranges downloaded (more than a filtered fetch keeps). */
  bytesDownloaded(): number {
    return this.fetched?.bytes ?? 0;
  }

  async fetchObjects<T>(ids: ObjectId[], receive: (source: Readable) => Promise<T>): Promise<T> {
    const service = await this.download(ids);
    const pipe = new PassThrough({ highWaterMark: 1024 * 1024 });
    const producing = service.sendObjects(ids, pipe).then(
      () => {
        pipe.end();
      },
      (e) => {
        pipe.destroy(e as Error);
        throw e;
      },
    );
    const [, result] = await Promise.all([producing, receive(pipe)]);
    return result;
  }

  /** Probes once per remote (then remembered) and refuses to write where refs cannot be guarded, unless promised. */
  private async checkWritable(): Promise<boolean> {
    if (this.conditional !== undefined) return this.conditional;
    let honoured = this.settings.conditionalWrites;
    if (honoured === undefined) {
      honoured = await this.probe();
      await this.settings.remember(honoured);
    }
    if (!honoured && !this.settings.singleWriter) {
      throw new CkvcError(
        'CKVC_NO_CONDITIONAL_WRITES',
        `the S3 service behind ${this.url} ignores conditional writes (If-None-Match / If-Match), ` +
          "so two pushers could overwrite each other's refs; nothing was uploaded. " +
          `If only one writer at a time ever pushes there, say so: 'ckvc remote set ${this.settings.name ?? 'NAME'} --single-writer'`,
        { url: this.url },
      );
    }
    this.conditional = honoured;
    return honoured;
  }

  /** A second create-only write of the same key must be refused (412); a service that stores it ignores them. */
  private async probe(): Promise<boolean> {
    const key = s3Keys(this.s3.loc).probe(randomBytes(8).toString('hex'));
    const body = Buffer.from('ckvc conditional-write probe\n');
    try {
      if ((await this.s3.write(key, body, { ifAbsent: true })) === 'conflict') return true;
      return (await this.s3.write(key, body, { ifAbsent: true })) === 'conflict';
    } catch (e) {
      if (e instanceof CkvcError && e.data.status === 501) return false;
      throw e;
    } finally {
      await this.s3.remove(key).catch(() => {});
    }
  }

  async sendObjects(
    write: (sink: Writable) => Promise<void>,
    ids?: ObjectId[],
  ): Promise<{ objects: number; newObjects: number }> {
    if (!ids?.length) throw new CkvcError('CKVC_INTERNAL', 'an S3 push batch needs its object IDs', {});
    const conditional = await this.checkWritable();
    const { name, listing } = packName(ids);
    const base = path.join(
      this.store.layout.tmpDir,
      `s3-upload-${createHash('sha256').update(this.url).digest('hex').slice(0, 16)}-${name}`,
    );
    const staged = `${base}.bundle`;
    if (!(await fs.stat(staged).catch(() => undefined))) await stage(staged, write);
    const key = s3Keys(this.s3.loc).pack(name);
    const there = await this.s3.head(key);
    if (there?.size !== (await fs.stat(staged)).size) await uploadStagedPack(this.s3, key, staged, `${base}.json`);
    await publishPack(this.s3, name, listing, conditional);
    await fs.rm(staged, { force: true });
    await fs.rm(`${base}.json`, { force: true });
    return { objects: ids.length, newObjects: ids.length };
  }

  /** Checks every change against refs.json as it is now, then replaces it whole by one conditional write. */
  async updateRefs(input: RefChange[], force: boolean): Promise<RemoteRefUpdate[]> {
    const changes = checkRefChanges(input, 'the ref update');
    const conditional = await this.checkWritable();
    const cur = await readRefs(this.s3);
    const out = await judgeRefChanges(
      changes,
      changes.map((c) => cur.value[c.name] ?? null),
      storeParents(this.store),
      force,
    );
    const moves = out.filter((u) => !u.skipped);
    if (!moves.length) return out;
    const next = { ...cur.value };
    // A deleted ref's packs stay: nothing is ever deleted from the bucket (its commits stay in their packs).
    for (const u of moves) {
      if (u.new === null) delete next[u.name];
      else next[u.name] = u.new;
    }
    if ((await this.s3.write(s3Keys(this.s3.loc).refs, refsBody(next), replacing(cur, conditional))) === 'conflict') {
      throw new CkvcError(
        'CKVC_REF_CONFLICT',
        `the refs of ${this.url} changed while this push checked them (another pusher); ` +
          'nothing was moved on the remote: fetch and push again',
        { url: this.url },
      );
    }
    return out;
  }

  async close(): Promise<void> {
    this.s3.close();
    if (!this.scratch) return;
    const { service, dir } = await this.scratch.catch(() => ({ service: undefined, dir: undefined }));
    await service?.store.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true }).catch(() => {});
    this.forgetScratch?.();
  }
}

/** Writes the bundle to a partial file, then renames it: a staged file that exists is complete. */
async function stage(staged: string, write: (sink: Writable) => Promise<void>): Promise<void> {
  const partial = `${staged}.${process.pid}.partial`;
  const out = createWriteStream(partial);
  try {
    await new Promise<void>((resolve, reject) => {
      out.once('open', () => resolve());
      out.once('error', reject);
    });
    await write(out);
    await new Promise<void>((resolve, reject) => {
      out.end((e?: Error | null) => (e ? reject(e) : resolve()));
    });
    await fs.rename(partial, staged);
  } catch (e) {
    out.destroy();
    await fs.rm(partial, { force: true }).catch(() => {});
    throw e instanceof CkvcError ? e : ioError(e, 'stage the pack', partial);
  }
}
