// Commits, trees and file recipes a long-lived process (the helper server, spec/HELPER.md §4) keeps decoded between
// requests, per store, so that checking out an unchanged snapshot again does not open the store's index. An
// object is named by the hash of its bytes, so a remembered object can never be stale: what a new commit changes
// is a ref, and refs are read afresh by every request. What this memory assumes is only that an object read
// from a store through a ref is still there, which gc guarantees for everything a ref reaches (a damaged store
// is found by `ckvc verify`, not here). Lookups by a bare ID (ObjectStore.has) never use it.
import type { ObjectId, ObjectType } from '../core/store-format/object-id.js';

/** Memory bound, in objects: the oldest go first (a forgotten object is only read again). */
const MAX_OBJECTS = 4096;

type Kept = 'commit' | 'tree' | 'file';

export class DecodedObjects {
  private readonly objects = new Map<string, { type: Kept; value: unknown }>();

  constructor(private readonly maxObjects = MAX_OBJECTS) {}

  /** The decoded object `id` of the store at `root`, when remembered with that type. */
  get<T>(root: string, id: ObjectId, type: Kept): T | undefined {
    const hit = this.objects.get(`${root}\0${id}`);
    return hit?.type === type ? (hit.value as T) : undefined;
  }

  /** The type of a remembered object (only kept types are ever remembered). */
  typeOf(root: string, id: ObjectId): ObjectType | undefined {
    return this.objects.get(`${root}\0${id}`)?.type;
  }

  /** Keeps a decoded, hash-verified object; callers must treat what they get back as read-only. */
  keep(root: string, id: ObjectId, type: Kept, value: unknown): void {
    this.objects.set(`${root}\0${id}`, { type, value });
    if (this.objects.size > this.maxObjects) this.objects.delete(this.objects.keys().next().value!);
  }
}
