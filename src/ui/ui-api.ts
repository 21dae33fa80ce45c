// The page's JSON endpoints (spec/UI.md §3): each one a thin shape over a Node API call (log, best, diff,
// stats, show, ls, refs), so the page reports exactly what the commands do. Read-only; lists that grow with
// the history are paginated.
import type { Store } from '../api/index.js';
import { branchCommits } from '../api/branch-commits.js';
import { addCommits, pickExtreme } from '../core/store-format/branch-summary.js';
import { CkvcError } from '../core/errors.js';
import { drawGraph } from '../core/history-graph.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { CommitObject } from '../core/store-format/objects/commit-object.js';
import type { CommitCache } from './commit-cache.js';
import { defaultMetricMode, type MetricMode } from '../core/metric-mode.js';
import { parseCount } from '../api/commit-input.js';

/** Metric keys one curves request may ask for: each is a walk of every branch. */
export const MAX_METRIC_KEYS = 8;
/** Bytes of a config file shown on the commit page; larger files are cut (download gives all of it). */
export const MAX_CONFIG_TEXT = 256 * 1024;
export const LOG_PAGE_DEFAULT = 200;
export const LOG_PAGE_MAX = 2000;

export type Params = URLSearchParams;

/** A whole-number query parameter within [min, max], or undefined when absent. */
function countParam(p: Params, name: string, min: number, max: number): number | undefined {
  const n = parseCount(p.get(name) ?? undefined, name);
  if (n !== undefined && (n < min || n > max)) {
    throw new CkvcError('CKVC_BAD_ARGUMENT', `?${name}= must be between ${min} and ${max}, got ${n}`, { [name]: n });
  }
  return n;
}

function required(p: Params, name: string): string {
  const v = p.get(name);
  if (!v) throw new CkvcError('CKVC_BAD_ARGUMENT', `the request lacks ?${name}=; see spec/UI.md §3`, { param: name });
  return v;
}

/** A revision as the page gives it (ID prefix, branch, tag, alias) to its full commit ID. */
const resolve = (s: Store, rev: string) => s.resolve(rev);

export async function overview(s: Store) {
  const [branches, tags, aliases] = await Promise.all([s.branches(), s.tags(), s.aliases()]);
  const keys = new Set<string>();
  for (const b of branches) for (const k of Object.keys(b.metrics ?? {})) keys.add(k);
  const modes: Record<string, MetricMode> = {};
  for (const k of [...keys].sort()) modes[k] = defaultMetricMode(k);
  return { branches, tags, aliases, modes };
}

/**
 * A parent is a warm start when it is a further parent, or the first parent of a branch's first commit made on
 * another branch (spec/FORMAT.md §5.5: a new branch's warm-start origin is its only parent).
 */
function isWarmStart(index: number, parentBranch: string | undefined, childBranch: string | undefined): boolean {
  return index > 0 || (parentBranch !== undefined && childBranch !== undefined && parentBranch !== childBranch);
}

/** One page of `log --all` (or of one revision), newest first, each row with its `--graph` lane prefix. */
export async function logPage(s: Store, p: Params) {
  const offset = countParam(p, 'offset', 0, Number.MAX_SAFE_INTEGER) ?? 0;
  const limit = countParam(p, 'limit', 1, LOG_PAGE_MAX) ?? LOG_PAGE_DEFAULT;
  const rev = p.get('rev');
  // One more than the page, to know whether there is a next one.
  const all = await s.log(rev ? { rev, limit: offset + limit + 1 } : { all: true, limit: offset + limit + 1 });
  const page = all.slice(offset, offset + limit);
  const rows = drawGraph(page.map((c) => ({ id: c.id, parents: c.parents })));
  const branchOf = new Map(all.map((c) => [c.id, c.branch]));
  const commits = [];
  for (const [i, c] of page.entries()) {
    const warmStarts = [];
    for (const [j, p] of c.parents.entries()) {
      if (c.shallow?.parents.includes(p)) continue; // history stops there (FORMAT.md §17)
      const pb = branchOf.has(p) ? branchOf.get(p) : (await s.objects.readCommit(p)).branch;
      if (isWarmStart(j, pb, c.branch)) warmStarts.push(p);
    }
    commits.push({
      id: c.id,
      parents: c.parents,
      warmStarts,
      message: c.message,
      time: c.time,
      step: c.step,
      branch: c.branch,
      refs: c.refs,
      metrics: c.metrics,
      graph: rows[i]!.node,
      after: rows[i]!.after,
    });
  }
  return { offset, limit, commits, next: all.length > offset + limit ? offset + limit : null };
}

/** Metric keys from `?key=`, deduplicated, capped. */
function metricKeys(p: Params): string[] {
  const keys = [...new Set(p.getAll('key').filter((k) => k.length > 0))];
  if (!keys.length) throw new CkvcError('CKVC_BAD_ARGUMENT', 'name at least one metric: /api/metrics?key=KEY', {});
  if (keys.length > MAX_METRIC_KEYS) {
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `at most ${MAX_METRIC_KEYS} metrics at once (asked for ${keys.length})`,
      {},
    );
  }
  return keys;
}

