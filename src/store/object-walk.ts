// The one walk of the object graph (spec/FORMAT.md §13, §15): tag -> commit -> parents, config snapshot, tree
// -> trees and file recipes -> chunk parts and tensors -> tensor chunks, honouring prune records. gc's live set,
// what push/fetch/pack send, what a receiver checks before promoting, verify and verify FILE all walk through
// here, so they cannot disagree about what a commit still needs. In a shallow store the walk stops at a grafted
// commit's absent parents (FORMAT.md §17), and only at absent ones: a graft never hides what the store holds.
//
// Release belongs to a *reach*, not to an object: a tensor's data is released when it is reached in a commit
// whose record matches it at that file path (a glob with ':' depends on the path). The same tensor, file or
// tree may be reached by several paths, in several commits, under several records; its data is needed as long
// as one reach is not released. So a tree or file is re-walked once per record it is reached under (and, for a
// record with globs, once per path); a walk under no record covers every other one.
import { CkvcError } from '../core/errors.js';
import {
  compileGlob,
  type Glob,
  tensorGlob,
  tensorMatches,
  tensorSelected,
  tensorSelection,
  type TensorGlob,
  type TensorSelection,
} from '../core/glob.js';
import type { ObjectId, ObjectType } from '../core/store-format/object-id.js';
import type { CommitObject } from '../core/store-format/objects/commit-object.js';
import type { FileRecipe, TensorNames } from '../core/store-format/objects/file-recipe.js';
import type { TagObject } from '../core/store-format/objects/tag-object.js';
import type { TensorObject } from '../core/store-format/objects/tensor-object.js';
import type { TreeObject } from '../core/store-format/objects/tree-object.js';

/** Where objects are read from: a store, a received bundle, or a bundle over a store. */
export interface ObjectSource {
  typeOf(id: ObjectId): Promise<ObjectType | undefined>;
  readTag(id: ObjectId): Promise<TagObject>;
  readCommit(id: ObjectId): Promise<CommitObject>;
  readTree(id: ObjectId): Promise<TreeObject>;
  readFileRecipe(id: ObjectId): Promise<FileRecipe>;
  readTensor(id: ObjectId): Promise<TensorObject>;
  /** Grafted commits (FORMAT.md §17): their parents that `typeOf` does not find are cut, not missing. */
  shallowCommits?(): Promise<ReadonlySet<ObjectId>>;
}

/**
 * What a prune record releases (FORMAT.md §13). `tensors`: null = the data of every tensor of the commit, else
 * the matching ones. `files` (absent in records older than it, meaning none): null = every byte of every file
 * (chunk parts too: opaque files, headers, pickles), else every byte of the files whose path matches a glob.
 */
export interface ReleaseRecord {
  tensors: string[] | null;
  files?: string[] | null;
  /**
   * A partial fetch's promise (FORMAT.md §13.2): only the data of tensors that one of these selections (globs,
   * '!' excluding) takes is held; every other tensor's data counts as released for this walk.
   */
  keep?: string[][];
}

const compiled = new WeakMap<string[], TensorGlob[]>();
const compiledPaths = new WeakMap<string[], Glob[]>();
const compiledKeeps = new WeakMap<string[][], TensorSelection[]>();

/** Is tensor `name` at `filePath` outside every selection a promise keeps (its data left out by a partial fetch)? */
function leftOut(keep: string[][], filePath: string, name: string): boolean {
  let sels = compiledKeeps.get(keep);
  if (!sels) compiledKeeps.set(keep, (sels = keep.map((k) => tensorSelection(k, '--filter'))));
  return !sels.some((sel) => tensorSelected(sel, filePath, name));
}

function globsOf(rec: ReleaseRecord): TensorGlob[] {
  const list = rec.tensors!;
  let g = compiled.get(list);
  if (!g) compiled.set(list, (g = list.map(tensorGlob)));
  return g;
}

