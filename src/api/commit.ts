// `ckvc commit`: ingest the paths, record provenance, and move the branch by compare-and-swap. If another
// process lands a commit on the same branch meanwhile, ours is re-parented onto it and retried, so both land.
import * as path from 'node:path';
import { configHash } from '../core/config-snapshot.js';
import { similarNames } from '../core/similar-names.js';
import { CkvcError, ERROR_CODES, EXIT, isCkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import {
  encodeCommit,
  type CodeRef,
  type CommitObject,
  type ConfigRef,
} from '../core/store-format/objects/commit-object.js';
import { assertRefName } from '../core/ref-name.js';
import { readGitProvenance } from '../provenance/git-provenance.js';
import { registerWriter } from '../store/gc-exclusion.js';
import { DeltaBases } from '../store/ingest/delta-bases.js';
import { consolidateIfNeeded } from '../store/pack-consolidation.js';
import { ingestPaths, type IngestProgress } from '../store/ingest/tree-ingest.js';
import { FILE_PLAN_RULES } from '../store/ingest/file-plan.js';
import { FilesCache } from '../store/files-cache.js';
import { recipeHeld } from '../store/recipe-held.js';
import type { ObjectStore } from '../store/object-store.js';
import { REF_PREFIX } from '../store/ref-store.js';
import { resolveRevision } from '../store/revision-resolver.js';
import { advanceAliases } from './aliases.js';
import { recordBranchSummary } from './branch-summary.js';
import { readConfigFile } from './config-file.js';
import { readMetricsFile } from './metrics-file.js';
import { defaultAuthor } from './author.js';
import { parseCount, parseLabels, parseMetrics } from './commit-input.js';

export interface CommitOptions {
  paths: string[];
  message: string;
  branch?: string;
  /** Path of a YAML or JSON config file to snapshot. */
  config?: string;
  metrics?: string[] | Record<string, number>;
  /** FILE[:KEY]: metrics (and step, epoch) from a JSON object or a JSONL log's last line; --metric wins. */
  metricsFile?: string;
  step?: number | string;
  epoch?: number;
  run?: string;
  labels?: string[] | Record<string, string>;
  /** Warm-start parents: revisions on other branches this checkpoint was initialised from. */
  parents?: string[];
  author?: string;
  /** Where to look for the code's git repository; defaults to the current directory. */
  cwd?: string;
  progress?: IngestProgress;
  signal?: AbortSignal;
  /** Read every file, even those the files cache shows unchanged since they were stored (FORMAT.md §19). */
  reread?: boolean;
  /** Commit even when the paths hold no file (by default refused: a save that failed leaves an empty folder). */
  allowEmpty?: boolean;
}

export interface CommitResult {
  id: ObjectId;
  branch: string;
  parents: ObjectId[];
  tree: ObjectId;
  files: number;
  tensors: number;
  bytes: number;
  newBytes: number;
  /** Files unchanged since this store took them (the files cache, FORMAT.md §19): not read, their recipes reused. */
  unreadFiles: number;
  configHash?: string;
  code?: CodeRef;
  /** Aliases this commit became the best of. */
  aliases?: string[];
  /** The commit made its branch (the branch did not exist before it). */
  newBranch: boolean;
  /** With newBranch: existing branches whose names are close to it (a mistyped -b). */
  similarBranches?: string[];
  /** Things that went wrong after the commit landed (it counts regardless). */
  warnings?: string[];
}

const MAX_CAS_RETRIES = 20;

async function targetBranch(store: ObjectStore, explicit: string | undefined): Promise<string> {
  if (explicit !== undefined) {
    assertRefName(explicit, 'branch');
    return explicit;
  }
  const head = await store.refs.readHead();
  if (head.kind === 'detached')
    throw new CkvcError('CKVC_BAD_ARGUMENT', 'HEAD is detached; pass -b BRANCH to say where this commit goes', {});
  return head.branch;
}

export async function commit(store: ObjectStore, opts: CommitOptions): Promise<CommitResult> {
  const result = await commitLanded(store, opts);
  // Once our writer registration is gone: consolidation, like gc, runs only with no writer registered (FORMAT.md §15.2).
  const failed = await consolidateIfNeeded(store).then(
    () => undefined,
    (e: Error) =>
      // Damage stops it every time until mended: then saying "tries again" alone would promise what never comes.
      `committed, but merging small packs failed (${e.message}); ${
        isCkvcError(e) && ERROR_CODES[e.code].exit === EXIT.CORRUPT
          ? "the store is damaged: 'ckvc verify --read-data' says what it costs, 'ckvc repair --from REMOTE' mends it"
          : "the next commit or 'ckvc gc' tries again"
      }`,
  );
  return failed ? { ...result, warnings: [...(result.warnings ?? []), failed] } : result;
}

/** Everything a commit records besides its files, checked before a byte of data is read (commit and --dry-run). */
export interface PreparedCommit {
  branch: string;
  metrics: Record<string, number>;
  labels: Record<string, string>;
  step?: number;
  epoch?: number;
  cfg?: Awaited<ReturnType<typeof readConfigFile>>;
  warm: ObjectId[];
  code?: CodeRef;
  author: string;
}

export async function prepareCommit(store: ObjectStore, opts: CommitOptions): Promise<PreparedCommit> {
  if (typeof opts.message !== 'string' || opts.message.trim() === '')
    throw new CkvcError('CKVC_BAD_ARGUMENT', 'a commit needs a message: -m "what this checkpoint is"', {});
  const branch = await targetBranch(store, opts.branch);
  const logged = opts.metricsFile !== undefined ? await readMetricsFile(opts.metricsFile) : undefined;
  const metrics = { ...logged?.metrics, ...parseMetrics(opts.metrics) };
  const labels = parseLabels(opts.labels);
  const step = parseCount(opts.step, 'step') ?? logged?.step;
  const epoch = opts.epoch ?? logged?.epoch;
  if (epoch !== undefined && !Number.isFinite(epoch))
    throw new CkvcError('CKVC_BAD_ARGUMENT', `epoch must be a number, got ${String(epoch)}`, {});
  const cfg = opts.config ? await readConfigFile(opts.config) : undefined;
  const warm: ObjectId[] = [];
  for (const rev of opts.parents ?? []) warm.push((await resolveRevision(store, rev)).id);
  const code = await readGitProvenance(opts.cwd ?? process.cwd()).catch(() => undefined);
  const author = defaultAuthor(opts.author);
  return { branch, metrics, labels, step, epoch, cfg, warm, code, author };
}

/**
 * Refuses a commit whose paths hold no file: a training loop whose save failed, or wrote elsewhere, would
 * otherwise record an empty checkpoint with its metrics, which could even become the branch's best.
 */
export function refuseEmptyCommit(opts: CommitOptions, summary: { files: number; warnings: string[] }): void {
  if (summary.files > 0 || opts.allowEmpty) return;
  const given = opts.paths.map((p) => `'${p}'`).join(', ');
  // What the scan skipped (links inside a folder) is why some folders look empty: said here, since this stops.
  const skipped = summary.warnings.length
    ? ` (${summary.warnings[0]}${summary.warnings.length > 1 ? `; and ${summary.warnings.length - 1} more` : ''})`
    : '';
  throw new CkvcError(
    'CKVC_INPUT_NOT_FOUND',
    `${given} ${opts.paths.length === 1 ? 'holds' : 'hold'} no file to commit${skipped}: did the save fail, or write elsewhere? 'ckvc commit --allow-empty' commits an empty checkpoint anyway`,
    { paths: opts.paths, warnings: summary.warnings },
  );
}

/** The commit object's fields besides its tree and parents. */
export function commitFields(
  opts: CommitOptions,
  p: PreparedCommit,
  config: ConfigRef | undefined,
): Omit<CommitObject, 'parents' | 'tree'> {
  return {
    message: opts.message,
    author: p.author,
    time: Date.now(),
    branch: p.branch,
    config,
    code: p.code && { ...p.code },
    metrics: p.metrics,
    step: p.step,
    epoch: p.epoch,
    run: opts.run,
    labels: p.labels,
  };
}

async function commitLanded(store: ObjectStore, opts: CommitOptions): Promise<CommitResult> {
  // Everything the user typed is checked before a byte of data is read.
  const prepared = await prepareCommit(store, opts);
  const { branch, metrics, cfg, warm, code, author } = prepared;

  // From the first index lookup until the ref has moved, this commit may reuse objects gc would otherwise
  // call dead: gc waits for registered writers (spec/FORMAT.md §15).
  const registration = await registerWriter(store.layout);
  // The chunks it stores are the next commit's delta bases: left where that commit finds them (FORMAT.md §18).
  const writer = store.writer({ cacheBases: true });
  try {
    // The files it reads are recorded where the next commit finds them unchanged (FORMAT.md §19).
    const files = FilesCache.open(store.layout, store.config, FILE_PLAN_RULES);
    const bases = await deltaBasesFor(store, REF_PREFIX.branch + branch, warm);
    const { tree, summary } = await ingestPaths(opts.paths, writer, store.config, {
      storeRoot: store.root,
      progress: opts.progress,
      signal: opts.signal,
      bases,
      known: { cache: files, reread: Boolean(opts.reread), held: (id, treePath) => recipeHeld(store, id, treePath) },
    });
    refuseEmptyCommit(opts, summary);
    let config: ConfigRef | undefined;
    if (cfg) {
      const snapshot = await writer.put('chunk', cfg.bytes);
      config = {
        hash: configHash(cfg.value.value),
        snapshot,
        name: path.basename(opts.config!),
        format: cfg.value.format,
        size: cfg.bytes.length,
      };
    }
    const base: Omit<CommitObject, 'parents'> = { tree, ...commitFields(opts, prepared, config) };
    const ref = REF_PREFIX.branch + branch;
    let tip = (await store.refs.read(ref)) ?? null;
    let id = await writer.put('commit', encodeCommit({ ...base, parents: parentList(tip, warm) }));
    await writer.commit();
    if (opts.signal?.aborted)
      throw new CkvcError('CKVC_INTERRUPTED', 'interrupted before the branch was moved; nothing was committed', {});
    for (let attempt = 0; ; attempt++) {
      try {
        await store.refs.update(ref, id, { expect: tip, who: author, message: `commit: ${opts.message}` });
        break;
      } catch (e) {
        if (!isCkvcError(e, 'CKVC_REF_CONFLICT') || attempt >= MAX_CAS_RETRIES) throw e;
        // Someone else landed first: put our commit on top of theirs (the data is already durable).
        tip = (await store.refs.read(ref)) ?? null;
        const again = store.writer();
        id = await again.put('commit', encodeCommit({ ...base, parents: parentList(tip, warm) }));
        await again.commit();
      }
    }
    // The branch has moved: the commit counts from here on, so a failure to move HEAD is a warning, not an
    // error (an error would invite a re-run that commits the same checkpoint twice).
    writer.keepBaseCache();
    files.save();
    const warnings: string[] = [...summary.warnings];
    await followUnbornHead(store, branch).catch((e) => {
      warnings.push(
        `committed to '${branch}', but HEAD could not follow it (${(e as Error).message}); run 'ckvc switch ${branch}'`,
      );
    });
    const aliases = await advanceAliases(store, branch, id, metrics);
    warnings.push(...aliases.warnings);
    const similar =
      tip === null
        ? similarNames(
            branch,
            (await store.refs.list('branch', { skipCorrupt: true }).catch(() => [])).map((b) => b.name),
          )
        : [];
    // A cache for 'best' (FORMAT.md §8): without it 'best' walks the branch, so a failure costs only time.
    await recordBranchSummary(store, branch, id).catch((e) => {
      warnings.push(`could not update the index's metric summary of '${branch}' (${(e as Error).message})`);
    });
    return {
      id,
      branch,
      parents: parentList(tip, warm),
      tree,
      files: summary.files,
      tensors: summary.tensors,
      bytes: summary.bytes,
      newBytes: writer.stats.bytesNew,
      unreadFiles: summary.unread,
      configHash: config?.hash,
      code,
      ...(aliases.moved.length ? { aliases: aliases.moved } : {}),
      newBranch: tip === null,
      ...(similar.length ? { similarBranches: similar } : {}),
      ...(warnings.length ? { warnings } : {}),
    };
  } catch (e) {
    await writer.abort();
    throw e;
  } finally {
    await registration.release();
  }
}

/** The commit whose tensors this one is delta-coded against: the branch tip, else the first warm-start parent. */
async function deltaBasesFor(store: ObjectStore, ref: string, warm: ObjectId[]): Promise<DeltaBases | undefined> {
  const parent = (await store.refs.read(ref)) ?? warm[0];
  if (!parent) return undefined;
  try {
    return new DeltaBases(store, (await store.readCommit(parent)).tree);
  } catch (e) {
    if (e instanceof CkvcError) return undefined; // only a hint: the commit goes ahead with plain encoding
    throw e;
  }
}

function parentList(tip: ObjectId | null, warm: ObjectId[]): ObjectId[] {
  const out = tip ? [tip] : [];
  for (const w of warm) if (!out.includes(w)) out.push(w);
  return out;
}

/** A fresh store's HEAD names an unborn 'main'; the first commit to another branch takes HEAD along. */
async function followUnbornHead(store: ObjectStore, branch: string): Promise<void> {
  const head = await store.refs.readHead();
  if (head.kind === 'branch' && head.branch !== branch && !(await store.refs.read(REF_PREFIX.branch + head.branch))) {
    await store.refs.writeHead(branch);
  }
}
