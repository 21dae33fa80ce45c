// A checkout that stops part way keeps the files it finished, each whole and verified (spec/FORMAT.md §9.2): what
// it says names them, so that a resume script does not take the folder for the commit. One wording for a failure
// (whole-commit and --tensor checkouts) and for an interruption (the CLI's note).
import { CkvcError } from '../core/errors.js';

/** "N [of M] file(s) were written before it, each whole and verified (a, b, c, ...)". */
export function writtenBefore(paths: string[], total?: number): string {
  const shown = paths.slice(0, 3);
  const of = total === undefined ? '' : ` of ${total}`;
  return `${paths.length}${of} file(s) were written before it, each whole and verified (${shown.join(', ')}${paths.length > shown.length ? ', ...' : ''})`;
}

/** Adds to `e` (a CkvcError) which of the `total` files were written before it; other errors pass unchanged. */
export function namePartialCheckout(e: unknown, written: { path: string }[], total: number): unknown {
  if (!(e instanceof CkvcError) || written.length === 0) return e;
  const paths = written.map((w) => w.path);
  e.message += `; ${writtenBefore(paths, total)}, the other ${total - written.length} not`;
  return e;
}
