// `ckvc pack`, `ckvc verify FILE` and `ckvc pull FILE`: self-describing bundles to hand to another site.
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import { bad, type BundleConfigLabel, type BundleRef } from '../core/store-format/bundle-format.js';
import { CkvcError } from '../core/errors.js';
import { BUNDLE_REF_NAMESPACE } from '../core/ref-name.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import { registerReader } from '../store/gc-exclusion.js';
import type { ObjectStore } from '../store/object-store.js';
import { walkObjects, type ObjectSource } from '../store/object-walk.js';
import { REF_PREFIX } from '../store/ref-store.js';
import { resolveRevision } from '../store/revision-resolver.js';
import { importBundle, type ImportResult } from '../remote/bundle-import.js';
import { Overlay } from '../remote/bundle-objects.js';
import { receiveBundle, type ReceivedBundle } from '../remote/bundle-reader.js';
import { writeBundleFile } from '../remote/bundle-writer.js';
import { collectObjects } from '../remote/object-collector.js';
import { keptLabelWarning, type FetchWarning } from '../remote/sync.js';
import { commitClosure, depthCut, storeParents } from '../store/ancestry.js';
import { parseCount } from './commit-input.js';
import { defaultAuthor } from './author.js';
import { recordMovedBranches } from './branch-summary.js';

export interface PackOptions {
  /** Branches, tags or aliases to put in the bundle (HEAD means the current branch). */
  revs: string[];
  output: string;
  /** Revisions the receiver already has: their history is left out and they become prerequisites. */
  since?: string[];
  /** Only the last N commits of each ref: a shallow bundle (BUNDLE.md §5); checked here, as typed. */
  depth?: number | string;
}

/** `--depth N`: a whole number of commits, at least 1. */
export function parseDepth(value: unknown): number | undefined {
  const n = parseCount(value, 'depth');
  if (n === 0)
    throw new CkvcError('CKVC_BAD_ARGUMENT', '--depth must be at least 1 (the commit each ref names)', { depth: 0 });
  return n;
}

/** A ref of a bundle and what it names: the commit, and for an annotated tag the tag's message. */
export interface BundleRefInfo {
  name: string;
  id: ObjectId;
  commit: ObjectId;
  message?: string;
}

export interface PackResult {
  file: string;
  refs: BundleRefInfo[];
  prerequisites: ObjectId[];
  commits: number;
  objects: number;
  bytes: number;
  /** The config labels the bundle carries. */
  labels: BundleConfigLabel[];
  /** Commits whose history the bundle cuts (`--depth`, or this store's own boundary). */
  shallow: ObjectId[];
}

/** What `ref` names, an annotated tag followed to its commit (tags are made of commits: one hop). */
async function describeRef(src: Pick<ObjectSource, 'typeOf' | 'readTag'>, ref: BundleRef): Promise<BundleRefInfo> {
  if ((await src.typeOf(ref.id)) !== 'tag') return { name: ref.name, id: ref.id, commit: ref.id };
  const tag = await src.readTag(ref.id);
  return { name: ref.name, id: ref.id, commit: tag.target, message: tag.message };
}

/** The full ref a rev names: a branch, tag or alias (HEAD: its branch). */
async function refOf(store: ObjectStore, rev: string): Promise<{ name: string; id: ObjectId }> {
  if (rev === 'HEAD') {
    const head = await store.refs.readHead();
    if (head.kind === 'branch') rev = head.branch;
  }
  for (const kind of ['branch', 'tag', 'alias'] as const) {
    const id = await store.refs.read(REF_PREFIX[kind] + rev).catch(() => undefined);
    if (id) return { name: REF_PREFIX[kind] + rev, id };
  }
  await resolveRevision(store, rev); // names the problem if the rev is unknown
  throw new CkvcError(
    'CKVC_BAD_ARGUMENT',
    `${JSON.stringify(rev)} is not a branch, tag or alias; a bundle carries named refs (create a branch or tag at it first)`,
    { revision: rev },
  );
}