/** Does the commit's record release every byte of the file at `filePath`? */
export function fileReleased(rec: ReleaseRecord | undefined, filePath: string): boolean {
  if (!rec || rec.files === undefined) return false;
  if (rec.files === null) return true;
  let res = compiledPaths.get(rec.files);
  if (!res) compiledPaths.set(rec.files, (res = rec.files.map(compileGlob)));
  return res.some((re) => re.test(filePath));
}

/**
 * Is the tensor (a part, or one name of it) of the file at `filePath` released by the commit's record? The one
 * statement of the rule. Records (prune records, a partial fetch's filters) match a part's own `name` only, never
 * its tied names (FORMAT.md §5.3): they are kept and exchanged across versions, and a ckvc that predates tied
 * names reads them so. A record matching a tied name alone must not release what an older ckvc keeps.
 */
export function tensorReleased(rec: ReleaseRecord | undefined, filePath: string, tensor: TensorNames): boolean {
  if (!rec) return false;
  if (rec.tensors === null || fileReleased(rec, filePath)) return true;
  if (rec.keep && leftOut(rec.keep, filePath, tensor.name)) return true;
  return tensorMatches(globsOf(rec), filePath, tensor.name);
}

/** Does the record release anything of this file (a tensor's data or its chunk parts)? */
export function fileDataReleased(rec: ReleaseRecord | undefined, filePath: string, recipe: FileRecipe): boolean {
  if (fileReleased(rec, filePath)) return recipe.parts.length > 0;
  return recipe.parts.some((p) => p.kind === 'tensor' && tensorReleased(rec, filePath, p));
}

/**
 * One object reached by the walk. Trees and files are reported once per walk of them (so a file is seen at each
 * path a glob record distinguishes); tags, commits and chunks once per ID; a tensor at most twice: once where a
 * reach released it (not read: only its ID is known to be needed) and once where a reach needs its data (read,
 * its chunks reported). Chunks (`role` says whose) are never read: a consumer checks or collects their IDs.
 */
export type Reached =
  | { kind: 'tag'; id: ObjectId; tag: TagObject }
  | { kind: 'commit'; id: ObjectId; commit: CommitObject; record?: ReleaseRecord; cut?: ObjectId[] }
  | { kind: 'tree'; id: ObjectId; commit: ObjectId; path: string }
  | { kind: 'file'; id: ObjectId; commit: ObjectId; path: string; recipe: FileRecipe }
  | {
      kind: 'tensor';
      id: ObjectId;
      commit: ObjectId;
      path: string;
      name: string;
      released: boolean;
      tensor?: TensorObject;
    }
  | { kind: 'chunk'; id: ObjectId; commit: ObjectId; path: string; role: 'config' | 'file' | 'tensor' };

export type ReadKind = 'tag' | 'commit' | 'tree' | 'file' | 'tensor';

export interface WalkOptions {
  /** The prune record that applies to a commit (consumers decide which records count: see reachability.ts). */
  recordOf?: (commit: ObjectId) => ReleaseRecord | undefined;
  /** Called once for every tag or commit before it is read: true stops the walk there (the other side has it). */
  stopAt?: (id: ObjectId) => boolean | Promise<boolean>;
  visit: (r: Reached) => void | Promise<void>;
  /**
   * An object on the way could not be read (missing, damaged, or not of the type its referrer says). Returning
   * goes on without what lies below it (verify collects problems); the default throws the error.
   */
  onUnreadable?: (e: unknown, at: { id: ObjectId; kind: ReadKind; where: string }) => void | Promise<void>;
  /**
   * Parents of a commit not to walk, besides those a graft cuts (`pack --depth`: the history past the depth).
   * They are reported in the commit's `cut`.
   */
  cutParents?: (commit: ObjectId, parents: ObjectId[]) => ObjectId[];
  /** 'files' stops at file recipes (no tensor is read). Default 'all'. */
  depth?: 'files' | 'all';
  /**
   * File recipes to walk too, after the commits, each as if at `path` in a commit under no prune record (reported
   * with commit ''): whether a store still holds what a recipe needs (the files cache, FORMAT.md §19).
   */
  files?: { id: ObjectId; path: string }[];
}

