// How prune, checkout and show name what a prune record released (spec/FORMAT.md §13). Pure, so the CLI can word
// results without loading the store.

/** The sets a prune record releases: null is everything, a list is globs, absent `files` is no file whole. */
export interface ReleasedSets {
  tensors: string[] | null;
  files?: string[] | null;
}

/** What a record released, in the words prune, checkout and show use. */
export function releasedWording(rec: ReleasedSets): string {
  if (rec.files === null) return 'the data of every file';
  const tensors =
    rec.tensors === null ? 'all tensor data' : rec.tensors.length ? `tensors matching ${rec.tensors.join(', ')}` : '';
  const files = rec.files?.length ? `files matching ${rec.files.join(', ')}` : '';
  return [tensors, files].filter(Boolean).join(' and ') || 'nothing';
}
