// `ckvc prune`: release the data of old commits while keeping every commit, tree, file recipe, config and metric
// forever (spec/FORMAT.md §13). It only writes prune records; `ckvc gc` deletes what nothing else needs.
import { parseDuration } from '../core/duration.js';
import { CkvcError } from '../core/errors.js';
import { compileGlob } from '../core/glob.js';
import type { MetricMode } from '../core/metric-mode.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import { type TensorNames, tensorPartNames } from '../core/store-format/objects/file-recipe.js';
import { fileReleased, type ReleaseRecord, tensorReleased, walkObjects } from '../store/object-walk.js';
import { mergePruneRecords, type PruneRecord } from '../store/prune-records.js';
import { gcRoots, liveObjects } from '../store/reachability.js';
import { parseCount } from './commit-input.js';
import { namedCommits, selectForPrune, type BranchSelection, type KeepPolicy } from './prune-policy.js';
import { currentBranch } from './refs.js';

export interface PruneOptions {
  /** A count, or its text as the command line gives it (checked here: a whole number >= 1). */
  keepLast?: number | string;
  /** Keep the commits made within this duration (e.g. '30d') of the branch's newest commit. */
  keepWithin?: string;
  branch?: string;
  /** Every branch of the store, each under the same policy. */
  allBranches?: boolean;
  /** Prune commits a tag names too (by default they are kept, like those a branch or alias names). */
  includeTagged?: boolean;
  /** A count, or its text as the command line gives it (checked here: a whole number). */
  keepBest?: number | string;
  metric?: string;
  mode?: MetricMode;
  /** Release only the tensors matching these globs. */
  tensors?: string[];
  /** Release every byte of the files whose path matches these globs. Neither this nor tensors: every file. */
  files?: string[];
  dryRun?: boolean;
}

export interface PruneResult {
  /** The branch pruned, or the first of `branches`. */
  branch: string;
  branches: string[];
  dryRun: boolean;
  tensors: string[] | null;
  files: string[] | null | undefined;
  kept: { id: ObjectId; branch: string; step?: number; message: string; reasons: string[] }[];
  /** `names`: the tags naming a commit pruned with includeTagged (gc keeps its bytes while a name points at it). */
  pruned: { id: ObjectId; branch: string; step?: number; message: string; names?: string[] }[];
  /** Objects and stored bytes that no longer have a reader: what `ckvc gc` will free (after its grace period). */
  releasedObjects: number;
  releasedBytes: number;
  /** Data the records release that stays: other commits, or a name (tag), still need it. */
  stillNeededObjects: number;
  stillNeededBytes: number;
  /** Data of the pruned commits the records leave alone (tensors and files outside --tensors / --files). */
  notSelectedObjects: number;
  notSelectedBytes: number;
  /** Data of the pruned commits that earlier prunes already released. */
  alreadyReleasedObjects: number;
}

function policyOf(opts: PruneOptions): KeepPolicy {
  const keepLast = parseCount(opts.keepLast, 'keep-last', 1, 'the newest commit of a branch is always kept');
  if (keepLast === undefined && opts.keepWithin === undefined) {
    const what = 'say what to keep: --keep-last N and/or --keep-within DURATION (e.g. 30d)';
    throw new CkvcError('CKVC_BAD_ARGUMENT', what, {});
  }
  const keepWithinMs = opts.keepWithin === undefined ? undefined : parseDuration(opts.keepWithin, 'keep-within');
  const keepBest = parseCount(opts.keepBest, 'keep-best') ?? 0;
  if (keepBest > 0 && !opts.metric) {
    throw new CkvcError('CKVC_BAD_ARGUMENT', '--keep-best K needs --metric KEY to rank by', {});
  }
  // The newest commit is kept whatever the policy: a branch names it.
  return {
    keepLast: keepLast ?? 1,
    keepWithinMs,
    keepWithinText: opts.keepWithin,
    keepBest,
    metric: opts.metric,
    mode: opts.mode,
    includeTagged: opts.includeTagged,
  };
}

/** The record's release: neither globs given releases every file whole (tensor data and all other bytes). */
type Release = Pick<PruneRecord, 'tensors' | 'files'>;

function releaseOf(opts: PruneOptions): Release {
  const globs = (list?: string[]) => (list?.length ? [...new Set(list)].sort() : undefined);
  const tensors = globs(opts.tensors);
  const files = globs(opts.files);
  [...(tensors ?? []), ...(files ?? [])].forEach(compileGlob); // a bad glob fails before anything is written
  if (!tensors && !files) return { tensors: null, files: null };
  return { tensors: tensors ?? [], ...(files ? { files } : {}) };
}

