// Whether a fetch filter (`fetch --filter tensors:GLOB`) selected anything: a mistyped glob ('modle.*') fetches
// no tensor data, and is then kept as the remote's filter for later fetches and pulls. prune refuses a glob that
// matches nothing; a fetch has received what it asked for by then, so it warns instead.
import { shellWord } from '../core/shell-word.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import { tensorReleased, walkObjects } from '../store/object-walk.js';
import { withFilter } from '../store/promise-records.js';

/**
 * A warning when `filter` selects no tensor of the commits `tips` (read here, as fetched), naming a few of the
 * tensors they hold; undefined when it selects one, or they hold none.
 */
export async function unmatchedFilter(
  store: ObjectStore,
  tips: ObjectId[],
  filter: string[],
  remote: string,
): Promise<string | undefined> {
  if (!tips.length) return undefined;
  const rec = withFilter(undefined, filter);
  const seen: string[] = [];
  let selected = false;
  let tiedOnly: { path: string; tied: string; name: string } | undefined;
  const only = new Set(tips);
  await walkObjects(store, tips, {
    stopAt: (id) => !only.has(id),
    depth: 'files',
    visit: (r) => {
      if (r.kind !== 'file') return;
      for (const part of r.recipe.parts) {
        if (part.kind !== 'tensor') continue;
        if (seen.length < 3 && !seen.includes(part.name)) seen.push(part.name);
        if (!tensorReleased(rec, r.path, part)) selected = true;
        else if (!tiedOnly) {
          const tied = part.tied?.find((name) => !tensorReleased(rec, r.path, { name }));
          if (tied !== undefined) tiedOnly = { path: r.path, tied, name: part.name };
        }
      }
    },
  });
  // A filter goes by a tensor's own name, as every version reads it (FORMAT.md §13.2): a tied name takes nothing.
  if (tiedOnly) {
    // The filter given is kept for later fetches and a new one replaces it: the command names all of it again.
    const again = [...filter, tiedOnly.name].map((g) => `--filter ${shellWord(`tensors:${g}`)}`).join(' ');
    return (
      `--filter takes '${tiedOnly.tied}' of ${tiedOnly.path} only by its tied name: filters select a tensor by its ` +
      `own name, '${tiedOnly.name}', so its data stays on '${remote}' until a command needs it; ` +
      `to fetch it now, run: ckvc fetch ${shellWord(remote)} ${again}`
    );
  }
  if (selected || seen.length === 0) return undefined;
  const globs = filter.map((g) => `tensors:${g}`).join(' ');
  return (
    `--filter ${globs} matches no tensor of the ${tips.length} commit(s) the fetched refs name (they hold ` +
    `${seen.map((n) => `'${n}'`).join(', ')}...): no tensor data came, and the filter is kept for '${remote}'; ` +
    `'ckvc fetch ${remote} --filter tensors:GLOB' replaces it, 'ckvc ls REV --tensors' lists the names`
  );
}
