// Parses revision expressions: NAME or ID prefix, followed by any sequence of ~N, ~ and ^ / ^N suffixes
// (spec/FORMAT.md §6.4). Resolution against the store happens in store/revision-resolver.ts.
import { CkvcError } from './errors.js';

export type RevisionStep = { kind: 'ancestor'; n: number } | { kind: 'parent'; n: number };

export interface RevisionExpr {
  base: string;
  steps: RevisionStep[];
}

export function parseRevision(rev: string): RevisionExpr {
  const m = /^([^~^]+)((?:~\d*|\^\d*)*)$/.exec(rev);
  if (!m)
    throw new CkvcError(
      'CKVC_UNKNOWN_REVISION',
      `cannot parse revision ${JSON.stringify(rev)}: expected NAME, ID, NAME~N or NAME^N`,
      { revision: rev },
    );
  const steps: RevisionStep[] = [];
  for (const s of m[2]!.matchAll(/([~^])(\d*)/g)) {
    const n = s[2] === '' ? 1 : Number(s[2]);
    if (!Number.isSafeInteger(n))
      throw new CkvcError('CKVC_UNKNOWN_REVISION', `revision ${JSON.stringify(rev)} has a count that is too large`, {
        revision: rev,
      });
    steps.push({ kind: s[1] === '~' ? 'ancestor' : 'parent', n });
  }
  return { base: m[1]!, steps };
}
