// `ckvc watch`: what the branch already holds, so a restarted watcher commits nothing twice. No state file: each
// watch commit carries two labels naming the folder entry and its signature, and the branch's own history is
// the record. A file rewritten in place under the same name has a new signature, so it is a new checkpoint.
import type { ObjectStore } from '../../store/object-store.js';
import { REF_PREFIX } from '../../store/ref-store.js';
import { log } from '../history.js';

export const WATCH_LABELS = {
  /** The checkpoint's name in the watched folder (a file or folder name, no '/'). */
  source: 'watch.source',
  /** Its state when committed: `file:SIZE:MTIME_NS` or `folder:FILES:BYTES:NEWEST_MTIME_NS:LISTING_DIGEST`. */
  signature: 'watch.signature',
} as const;

export function watchKey(source: string, signature: string): string {
  return `${source}\0${signature}`;
}

/**
 * Keys of the checkpoints committed by a watch on the branch's first-parent line: the commits made on this
 * branch (warm-start parents belong to other runs). A branch that does not exist yet holds none.
 */
export async function committedCheckpoints(store: ObjectStore, branch: string): Promise<Set<string>> {
  const out = new Set<string>();
  const tip = await store.refs.read(REF_PREFIX.branch + branch);
  if (!tip) return out;
  for (const c of await log(store, { rev: tip, firstParent: true })) {
    const source = c.labels[WATCH_LABELS.source];
    const signature = c.labels[WATCH_LABELS.signature];
    if (source !== undefined && signature !== undefined) out.add(watchKey(source, signature));
  }
  return out;
}
