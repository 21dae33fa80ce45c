// Turns a revision expression into a commit ID (spec/FORMAT.md §6.4): HEAD, branch, tag (peeled), alias, remote-tracking
// ref (origin/NAME), full ID or
// unique prefix of at least 6 hex digits, then ~N / ^N steps along parents.
import { CkvcError } from '../core/errors.js';
import { isObjectId, type ObjectId } from '../core/store-format/object-id.js';
import { BUNDLE_REF_NAMESPACE } from '../core/ref-name.js';
import { didYouMean } from '../core/similar-names.js';
import { parseRevision } from '../core/revision-syntax.js';
import type { ObjectStore } from './object-store.js';
import { REF_PREFIX } from './ref-store.js';

export interface ResolvedRevision {
  id: ObjectId;
  /** The branch or tag the expression started from, if any. */
  ref?: string;
}

function unknown(rev: string, why: string): CkvcError {
  return new CkvcError(
    'CKVC_UNKNOWN_REVISION',
    `unknown revision ${JSON.stringify(rev)}: ${why}; 'ckvc branch', 'ckvc tag' and 'ckvc alias' list names, 'ckvc log' lists IDs`,
    { revision: rev },
  );
}

/** Peels annotated tags down to the commit they name; `rev` is what the errors call it. */
export async function peel(store: ObjectStore, id: ObjectId, rev: string): Promise<ObjectId> {
  for (let depth = 0; depth < 8; depth++) {
    const type = await store.typeOf(id);
    if (type === 'commit') return id;
    if (type === 'tag') {
      id = (await store.readTag(id)).target;
      continue;
    }
    if (type === undefined)
      throw new CkvcError(
        'CKVC_MISSING_OBJECT',
        `revision ${JSON.stringify(rev)} points at ${id.slice(0, 16)}, which is missing from the store; run 'ckvc verify'`,
        { revision: rev, id },
      );
    throw unknown(rev, `it names a ${type}, not a commit`);
  }
  throw unknown(rev, 'tags nest too deeply');
}

async function resolveBase(store: ObjectStore, base: string, rev: string): Promise<ResolvedRevision> {
  if (base === 'HEAD') {
    const head = await store.refs.readHead();
    if (head.kind === 'detached') return { id: head.id };
    const id = await store.refs.read(REF_PREFIX.branch + head.branch);
    if (!id) {
      // A store filled by pull or fetch has refs while HEAD's branch is still the unborn 'main': name them.
      const listed = (names: string[]) =>
        `${names
          .slice(0, 5)
          .map((n) => `'${n}'`)
          .join(', ')}${names.length > 5 ? ', ...' : ''}`;
      const branches = (await store.refs.list('branch', { skipCorrupt: true })).map((b) => b.name);
      const fetched = branches.length
        ? []
        : (await store.refs.list('remote', { skipCorrupt: true })).map((b) => b.name);
      const hint = branches.length
        ? `; name a revision, or 'ckvc switch' to a branch with commits (${listed(branches)})`
        : fetched.length
          ? `; name a revision, e.g. a fetched branch (${listed(fetched)}), or make one yours with 'ckvc branch NAME ${fetched[0]}'`
          : '; commit first, or name a revision';
      throw new CkvcError('CKVC_EMPTY_BRANCH', `HEAD is on branch '${head.branch}', which has no commits yet${hint}`, {
        branch: head.branch,
      });
    }
    return { id, ref: REF_PREFIX.branch + head.branch };
  }
  for (const prefix of [REF_PREFIX.branch, REF_PREFIX.tag, REF_PREFIX.alias, REF_PREFIX.remote]) {
    const id = await store.refs.read(prefix + base).catch((e) => {
      if (e instanceof CkvcError && e.code === 'CKVC_BAD_REF_NAME') return undefined;
      throw e;
    });
    if (id) return { id: await peel(store, id, rev), ref: prefix + base };
  }
  if (isObjectId(base)) {
    if (await store.has(base)) return { id: await peel(store, base, rev) };
    throw unknown(rev, 'no object has that ID');
  }
  if (/^[0-9a-f]+$/.test(base)) {
    if (base.length < 6)
      throw unknown(rev, 'no branch, tag or alias has that name, and an ID prefix needs at least 6 hex digits');
    let hits: { id: ObjectId }[] = await store.index.session((s) => s.findByPrefix(base, ['commit', 'tag']));
    if (hits.length === 0)
      hits = await store.index.session((s) => s.findByPrefix(base, ['commit', 'tag']), { sync: true });
    if (hits.length > 1) {
      throw new CkvcError(
        'CKVC_AMBIGUOUS_REVISION',
        `revision ${JSON.stringify(rev)} matches ${hits.length} objects (${hits.map((h) => h.id.slice(0, 12)).join(', ')}); give more digits`,
        { revision: rev, matches: hits.map((h) => h.id) },
      );
    }
    if (hits.length === 1) return { id: await peel(store, hits[0]!.id, rev) };
  }
  throw unknown(
    rev,
    `no branch, tag, alias or commit has that name${(await pulledAs(store, base)) || (await closeNames(store, base))}`,
  );
}

