// Which of the refs a remote advertises a fetch may store here, under which local names (spec/PROTOCOL.md §4): a
// remote chooses its refs' names and values, so a name that is invalid, clashes with a folder of refs, or would
// hide another ref in revisions is left out with a warning, never taken.
import { bundleRefNameProblem } from '../core/store-format/bundle-format.js';
import { CkvcError, isCkvcError } from '../core/errors.js';
import { isObjectId, type ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import { REF_PREFIX } from '../store/ref-store.js';
import { RemoteConfig } from './remote-config.js';
import type { FetchWarning } from './sync.js';
import type { Transport } from './transport.js';

/**
 * What a received tag of a given short name would hide (FORMAT.md §6.4 resolves a name as a tag before an alias or
 * a remote-tracking branch): `origin/main` would hide remote origin's main, `best` the local alias best. A remote
 * chooses its tags' names, so such tags are not stored.
 */
async function shadowedNames(store: ObjectStore, remote: string): Promise<(tag: string) => string | undefined> {
  const remotes = new Set((await new RemoteConfig(store.layout).list()).map((r) => r.name)).add(remote);
  const aliases = new Set((await store.refs.list('alias', { skipCorrupt: true })).map((a) => a.name));
  return (tag) => {
    const slash = tag.indexOf('/');
    if (slash > 0 && remotes.has(tag.slice(0, slash)))
      return `remote '${tag.slice(0, slash)}''s branch ${tag.slice(slash + 1)}`;
    if (aliases.has(tag)) return `the local alias '${tag}'`;
    return undefined;
  };
}

/**
 * The remote's branches and tags that can be stored here, as local names; the others are left out with a
 * warning (a remote is not trusted to advertise valid names). None usable of several advertised: CKVC_REMOTE.
 */
export async function usableRefs(
  store: ObjectStore,
  t: Transport,
  remote: string,
  theirs: Record<string, ObjectId>,
  warnings: FetchWarning[],
): Promise<{ name: string; id: ObjectId; local: string }[]> {
  let advertised = 0;
  let out: { name: string; id: ObjectId; local: string }[] = [];
  const shadowed = await shadowedNames(store, remote);
  for (const [name, id] of Object.entries(theirs)) {
    if (!name.startsWith(REF_PREFIX.branch) && !name.startsWith(REF_PREFIX.tag)) continue;
    advertised++;
    const problem = bundleRefNameProblem(name);
    if (problem) {
      warnings.push({
        ref: name,
        code: 'CKVC_BAD_REF_NAME',
        message: `left out ${JSON.stringify(name)} of ${t.url}: ${problem}`,
      });
      continue;
    }
    if (!isObjectId(id)) {
      warnings.push({
        ref: name,
        code: 'CKVC_REMOTE',
        message: `left out ${name} of ${t.url}: it names ${JSON.stringify(id)}, not an object ID`,
      });
      continue;
    }
    const local = name.startsWith(REF_PREFIX.branch)
      ? `${REF_PREFIX.remote}${remote}/${name.slice(REF_PREFIX.branch.length)}`
      : name;
    const shadows = name.startsWith(REF_PREFIX.tag) ? shadowed(name.slice(REF_PREFIX.tag.length)) : undefined;
    if (shadows) {
      warnings.push({
        ref: name,
        code: 'CKVC_BAD_REF_NAME',
        message: `left out ${name} of ${t.url}: as a tag here it would take the place of ${shadows} in every revision that names it`,
      });
      continue;
    }
    const bad = store.refs.nameProblem(local);
    if (bad) {
      warnings.push({
        ref: name,
        code: bad.code,
        message: `left out ${name} of ${t.url}: it cannot be stored as ${local}: ${bad.message}`,
      });
      continue;
    }
    out.push({ name, id, local });
  }
  // A name that clashes with a folder of refs (or with another of these): left out one at a time.
  for (;;) {
    try {
      await store.refs.checkMoves(out.map((r) => ({ name: r.local, next: r.id })));
      break;
    } catch (e) {
      const clash = isCkvcError(e, 'CKVC_BAD_REF_NAME') ? out.find((r) => r.local === e.data.ref) : undefined;
      if (!clash) throw e;
      warnings.push({
        ref: clash.name,
        code: 'CKVC_BAD_REF_NAME',
        message: `left out ${clash.name} of ${t.url}: ${(e as CkvcError).message}`,
      });
      out = out.filter((r) => r !== clash);
    }
  }
  if (advertised > 0 && out.length === 0) {
    throw new CkvcError(
      'CKVC_REMOTE',
      `remote ${t.url} advertised ${advertised} branch(es) and tag(s) and none can be stored here: ${warnings
        .slice(0, 3)
        .map((w) => w.message)
        .join('; ')}${warnings.length > 3 ? '; ...' : ''}`,
      { url: t.url, warnings },
    );
  }
  return out;
}

/**
 * A fetch for some branches of the remote (`fetch REMOTE BRANCH...`, `pull`, `checkout REMOTE/BRANCH`): each must
 * be one of its branches, else nothing is fetched, and the error lists what it has (a tag of that name is said:
 * fetched tags keep their own names).
 */
export async function requireBranches(
  store: ObjectStore,
  theirs: Record<string, ObjectId>,
  branches: string[],
  remote: string,
): Promise<void> {
  for (const branch of branches) {
    if (Object.hasOwn(theirs, REF_PREFIX.branch + branch)) continue;
    const tag = refNames(theirs, REF_PREFIX.tag).includes(branch)
      ? `; '${branch}' is a tag there, and fetched tags keep their own names: 'ckvc fetch ${remote}', then use '${branch}'`
      : '';
    // A branch deleted there since the last fetch: what is here is what it held then.
    const tracked = await store.refs.read(`${REF_PREFIX.remote}${remote}/${branch}`).catch(() => undefined);
    const stale = tracked
      ? `; ${remote}/${branch} here is what it held when last fetched ('ckvc fetch ${remote} --prune' drops it)`
      : '';
    throw new CkvcError(
      'CKVC_UNKNOWN_REVISION',
      `remote '${remote}' has no branch '${branch}' (${branchesListed(theirs)})${tag}${stale}; nothing was fetched`,
      { remote, branch },
    );
  }
}

function refNames(theirs: Record<string, ObjectId>, prefix: string): string[] {
  return Object.keys(theirs)
    .filter((n) => n.startsWith(prefix))
    .map((n) => n.slice(prefix.length));
}

/** The remote's branches as an error names them: "its branches: 'a', 'b', ..." (8 at most), or that it has none. */
export function branchesListed(theirs: Record<string, ObjectId>): string {
  const all = refNames(theirs, REF_PREFIX.branch);
  if (!all.length) return 'it has no branches';
  const shown = all.slice(0, 8).map((b) => `'${b}'`);
  return `its branches: ${shown.join(', ')}${all.length > 8 ? ', ...' : ''}`;
}
