// `ckvc diff A B`: config keys, metric deltas, files, and tensors, with numeric change figures streamed chunk
// by chunk. Tensors with the same ID are skipped unread; chunks with the same ID in a changed tensor are read
// on A's side only (for ||a||). Memory holds a few chunks at a time, whatever the checkpoint size.
import type { ConfigChange } from '../core/diff/config-delta.js';
import { diffConfig } from '../core/diff/config-delta.js';
import { diffMetrics, type MetricChange } from '../core/diff/metric-delta.js';
import {
  type DiffedFile,
  matchedName,
  mostlySame,
  renameCandidates,
  type TensorLayout,
} from '../core/diff/renamed-files.js';
import { isNumericDtype, TensorDeltaAccumulator, type TensorDelta } from '../core/diff/tensor-delta.js';
import { tensorGlob, tensorMatches } from '../core/glob.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { CommitObject } from '../core/store-format/objects/commit-object.js';
import type { TensorObject } from '../core/store-format/objects/tensor-object.js';
import { listTreeFiles } from '../store/object-walk.js';
import type { ObjectStore } from '../store/object-store.js';
import type { PruneRecord } from '../store/prune-records.js';
import { type TensorNames, tensorPartNames } from '../core/store-format/objects/file-recipe.js';
import { tensorReleased } from '../store/object-walk.js';
import { resolveRevision } from '../store/revision-resolver.js';
import { fetchLeftOut } from './fetch-on-demand.js';
import { fileOfCommit, parseObjectPath } from './inspect.js';
import { CkvcError } from '../core/errors.js';
import { configOf } from './config.js';

export interface DiffOptions {
  /** A revision, or REV:PATH on both sides to compare one file with another (step_700 with step_800). */
  a: string;
  b: string;
  /** Only tensors matching any of these globs (by name, or `<file>:<name>`). */
  tensors?: string[];
  /** Skip the numeric figures (for --stat): only IDs are compared, no tensor data is read. */
  numeric?: boolean;
}

export interface DiffSide {
  rev: string;
  id: ObjectId;
  message: string;
  step?: number;
  time: number;
  configHash?: string;
  configLabel?: string;
}

export interface FileChange {
  path: string;
  /** For a file of B that is a file of A under another name (core/diff/renamed-files.ts): A's path. */
  renamedFrom?: string;
  format: string;
  sizeA?: number;
  sizeB?: number;
  /** For files in both: tensors added, removed, changed inside it. */
  tensorsAdded?: number;
  tensorsRemoved?: number;
  tensorsChanged?: number;
}

export interface TensorRef {
  file: string;
  name: string;
  dtype: string;
  shape: number[];
  bytes: number;
}

export interface TensorChange {
  /** B's file and name; A's, where the file was renamed, are `fileA` (and `nameA` for an .npy file's tensor). */
  file: string;
  fileA?: string;
  name: string;
  nameA?: string;
  dtypeA: string;
  dtypeB: string;
  shapeA: number[];
  shapeB: number[];
  bytesA: number;
  bytesB: number;
  chunks: number;
  changedChunks: number;
  /** changedChunks / chunks. */
  chunkFraction: number;
  /** Numeric figures, when both sides share dtype, shape and chunking and the data is there. */
  delta?: TensorDelta;
  /** Why there are no numeric figures. */
  note?: string;
}

export interface DiffResult {
  a: DiffSide;
  b: DiffSide;
  config: { same: boolean; a?: string; b?: string; changes: ConfigChange[]; note?: string };
  metrics: MetricChange[];
  files: { added: FileChange[]; removed: FileChange[]; changed: FileChange[]; unchanged: number };
  tensors: { added: TensorRef[]; removed: TensorRef[]; changed: TensorChange[]; unchanged: number };
}

/** One name of a tensor in a file: a tied name is an entry of its own (FORMAT.md §5.3). */
interface TensorEntry {
  file: string;
  name: string;
  id: ObjectId;
  /** The part the name belongs to: a prune record releases it by any of its names. */
  part: TensorNames;
}

async function side(store: ObjectStore, rev: string): Promise<{ side: DiffSide; commit: CommitObject }> {
  const { id } = await resolveRevision(store, rev);
  const c = await store.readCommit(id);
  const labels = await store.configLabels.all();
  return {
    side: {
      rev,
      id,
      message: c.message,
      step: c.step,
      time: c.time,
      configHash: c.config?.hash,
      configLabel: c.config ? labels.get(c.config.hash) : undefined,
    },
    commit: c,
  };
}