/** Names of refs close to a mistyped one, as " (did you mean 'run1'?)". */
async function closeNames(store: ObjectStore, base: string): Promise<string> {
  const names = new Map<string, string[]>();
  for (const kind of ['branch', 'tag', 'alias', 'remote'] as const)
    names.set(
      kind,
      (await store.refs.list(kind, { skipCorrupt: true }).catch(() => [])).map((r) => r.name),
    );
  // REMOTE/TAG: fetched tags keep their own names (PROTOCOL.md §4), unlike branches.
  const slash = base.indexOf('/');
  const [remote, tag] = [base.slice(0, slash), base.slice(slash + 1)];
  if (slash > 0 && names.get('tag')!.includes(tag) && names.get('remote')!.some((r) => r.startsWith(`${remote}/`)))
    return ` (tags fetched from a remote keep their own names: '${tag}')`;
  return didYouMean(base, [...names.values()].flat());
}

/**
 * `pull FILE` puts a bundle's refs under bundle/ (ref-name.ts): a name the user knows from the sender ("best")
 * is found there.
 */
async function pulledAs(store: ObjectStore, base: string): Promise<string> {
  if (base.startsWith(BUNDLE_REF_NAMESPACE)) return '';
  const name = BUNDLE_REF_NAMESPACE + base;
  for (const kind of ['branch', 'tag', 'alias'] as const) {
    const held = await store.refs.read(REF_PREFIX[kind] + name).catch(() => undefined);
    if (held) return ` (a bundle's ${kind} '${base}' was pulled as '${name}')`;
  }
  return '';
}

export async function resolveRevision(store: ObjectStore, rev: string): Promise<ResolvedRevision> {
  const expr = parseRevision(rev);
  const resolved = await resolveBase(store, expr.base, rev);
  let id = resolved.id;
  for (const step of expr.steps) {
    const hops = step.kind === 'ancestor' ? step.n : 1;
    const parentIndex = step.kind === 'ancestor' ? 0 : step.n - 1;
    if (step.kind === 'parent' && step.n === 0) continue;
    for (let i = 0; i < hops; i++) {
      const c = await store.readCommit(id);
      const next = c.parents[parentIndex];
      if (!next) {
        // `~N` past the first commit reads better as such than as a missing "parent number 1".
        const why =
          step.kind === 'ancestor' && c.parents.length === 0
            ? `it goes back past the first commit, ${id.slice(0, 12)}, which has no parent`
            : `commit ${id.slice(0, 12)} has no parent number ${parentIndex + 1}`;
        throw unknown(rev, why);
      }
      if (!(await store.parentsHeld(id, [next])).length)
        throw unknown(rev, `history stops at commit ${id.slice(0, 12)} (shallow): its parent is not in this store`);
      id = next;
    }
  }
  return { id, ref: expr.steps.length ? undefined : resolved.ref };
}