/** One branch's curve, column by column (compact JSON: 10,000 points are about a megabyte), oldest first. */
interface Series {
  branch: string;
  ids: ObjectId[];
  steps: (number | null)[];
  times: number[];
  values: Record<string, (number | null)[]>;
  /** Each key's best commit on the branch, as `ckvc best` picks it. */
  best: Record<string, { id: ObjectId; value: number }>;
}

/** Each branch's own commits (the walk `best` makes) carrying any of `keys`, and its best per key. */
async function branchSeries(s: Store, branch: string, keys: string[], read: (id: ObjectId) => Promise<CommitObject>) {
  const walked: { id: ObjectId; commit: CommitObject }[] = [];
  for await (const c of branchCommits(s.objects, branch, read)) walked.push(c);
  const series: Series = {
    branch,
    ids: [],
    steps: [],
    times: [],
    values: Object.fromEntries(keys.map((k) => [k, []])),
    best: {},
  };
  for (let i = walked.length - 1; i >= 0; i--) {
    const { id, commit } = walked[i]!;
    if (!keys.some((k) => typeof commit.metrics?.[k] === 'number')) continue;
    series.ids.push(id);
    series.steps.push(commit.step ?? null);
    series.times.push(commit.time);
    for (const k of keys) series.values[k]!.push(commit.metrics?.[k] ?? null);
  }
  const extremes = addCommits(
    new Map(),
    [...walked].reverse().map((c) => ({ id: c.id, metrics: c.commit.metrics })),
  );
  for (const k of keys) {
    const top = pickExtreme(extremes.get(k), defaultMetricMode(k));
    if (top) series.best[k] = { id: top.id, value: top.value };
  }
  return series;
}

export async function metrics(s: Store, p: Params, cache: CommitCache) {
  const keys = metricKeys(p);
  await cache.warming;
  const read = cache.reader(s.objects);
  const series = [];
  for (const b of await s.branches()) series.push(await branchSeries(s, b.name, keys, read));
  const modes: Record<string, MetricMode> = {};
  for (const k of keys) modes[k] = defaultMetricMode(k);
  return { keys, modes, series: series.filter((x) => x.ids.length > 0) };
}

/** Reads every branch's history into `cache`, so the first curves request is as quick as the next. */
export async function warmCommits(s: Store, cache: CommitCache): Promise<number> {
  const read = cache.reader(s.objects);
  let n = 0;
  for (const b of await s.branches()) for await (const _ of branchCommits(s.objects, b.name, read)) n++;
  return n;
}

export async function best(s: Store, p: Params) {
  return s.best({ metric: required(p, 'metric'), branch: p.get('branch') ?? undefined });
}

/** The config snapshot of a commit as text (capped), or null for a commit made without --config. */
async function configText(s: Store, id: string, hasConfig: boolean) {
  if (!hasConfig) return null;
  const c = await s.configShow(id);
  const cut = c.bytes.length > MAX_CONFIG_TEXT;
  return {
    name: c.name,
    hash: c.hash,
    format: c.format,
    label: c.label ?? null,
    bytes: c.bytes.length,
    text: c.bytes.subarray(0, MAX_CONFIG_TEXT).toString('utf8'),
    truncated: cut,
  };
}

export async function commitView(s: Store, p: Params) {
  const id = await resolve(s, required(p, 'rev'));
  const shown = await s.show(id);
  const listed = await s.ls(id, { tensors: true });
  const parents = [];
  for (const [i, pid] of shown.parents.entries()) {
    if (shown.shallow?.parents.includes(pid)) continue; // not in this shallow store (FORMAT.md §17)
    const c = await s.objects.readCommit(pid);
    parents.push({
      id: pid,
      message: c.message,
      branch: c.branch,
      step: c.step,
      warmStart: isWarmStart(i, c.branch, shown.branch),
    });
  }
  const { tree: _tree, files: _files, ...rest } = shown;
  return { ...rest, parents, files: listed.files, config: await configText(s, id, Boolean(shown.config)) };
}

export async function compare(s: Store, p: Params) {
  // Full IDs into diff: a revision spelled like a file name must never be read as a config file (configOf).
  const a = await resolve(s, required(p, 'a'));
  const b = await resolve(s, required(p, 'b'));
  const d = await s.diff({ a, b });
  return { ...d, a: { ...d.a, rev: required(p, 'a') }, b: { ...d.b, rev: required(p, 'b') } };
}

/** Routes under /api/ answered with JSON; /api/file streams and is routed by the server. */
export const JSON_ROUTES: Readonly<Record<string, (s: Store, p: Params, cache: CommitCache) => Promise<unknown>>> = {
  '/api/overview': (s) => overview(s),
  '/api/stats': (s) => s.stats(),
  '/api/log': logPage,
  '/api/metrics': metrics,
  '/api/best': best,
  '/api/commit': commitView,
  '/api/compare': compare,
};