/** `REV:PATH` on both sides (one file with another), or undefined for two revisions; one side alone is refused. */
function filePair(
  a: string,
  b: string,
): { a: { rev: string; path: string }; b: { rev: string; path: string } } | undefined {
  // Ref names cannot hold ':' (FORMAT.md §6.1): a ':' can only be REV:PATH.
  if (!a.includes(':') && !b.includes(':')) return undefined;
  if (!a.includes(':') || !b.includes(':'))
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `give REV:PATH on both sides to compare two files (${JSON.stringify(a.includes(':') ? b : a)} is a revision), for example 'ckvc diff HEAD~1:step_700.safetensors HEAD:step_800.safetensors'`,
      { a, b },
    );
  return { a: parseObjectPath(a), b: parseObjectPath(b) };
}

/** The same bytes: the same recipe, or recipes of the same whole-file BLAKE3 and size (cut by other rules). */
function sameContent(a: { id: ObjectId; size: number; b3: string }, b: { id: ObjectId; size: number; b3: string }) {
  return a.id === b.id || (a.b3 === b.b3 && a.size === b.size);
}

async function filesOf(store: ObjectStore, c: CommitObject, s: DiffSide, only?: string) {
  const out = new Map<string, { id: ObjectId; size: number; b3: string; format: string; tensors: TensorEntry[] }>();
  const listed = await listTreeFiles(store, c.tree);
  for (const f of only === undefined ? listed : [fileOfCommit(listed, only, s.rev, s.id)]) {
    const r = await store.readFileRecipe(f.id);
    const tensors = r.parts.flatMap((p) =>
      p.kind === 'tensor' ? tensorPartNames(p).map((name) => ({ file: f.path, name, id: p.id, part: p })) : [],
    );
    out.set(f.path, { id: f.id, size: r.size, b3: r.b3, format: r.format, tensors });
  }
  return out;
}

