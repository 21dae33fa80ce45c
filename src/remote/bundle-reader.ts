// Receives a bundle into a quarantine folder (spec/BUNDLE.md §3): nothing of it touches the store until the
// whole thing is verified. Sizes are checked before anything is allocated or written, the trailer is checked
// over every byte, the pack's checksum and every record (decoded, hash-checked, capped at 64 MiB) are checked.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import {
  bad,
  BUNDLE_END_MAGIC,
  BUNDLE_PREAMBLE_BYTES,
  BUNDLE_TRAILER_BYTES,
  decodeBundleHeader,
  decodeBundlePreamble,
  type BundleHeader,
} from '../core/store-format/bundle-format.js';
import { CkvcError } from '../core/errors.js';
import { decodeCommit } from '../core/store-format/objects/commit-object.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import { CODECS, PACK_FOOTER_BYTES, PACK_HEADER_BYTES, type PackEntry } from '../core/store-format/pack-format.js';
import { registerWriter, type WriterRegistration } from '../store/gc-exclusion.js';
import type { ObjectStore } from '../store/object-store.js';
import { ioError } from '../store/durable-fs.js';
import { removedIfInterrupted } from '../store/interrupt-cleanup.js';
import { PackReader } from '../store/pack-reader.js';
import { verifyInChainOrder } from '../store/verify-in-chain-order.js';
import { StoreLayout } from '../store/store-layout.js';
import { ByteStream } from './byte-stream.js';
import { ARRIVING_PACK_ID, StreamedVerification } from './streamed-verification.js';

export interface ReceivedBundle {
  header: BundleHeader;
  /** The quarantine: a folder laid out like a store (packs/), to be promoted or removed. */
  quarantine: StoreLayout;
  packId?: string;
  entries: PackEntry[];
  /** IDs in the bundle. */
  ids: Set<ObjectId>;
  bytes: number;
  /** Records verified while the pack arrived, not read again (streamed-verification.ts). */
  verifiedEarly: number;
  close(): Promise<void>;
}

/**
 * Reads and verifies a whole bundle from `source` into a new quarantine folder under `parent`. `store` is the store
 * it is received into: only then may it be thin (its delta records built on chunks the store holds, BUNDLE.md §3).
 * A delta whose base the store holds is verified against the store's copy, the one its reads will follow (the
 * store's index keeps naming it, bundle-import.ts). Once the bytes are in, the receiver registers as a writer
 * until `close`, so that gc frees no base in between.
 */