export async function packBundle(store: ObjectStore, opts: PackOptions): Promise<PackResult> {
  if (!opts.revs.length) throw new CkvcError('CKVC_BAD_ARGUMENT', 'name at least one branch, tag or alias to pack', {});
  const refs = [];
  for (const rev of opts.revs) refs.push(await refOf(store, rev));
  const sinceIds: ObjectId[] = [];
  for (const rev of opts.since ?? []) sinceIds.push((await resolveRevision(store, rev)).id);
  const have = await commitClosure(storeParents(store), sinceIds);
  const registration = await registerReader(store.layout); // gc must not repack what we are copying
  try {
    // Everything the prerequisites' history holds is left out too, down to single chunks (an unchanged tensor).
    const theirs = sinceIds.length
      ? new Set((await collectObjects(store, sinceIds, { isBoundary: async () => false, leftOutOk: true })).objects)
      : undefined;
    const tips = refs.map((r) => r.id);
    const depth = parseDepth(opts.depth);
    const c = await collectObjects(store, tips, {
      isBoundary: async (id) => have.has(id),
      receiverHas: theirs && (async (ids) => ids.map((id) => theirs.has(id))),
      ...(depth ? { cutParents: await depthCut(store, tips, depth) } : {}),
    });
    // The receiver must have every --since commit: the objects of their whole history were left out.
    const prerequisites = [...new Set([...c.prerequisites, ...sinceIds])];
    const shallow = [...c.shallow.keys()];
    const content = { refs, objects: c.objects, prerequisites, pruned: c.pruned, shallow };
    const w = await writeBundleFile(store, content, opts.output);
    const described = [];
    for (const r of refs) described.push(await describeRef(store, r));
    return {
      file: opts.output,
      refs: described,
      prerequisites,
      commits: c.commits.length,
      objects: w.objects,
      bytes: w.bytes,
      labels: w.labels,
      shallow,
    };
  } finally {
    await registration.release();
  }
}

export interface BundleCommitInfo {
  id: ObjectId;
  message: string;
  branch?: string;
  step?: number;
  time: number;
  metrics: Record<string, number>;
  configHash?: string;
}

export interface BundleReport {
  file: string;
  ok: true;
  bytes: number;
  objects: number;
  refs: BundleRefInfo[];
  prerequisites: ObjectId[];
  commits: BundleCommitInfo[];
  /** Labels of the configs of the bundle's commits, as its sender had them. */
  labels: BundleConfigLabel[];
  /** Objects the refs reach that are not inside: expected from the prerequisites' history. */
  fromPrerequisites: number;
  pruned: { commit: ObjectId; time: number; tensors: string[] | null }[];
  /** Commits where the bundle's history stops (shallow, BUNDLE.md §2): their parents are not inside. */
  shallow: ObjectId[];
}

/** `store`: the store it is pulled into, which a thin bundle's delta records may build on (BUNDLE.md §3). */
export async function openBundleFile(
  file: string,
  parent: string,
  durable = true,
  store?: ObjectStore,
): Promise<ReceivedBundle> {
  let size: number;
  try {
    size = (await fs.stat(file)).size;
  } catch (e) {
    throw new CkvcError(
      'CKVC_INPUT_NOT_FOUND',
      `bundle ${file} cannot be read (${(e as NodeJS.ErrnoException).code}); check the path`,
      { path: file },
    );
  }
  return receiveBundle(createReadStream(file, { highWaterMark: 1024 * 1024 }), parent, `bundle ${file}`, size, {
    durable,
    ...(store ? { store } : {}),
  });
}

/**
 * Verifies a bundle without a store: every object re-hashed, the trailer and pack checksums, and closure: every
 * object the refs reach is inside, or (for an incremental bundle) left to the prerequisites.
 */
export async function verifyBundle(file: string): Promise<BundleReport> {
  return withVerifiedBundle(file, async (report) => report);
}

/**
 * Verifies a bundle as `verify FILE` does, then hands its report and objects to `use` while its quarantine (a
 * system temp folder, never a store) still exists; nothing of it reaches any store.
 */
