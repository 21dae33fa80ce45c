// The tensor chunks an open store's last commit wrote, kept byte-grouped in memory: the next commit through the
// same handle (a long-lived committer: ckvc watch, the helper server, a training loop using the API) finds its
// delta bases here instead of reading them back (spec/FORMAT.md §4.3). Reading one back decodes its chain (up to
// MAX_WRITTEN_DELTA_DEPTH records, a zstd call per XORed plane of each), un-groups it and hashes it, in the thread
// pool, before the chunk can be encoded: on the JSON snapshot series (npm run bench:json) commits in one process
// went from 48.8 to 57.7 MB/s and from 0.0239 to 0.0188 CPU-s/MB without it. A chunk is named by the hash of its
// bytes, so its bytes cannot be stale; its chain depth can (gc re-encodes records, another process may store the
// same chunk again and the index name that record). So the memory answers only while the store's index still
// names the very record this handle wrote (same pack, same offset): a chunk gone since is never a base, and a
// depth is never understated (the bound on decoding, MAX_WRITTEN_DELTA_DEPTH, holds). Its planes' costs (what a
// reader reads for each, FORMAT.md §4.3) include the records under it, which another process may have re-encoded
// since (gc stores a delta plain when its base goes): they are a hint for which planes a delta XORs, never a
// bound, so a stale one changes how small a record is, not whether it decodes.
// The stored records are the same either way while no other process rewrites the chain under them
// (delta-coding.test.ts). Copies are made only from a handle's second writer on (ObjectStore.writer), so a
// one-shot CLI commit pays nothing for them.
import type { ObjectId } from '../core/store-format/object-id.js';
import type { GroupedObject, ObjectLocation } from './pack-reader.js';

/**
 * Memory bound, in chunk bytes (copies): chunks past it in a commit are read back as before. The JSON series of
 * spec/JSON.md holds 0.7 MB of tensor chunks per snapshot; a 2.25 GiB commit's peak RSS stays under its 256 MB
 * budget (221-235 MiB without this memory, README).
 */
export const RECENT_CHUNK_BYTES = 16 * 1024 * 1024;

export interface WrittenChunk {
  id: ObjectId;
  /** A copy of its bytes, grouped by `width`. */
  grouped: Uint8Array;
  width: number;
  /** The length of its delta chain as written: 0 stored plain, else its base's depth + 1. */
  depth: number;
  /** Per plane, the stored bytes a reader reads for it, as a read of the record reports (GroupedObject). */
  planeCosts: number[];
  /** The record written: the pack and the offset of its header. */
  packId: string;
  offset: number;
}

export class RecentChunks {
  private kept = new Map<ObjectId, WrittenChunk>();

  /** Forgets the previous commit's chunks for these (at most RECENT_CHUNK_BYTES of them, the writer's bound). */
  replace(chunks: WrittenChunk[]): void {
    this.kept = new Map(chunks.map((c) => [c.id, c]));
  }

  /**
   * What readChunkGrouped would return for the record at `location`, when this handle wrote it and remembers it
   * grouped by `width`: its grouped bytes (read-only, shared) and chain depth; grouped undefined past `maxDepth`,
   * as a read does.
   */
  get(location: ObjectLocation, width: number, maxDepth?: number): GroupedObject | undefined {
    const k = this.kept.get(location.entry.id);
    if (!k || k.width !== width || k.packId !== location.packId || k.offset !== location.entry.offset) return undefined;
    return {
      grouped: maxDepth !== undefined && k.depth > maxDepth ? undefined : k.grouped,
      depth: k.depth,
      planeCosts: k.planeCosts,
    };
  }
}
