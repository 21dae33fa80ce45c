// A checkout that fails part way keeps the files it finished, each whole and verified (spec/FORMAT.md §9.2): its
// error names them and says how many others are not there, so that a resume script does not take the folder for
// the commit. One wording for whole-commit and --tensor checkouts.
import { CkvcError } from '../core/errors.js';

/** Adds to `e` (a CkvcError) which of the `total` files were written before it; other errors pass unchanged. */
export function namePartialCheckout(e: unknown, written: { path: string }[], total: number): unknown {
  if (!(e instanceof CkvcError) || written.length === 0) return e;
  const shown = written.slice(0, 3).map((w) => w.path);
  e.message += `; ${written.length} of ${total} file(s) were written before it, each whole and verified (${shown.join(', ')}${written.length > shown.length ? ', ...' : ''}), the other ${total - written.length} not`;
  return e;
}
