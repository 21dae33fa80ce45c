// Which branch and tag names are allowed (spec/FORMAT.md §6.1). Names become file paths under refs/, so
// anything that could escape that folder, collide with revision syntax or confuse a shell is refused.
import { CkvcError } from './errors.js';

const RESERVED = new Set(['HEAD', 'ORIG_HEAD']);

/** Why `name` is not a valid branch/tag name, or undefined when it is. */
export function refNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > 200) return 'is longer than 200 characters';
  if (RESERVED.has(name)) return 'is reserved';
  if (name.startsWith('-')) return "starts with '-'";
  if (name.startsWith('/') || name.endsWith('/')) return "starts or ends with '/'";
  if (name.endsWith('.lock')) return "ends with '.lock'";
  if (name.endsWith('.')) return "ends with '.'";
  if (/[\x00-\x20\x7f]/.test(name)) return 'contains a space or control character';
  if (/[~^:?*[\\@{}]/.test(name)) return 'contains one of ~ ^ : ? * [ \\ @ { }';
  for (const part of name.split('/')) {
    if (part === '') return "contains '//'";
    if (part === '.' || part === '..' || part.startsWith('.')) return "has a path component starting with '.'";
  }
  if (/^[0-9a-f]{6,64}$/.test(name)) return 'looks like an object ID';
  return undefined;
}

export function assertRefName(name: string, kind: 'branch' | 'tag' | 'alias' | 'remote'): void {
  const problem = refNameProblem(name);
  if (problem) {
    throw new CkvcError(
      'CKVC_BAD_REF_NAME',
      `invalid ${kind} name ${JSON.stringify(name)}: it ${problem}; use letters, digits, '-', '_', '.' and '/'`,
      { name, kind, problem },
    );
  }
}

/** Where `pull FILE` puts a bundle's refs (refs/heads/NAME arrives as refs/heads/bundle/NAME) unless --update-refs. */
export const BUNDLE_REF_NAMESPACE = 'bundle/';

/**
 * The branch names the commits of `branch` were recorded under: its own, and for a bundle's branch pulled into
 * bundle/NAME also NAME, the branch it was committed on at the sender.
 */
export function branchNamesOfCommits(branch: string): string[] {
  return branch.startsWith(BUNDLE_REF_NAMESPACE) ? [branch, branch.slice(BUNDLE_REF_NAMESPACE.length)] : [branch];
}