export async function withVerifiedBundle<T>(
  file: string,
  use: (r: BundleReport, o: Overlay) => Promise<T>,
): Promise<T> {
  const rb = await openBundleFile(file, os.tmpdir(), false);
  const o = new Overlay(undefined, rb);
  try {
    const refs: BundleRefInfo[] = [];
    for (const r of rb.header.refs) {
      refs.push(o.inBundle(r.id) ? await describeRef(o, r) : { name: r.name, id: r.id, commit: r.id });
    }
    const { commits, fromPrerequisites } = await walkBundle(rb, o, `bundle ${file}`);
    return await use(
      {
        file,
        ok: true,
        bytes: rb.bytes,
        objects: rb.entries.length,
        refs,
        prerequisites: rb.header.prerequisites,
        commits,
        fromPrerequisites,
        pruned: rb.header.pruned,
        labels: rb.header.labels ?? [],
        shallow: rb.header.shallow ?? [],
      },
      o,
    );
  } finally {
    await o.close();
    await rb.close();
  }
}

/**
 * Step 6 of BUNDLE.md §3 for a bundle on its own: walks everything the refs reach, collecting the commits (newest
 * first), and counts what is left to the prerequisites; anything else absent makes the bundle incomplete.
 * A partly pruned commit's kept tensors are checked too; only released data may be missing.
 */
async function walkBundle(
  rb: ReceivedBundle,
  o: Overlay,
  where: string,
): Promise<{ commits: BundleCommitInfo[]; fromPrerequisites: number }> {
  const prereq = new Set(rb.header.prerequisites);
  const pruned = new Map(rb.header.pruned.map((p) => [p.commit, p]));
  const commits: BundleCommitInfo[] = [];
  const absentSeen = new Set<ObjectId>();
  const absent = (id: ObjectId, what: string) => {
    if (prereq.size === 0) {
      const why = 'is not inside and the bundle has no prerequisites';
      throw bad(where, `is incomplete: ${what} ${id.slice(0, 16)} ${why}`, { id });
    }
    absentSeen.add(id);
  };
  await walkObjects(
    o,
    rb.header.refs.map((r) => r.id),
    {
      recordOf: (id) => pruned.get(id),
      stopAt: (id) => prereq.has(id),
      visit: (r) => {
        if (r.kind === 'commit') {
          const c = r.commit;
          commits.push({
            id: r.id,
            message: c.message,
            branch: c.branch,
            step: c.step,
            time: c.time,
            metrics: c.metrics ?? {},
            configHash: c.config?.hash,
          });
        } else if ((r.kind === 'chunk' || (r.kind === 'tensor' && r.released)) && !o.inBundle(r.id)) {
          absent(r.id, r.kind === 'chunk' && r.role === 'config' ? 'config snapshot' : r.kind);
        }
      },
      onUnreadable: (e, at) => {
        if (e instanceof CkvcError && e.code === 'CKVC_MISSING_OBJECT' && !o.inBundle(at.id)) {
          return absent(at.id, at.kind);
        }
        if (e instanceof CkvcError && e.code !== 'CKVC_BAD_BUNDLE') {
          throw bad(where, `${at.where}: ${e.message}`, { id: at.id });
        }
        throw e;
      },
    },
  );
  commits.sort((a, b) => b.time - a.time);
  return { commits, fromPrerequisites: absentSeen.size };
}

export interface PullBundleOptions {
  file: string;
  /** Set the bundle's refs themselves instead of bundle/<name>. */
  updateRefs?: boolean;
  force?: boolean;
}

/** Where a bundle ref lands: refs/heads/NAME -> refs/heads/bundle/NAME (same for tags and aliases). */
export function bundleNamespace(name: string): string {
  const m = /^(refs\/(?:heads|tags|aliases)\/)(.*)$/.exec(name)!;
  return `${m[1]}${BUNDLE_REF_NAMESPACE}${m[2]}`;
}

export async function pullBundle(
  store: ObjectStore,
  opts: PullBundleOptions,
): Promise<ImportResult & { file: string; warnings: FetchWarning[] }> {
  const rb = await openBundleFile(opts.file, store.layout.tmpDir, true, store);
  try {
    const r = await importBundle(
      store,
      rb,
      {
        targetRef: (name) => (opts.updateRefs ? name : bundleNamespace(name)),
        force: opts.force,
        who: defaultAuthor(),
        message: `pull: ${opts.file}`,
      },
      `bundle ${opts.file}`,
    );
    await recordMovedBranches(store, r.refs);
    const warnings = r.labelsKept.map((k) => keptLabelWarning(k, `bundle ${opts.file}`));
    return { ...r, file: opts.file, warnings };
  } finally {
    await rb.close();
  }
}