export async function prune(store: ObjectStore, opts: PruneOptions): Promise<PruneResult> {
  const policy = policyOf(opts);
  const release = releaseOf(opts);
  if (opts.allBranches && opts.branch)
    throw new CkvcError('CKVC_USAGE', 'give -b BRANCH or --all-branches, not both', {});
  const branches = opts.allBranches
    ? (await store.refs.list('branch')).map((r) => r.name)
    : [opts.branch ?? (await currentBranch(store))];
  const named = await namedCommits(store);
  const selections: BranchSelection[] = [];
  for (const b of branches) selections.push(await selectForPrune(store, b, policy, named));
  // A commit two branches share is pruned only if every branch's policy lets it go.
  const keptIds = new Set(selections.flatMap((s) => s.kept.map((k) => k.id)));
  const seen = new Set<ObjectId>();
  const toPrune = selections
    .flatMap((s) => s.pruned)
    .filter((c) => !keptIds.has(c.id) && !seen.has(c.id) && seen.add(c.id));
  await checkGlobs(
    store,
    toPrune.map((c) => c.id),
    release,
  );

  const now = Date.now();
  const before = await store.pruned.all();
  const after = new Map(before);
  for (const c of toPrune) {
    after.set(c.id, mergePruneRecords(before.get(c.id), { commit: c.id, time: now, ...release }));
  }
  const freed = await releaseEstimate(
    store,
    before,
    after,
    toPrune.map((c) => c.id),
  );

  if (!opts.dryRun) for (const c of toPrune) await store.pruned.add({ commit: c.id, time: now, ...release });
  const brief = <T extends { id: ObjectId; branch: string; step?: number; message: string }>(c: T) => ({
    id: c.id,
    branch: c.branch,
    ...(c.step !== undefined ? { step: c.step } : {}),
    message: c.message,
  });
  return {
    branch: branches[0] ?? '',
    branches,
    dryRun: Boolean(opts.dryRun),
    tensors: release.tensors,
    files: release.files,
    kept: selections.flatMap((s) => s.kept).map((k) => ({ ...brief(k), reasons: k.reasons })),
    pruned: toPrune.map((p) => ({ ...brief(p), ...('names' in p && p.names ? { names: p.names } : {}) })),
    ...freed,
  };
}

type Estimate = Pick<
  PruneResult,
  | 'releasedObjects'
  | 'releasedBytes'
  | 'stillNeededObjects'
  | 'stillNeededBytes'
  | 'notSelectedObjects'
  | 'notSelectedBytes'
  | 'alreadyReleasedObjects'
>;

/** What gc will be able to free (live now, dead once the records exist), and what of the pruned data stays. */
async function releaseEstimate(
  store: ObjectStore,
  before: Map<ObjectId, PruneRecord>,
  after: Map<ObjectId, PruneRecord>,
  pruning: ObjectId[],
): Promise<Estimate> {
  const roots = await gcRoots(store);
  const liveBefore = await liveObjects(store, roots, before);
  const liveAfter = await liveObjects(store, roots, after);
  const released = [...liveBefore].filter((id) => !liveAfter.has(id));
  // The data the pruned commits hold, walked under no record: what the user may expect to be freed.
  const own = new Set(pruning);
  const dataOf = async (recordOf?: (commit: ObjectId) => PruneRecord | undefined) => {
    const data = new Set<ObjectId>();
    await walkObjects(store, pruning, {
      stopAt: (id) => !own.has(id),
      recordOf,
      visit: (r) => {
        if (r.kind === 'chunk' && r.role !== 'config') data.add(r.id);
      },
    });
    return data;
  };
  const data = await dataOf();
  // What the records themselves leave (--tensors / --files select part of a commit): kept by choice, not shared.
  // A record releasing every file whole leaves nothing: no second walk then.
  const whole = (commit: ObjectId) => {
    const r = after.get(commit);
    return r?.tensors === null && r.files === null;
  };
  const notSelected = pruning.every(whole) ? new Set<ObjectId>() : await dataOf((commit) => after.get(commit));
  const stillNeeded = [...data].filter((id) => liveAfter.has(id) && !notSelected.has(id));
  const sum = async (ids: ObjectId[]) =>
    (await store.locate(ids)).reduce((a, l) => a + (l?.entry.storedLength ?? 0), 0);
  return {
    releasedObjects: released.length,
    releasedBytes: await sum(released),
    stillNeededObjects: stillNeeded.length,
    stillNeededBytes: await sum(stillNeeded),
    notSelectedObjects: notSelected.size,
    notSelectedBytes: await sum([...notSelected]),
    alreadyReleasedObjects: [...data].filter((id) => !liveBefore.has(id)).length,
  };
}

/** Refuses a record's globs that take some names of one tied tensor (FORMAT.md §5.3) and not all of them. */
function refusePartlyTied(rec: ReleaseRecord, path: string, part: TensorNames): void {
  const names = tensorPartNames(part);
  const taken = names.filter((name) => tensorReleased(rec, path, { name }));
  if (taken.length === 0 || taken.length === names.length) return;
  const left = names.filter((n) => !taken.includes(n));
  const all = names.map((n) => `'${n}'`).join(', ');
  throw new CkvcError(
    'CKVC_BAD_ARGUMENT',
    `--tensors takes '${taken[0]}' of ${path} but not '${left[0]}': they are tied names of one stored tensor (${all}), whose data a prune releases for all of them at once; add --tensors '${left[0]}' to release it, or leave out '${taken[0]}'; nothing was marked`,
    { path, tensor: part.name, names, taken, left },
  );
}

