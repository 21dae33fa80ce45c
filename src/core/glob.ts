// Glob patterns for tensor and file names (`ckvc prune --tensors`, `ckvc diff --tensor`, `checkout --tensor`):
// `*` matches within a path segment, `**` across '/', `?` one character, everything else literally.
import { CkvcError } from './errors.js';

export function globToRegExp(glob: string): RegExp {
  if (glob === '')
    throw new CkvcError('CKVC_BAD_ARGUMENT', 'an empty glob matches nothing; give a pattern such as "optimizer.*"', {});
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

/**
 * A glob over tensors. Without a ':' it matches the tensor's name only; with one it may also match
 * `FILE:NAME`. (Trying every glob against `FILE:NAME` made `model.*` match every tensor of
 * `model.safetensors`, since `*` stops only at '/'.)
 */
export interface TensorGlob {
  re: RegExp;
  qualified: boolean;
}

export function tensorGlob(glob: string): TensorGlob {
  return { re: globToRegExp(glob), qualified: glob.includes(':') };
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
