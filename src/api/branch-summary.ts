// Branch metric summaries (spec/FORMAT.md §8, 'b' keys): how `best` answers from the index, and how a commit
// keeps the entries up to date. The entries are a cache: whatever state they are in, `best` gives the answer a
// walk of the whole branch gives.
import type { MetricMode } from '../core/metric-mode.js';
import {
  addCommits,
  decodeMetricExtremes,
  decodeSummaryTip,
  encodeMetricExtremes,
  encodeSummaryTip,
  type MetricExtremes,
  pickExtreme,
  type SummaryTip,
} from '../core/store-format/branch-summary.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { CommitObject } from '../core/store-format/objects/commit-object.js';
import type { ObjectStore } from '../store/object-store.js';
import { REF_PREFIX } from '../store/ref-store.js';
import { branchSource, commitsMadeOn, commitsMadeUnder } from './branch-commits.js';

type Walked = { id: ObjectId; commit: CommitObject }[];

/**
 * The commits made on `branch` from `tip` down to the tip of `entry` (met: true), or down to the branch's first
 * commit when the entry is absent, no longer true, or never met; newest first. `graft`: the shallow graft the
 * branch's walk stops at, if it stops at one.
 */
async function walkSince(
  store: ObjectStore,
  branch: string,
  tip: ObjectId,
  entry: SummaryTip | undefined,
): Promise<{ since: Walked; met: boolean; graft?: ObjectId }> {
  const usable = entry && (await stillStopsAt(store, entry.graft));
  const since: Walked = [];
  for await (const c of commitsMadeOn(store, branch, tip)) {
    if (usable && c.id === entry.tip) return { since, met: true, graft: entry.graft };
    since.push(c);
  }
  const bottom = since.at(-1);
  const first = bottom?.commit.parents[0];
  const graft = bottom && first && (await store.parentsHeld(bottom.id, [first])).length === 0 ? bottom.id : undefined;
  return { since, met: false, graft };
}

/** Whether a walk still stops at `graft`: it is still a graft, and its first parent still missing. */
async function stillStopsAt(store: ObjectStore, graft: ObjectId | undefined): Promise<boolean> {
  if (!graft) return true;
  if (!(await store.shallowCommits()).has(graft)) return false;
  // A graft still listed may be gone from the store (its branch deleted, then gc): then nothing stops there.
  if ((await store.typeOf(graft)) !== 'commit') return false;
  const first = (await store.readCommit(graft)).parents[0];
  return first !== undefined && (await store.parentsHeld(graft, [first])).length === 0;
}

/** `since` (walked newest first) oldest first, as the entries fold commits. */
function oldestFirst(since: Walked): { id: ObjectId; metrics: Record<string, number> }[] {
  return since.map((c) => ({ id: c.id, metrics: c.commit.metrics })).reverse();
}

/** `base` extended by the value of `metric` in `since`. */
function foldMetric(base: MetricExtremes | undefined, since: Walked, metric: string): MetricExtremes | undefined {
  return addCommits(new Map(base ? [[metric, base]] : []), oldestFirst(since), metric).get(metric);
}

/**
 * The best commit of `branch` by `metric`: from the index's entries plus the commits made since their tip, or,
 * should the entries be unusable or name a commit that does not hold the value they record, from a walk of the
 * whole branch. Undefined when no commit of the branch carries a finite value.
 */