export async function receiveBundle(
  source: Readable | AsyncIterable<Buffer>,
  parent: string,
  where: string,
  fileSize?: number,
  opts: { durable?: boolean; store?: ObjectStore } = {},
): Promise<ReceivedBundle> {
  const root = path.join(parent, `quarantine-${process.pid}-${randomBytes(6).toString('hex')}`);
  const forget = removedIfInterrupted(root);
  const quarantine = new StoreLayout(root);
  let packs = new PackReader(quarantine);
  let registration: WriterRegistration | undefined;
  let streamed: StreamedVerification | undefined;
  const arriving = new PackReader(opts.store ? opts.store.layout : quarantine);
  const close = async () => {
    await streamed?.stop();
    await arriving.close();
    await packs.close();
    await fs.rm(root, { recursive: true, force: true }).catch(() => {});
    forget();
    await registration?.release();
    registration = undefined;
  };
  try {
    // The quarantine and its packs/ one level at a time: a Ctrl-C removing the quarantine (interrupt-cleanup.ts)
    // while a recursive mkdir ran on the thread pool saw it made again just before the process ended.
    await fs.mkdir(parent, { recursive: true }).catch((e) => {
      throw ioError(e, 'create', parent);
    });
    for (const dir of [root, quarantine.packsDir]) {
      await fs.mkdir(dir).catch((e) => {
        throw ioError(e, 'create', dir);
      });
    }
    const s = new ByteStream(source, where);
    const trailerHash = new Blake3Hasher();
    const header = await readHeader(s, trailerHash, fileSize, where);
    const { store } = opts;
    if (header.bases?.length && !store)
      throw bad(
        where,
        `is thin: ${header.bases.length} of its delta records' bases are not in it, so only a store that holds them ` +
          'can receive it (push and fetch send such bundles; ckvc pack never writes one)',
      );
    const incoming = path.join(root, 'incoming.pack');
    // Its chunk records are verified while it arrives; the final check (checkRecords) counts what it confirms.
    arriving.readPackFrom(ARRIVING_PACK_ID, incoming);
    streamed = header.packLength
      ? new StreamedVerification(arriving, header.packLength, header.objects, store)
      : undefined;
    const packCheck = await copyPack(s, header, incoming, trailerHash, opts.durable !== false, (n) => {
      if (streamed?.broken) throw bad(where, `its pack is not the one its header declares: ${streamed.broken}`);
      streamed?.advance(n);
    });
    await streamed?.finish();
    await arriving.close();
    await checkTrailer(s, trailerHash, where);
    let packId: string | undefined;
    if (packCheck) {
      if (!packCheck.stored.equals(packCheck.computed)) throw bad(where, 'its pack checksum does not match its bytes');
      packId = packCheck.stored.toString('hex');
      await fs.rename(incoming, quarantine.packFile(packId));
    } else await fs.rm(incoming, { force: true });
    if (store) {
      // Registered after the upload (a slow sender holds no registration) and before any base is looked up: gc
      // waits until the pack is promoted, or the bundle refused.
      registration = await registerWriter(store.layout);
      packs = new PackReader(store.layout);
      if (packId) packs.readPackFrom(packId, quarantine.packFile(packId));
    }
    const { entries, configs, shallowParents, verifiedEarly } = packId
      ? await checkRecords(packs, packId, header, where, store, streamed)
      : { entries: [], configs: new Set<string>(), shallowParents: new Map<ObjectId, ObjectId[]>(), verifiedEarly: 0 };
    const ids = new Set(entries.map((e) => e.id));
    if (ids.size !== entries.length) throw bad(where, 'its pack lists an object twice');
    checkMetadata(header, entries, configs, where);
    checkShallow(header, ids, shallowParents, where);
    await packs.close();
    return { header, quarantine, packId, entries, ids, bytes: s.position, verifiedEarly, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Step 1-2 of BUNDLE.md §3: the preamble and header, their sizes checked against the file's before any read. */
async function readHeader(
  s: ByteStream,
  trailerHash: Blake3Hasher,
  fileSize: number | undefined,
  where: string,
): Promise<BundleHeader> {
  // At most its length: a short file is told apart from one that is no bundle at all by what it holds.
  const preamble = await s.readAtMost(BUNDLE_PREAMBLE_BYTES);
  trailerHash.update(preamble);
  const headerLength = decodeBundlePreamble(preamble, fileSize, where);
  const headerBytes = await s.read(headerLength, 'the header');
  trailerHash.update(headerBytes);
  const header = decodeBundleHeader(headerBytes, where);
  const expected = BUNDLE_PREAMBLE_BYTES + headerLength + header.packLength + BUNDLE_TRAILER_BYTES;
  if (fileSize !== undefined && fileSize !== expected) {
    throw bad(where, `is ${fileSize} bytes but its header accounts for ${expected}`);
  }
  if (header.packLength === 0 ? header.objects !== 0 : header.packLength < PACK_HEADER_BYTES + PACK_FOOTER_BYTES) {
    throw bad(where, `declares ${header.objects} objects in a ${header.packLength}-byte pack`);
  }
  return header;
}

/**
 * Step 3: copies the pack into `incoming`, hashing it for the trailer and for its own checksum on the way through
 * (so the received file is not read a second time). Returns the checksum stored and computed, compared by the
 * caller after the trailer, so damage in transit is reported as such first; undefined when there is no pack.
 */
async function copyPack(
  s: ByteStream,
  header: BundleHeader,
  incoming: string,
  trailerHash: Blake3Hasher,
  durable: boolean,
  /** Told how many of the pack's bytes are in the file, as they are written. */
  written: (bytes: number) => void,
): Promise<{ stored: Buffer; computed: Buffer } | undefined> {
  const fh = await fs.open(incoming, 'wx+').catch((e) => {
    throw ioError(e, 'create', incoming);
  });
  try {
    const packHash = new Blake3Hasher();
    const covered = header.packLength - PACK_FOOTER_BYTES + 16;
    let seen = 0;
    // Network pieces are small: they are gathered into a few MiB per write.
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let inFile = 0;
    const flush = async () => {
      if (pendingBytes) await fh.writev(pending);
      inFile += pendingBytes;
      pending = [];
      pendingBytes = 0;
      written(inFile);
    };
    await s.copy(header.packLength, 'the pack', async (piece) => {
      trailerHash.update(piece);
      if (seen < covered) packHash.update(piece.subarray(0, Math.min(piece.length, covered - seen)));
      seen += piece.length;
      pending.push(piece);
      pendingBytes += piece.length;
      if (pendingBytes >= 4 * 1024 * 1024) await flush();
    });
    await flush();
    // Durable before it can be promoted: the index and then refs will point into it (FORMAT.md §9).
    if (durable) await fh.sync();
    if (header.packLength === 0) return undefined;
    const stored = Buffer.alloc(32);
    await fh.read(stored, 0, 32, covered);
    return { stored, computed: packHash.digestBuffer() };
  } finally {
    await fh.close();
  }
}

/** Step 4: the trailer hash over every byte before it, the end marker, and nothing after. */
async function checkTrailer(s: ByteStream, trailerHash: Blake3Hasher, where: string): Promise<void> {
  const trailer = await s.read(BUNDLE_TRAILER_BYTES, 'the trailer');
  if (!trailer.subarray(32).equals(BUNDLE_END_MAGIC)) {
    throw bad(where, 'does not end with the bundle end marker (truncated or padded)');
  }
  if (!trailer.subarray(0, 32).equals(trailerHash.digestBuffer())) {
    throw bad(where, 'trailer hash does not match its contents (damaged in transit or on disk)');
  }
  if (!(await s.atEnd())) throw bad(where, 'has bytes after its trailer');
}

/**
 * Step 5: the pack's TOC against the header, then every record read as a store reads it (decoded under the cap,
 * re-hashed). Returns the entries and the config hashes of the bundle's commits (which labels may speak for).
 */
async function checkRecords(
  packs: PackReader,
  packId: string,
  header: BundleHeader,
  where: string,
  store: ObjectStore | undefined,
  streamed: StreamedVerification | undefined,
): Promise<{
  entries: PackEntry[];
  configs: Set<string>;
  shallowParents: Map<ObjectId, ObjectId[]>;
  verifiedEarly: number;
}> {
  let toc: Awaited<ReturnType<PackReader['readToc']>>;
  try {
    toc = await packs.readToc(packId);
  } catch (e) {
    throw e instanceof CkvcError ? bad(where, `its pack: ${e.message}`) : e;
  }
  if (toc.checksum !== packId) throw bad(where, 'its pack footer names another checksum');
  if (toc.entries.length !== header.objects) {
    throw bad(where, `header says ${header.objects} objects, the pack holds ${toc.entries.length}`);
  }
  const entries = toc.entries;
  if (new Set(entries.map((e) => e.id)).size !== entries.length) throw bad(where, 'its pack lists an object twice');
  // A delta record's base travels in the same bundle, or is one of `bases`, which the store holds (BUNDLE.md §3).
  const byId = new Map(entries.map((e) => [e.id, e]));
  const baseOf = await checkDeltaBases(packs, packId, entries, header, where, store);
  const located = store ? await store.locate(entries.map((e) => e.id)) : [];
  const heldHere = new Set(entries.filter((_, i) => located[i]).map((e) => e.id));
  const configs = new Set<string>();
  const shallow = new Set(header.shallow ?? []);
  const shallowParents = new Map<ObjectId, ObjectId[]>();
  // A base the store holds is read as the store will read it (its copy, its chain, the bound counting it).
  const locateBase = async (id: ObjectId) => {
    const held = store && (heldHere.has(id) || !byId.has(id)) ? (await store.locate([id]))[0] : undefined;
    if (held) return held;
    const e = byId.get(id);
    return e && { packId, entry: e };
  };
  // Chunk records verified as they arrived, against the bases named here, are not read again, except as the bases
  // of records that are (then each is decoded once, right before the deltas on it, not through its chain for each).
  const early = streamed ? await streamed.confirmed(entries, locateBase) : new Set<PackEntry>();
  const again = entries.filter((e) => !early.has(e));
  for (let i = 0; i < again.length; i++) {
    const base = baseOf.get(again[i]!);
    const b = base === undefined || heldHere.has(base) ? undefined : byId.get(base);
    if (b && early.delete(b)) again.push(b);
  }
  await verifyInChainOrder(
    packs,
    entries.filter((e) => !early.has(e)).map((entry) => ({ packId, entry })),
    {
      locateBase,
      baseIdOf: ({ entry }) => baseOf.get(entry),
      remember: (id) => !heldHere.has(id),
      onObject: ({ entry: e }, body) => {
        if (e.type === 'commit' && (header.labels?.length || shallow.has(e.id))) {
          const commit = decodeCommit(body, `commit ${e.id.slice(0, 12)}`);
          if (commit.config?.hash) configs.add(commit.config.hash);
          if (shallow.has(e.id)) shallowParents.set(e.id, commit.parents);
        }
      },
      failure: ({ entry: e }, err) =>
        err instanceof CkvcError ? bad(where, `object ${e.id.slice(0, 16)}: ${err.message}`, { id: e.id }) : err,
    },
  );
  return { entries, configs, shallowParents, verifiedEarly: early.size };
}

/**
 * Step 5, delta bases: every delta record's base is a record of the pack or one of `bases`; every one of `bases`
 * is outside the pack, the base of one of its records, and held by the store. Returns each delta record's base.
 */
async function checkDeltaBases(
  packs: PackReader,
  packId: string,
  entries: PackEntry[],
  header: BundleHeader,
  where: string,
  store: ObjectStore | undefined,
): Promise<Map<PackEntry, ObjectId>> {
  const bases = new Set(header.bases ?? []);
  const used = new Set<ObjectId>();
  const baseOf = new Map<PackEntry, ObjectId>();
  const inPack = new Set(entries.map((e) => e.id));
  for (const entry of entries) {
    if (entry.codec !== CODECS.xorPlanes) continue;
    let base: ObjectId | undefined;
    try {
      base = await packs.readDeltaBaseId({ packId, entry });
    } catch (e) {
      throw e instanceof CkvcError ? bad(where, `object ${entry.id.slice(0, 16)}: ${e.message}`, { id: entry.id }) : e;
    }
    if (base === undefined) continue;
    baseOf.set(entry, base);
    if (inPack.has(base)) continue;
    if (!bases.has(base))
      throw bad(
        where,
        `object ${entry.id.slice(0, 16)} names chunk ${base.slice(0, 16)} as its delta base, which is neither in it nor among its bases`,
        { id: entry.id },
      );
    used.add(base);
  }
  const odd = [...bases].find((b) => !used.has(b));
  if (odd !== undefined)
    throw bad(where, `lists ${odd.slice(0, 16)} among its bases, but no delta record outside it builds on it`, {
      id: odd,
    });
  if (!bases.size || !store) return baseOf;
  const ids = [...bases];
  const held = await store.locate(ids);
  const lacking = ids.filter((_, i) => !held[i]);
  if (lacking.length)
    throw bad(
      where,
      `builds on ${lacking.length} chunk(s) this store does not hold (${lacking[0]!.slice(0, 16)}${lacking.length > 1 ? ', ...' : ''}); ` +
        'a push or fetch asks which chunks are held before it sends, so run it again (gc may have freed them meanwhile)',
      { id: lacking[0]! },
    );
  return baseOf;
}

/**
 * Step 5, last: a prune record may only speak for a commit that travels with it, and a label only for the config
 * of such a commit (BUNDLE.md §2): anything else would be metadata about the receiver's own history.
 */
function checkMetadata(header: BundleHeader, entries: PackEntry[], configs: Set<string>, where: string): void {
  const commits = new Set(entries.filter((e) => e.type === 'commit').map((e) => e.id));
  for (const r of header.pruned) {
    if (commits.has(r.commit)) continue;
    const what = `carries a prune record for commit ${r.commit.slice(0, 16)}, which is not in it`;
    throw bad(where, `${what}; such a bundle is refused whole`, { commit: r.commit });
  }
  for (const l of header.labels ?? []) {
    if (configs.has(l.config)) continue;
    const what = `carries a label for config ${l.config.slice(0, 16)}, which no commit in it uses`;
    throw bad(where, `${what}; such a bundle is refused whole`, { config: l.config });
  }
}

/**
 * Step 5, shallow: each commit the header declares shallow is a commit record of the pack with a parent outside
 * it (BUNDLE.md §2). A boundary elsewhere would speak for the receiver's own history; one that cuts nothing is a
 * lie about the bundle. Either refuses the bundle whole.
 */
function checkShallow(
  header: BundleHeader,
  ids: Set<ObjectId>,
  parentsOf: Map<ObjectId, ObjectId[]>,
  where: string,
): void {
  for (const commit of header.shallow ?? []) {
    const parents = parentsOf.get(commit);
    const short = commit.slice(0, 16);
    if (!parents) {
      const what = `declares commit ${short} shallow, but it is not a commit in it`;
      throw bad(where, `${what}; such a bundle is refused whole`, { commit });
    }
    if (!parents.some((p) => !ids.has(p))) {
      const what = `declares commit ${short} shallow, but it cuts no parent (${parents.length ? 'every parent is in it' : 'a first commit'})`;
      throw bad(where, `${what}; such a bundle is refused whole`, { commit });
    }
  }
}
