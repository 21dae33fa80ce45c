// Damage as a bad disk does it, aimed at one record of a store: the tests of what verify reports
// (verify-damage-report.test.ts) and of what repair mends (repair.test.ts) damage the same way.
import { parsePlaneHeader } from '../../src/core/store-format/codec/plane-codec.js';
import { CODECS, RECORD_HEADER_BYTES } from '../../src/core/store-format/pack-format.js';
import * as fs from 'node:fs';
import { ObjectStore } from '../../src/store/object-store.js';
import { listTreeFiles } from '../../src/store/object-walk.js';
import { flipByte } from './snapshots.js';
import type { TestStore } from './test-store.js';

export interface RecordAt {
  /** The pack file holding it. */
  file: string;
  entry: { offset: number; storedLength: number; rawLength: number; codec: number };
}

/** Damages a record through its body (every byte plane of it), as a bad sector would. */
export function damageRecord(file: string, entry: { offset: number; storedLength: number }): void {
  const body = entry.offset + RECORD_HEADER_BYTES;
  for (let k = 1; k <= 8; k++) flipByte(file, body + Math.floor((entry.storedLength * k) / 9));
}

/** Where object `id` of store `s` is stored. */
export async function recordOf(s: TestStore, id: string): Promise<RecordAt> {
  const store = await ObjectStore.open(s.store);
  try {
    const [loc] = await store.locate([id]);
    if (!loc) throw new Error(`object ${id} is not in ${s.store}`);
    return { file: store.layout.packFile(loc.packId), entry: loc.entry };
  } finally {
    await store.close();
  }
}

/** The record of the first chunk of `path` in `commit`: of its first tensor if it has tensors. */
export async function firstChunkRecord(s: TestStore, commit: string, path: string): Promise<RecordAt> {
  const store = await ObjectStore.open(s.store);
  let chunk: string;
  try {
    const { tree } = await store.readCommit(commit);
    const file = (await listTreeFiles(store, tree)).find((f) => f.path === path)!;
    const { parts } = await store.readFileRecipe(file.id);
    const part = parts.find((p) => p.kind === 'tensor') ?? parts[0]!;
    chunk = part.kind === 'tensor' ? (await store.readTensor(part.id)).chunks[0]! : part.id;
  } finally {
    await store.close();
  }
  return recordOf(s, chunk);
}

/** The plane table of a record, and the file offset where its stored body starts. */
export function planesOf(r: RecordAt): { body: number; planes: { mode: number; offset: number; length: number }[] } {
  const bytes = fs.readFileSync(r.file);
  const body = r.entry.offset + RECORD_HEADER_BYTES;
  const stored = bytes.subarray(body, body + r.entry.storedLength);
  return {
    body,
    planes: parsePlaneHeader(stored, r.entry.rawLength, r.entry.codec === CODECS.xorPlanes, 'test').planes,
  };
}