interface Context {
  key: string;
  record?: ReleaseRecord;
  byPath: boolean;
}

function contextOf(rec: ReleaseRecord | undefined): Context {
  if (!rec) return { key: '-', byPath: false };
  if (rec.keep && rec.files !== null) {
    const { keep, ...rest } = rec;
    const inner = contextOf(rest);
    return { key: `k${JSON.stringify(keep)}${inner.key}`, record: rec, byPath: true };
  }
  if (rec.files === null) return { key: 'F', record: rec, byPath: false };
  const files = rec.files ? `f${JSON.stringify([...rec.files].sort())}` : '';
  if (rec.tensors === null)
    return files ? { key: `*${files}`, record: rec, byPath: true } : { key: '*', record: rec, byPath: false };
  return { key: `g${JSON.stringify([...rec.tensors].sort())}${files}`, record: rec, byPath: true };
}

const NO_RECORD = '-';

export async function walkObjects(src: ObjectSource, roots: ObjectId[], opts: WalkOptions): Promise<void> {
  const visitedNodes = new Set<ObjectId>();
  const walked = new Set<string>();
  const tensorsSeen = new Set<string>();
  const chunks = new Set<ObjectId>();
  const depth = opts.depth ?? 'all';
  const grafts = (await src.shallowCommits?.()) ?? new Set<ObjectId>();

  /** The parents the walk leaves out: asked to (depth), or absent past a graft (never a present one). */
  const cutOf = async (id: ObjectId, parents: ObjectId[]): Promise<ObjectId[]> => {
    const cut = new Set(opts.cutParents?.(id, parents) ?? []);
    if (grafts.has(id)) for (const p of parents) if ((await src.typeOf(p)) === undefined) cut.add(p);
    return parents.filter((p) => cut.has(p));
  };

  const read = async <T>(id: ObjectId, kind: ReadKind, where: string, f: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await f();
    } catch (e) {
      if (!opts.onUnreadable) throw e;
      await opts.onUnreadable(e, { id, kind, where });
      return undefined;
    }
  };

  /** True the first time `id` is walked in this context at this path; a walk under no record covers all. */
  const firstWalk = (id: ObjectId, ctx: Context, path: string): boolean => {
    if (walked.has(`${NO_RECORD}\0${id}`)) return false;
    const key = ctx.byPath ? `${ctx.key}\0${id}\0${path}` : `${ctx.key}\0${id}`;
    if (walked.has(key)) return false;
    walked.add(key);
    return true;
  };

  const chunk = async (id: ObjectId, commit: ObjectId, path: string, role: 'config' | 'file' | 'tensor') => {
    if (chunks.has(id)) return;
    chunks.add(id);
    await opts.visit({ kind: 'chunk', id, commit, path, role });
  };
  // A chunk part of a released file is not reported: its data is needed only through another, unreleased reach.

  const file = async (id: ObjectId, commit: ObjectId, path: string, ctx: Context, where: string) => {
    if (!firstWalk(id, ctx, path)) return;
    const recipe = await read(id, 'file', where, () => src.readFileRecipe(id));
    if (!recipe) return;
    await opts.visit({ kind: 'file', id, commit, path, recipe });
    if (depth === 'files') return;
    const wholeFileReleased = fileReleased(ctx.record, path);
    for (const part of recipe.parts) {
      if (part.kind === 'chunk') {
        if (!wholeFileReleased) await chunk(part.id, commit, path, 'file');
        continue;
      }
      const released = tensorReleased(ctx.record, path, part);
      const key = `${released ? 'r' : 'd'}${part.id}`;
      // Data already walked covers a released reach too.
      if (tensorsSeen.has(key) || tensorsSeen.has(`d${part.id}`)) continue;
      tensorsSeen.add(key);
      if (released) {
        await opts.visit({ kind: 'tensor', id: part.id, commit, path, name: part.name, released: true });
        continue;
      }
      const tensor = await read(part.id, 'tensor', `${where}:${part.name}`, () => src.readTensor(part.id));
      if (!tensor) continue;
      await opts.visit({ kind: 'tensor', id: part.id, commit, path, name: part.name, released: false, tensor });
      for (const c of tensor.chunks) await chunk(c, commit, path, 'tensor');
    }
  };

  const tree = async (id: ObjectId, commit: ObjectId, dir: string, ctx: Context, where: string): Promise<void> => {
    if (!firstWalk(id, ctx, dir)) return;
    const t = await read(id, 'tree', where, () => src.readTree(id));
    if (!t) return;
    await opts.visit({ kind: 'tree', id, commit, path: dir });
    for (const e of t.entries) {
      const p = dir ? `${dir}/${e.name}` : e.name;
      if (e.type === 'tree') await tree(e.id, commit, p, ctx, `${where}/${e.name}`);
      else await file(e.id, commit, p, ctx, `${where}/${e.name}`);
    }
  };

  const stack = [...roots].reverse();
  while (stack.length) {
    const id = stack.pop()!;
    if (visitedNodes.has(id)) continue;
    visitedNodes.add(id);
    if (opts.stopAt && (await opts.stopAt(id))) continue;
    const where = `commit ${id.slice(0, 12)}`;
    const type = await read(id, 'commit', where, async () => {
      const t = await src.typeOf(id);
      if (t === 'tag' || t === 'commit') return t;
      if (t === undefined)
        throw new CkvcError(
          'CKVC_MISSING_OBJECT',
          `commit ${id.slice(0, 16)} is missing; run 'ckvc verify' to see what is affected`,
          { id, what: 'commit' },
        );
      throw new CkvcError('CKVC_CORRUPT_OBJECT', `${id.slice(0, 16)} is a ${t} where a commit or tag is needed`, {
        id,
        type: t,
      });
    });
    if (type === 'tag') {
      const tag = await read(id, 'tag', `tag ${id.slice(0, 12)}`, () => src.readTag(id));
      if (!tag) continue;
      await opts.visit({ kind: 'tag', id, tag });
      stack.push(tag.target);
      continue;
    }
    if (type !== 'commit') continue;
    const commit = await read(id, 'commit', where, () => src.readCommit(id));
    if (!commit) continue;
    const record = opts.recordOf?.(id);
    const cut = await cutOf(id, commit.parents);
    await opts.visit({ kind: 'commit', id, commit, ...(record ? { record } : {}), ...(cut.length ? { cut } : {}) });
    for (let i = commit.parents.length - 1; i >= 0; i--)
      if (!cut.includes(commit.parents[i]!)) stack.push(commit.parents[i]!);
    if (commit.config) await chunk(commit.config.snapshot, id, '', 'config');
    await tree(commit.tree, id, '', contextOf(record), where);
  }
  for (const f of opts.files ?? []) await file(f.id, '', f.path, contextOf(undefined), `file ${f.path}`);
}

/** Every file under a tree with its path, twins included (no release applies: a plain listing). */
export interface TreeFile {
  /** Path inside the commit, '/'-separated. */
  path: string;
  id: ObjectId;
  size: number;
}

/** Every file under a tree, depth first in name order. */
export async function listTreeFiles(
  src: Pick<ObjectSource, 'readTree'>,
  treeId: ObjectId,
  prefix = '',
): Promise<TreeFile[]> {
  const out: TreeFile[] = [];
  for (const e of (await src.readTree(treeId)).entries) {
    const p = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.type === 'tree') out.push(...(await listTreeFiles(src, e.id, p)));
    else out.push({ path: p, id: e.id, size: e.size });
  }
  return out;
}
