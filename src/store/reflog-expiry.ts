// Reflog expiry in gc (spec/FORMAT.md §6.3, §15): a reflog line older than the expiry that names a commit no ref
// reaches stops keeping that commit's data, so a deleted branch is freed once the user's expiry has passed.
// Lines naming only what refs reach keep nothing alive and stay, as history.
import type { ObjectId } from '../core/store-format/object-id.js';
import { commitClosure, storeParents } from './ancestry.js';
import type { ObjectStore } from './object-store.js';
import { readReflogs, reflogLineIds, type SkipReflogLine } from './reachability.js';

export interface ReflogExpiryPlan {
  /** Lines to drop, by the log's ref name. */
  lines: Map<string, Set<string>>;
  count: number;
  /** The same lines as gcRoots' filter (a dry run leaves the logs as they are). */
  skip: SkipReflogLine;
}

const LINE_TIME = /^[0-9a-f]{64} [0-9a-f]{64} (\d+) /;

export async function planReflogExpiry(
  store: ObjectStore,
  refs: ObjectId[],
  now: number,
  expireMs: number,
): Promise<ReflogExpiryPlan> {
  const reachable = await commitClosure(storeParents(store), refs);
  const lines = new Map<string, Set<string>>();
  let count = 0;
  for (const [full, text] of await readReflogs(store)) {
    for (const line of text) {
      const m = LINE_TIME.exec(line);
      if (!m || now - Number(m[1]) < expireMs) continue;
      if (reflogLineIds(line).every((id) => reachable.has(id))) continue;
      if (!lines.has(full)) lines.set(full, new Set());
      lines.get(full)!.add(line);
      count++;
    }
  }
  return { lines, count, skip: (full, line) => lines.get(full)?.has(line) ?? false };
}

/** Drops the planned lines, each log under its ref's lock; returns how many went. */
export async function applyReflogExpiry(store: ObjectStore, plan: ReflogExpiryPlan): Promise<number> {
  let dropped = 0;
  for (const [full, drop] of plan.lines) dropped += await store.refs.expireReflog(full, (l) => drop.has(l));
  return dropped;
}