export async function bestByMetric(
  store: ObjectStore,
  branch: string,
  metric: string,
  mode: MetricMode,
): Promise<{ id: ObjectId; commit: CommitObject; value: number; candidates: number } | undefined> {
  const src = await branchSource(store, branch);
  // A remote-tracking branch (REMOTE/NAME) has no entries of its own: its commits are walked.
  if (src.tracking) {
    const walked: Walked = [];
    for await (const c of commitsMadeUnder(store, src.names, src.tip)) walked.push(c);
    const pick = pickExtreme(foldMetric(undefined, walked, metric), mode);
    return pick && { ...pick, commit: walked.find((c) => c.id === pick.id)!.commit };
  }
  const tip = src.tip;
  const [tipBytes, metricBytes] = await store.index.session(
    async (s) => [await s.summaryTip(branch), (await s.summaryMetrics(branch, [metric]))[0]] as const,
  );
  const entry = tipBytes && decodeSummaryTip(tipBytes);
  const fromEntry = await walkSince(store, branch, tip, entry);
  const stored = metricBytes && decodeMetricExtremes(metricBytes);
  if (fromEntry.met && (!metricBytes || stored)) {
    const pick = pickExtreme(foldMetric(stored, fromEntry.since, metric), mode);
    if (!pick) return undefined;
    const commit = await store.readCommit(pick.id).catch(() => undefined);
    // Derived data: should the commit it names not hold the value it recorded, walk the branch instead.
    if (commit && commit.metrics[metric] === pick.value) return { ...pick, commit };
  }
  const whole = fromEntry.met ? (await walkSince(store, branch, tip, undefined)).since : fromEntry.since;
  const pick = pickExtreme(foldMetric(undefined, whole, metric), mode);
  return pick && { ...pick, commit: whole.find((c) => c.id === pick.id)!.commit };
}

/**
 * Brings the branch's entries up to `tip`, the commit that has just moved the branch: usually one commit folded
 * into the entries of the metrics it carries; after the branch moved some other way (a pull, a reset, an older
 * ckvc), the commits since the entries' tip, or the whole branch once.
 */
export async function recordBranchSummary(store: ObjectStore, branch: string, tip: ObjectId): Promise<void> {
  // The branch has moved on (a concurrent committer landed on top): the newer tip's committer brings the entries
  // to it; recording this older tip over theirs would walk the whole branch.
  if ((await store.refs.read(REF_PREFIX.branch + branch)) !== tip) return;
  for (const trustEntry of [true, false]) {
    const tipBytes = await store.index.session((s) => s.summaryTip(branch));
    const entry = trustEntry && tipBytes ? decodeSummaryTip(tipBytes) : undefined;
    const { since, met, graft } = await walkSince(store, branch, tip, entry);
    // A metric named "" (which only another implementation could record) would have the tip entry's key.
    const names = [...new Set(since.flatMap((c) => Object.keys(c.commit.metrics)))].filter((n) => n !== '');
    const done = await store.index.session(async (s) => {
      // Another committer moved the entries meanwhile: theirs are true for their tip; leave them.
      const now = await s.summaryTip(branch);
      if (!(now === tipBytes || (now && tipBytes && now.equals(tipBytes)))) return true;
      const before = met ? await s.summaryMetrics(branch, names) : [];
      const stored = new Map<string, MetricExtremes>();
      for (const [i, name] of names.entries()) {
        if (!before[i]) continue;
        const m = decodeMetricExtremes(before[i]!);
        if (!m) return false; // a damaged entry: rebuild the branch's entries from a whole walk
        stored.set(name, m);
      }
      const out = new Map<string, Uint8Array>();
      for (const [name, m] of addCommits(stored, oldestFirst(since)))
        if (name !== '') out.set(name, encodeMetricExtremes(m));
      await s.writeSummary(branch, encodeSummaryTip({ tip, ...(graft ? { graft } : {}) }), out, !met);
      return true;
    });
    if (done) return;
  }
}

/**
 * After a pull has moved branches: brings their entries to the new tips, so that `best` reads the entries
 * instead of walking the pulled commits again at every run (read commands write nothing). The entries are a
 * cache: a failure costs the next `best` a walk, not the pull.
 */
export async function recordMovedBranches(
  store: ObjectStore,
  moved: { name: string; new: ObjectId; skipped?: string }[],
): Promise<void> {
  for (const u of moved) {
    if (u.skipped || !u.name.startsWith(REF_PREFIX.branch)) continue;
    await recordBranchSummary(store, u.name.slice(REF_PREFIX.branch.length), u.new).catch(() => {});
  }
}