export async function diff(store: ObjectStore, opts: DiffOptions): Promise<DiffResult> {
  const globs = opts.tensors?.length ? opts.tensors.map(tensorGlob) : undefined;
  const named = filePair(opts.a, opts.b);
  const A = await side(store, named?.a.rev ?? opts.a);
  const B = await side(store, named?.b.rev ?? opts.b);

  let config: DiffResult['config'];
  if (A.commit.config && B.commit.config) {
    const same = A.commit.config.hash === B.commit.config.hash;
    const changes = same
      ? []
      : diffConfig((await configOf(store, A.side.id)).value, (await configOf(store, B.side.id)).value);
    config = { same, a: A.commit.config.hash, b: B.commit.config.hash, changes };
  } else {
    config = {
      same: !A.commit.config && !B.commit.config,
      a: A.commit.config?.hash,
      b: B.commit.config?.hash,
      changes: [],
      note: `${!A.commit.config ? 'A' : ''}${!A.commit.config && !B.commit.config ? ' and ' : ''}${!B.commit.config ? 'B' : ''} committed without --config`,
    };
  }

  const fa = await filesOf(store, A.commit, A.side, named?.a.path);
  const fb = await filesOf(store, B.commit, B.side, named?.b.path);
  const files: DiffResult['files'] = { added: [], removed: [], changed: [], unchanged: 0 };
  // B's path -> A's, and back: a renamed file is one changed file, its tensors compared by name. Two files named
  // on the command line are such a pair whatever their names.
  const renamedFrom =
    named && named.a.path !== named.b.path
      ? new Map([[named.b.path, named.a.path]])
      : await renamedFiles(store, fa, fb);
  const renamedTo = new Map([...renamedFrom].map(([b, a]) => [a, b]));
  for (const [p, f] of fa)
    if (!fb.has(p) && !renamedTo.has(p)) files.removed.push({ path: p, format: f.format, sizeA: f.size });
  for (const [p, f] of fb)
    if (!fa.has(p) && !renamedFrom.has(p)) files.added.push({ path: p, format: f.format, sizeB: f.size });

  // A renamed file's tensors are selected by either of its names, on both sides.
  const wantedBy = (otherName: Map<string, string>) => (t: TensorEntry) => {
    if (!globs || tensorMatches(globs, t.file, t.name)) return true;
    const other = otherName.get(t.file);
    return other !== undefined && tensorMatches(globs, other, t.name);
  };
  // A's tensors are keyed by the path their file has in B; a renamed file's tensors by the name they are matched by
  // (an .npy file's one tensor is named after the file).
  const formatOf = (file: string) => (fb.get(file) ?? fa.get(file))!.format;
  const key = (t: TensorEntry) => {
    const file = renamedTo.get(t.file) ?? t.file;
    return `${file}\0${renamedFrom.has(file) ? matchedName(formatOf(file), t.name) : t.name}`;
  };
  // A file whose bytes are the same on both sides is unchanged, whatever its recipes say: one cut by an older
  // ckvc lacks the tied names a newer one records (FORMAT.md §5.3). Its tensors are B's on both sides, so none
  // reads as added or removed.
  const ta = new Map(
    [...fa]
      .flatMap(([p, f]) => {
        const g = fb.get(p);
        return g && g.id !== f.id && sameContent(f, g) ? g.tensors : f.tensors;
      })
      .filter(wantedBy(renamedTo))
      .map((t) => [key(t), t]),
  );
  const tb = new Map(
    [...fb.values()]
      .flatMap((f) => f.tensors)
      .filter(wantedBy(renamedFrom))
      .map((t) => [key(t), t]),
  );
  if (globs && ta.size === 0 && tb.size === 0)
    throw new CkvcError(
      'CKVC_PATH_NOT_FOUND',
      `no tensor of ${A.side.id.slice(0, 12)} or ${B.side.id.slice(0, 12)} matches --tensor ${opts.tensors!.map((g) => JSON.stringify(g)).join(', ')}; 'ckvc ls ${A.side.id.slice(0, 12)} --tensors' lists the tensors and their names`,
      { tensors: opts.tensors },
    );
  const tensors: DiffResult['tensors'] = { added: [], removed: [], changed: [], unchanged: 0 };
  const ref = async (t: TensorEntry): Promise<TensorRef> => {
    const o = await store.readTensor(t.id);
    return { file: t.file, name: t.name, dtype: o.dtype, shape: o.shape, bytes: o.size };
  };
  for (const [k, t] of ta) if (!tb.has(k)) tensors.removed.push(await ref(t));
  for (const [k, t] of tb) if (!ta.has(k)) tensors.added.push(await ref(t));

  const prunedA = await store.pruned.get(A.side.id);
  const prunedB = await store.pruned.get(B.side.id);
  if (opts.numeric !== false) {
    // The changed tensors' data is read: what a partial fetch left out of either side is fetched first.
    const changed = new Set([...ta].filter(([k, t]) => tb.has(k) && tb.get(k)!.id !== t.id).map(([k]) => k));
    const pick = (file: string, names: readonly string[]) =>
      names.some((name) => changed.has(key({ file, name, id: '', part: { name } })));
    await fetchLeftOut(store, A.side.id, pick, 'diff');
    await fetchLeftOut(store, B.side.id, pick, 'diff');
  }
  for (const [k, t] of ta) {
    const u = tb.get(k);
    if (!u) continue;
    if (u.id === t.id) {
      tensors.unchanged++;
      continue;
    }
    tensors.changed.push(await tensorChange(store, t, u, opts.numeric !== false, prunedA, prunedB));
  }

  for (const [p, f] of fa) {
    const q = renamedTo.get(p) ?? p;
    const g = fb.get(q);
    if (!g) continue;
    if (q === p && sameContent(f, g)) {
      files.unchanged++;
      continue;
    }
    const inFile = (list: { file: string }[], path: string) => list.filter((t) => t.file === path).length;
    files.changed.push({
      path: q,
      ...(q !== p ? { renamedFrom: p } : {}),
      format: g.format,
      sizeA: f.size,
      sizeB: g.size,
      ...(f.tensors.length || g.tensors.length
        ? {
            tensorsAdded: inFile(tensors.added, q),
            tensorsRemoved: inFile(tensors.removed, p),
            tensorsChanged: inFile(tensors.changed, q),
          }
        : {}),
    });
  }
  const byPath = (x: { path: string }, y: { path: string }) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0);
  files.added.sort(byPath);
  files.removed.sort(byPath);
  files.changed.sort(byPath);
  return {
    a: A.side,
    b: B.side,
    config,
    metrics: diffMetrics(A.commit.metrics ?? {}, B.commit.metrics ?? {}),
    files,
    tensors,
  };
}

