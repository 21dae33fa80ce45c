// Glob patterns for tensor and file names (`ckvc prune --tensors`, `ckvc diff --tensor`, `checkout --tensor`):
// `*` matches within a path segment, `**` across '/', `?` one character, everything else literally.
import { CkvcError } from './errors.js';

/** A compiled glob: `test(s)` says whether all of `s` matches. */
export interface Glob {
  test(s: string): boolean;
}

const LITERAL = 0;
const ONE = 1; // '?': one character but '/'
const STAR = 2; // '*': any run without '/'
const GLOBSTAR = 3; // '**': any run

/**
 * Compiles a glob to a matcher that runs in time proportional to pattern length × name length, whatever the
 * pattern. Globs arrive from other stores (prune records in bundles and pushes, fetch filters sent to `ckvc
 * serve`): translated to a backtracking RegExp, a 29-character `*?*?...X` took minutes on a 40-character name.
 */
export function compileGlob(glob: string): Glob {
  if (glob === '')
    throw new CkvcError('CKVC_BAD_ARGUMENT', 'an empty glob matches nothing; give a pattern such as "optimizer.*"', {});
  const kinds: number[] = [];
  const chars: string[] = []; // the character of each LITERAL
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    const last = kinds.at(-1);
    if (c === '*' && glob[i + 1] === '*') {
      i++;
      if (last === STAR)
        kinds[kinds.length - 1] = GLOBSTAR; // '***' is one run that crosses '/'
      else if (last !== GLOBSTAR) kinds.push(GLOBSTAR);
    } else if (c === '*') {
      if (last !== STAR && last !== GLOBSTAR) kinds.push(STAR);
    } else {
      chars[kinds.length] = c;
      kinds.push(c === '?' ? ONE : LITERAL);
    }
  }
  if (!kinds.includes(ONE) && !kinds.includes(STAR) && !kinds.includes(GLOBSTAR)) return { test: (s) => s === glob };
  return { test: (s) => matchStates(kinds, chars, s) };
}

/** Runs the pattern as a set of positions advanced one character at a time (no backtracking). */
function matchStates(kinds: number[], chars: string[], s: string): boolean {
  const m = kinds.length;
  let cur = new Uint8Array(m + 1);
  let next = new Uint8Array(m + 1);
  const close = (set: Uint8Array) => {
    for (let i = 0; i < m; i++) if (set[i] && kinds[i]! >= STAR) set[i + 1] = 1; // a run may be empty
  };
  cur[0] = 1;
  close(cur);
  for (let k = 0; k < s.length; k++) {
    const c = s[k]!;
    next.fill(0);
    let any = false;
    for (let i = 0; i < m; i++) {
      if (!cur[i]) continue;
      const kind = kinds[i]!;
      if (kind === GLOBSTAR || (kind === STAR && c !== '/')) {
        next[i] = 1;
        any = true;
      } else if (kind === LITERAL ? chars[i] === c : kind === ONE && c !== '/') {
        next[i + 1] = 1;
        any = true;
      }
    }
    if (!any) return false;
    close(next);
    [cur, next] = [next, cur];
  }
  return cur[m] === 1;
}

/**
 * A glob over tensors. Without a ':' it matches the tensor's name only; with one it may also match
 * `FILE:NAME`. (Trying every glob against `FILE:NAME` made `model.*` match every tensor of
 * `model.safetensors`, since `*` stops only at '/'.)
 */
export interface TensorGlob {
  re: Glob;
  qualified: boolean;
}

export function tensorGlob(glob: string): TensorGlob {
  return { re: compileGlob(glob), qualified: glob.includes(':') };
}

export function tensorMatches(globs: TensorGlob[], file: string, name: string): boolean {
  return globs.some((g) => g.re.test(name) || (g.qualified && g.re.test(`${file}:${name}`)));
}

/**
 * Include and exclude globs (a leading '!' excludes), as `checkout --tensor` and `fetch --filter` take them: a
 * tensor is selected when it matches some include (or none are given) and no exclude; an exclude always wins.
 */
export interface TensorSelection {
  include: TensorGlob[];
  exclude: TensorGlob[];
}

export function tensorSelection(globs: string[], option = '--tensor'): TensorSelection {
  const sel: TensorSelection = { include: [], exclude: [] };
  for (const g of globs) {
    if (g === '!')
      throw new CkvcError(
        'CKVC_BAD_ARGUMENT',
        `${option} '!' excludes nothing; write the glob after it, e.g. ${option} '!optimizer.*'`,
        { glob: g },
      );
    const body = g.startsWith('!') ? g.slice(1) : g;
    (g.startsWith('!') ? sel.exclude : sel.include).push(tensorGlob(body));
  }
  return sel;
}

export function tensorSelected(sel: TensorSelection, file: string, name: string): boolean {
  return (
    (sel.include.length === 0 || tensorMatches(sel.include, file, name)) && !tensorMatches(sel.exclude, file, name)
  );
}

/** Which of one tensor's names (its own and its tied ones, FORMAT.md §5.3) the selection takes. */
export function selectedNames(sel: TensorSelection, file: string, names: readonly string[]): string[] {
  return names.filter((n) => tensorSelected(sel, file, n));
}
