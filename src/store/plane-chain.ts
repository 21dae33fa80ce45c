// Decoding codec 5/6 records plane by plane (spec/FORMAT.md §4.3). A delta record usually XORs only the planes
// that barely change (a float's sign and exponent bytes) and stores the mantissa planes plainly; decoding the
// whole base of every link would read and inflate, per chunk, every plane of up to 8 bases only to throw most of
// them away. Here a link of a chain is read as its plane table first, and a plane of a base is read only when
// the plane above XORs with it, so a chain is as long, per plane, as its run of XORed planes, and plain planes of
// bases are never read; each plane read starts to inflate at once, on the binding's threads, while the walk goes
// on. (Inflating all of a record's planes in one call of the binding, which decodes concatenated frames, was
// measured too: fewer calls, but larger outputs cost more than the calls saved.) Bases are not hashed one by one:
// the record at the top is verified against its ID by the caller, and a damaged link shows there.
import { CkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import {
  decodePlane,
  PLANE_TABLE_MAX_BYTES,
  PLANE_XOR,
  PLANE_ZSTD,
  parsePlaneTable,
  xorInto,
  type PlaneHeader,
} from '../core/store-format/codec/plane-codec.js';
import { scratch } from '../core/buffer-pool.js';
import { groupBytes } from '../core/store-format/codec/byte-group.js';
import { CODECS, MAX_OBJECT_BYTES, RECORD_HEADER_BYTES, type PackEntry } from '../core/store-format/pack-format.js';
import type { DecodedObject, ObjectLocation } from './pack-reader.js';

/** What a chain needs of the pack reader. */
export interface ChainSource {
  readAt(packId: string, offset: number, length: number, into?: Buffer): Promise<Buffer>;
  locateBase(id: ObjectId): Promise<ObjectLocation | undefined>;
  /** The record header in `buf`, checked against the location's index entry. */
  checkedHeader(buf: Buffer, loc: ObjectLocation, id: ObjectId, where: string): PackEntry;
  /** A whole record decoded to its plain bytes and verified (a base not plane-coded at the chain's width). */
  decodeWhole(buf: Buffer, loc: ObjectLocation, id: ObjectId, where: string, depth: number): Promise<DecodedObject>;
  maxChain: number;
  /** A base decoded and verified earlier, used instead of its chain. */
  knownBase?: (id: ObjectId) => KnownChunk | undefined;
}

/**
 * A chunk decoded and verified earlier, and its record. Plane-coded: its bytes grouped by its `width` and, per
 * plane, the links a reader without it would open under it for that plane (`planeDepths`); it serves only deltas
 * of that width. Otherwise (no base of its own): its plain bytes, `width` 1, serving deltas of any width.
 */
export interface KnownChunk {
  bytes: Uint8Array;
  width: number;
  planeDepths?: number[];
  loc: ObjectLocation;
}

/** One record of a chain, opened as its plane table; a plane's stored bytes are read when asked for. */
class Link {
  private baseLink: Promise<Link> | undefined;

  constructor(
    private readonly src: ChainSource,
    readonly loc: ObjectLocation,
    readonly where: string,
    readonly depth: number,
    readonly rawLength: number,
    /** The plane table, or undefined for a base decoded whole (`whole`). */
    readonly table: PlaneHeader | undefined,
    /** The record's stored body when it was read whole (the top of a chain); else planes are read one by one. */
    private readonly body: Uint8Array | undefined,
    /** Scratch buffers the chain's reads went into, handed back once the top record is decoded. */
    readonly owned: Buffer[],
    /**
     * A base decoded whole, grouped by the chain's width, and its own chain depth; for a remembered base, the
     * depth under each of its planes instead (KnownChunk).
     */
    readonly whole?: { grouped: Uint8Array; depth: number; planeDepths?: number[]; costs?: number[] },
    /** The stored range of the planes the record above XORs with (a base's planes that may be asked for). */
    private readonly span?: { start: number; end: number; bytes?: Promise<Buffer> },
  ) {}

  get width(): number {
    return this.table!.width;
  }

  /** Bytes [offset, offset + length) of the stored body. */
  async stored(offset: number, length: number): Promise<Uint8Array> {
    if (this.body) return this.body.subarray(offset, offset + length);
    const span = this.span;
    if (span && offset >= span.start && offset + length <= span.end) {
      // The planes the record above XORs with are read together, at their first use: one read, not one a plane.
      span.bytes ??= this.read(span.start, span.end - span.start);
      return (await span.bytes).subarray(offset - span.start, offset - span.start + length);
    }
    return this.read(offset, length);
  }

  private read(offset: number, length: number): Promise<Buffer> {
    // Pooled: a fresh buffer per plane read cost page faults and GC work worth a fifth of a deep checkout.
    const into = scratch.acquire(length);
    this.owned.push(into);
    return this.src.readAt(this.loc.packId, this.loc.entry.offset + RECORD_HEADER_BYTES + offset, length, into);
  }

  base(): Promise<Link> {
    this.baseLink ??= openBase(this.src, Buffer.from(this.table!.baseId!).toString('hex'), this);
    return this.baseLink;
  }

  /** How many delta records lie under this one (its edge chain, whether or not decoding needed them). */
  async chainDepth(): Promise<number> {
    if (this.whole) return this.whole.depth;
    if (!this.table?.baseId) return 0;
    return 1 + (await (await this.base()).chainDepth());
  }
}

/**
 * The links plane `j` of `top` is made of, top first: the chain is followed only while the plane is XORed (a plane
 * stored plainly ends it). Opening a link reads its header and plane table only, and each base is checked against
 * the chain bound as it is opened, so an over-long or looping chain is refused before anything inflates.
 */
async function planeLinks(top: Link, j: number): Promise<Link[]> {
  const links: Link[] = [];
  for (let link = top; ; link = await link.base()) {
    links.push(link);
    if (link.whole || !(link.table!.planes[j]!.mode & PLANE_XOR)) return links;
  }
}

/**
 * Plane `j` decoded into `dest`: the XOR of that plane over `links`. Each link's plane inflates (on the binding's
 * threads) one link ahead of the XOR, so a plane holds at most two inflated parts at a time, whatever the chain's
 * length.
 */
async function xorPlane(links: Link[], j: number, n: number, dest: Uint8Array): Promise<void> {
  const inflate = async (link: Link): Promise<Uint8Array> => {
    if (link.whole) return link.whole.grouped.subarray(j * n, (j + 1) * n);
    const { mode, offset, length } = link.table!.planes[j]!;
    return decodePlane(await link.stored(offset, length), mode & PLANE_ZSTD, n, j, link.where);
  };
  let current = inflate(links[0]!);
  for (let k = 0; k < links.length; k++) {
    const ahead = k + 1 < links.length ? inflate(links[k + 1]!) : undefined;
    ahead?.catch(() => {}); // awaited below; failing before its turn must not count as unhandled
    let part: Uint8Array;
    try {
      part = await current;
    } catch (e) {
      if (ahead) await Promise.allSettled([ahead]); // nothing of this plane still runs when the error leaves
      throw e;
    }
    if (k === 0) dest.set(part);
    else xorInto(dest, dest, part);
    if (ahead) current = ahead;
  }
}

/** Waits for every task, failed or not (so none outlives the call), then throws the first failure. */
async function allOrFirstError<T>(tasks: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(tasks);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}

async function openBase(src: ChainSource, baseId: ObjectId, of: Link): Promise<Link> {
  const depth = of.depth + 1;
  if (depth > src.maxChain) {
    throw new CkvcError(
      'CKVC_CORRUPT_OBJECT',
      `${of.where}: its chain of delta bases is longer than ${src.maxChain} (damaged or hostile records)`,
      { id: baseId },
    );
  }
  const remembered = src.knownBase?.(baseId);
  // Grouped by another width it would have to be ungrouped first: decoded through its chain instead (rare).
  const known =
    remembered && (remembered.planeDepths ? remembered.width === of.width : remembered.width === 1)
      ? remembered
      : undefined;
  // A remembered base is not looked up (an index lookup per record was a tenth of verify --read-data).
  const loc = known?.loc ?? (await src.locateBase(baseId));
  if (!loc) {
    throw new CkvcError(
      'CKVC_MISSING_OBJECT',
      `${of.where}: its delta base, chunk ${baseId.slice(0, 16)}, is missing; run 'ckvc verify' to see what is affected`,
      { id: baseId, what: 'delta base' },
    );
  }
  const where = `object ${baseId.slice(0, 16)} in pack ${loc.packId.slice(0, 16)} (delta base of ${of.where})`;
  if (known) {
    // The links a reader without this memory would open under it, for the planes the record above XORs, count
    // toward the bound as if opened here: the same records are accepted either way.
    const under = (known.planeDepths ?? []).filter((_, j) => of.table!.planes[j]!.mode & PLANE_XOR);
    if (depth + Math.max(0, ...under) > src.maxChain)
      throw new CkvcError(
        'CKVC_CORRUPT_OBJECT',
        `${of.where}: its chain of delta bases is longer than ${src.maxChain} (damaged or hostile records)`,
        { id: baseId },
      );
    if (known.bytes.length !== of.rawLength)
      throw new CkvcError('CKVC_CORRUPT_OBJECT', `${where}: its delta base is not a chunk of the same length`, {
        id: baseId,
        pack: loc.packId,
      });
    const grouped =
      known.width !== of.width && of.width > 1
        ? groupBytes(known.bytes, of.width, Buffer.allocUnsafeSlow(known.bytes.length))
        : known.bytes;
    const planeDepths = known.planeDepths ?? new Array<number>(of.width).fill(0);
    return new Link(src, loc, where, depth, of.rawLength, undefined, undefined, of.owned, {
      grouped,
      depth: Math.max(...planeDepths),
      planeDepths,
    });
  }
  const { entry } = loc;
  if (entry.storedLength > MAX_OBJECT_BYTES)
    throw new CkvcError('CKVC_CORRUPT_PACK', `${where}: over the 64 MiB object limit`, {
      id: baseId,
      pack: loc.packId,
    });
  const planeCoded = entry.codec === CODECS.planes || entry.codec === CODECS.xorPlanes;
  // A plane-coded base is read as its header and plane table only; anything else is read and decoded whole.
  const headLength =
    RECORD_HEADER_BYTES + (planeCoded ? Math.min(entry.storedLength, PLANE_TABLE_MAX_BYTES) : entry.storedLength);
  const buf = await src.readAt(loc.packId, entry.offset, headLength);
  const header = src.checkedHeader(buf, loc, baseId, where);
  if (header.type !== 'chunk' || header.rawLength !== of.rawLength)
    throw new CkvcError('CKVC_CORRUPT_OBJECT', `${where}: its delta base is not a chunk of the same length`, {
      id: baseId,
      pack: loc.packId,
    });
  if (planeCoded) {
    const body = buf.subarray(RECORD_HEADER_BYTES);
    const table = parsePlaneTable(body, entry.storedLength, header.rawLength, header.codec === CODECS.xorPlanes, where);
    if (table.width === of.width) {
      const asked = table.planes.filter((_, j) => of.table!.planes[j]!.mode & PLANE_XOR);
      const span = {
        start: Math.min(...asked.map((p) => p.offset)),
        end: Math.max(...asked.map((p) => p.offset + p.length)),
      };
      return new Link(src, loc, where, depth, header.rawLength, table, undefined, of.owned, undefined, span);
    }
  }
  const full = planeCoded ? await src.readAt(loc.packId, entry.offset, RECORD_HEADER_BYTES + entry.storedLength) : buf;
  const plain = await src.decodeWhole(full, loc, baseId, where, depth);
  const grouped =
    of.width > 1 ? groupBytes(plain.bytes, of.width, Buffer.allocUnsafeSlow(plain.bytes.length)) : plain.bytes;
  return new Link(src, loc, where, depth, header.rawLength, undefined, undefined, of.owned, {
    grouped,
    depth: plain.depth,
    costs: wholeRecordCosts(entry.storedLength, of.width),
  });
}

/** What each plane of a record that is decoded whole costs a reader: its stored bytes, shared by the planes. */
export function wholeRecordCosts(storedLength: number, width: number): number[] {
  return new Array<number>(width).fill(storedLength / width);
}

interface ChainShape {
  /** Per plane, the links that plane is made of, top first (planeLinks). */
  chains: Link[][];
  depth: number;
  planeDepths: number[];
  planeCosts: number[];
}

/**
 * Opens the chain under `top` as plane tables (nothing inflates) and adds up what a writer bounds and costs: the
 * chain's depth (with `needDepth`), and per plane the links a reader opens and the stored bytes it reads.
 */
async function openChains(top: Link, needDepth: boolean): Promise<ChainShape> {
  const n = Math.floor(top.rawLength / top.width);
  // Every link first, then the output: a base decoded whole while the links are opened (another width) holds no
  // output of this record meanwhile, so memory does not grow with the chain.
  const chains = await allOrFirstError(top.table!.planes.map((_, j) => planeLinks(top, j)));
  // A writer offered a base as deep as chains may go would store its chunk plain anyway: every ninth commit of a
  // series decoded a whole 8-deep chain for nothing (0.6 s of a 98.8 MB checkpoint's commit).
  const depth = needDepth ? await top.chainDepth() : 0;
  // Per plane, the links opened under the record for it (what the bound counted for that plane).
  const planeDepths = chains.map((links, j) => {
    const last = links.at(-1)!;
    return links.length - 1 + (last.whole ? (last.whole.planeDepths?.[j] ?? last.whole.depth) : 0);
  });
  // Per plane, the stored bytes its links hold (a remembered base, known only to verify, counts as a raw plane).
  const planeCosts = chains.map((links, j) =>
    links.reduce((a, l) => a + (l.whole ? (l.whole.costs?.[j] ?? n) : l.table!.planes[j]!.length), 0),
  );
  return { chains, depth, planeDepths, planeCosts };
}

/**
 * Decodes a codec 5/6 record read whole (`buf`, header checked by the caller) to its grouped form in a `scratch`
 * buffer the caller releases; with `needDepth`, also the length of its delta chain (what a writer bounds).
 * `depth` is the record's own position in a chain being decoded. With `maxDepth`, a record whose chain is
 * deeper is not decoded at all (`grouped` undefined): its chain is measured from the links' headers first.
 */
export async function decodePlaneChain(
  src: ChainSource,
  buf: Buffer,
  loc: ObjectLocation,
  header: PackEntry,
  where: string,
  depth: number,
  needDepth: boolean,
  maxDepth?: number,
): Promise<{ grouped: Uint8Array | undefined; depth: number; planeDepths: number[]; planeCosts: number[] }> {
  const body = buf.subarray(RECORD_HEADER_BYTES);
  const table = parsePlaneTable(body, body.length, header.rawLength, header.codec === CODECS.xorPlanes, where);
  const owned: Buffer[] = [];
  const top = new Link(src, loc, where, depth, header.rawLength, table, body, owned);
  const { width } = table;
  const n = Math.floor(header.rawLength / width);
  const { chains, depth: chainDepth, planeDepths, planeCosts } = await openChains(top, needDepth);
  if (maxDepth !== undefined && chainDepth > maxDepth) {
    for (const b of owned) scratch.release(b);
    return { grouped: undefined, depth: chainDepth, planeDepths, planeCosts };
  }
  const grouped = scratch.acquire(header.rawLength);
  // On failure grouped and the reads' buffers are dropped, not handed back to the pool.
  await allOrFirstError(chains.map((links, j) => xorPlane(links, j, n, grouped.subarray(j * n, (j + 1) * n))));
  grouped.set(body.subarray(table.tailOffset), n * width);
  for (const b of owned) scratch.release(b);
  return { grouped, depth: chainDepth, planeDepths, planeCosts };
}

/**
 * What a writer needs of a codec 5/6 record whose bytes it already has (store/base-cache.ts): the length of its
 * delta chain and each plane's cost, as decodePlaneChain gives them, from the chain's headers and plane tables
 * alone. `table` is the record's own plane table (its header checked by the caller).
 */
export async function planeChainShape(
  src: ChainSource,
  table: PlaneHeader,
  loc: ObjectLocation,
  header: PackEntry,
  where: string,
): Promise<{ depth: number; planeCosts: number[] }> {
  const owned: Buffer[] = [];
  try {
    const top = new Link(src, loc, where, 0, header.rawLength, table, undefined, owned);
    const { depth, planeCosts } = await openChains(top, true);
    return { depth, planeCosts };
  } finally {
    for (const b of owned) scratch.release(b);
  }
}