/** Renamed files (core/diff/renamed-files.ts), B's path -> A's: dtypes and shapes are read for candidates only. */
async function renamedFiles(
  store: ObjectStore,
  fa: Map<string, { format: string; tensors: TensorEntry[] }>,
  fb: Map<string, { format: string; tensors: TensorEntry[] }>,
): Promise<Map<string, string>> {
  const removed = new Set([...fa.keys()].filter((p) => !fb.has(p)));
  const added = new Set([...fb.keys()].filter((p) => !fa.has(p)));
  const files = (m: typeof fa): DiffedFile[] =>
    [...m].map(([path, f]) => ({ path, format: f.format, tensorNames: f.tensors.map((t) => t.name) }));
  const layouts = async (tensors: TensorEntry[]): Promise<TensorLayout[]> => {
    const out: TensorLayout[] = [];
    for (const t of tensors) {
      const o = await store.readTensor(t.id);
      out.push({ name: t.name, layout: `${o.dtype} [${o.shape.join(',')}] ${o.order ?? 'C'}` });
    }
    return out;
  };
  const out = new Map<string, string>();
  if (!removed.size || !added.size) return out;
  for (const [b, a] of renameCandidates(files(fa), files(fb), removed, added))
    if (mostlySame(fb.get(b)!.format, await layouts(fa.get(a)!.tensors), await layouts(fb.get(b)!.tensors)))
      out.set(b, a);
  return out;
}

async function tensorChange(
  store: ObjectStore,
  t: TensorEntry,
  u: TensorEntry,
  numeric: boolean,
  prunedA?: PruneRecord,
  prunedB?: PruneRecord,
): Promise<TensorChange> {
  const a = await store.readTensor(t.id);
  const b = await store.readTensor(u.id);
  const chunks = Math.max(a.chunks.length, b.chunks.length);
  let changedChunks = 0;
  for (let i = 0; i < chunks; i++) if (a.chunks[i] !== b.chunks[i]) changedChunks++;
  const out: TensorChange = {
    file: u.file,
    ...(u.file !== t.file ? { fileA: t.file } : {}),
    name: u.name,
    ...(u.name !== t.name ? { nameA: t.name } : {}),
    dtypeA: a.dtype,
    dtypeB: b.dtype,
    shapeA: a.shape,
    shapeB: b.shape,
    bytesA: a.size,
    bytesB: b.size,
    chunks,
    changedChunks,
    chunkFraction: chunks ? changedChunks / chunks : 0,
  };
  if (a.dtype !== b.dtype) out.note = 'dtype changed';
  else if (a.shape.join() !== b.shape.join()) out.note = 'shape changed';
  // Element i is not the same array element in row-major and column-major bytes: no figures across them.
  else if ((a.order ?? 'C') !== (b.order ?? 'C'))
    out.note = `layout changed: ${a.order === 'F' ? 'column' : 'row'}-major -> ${b.order === 'F' ? 'column' : 'row'}-major`;
  else if (!isNumericDtype(a.dtype)) out.note = `no numeric figures for ${a.dtype}`;
  else if (a.chunkSize !== b.chunkSize) out.note = 'chunked differently';
  else if (tensorReleased(prunedA, t.file, t.part) || tensorReleased(prunedB, u.file, u.part)) out.note = 'data pruned';
  else if (numeric) out.delta = await streamDelta(store, a, b);
  return out;
}

const READ_AHEAD = 4;

async function streamDelta(store: ObjectStore, a: TensorObject, b: TensorObject): Promise<TensorDelta> {
  const acc = new TensorDeltaAccumulator(a.dtype as ConstructorParameters<typeof TensorDeltaAccumulator>[0]);
  const read = (id: ObjectId) => store.readRaw(id, 'chunk');
  const pairs: Promise<[Uint8Array, Uint8Array | undefined]>[] = [];
  let next = 0;
  const schedule = () => {
    while (pairs.length < READ_AHEAD && next < a.chunks.length) {
      const i = next++;
      const same = a.chunks[i] === b.chunks[i];
      const p = Promise.all([read(a.chunks[i]!), same ? undefined : read(b.chunks[i]!)]);
      p.catch(() => {});
      pairs.push(p);
    }
  };
  schedule();
  while (pairs.length) {
    const [ca, cb] = await pairs.shift()!;
    schedule();
    if (cb) acc.addChanged(ca, cb);
    else acc.addUnchanged(ca);
  }
  return acc.result();
}
