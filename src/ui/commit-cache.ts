// Decoded commits kept for the life of the page's server. A commit is named by the hash of its bytes, so a
// decoded one never goes stale; decoding is most of the cost of walking a long history (about 0.4 ms a commit
// here: a 10,000-commit curves request took seconds cold, milliseconds warm).
import type { ObjectId } from '../core/store-format/object-id.js';
import type { CommitObject } from '../core/store-format/objects/commit-object.js';
import type { ObjectStore } from '../store/object-store.js';

/** Commits held at most; past it the cache starts over (a commit is a few hundred bytes decoded). */
export const COMMIT_CACHE_CAPACITY = 200_000;

export class CommitCache {
  private readonly commits = new Map<ObjectId, CommitObject>();

  /** The server's read-ahead of the history while it runs: a request waits for it rather than decode the same
   * commits alongside it. */
  warming: Promise<void> | undefined;

  constructor(readonly capacity = COMMIT_CACHE_CAPACITY) {}

  /** A readCommit for `store` that answers from the cache and fills it. */
  reader(store: ObjectStore): (id: ObjectId) => Promise<CommitObject> {
    return async (id) => {
      const hit = this.commits.get(id);
      if (hit) return hit;
      const c = await store.readCommit(id);
      if (this.commits.size >= this.capacity) this.commits.clear();
      this.commits.set(id, c);
      return c;
    };
  }
}
