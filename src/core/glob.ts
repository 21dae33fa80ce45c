// Glob patterns for tensor and file names (`ckvc prune --tensors`, `ckvc diff --tensor`): `*` matches within a
// path segment, `**` across '/', `?` one character, everything else literally.
import { CkvcError } from './errors.js';

export function globToRegExp(glob: string): RegExp {
  if (glob === '') throw new CkvcError('CKVC_BAD_ARGUMENT', 'an empty glob matches nothing; give a pattern such as "optimizer.*"', {});
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

/** True when any glob matches any of the names (a tensor is known by several: bare and file-qualified). */
export function matchesAny(globs: RegExp[], names: string[]): boolean {
  return globs.some((g) => names.some((n) => g.test(n)));
}
