// The records of a damaged pack (spec/FORMAT.md §10.1), found every way there is, since any one of them may be
// what the damage hit: the TOC, if it can be read; the record headers, read one after the other from the first
// until one does not parse or passes the end of the file (a pack cut short, a TOC or footer damaged); and the
// index's locations in the pack (past a record header the damage garbled, the next records are still where the
// index says).
import * as fs from 'node:fs/promises';
import { CkvcError } from '../core/errors.js';
import {
  decodeRecordHeader,
  PACK_HEADER_BYTES,
  RECORD_HEADER_BYTES,
  type PackEntry,
} from '../core/store-format/pack-format.js';
import { ioError } from './durable-fs.js';
import type { PackReader } from './pack-reader.js';

/** Records found by reading headers from the first record on. */
async function recordsByHeader(file: string, packId: string): Promise<PackEntry[]> {
  const fh = await fs.open(file, 'r').catch((e) => {
    throw ioError(e, 'read', file);
  });
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(RECORD_HEADER_BYTES);
    const out: PackEntry[] = [];
    for (let offset = PACK_HEADER_BYTES; offset + RECORD_HEADER_BYTES <= size; ) {
      const { bytesRead } = await fh.read(head, 0, RECORD_HEADER_BYTES, offset);
      if (bytesRead < RECORD_HEADER_BYTES) break;
      let entry: PackEntry;
      try {
        entry = decodeRecordHeader(head, offset, `pack ${packId.slice(0, 16)}`);
      } catch {
        break; // the TOC, or damage: nothing past it can be told apart by reading on
      }
      const end = offset + RECORD_HEADER_BYTES + entry.storedLength;
      if (end > size) break;
      out.push(entry);
      offset = end;
    }
    return out;
  } finally {
    await fh.close();
  }
}

/**
 * Every record of pack `packId` (the file `file`, which `reader` reads) that its TOC, its record headers or
 * `indexed` (the index's entries in it) describe, each description once: those that disagree are all tried, since
 * reading checks each.
 */
export async function damagedPackRecords(
  reader: PackReader,
  packId: string,
  file: string,
  indexed: readonly PackEntry[],
): Promise<PackEntry[]> {
  let listed: PackEntry[] = [];
  try {
    listed = (await reader.readToc(packId)).entries;
  } catch (e) {
    if (!(e instanceof CkvcError)) throw e;
  }
  const out = new Map<string, PackEntry>();
  for (const e of [...listed, ...(await recordsByHeader(file, packId)), ...indexed]) {
    const key = `${e.id}@${e.offset}/${e.codec}/${e.storedLength}/${e.rawLength}/${e.type}`;
    if (!out.has(key)) out.set(key, e);
  }
  return [...out.values()];
}
