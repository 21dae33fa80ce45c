// Parts of an S3 remote's pack read by HTTP ranges (spec/S3.md §3): its bundle header and table of contents
// first, then only the records a fetch needs, so that a partial fetch or an on-demand read downloads the tensors
// it asked for rather than every pack that holds one. Everything read here is untrusted: the directory is checked
// against the pack's listing and its own layout, each record header against the TOC, and the records then go
// through a store's receiving path, which re-hashes every one of them.
import type { Readable } from 'node:stream';
import { CkvcError } from '../core/errors.js';
import {
  BUNDLE_PREAMBLE_BYTES,
  BUNDLE_TRAILER_BYTES,
  bad,
  decodeBundleHeader,
  decodeBundlePreamble,
  type BundleHeader,
} from '../core/store-format/bundle-format.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import {
  decodeFooter,
  decodeRecordHeader,
  decodeToc,
  PACK_FOOTER_BYTES,
  RECORD_HEADER_BYTES,
  samePackEntry,
  TOC_ENTRY_BYTES,
  type PackEntry,
} from '../core/store-format/pack-format.js';
import { DELTA_HEAD_BYTES } from '../core/store-format/codec/plane-codec.js';
import { ByteStream } from './byte-stream.js';
import type { S3Objects } from './s3-client.js';

/** The header's first read: the preamble and, for all but the largest headers, the whole header. */
const HEADER_READ_BYTES = 64 * 1024;
/**
 * Records closer than this are read by one request, the bytes between them thrown away: a request costs a round
 * trip. Larger gaps are what a filter leaves out: in a `torch.save` file a weight lies between optimizer moments
 * twice its size, so a gap of a megabyte would take most of the pack (measured: 490 of 516 MB for a third of it).
 */
const MERGE_GAP_BYTES = 256 * 1024;
/** Range requests in flight for one pack. */
const RANGE_CONCURRENCY = 8;

/** A remote pack's directory: its bundle header and its records, where they lie in the S3 object. */
export interface PackDirectory {
  header: BundleHeader;
  /** The S3 object's size. */
  size: number;
  /** Where the pack starts in the object (after the bundle's preamble and header); TOC offsets count from it. */
  packStart: number;
  records: Map<ObjectId, PackEntry>;
  /** Bytes the directory's requests downloaded. */
  bytesRead: number;
}

/** A range read whose service sent the whole object instead (it ignores Range): the caller downloads it whole. */
export class RangesIgnored extends Error {}

/** The service's fault, not the pack's (exit 22, as for a whole pack): an on-demand read says "fetch again". */
const remoteFault = (where: string, what: string) => new CkvcError('CKVC_REMOTE', `${where} ${what}`, { where });
const gone = (where: string) => remoteFault(where, 'is gone (it was listed, then deleted: a gc of the bucket?)');

/** Exactly `length` bytes of `body` into one buffer, piece by piece (no re-joining as they arrive). */
async function readExactly(body: Readable, length: number, where: string): Promise<Buffer> {
  const out = Buffer.allocUnsafe(length);
  let filled = 0;
  await new ByteStream(body, where).copy(length, 'a range', async (piece) => {
    piece.copy(out, filled);
    filled += piece.length;
  });
  return out;
}

/** Bytes [start, end) of the object (clipped at its end by S3), and the object's size. */
async function readRange(
  s3: S3Objects,
  key: string,
  start: number,
  end: number,
  where: string,
): Promise<{ bytes: Buffer; total: number }> {
  const r = await s3.openRange(key, start, end);
  if (!r) throw gone(where);
  if (r.total === undefined) {
    r.body.destroy();
    throw new RangesIgnored();
  }
  try {
    return { bytes: await readExactly(r.body, r.length, where), total: r.total };
  } finally {
    r.body.destroy();
  }
}

/**
 * Reads and checks a pack's directory: its first 64 KiB (preamble and header: one more request for a longer
 * header), whose answer gives the object's size, then the end of the pack (TOC and footer). A pack of at most
 * `wholeAtMost` bytes is left there (only its size is returned): it is cheaper to download whole. `listing` is
 * what the pack's `.ids` names: the TOC must name exactly those objects, each once, and tile the pack (FORMAT.md
 * §4), behind the header of an objects-only bundle of its own (no refs, prerequisites or outside bases).
 */
