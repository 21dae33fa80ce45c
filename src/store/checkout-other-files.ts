// Files a checkout's target folder holds that the commit does not: checkout leaves them as they are (the folder
// may be a run's output folder, with logs beside the checkpoints), but a folder that held another commit's
// checkpoints then mixes two commits, and a resume script that takes the newest checkpoint in it would resume from
// the wrong one (found by a first-time-user test). The command line says so. Counted with a bound, so that a
// checkout into a large folder does not pay for a walk of all of it.
import type { Dirent } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/** Entries looked at, at most. */
const SCAN_LIMIT = 10_000;
const EXAMPLES = 3;

export interface OtherFiles {
  /** Files found that the commit does not hold (at least this many when `complete` is false). */
  count: number;
  /** A few of them, as paths below the folder. */
  examples: string[];
  complete: boolean;
}

/**
 * Files below `root` (not following links to folders) whose '/'-path is not in `keep`, leaving out `skip` (the
 * store's own folder when it lies inside), `.git` folders and checkout's temp files; undefined when there are none.
 */
export async function otherFilesIn(
  root: string,
  keep: ReadonlySet<string>,
  skip: readonly string[],
): Promise<OtherFiles | undefined> {
  const out: OtherFiles = { count: 0, examples: [], complete: true };
  const skipped = new Set(skip.map((p) => path.resolve(p)));
  let seen = 0;
  const walk = async (dir: string, rel: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      return; // not there, or not readable: nothing to say about it
    }
    entries.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    for (const e of entries) {
      if (++seen > SCAN_LIMIT) {
        out.complete = false;
        return;
      }
      const full = path.join(dir, e.name);
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (skipped.has(full)) continue;
      if (e.isDirectory()) {
        // A git repository's own folder is no checkpoint anyone would mix up (and a commit never holds one).
        if (e.name === '.git') continue;
        await walk(full, p);
        if (!out.complete) return;
      } else if (!keep.has(p) && !/^\..+\.ckvc-[0-9a-f]{8}\.tmp$/.test(e.name)) {
        out.count++;
        if (out.examples.length < EXAMPLES) out.examples.push(p);
      }
    }
  };
  await walk(root, '');
  return out.count ? out : undefined;
}