/**
 * Checks each glob against the commits to prune, walking their files once:
 * - A glob matching no tensor (or, for --files, no file) of them is refused: a mistyped `optimiser.*` would
 *   otherwise write records that release nothing, and the user would count on space that is never freed.
 * - A glob without ':' matches tensor names only (spec/FORMAT.md §13), but ckvc before that rule also tried it
 *   against `<file>:<name>`, where `model.*` reaches every tensor of `model.safetensors`. A record holding such a
 *   glob would release more data under an older ckvc (a second site, a bundle's receiver) than here, so it is
 *   refused, with the spelling that means the same to every version.
 * - Tied names (FORMAT.md §5.3) share one stored tensor, whose data a record releases by its own name (as every
 *   version reads records). Globs that take some names of a tensor and not others are refused: taking the own
 *   name alone would release a tied name the user did not give, a tied name alone would release nothing.
 */
async function checkGlobs(store: ObjectStore, commits: ObjectId[], release: Release): Promise<void> {
  const tensorGlobs = release.tensors ?? [];
  const fileGlobs = release.files ?? [];
  if (commits.length === 0 || tensorGlobs.length + fileGlobs.length === 0) return;
  const bare = tensorGlobs.filter((g) => !g.includes(':')).map((g) => ({ glob: g, re: compileGlob(g) }));
  const unmatched = new Set([...tensorGlobs, ...fileGlobs.map((g) => `files:${g}`)]);
  const seen = { tensors: new Set<string>(), files: new Set<string>() };
  // One record per glob, made once: the rule's compiled globs are kept per record list.
  const byTensorGlob = tensorGlobs.map((g) => ({ glob: g, rec: { tensors: [g] } }));
  const byFileGlob = fileGlobs.map((g) => ({ key: `files:${g}`, rec: { tensors: [], files: [g] } }));
  const whole = release.tensors ? { tensors: release.tensors, files: release.files ?? undefined } : undefined;
  const pruning = new Set(commits);
  // Under a record with globs the walk sees each file at every path it has in these commits.
  await walkObjects(store, commits, {
    recordOf: () => ({ tensors: tensorGlobs }),
    stopAt: (id) => !pruning.has(id),
    depth: 'files',
    visit: (r) => {
      if (r.kind !== 'file') return;
      if (seen.files.size < 3) seen.files.add(r.path);
      for (const g of byFileGlob) if (fileReleased(g.rec, r.path)) unmatched.delete(g.key);
      for (const part of r.recipe.parts) {
        if (part.kind !== 'tensor') continue;
        if (seen.tensors.size < 3) seen.tensors.add(part.name);
        if (whole && part.tied) refusePartlyTied(whole, r.path, part);
        // A glob naming a tied name matches: refusePartlyTied has made sure it is given with the part's own name.
        const names = tensorPartNames(part);
        for (const g of byTensorGlob)
          if (unmatched.has(g.glob) && names.some((name) => tensorReleased(g.rec, r.path, { name })))
            unmatched.delete(g.glob);
        const hit = bare.find((g) => !g.re.test(part.name) && g.re.test(`${r.path}:${part.name}`));
        if (hit) {
          throw new CkvcError(
            'CKVC_BAD_ARGUMENT',
            `--tensors '${hit.glob}' reaches across the ':' of '${r.path}:${part.name}': ckvc matches a glob without ':' against tensor names only, but older versions also matched it against FILE:NAME, where it would release '${part.name}' too; say which file you mean ('${r.path}:${hit.glob}') or use a glob that stops before the ':'`,
            { glob: hit.glob, path: r.path, tensor: part.name },
          );
        }
      }
    },
  });
  const [first] = unmatched;
  if (first === undefined) return;
  const isFiles = first.startsWith('files:');
  const glob = isFiles ? first.slice('files:'.length) : first;
  const examples = [...(isFiles ? seen.files : seen.tensors)].map((n) => `'${n}'`).join(', ');
  const what = isFiles ? 'file' : 'tensor';
  throw new CkvcError(
    'CKVC_PATH_NOT_FOUND',
    `--${what === 'file' ? 'files' : 'tensors'} '${glob}' matches no ${what} of the ${commits.length} commit(s) to prune${examples ? ` (they hold ${examples}...)` : ` (they hold no ${what})`}; nothing was marked. 'ckvc ls REV${isFiles ? '' : ' --tensors'}' lists a commit's ${isFiles ? 'files' : 'tensors'}`,
    { glob, option: isFiles ? 'files' : 'tensors' },
  );
}