export async function readPackDirectory(
  s3: S3Objects,
  key: string,
  listing: readonly ObjectId[],
  where: string,
  wholeAtMost: number,
): Promise<PackDirectory | { size: number; bytesRead: number }> {
  const first = await readRange(s3, key, 0, HEADER_READ_BYTES, where);
  const size = first.total;
  let bytesRead = first.bytes.length;
  if (size <= wholeAtMost) return { size, bytesRead };
  const headerLength = decodeBundlePreamble(first.bytes, size, where);
  const packStart = BUNDLE_PREAMBLE_BYTES + headerLength;
  let headerBytes = first.bytes.subarray(BUNDLE_PREAMBLE_BYTES, packStart);
  if (headerBytes.length < headerLength) {
    const rest = await readRange(s3, key, first.bytes.length, packStart, where);
    bytesRead += rest.bytes.length;
    headerBytes = Buffer.concat([headerBytes, rest.bytes]);
  }
  const header = decodeBundleHeader(headerBytes, where);
  if (header.refs.length || header.prerequisites.length || header.bases?.length)
    throw bad(where, 'is not an objects-only bundle of its own (it has refs, prerequisites or outside bases)');
  if (packStart + header.packLength + BUNDLE_TRAILER_BYTES !== size)
    throw bad(
      where,
      `is ${size} bytes, not the ${packStart + header.packLength + BUNDLE_TRAILER_BYTES} its header says`,
    );
  if (header.objects !== listing.length)
    throw bad(where, `holds ${header.objects} objects that are not the ${listing.length} its listing names`);
  const records = new Map<ObjectId, PackEntry>();
  const tailBytes = header.objects * TOC_ENTRY_BYTES + PACK_FOOTER_BYTES;
  if (header.objects === 0 || tailBytes > header.packLength)
    throw bad(where, 'has a pack too short for its table of contents');
  const packEnd = packStart + header.packLength;
  const tail = await readRange(s3, key, packEnd - tailBytes, packEnd, where);
  bytesRead += tail.bytes.length;
  const footer = decodeFooter(tail.bytes.subarray(tailBytes - PACK_FOOTER_BYTES), header.packLength, where);
  if (footer.count !== header.objects)
    throw bad(where, `has a TOC of ${footer.count} records where its header says ${header.objects}`);
  const listed = new Set(listing);
  const toc = tail.bytes.subarray(0, tailBytes - PACK_FOOTER_BYTES);
  for (const e of decodeToc(toc, footer.count, footer.tocOffset, where)) {
    if (!listed.has(e.id) || records.has(e.id))
      throw bad(where, `holds objects that are not the ${listing.length} its listing names`);
    records.set(e.id, e);
  }
  return { header, size, packStart, records, bytesRead };
}

/** Where the records read go: a scratch file, written piece by piece as they arrive. */
export interface RecordSink {
  /** The file offset of the record's stored bytes: called once per record, before any of them arrive. */
  place(entry: PackEntry): number;
  write(piece: Buffer, at: number): Promise<void>;
  /** The record is in; `head` holds its first stored bytes, up to DELTA_HEAD_BYTES (a delta names its base there). */
  done(entry: PackEntry, head: Buffer): Promise<void>;
}

/**
 * Downloads `wanted` (records of `dir`), in as few requests as the gaps between them allow, several at once,
 * each record's header checked against the TOC and its stored bytes handed to `sink` as they arrive (memory holds
 * the pieces in flight, not records of up to 64 MiB). Returns the bytes downloaded.
 */
export async function readRecords(
  s3: S3Objects,
  key: string,
  dir: PackDirectory,
  wanted: PackEntry[],
  where: string,
  sink: RecordSink,
): Promise<number> {
  const end = (e: PackEntry) => e.offset + RECORD_HEADER_BYTES + e.storedLength;
  const sorted = [...wanted].sort((a, b) => a.offset - b.offset);
  const groups: PackEntry[][] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i + 1;
    while (j < sorted.length && sorted[j]!.offset - end(sorted[j - 1]!) <= MERGE_GAP_BYTES) j++;
    groups.push(sorted.slice(i, j));
    i = j;
  }
  let downloaded = 0;
  const readGroup = async (group: PackEntry[]) => {
    const from = group[0]!.offset;
    const to = end(group[group.length - 1]!);
    const r = await s3.openRange(key, dir.packStart + from, dir.packStart + to);
    if (!r) throw gone(where);
    if (r.total === undefined) {
      r.body.destroy();
      throw new RangesIgnored();
    }
    if (r.length !== to - from) {
      r.body.destroy();
      throw remoteFault(where, `answered a range of ${to - from} bytes with ${r.length}`);
    }
    const s = new ByteStream(r.body, where);
    try {
      let at = from;
      for (const e of group) {
        await s.copy(e.offset - at, 'the bytes between records', async () => {});
        const h = decodeRecordHeader(await s.read(RECORD_HEADER_BYTES, 'a record header'), e.offset, where);
        if (!samePackEntry(h, e)) throw bad(where, `has a record at ${e.offset} that is not the one its TOC names`);
        const place = sink.place(e);
        const head = Buffer.alloc(Math.min(DELTA_HEAD_BYTES, e.storedLength));
        let filled = 0;
        await s.copy(e.storedLength, 'a record', async (piece) => {
          if (filled < head.length) piece.copy(head, filled, 0, Math.min(piece.length, head.length - filled));
          await sink.write(piece, place + filled);
          filled += piece.length;
        });
        await sink.done(e, head);
        at = end(e);
      }
    } finally {
      r.body.destroy();
    }
    downloaded += to - from;
  };
  // Several requests at once: records of a tensor that lies between others' take a request each, and each waits
  // a round trip. The first failure stops the others from starting more.
  let next = 0;
  let failed = false;
  await Promise.all(
    Array.from({ length: Math.min(RANGE_CONCURRENCY, groups.length) }, async () => {
      while (!failed && next < groups.length) {
        try {
          await readGroup(groups[next++]!);
        } catch (e) {
          failed = true;
          throw e;
        }
      }
    }),
  );
  return downloaded;
}
