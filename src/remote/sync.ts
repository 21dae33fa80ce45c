// push and fetch (spec/PROTOCOL.md §4): negotiate by commit and then object IDs, send only what the other side
// lacks, in bundles of bounded size that are each verified and stored on arrival (so an interrupted transfer,
// re-run, re-sends at most the bundle that was in flight), then move refs by compare-and-swap.
import { CkvcError, type ErrorCode, isCkvcError } from '../core/errors.js';
import { isJsonObject } from '../core/json-object.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import type { RefMove } from '../store/ref-batch.js';
import { REF_PREFIX } from '../store/ref-store.js';
import { registerReader } from '../store/gc-exclusion.js';
import { checkClosure, type KeptLabel, type RefUpdate } from './bundle-import.js';
import { PromiseRecords } from '../store/promise-records.js';
import { RECEIVE_BATCH_OBJECTS, receiveObjects } from './object-receiver.js';
import { holdBackReleased, stillNeeded } from './released-data.js';
import { absent, dropUnarrivedPromises, promisedBy, recordPromises, settlePromises } from './partial-store.js';
import { type BundleContent, writeBundle } from './bundle-writer.js';
import { collectObjects } from './object-collector.js';
import { commitClosure, completeHistory, depthCut, storeParents, tipsCutShort } from '../store/ancestry.js';
import { remoteHolds } from './thin-bases.js';
import type { RefChange } from './request-body.js';
import type { Transport } from './transport.js';
import { requireBranches, usableRefs } from './received-refs.js';

/** Objects per bundle are bounded by bytes and count, so one interrupted transfer loses little. */
const BATCH_BYTES = 64 * 1024 * 1024;
const BATCH_OBJECTS = RECEIVE_BATCH_OBJECTS;

export type Progress = (e: { phase: 'send' | 'receive'; objects: number; totalObjects: number; bytes: number }) => void;

async function batches(store: ObjectStore, ids: ObjectId[]): Promise<ObjectId[][]> {
  const out: ObjectId[][] = [];
  let cur: ObjectId[] = [];
  let bytes = 0;
  for (let i = 0; i < ids.length; i += 4096) {
    const locs = await store.locateAll(ids.slice(i, i + 4096), 'object to send');
    locs.forEach((l) => {
      if (cur.length && (bytes + l.entry.storedLength > BATCH_BYTES || cur.length >= BATCH_OBJECTS)) {
        out.push(cur);
        cur = [];
        bytes = 0;
      }
      cur.push(l.entry.id);
      bytes += l.entry.storedLength;
    });
  }
  if (cur.length) out.push(cur);
  return out;
}

export interface PushResult {
  refs: RefUpdate[];
  objectsSent: number;
  bytesSent: number;
  commits: number;
}

/**
 * Pushes local refs (full names) to the same names on the remote: the remote moves all of them or none. The
 * remote-tracking refs of `remote` follow what the remote did, also when it moved only some (an I/O error there).
 */
export async function push(
  store: ObjectStore,
  t: Transport,
  remote: string,
  refs: { local: string; remote: string }[],
  force: boolean,
  progress?: Progress,
  depth?: number,
): Promise<PushResult> {
  const theirs = await t.refs();
  const tips: ObjectId[] = [];
  for (const r of refs) {
    const id = await store.refs.read(r.local);
    if (!id)
      throw new CkvcError('CKVC_UNKNOWN_REVISION', `nothing to push: ${r.local} does not exist here`, { ref: r.local });
    tips.push(id);
  }
  // Commits the remote has are boundaries; below them it has everything (its verify's promise).
  const known = new Map<ObjectId, boolean>();
  for (const id of Object.values(theirs)) known.set(id, true);
  const isBoundary = async (id: ObjectId) => {
    if (!known.has(id)) known.set(id, (await t.has([id]))[0]!);
    return known.get(id)!;
  };
  const c = await collectObjects(store, tips, {
    isBoundary,
    receiverHas: (ids) => t.has(ids),
    ...(depth ? { cutParents: await depthCut(store, tips, depth) } : {}),
  });
  if (!depth) await refuseCutHistory(t, c.shallow);
  const records = await store.pruned.all();
  let sent = 0;
  let bytesSent = 0;
  for (const batch of await batches(store, c.objects)) {
    const pruned = batch.map((id) => records.get(id)).filter((r) => r !== undefined);
    const shallow = batch.filter((id) => c.shallow.has(id));
    bytesSent += await sendBatch(store, t, { refs: [], objects: batch, prerequisites: [], pruned, shallow });
    sent += batch.length;
    progress?.({ phase: 'send', objects: sent, totalObjects: c.objects.length, bytes: bytesSent });
  }
  const changes = refs.map((r, i) => ({ name: r.remote, old: theirs[r.remote] ?? null, new: tips[i]! }));
  let updated: RefUpdate[];
  try {
    updated = pushedUpdates(changes, await t.updateRefs(changes, force), t.url);
  } catch (e) {
    const moved = isCkvcError(e) && Array.isArray(e.data.moved) ? new Set<unknown>(e.data.moved) : undefined;
    if (moved)
      await track(
        store,
        remote,
        changes.filter((ch) => moved.has(ch.name)),
      ).catch(() => {});
    throw e;
  }
  await track(store, remote, updated);
  return { refs: updated, objectsSent: sent, bytesSent, commits: c.commits.length };
}

/**
 * What the remote says it did with the ref changes this push asked for, as far as it can be believed: which of
 * them moved (or were already there), never where to (each moved to what this store sent, a commit it holds).
 * Entries for refs not asked for are ignored; a reply that is not a list is outside the protocol.
 */
export function pushedUpdates<C extends RefChange>(
  changes: C[],
  reply: unknown,
  url: string,
): (C & { forced: boolean; skipped?: 'unchanged' })[] {
  if (!Array.isArray(reply))
    throw new CkvcError('CKVC_REMOTE', `remote ${url} answered the ref update outside the protocol (not a list)`, {
      url,
    });
  const said = new Map<string, Record<string, unknown>>();
  for (const u of reply) if (isJsonObject(u) && typeof u.name === 'string') said.set(u.name, u);
  return changes.flatMap((ch) => {
    const u = said.get(ch.name);
    if (!u) return [];
    return [
      { ...ch, forced: u.forced === true, ...(u.skipped === 'unchanged' ? { skipped: 'unchanged' as const } : {}) },
    ];
  });
}

/**
 * Sends one batch; returns the bytes sent. Registered with gc's exclusion while it looks the batch up and reads
 * it (FORMAT.md §15), as `pack` and a server sending a fetch are: gc or a consolidation must not delete a pack
 * in between. gc waits at most for the batch in flight; the next batch looks its objects up again.
 */
async function sendBatch(store: ObjectStore, t: Transport, content: BundleContent): Promise<number> {
  const registration = await registerReader(store.layout);
  try {
    const located = await store.locateAll(content.objects, 'object to send');
    let bytes = 0;
    const send = (holds?: Map<ObjectId, number>) =>
      t.sendObjects(async (sink) => {
        const w = await writeBundle(store, { ...content, located, ...(holds ? { receiverHolds: holds } : {}) }, sink);
        bytes += w.bytes;
      }, content.objects);
    // Asked before each batch: the remote may hold bases this push sent in an earlier batch.
    const holds = await remoteHolds(store, t, located);
    try {
      await send(holds);
    } catch (e) {
      // A base the remote holds but cannot read (damage there) would refuse every thin try: once self-contained.
      if (!holds || !isCkvcError(e, 'CKVC_BAD_BUNDLE')) throw e;
      await send();
    }
    return bytes;
  } finally {
    await registration.release();
  }
}

/**
 * A push without --depth from a shallow store (FORMAT.md §17): history cut at a graft here must be on the remote
 * already, else the remote would receive commits whose parents no one sends (PROTOCOL.md §4).
 */
async function refuseCutHistory(t: Transport, shallow: Map<ObjectId, ObjectId[]>): Promise<void> {
  for (const [commit, cut] of shallow) {
    const has = await t.has(cut);
    if (has.every(Boolean)) continue;
    throw new CkvcError(
      'CKVC_SHALLOW_HISTORY',
      `this store's history stops at commit ${commit.slice(0, 12)} (shallow) and ${t.url} lacks its parents; ` +
        'nothing was sent: push --depth N to send a shallow history, or fetch or pull the full history first',
      { commit, parents: cut },
    );
  }
}

/** Sets refs/remotes/REMOTE/BRANCH to what the remote's branches were just moved to. */
async function track(store: ObjectStore, remote: string, moved: { name: string; new: ObjectId }[]): Promise<void> {
  const branches = moved.filter((u) => u.name.startsWith(REF_PREFIX.branch));
  const names = branches.map((u) => `${REF_PREFIX.remote}${remote}/${u.name.slice(REF_PREFIX.branch.length)}`);
  const cur = await store.refs.readMany(names);
  const moves = branches.flatMap((u, i) =>
    (cur[i] ?? null) === u.new ? [] : [{ name: names[i]!, next: u.new, expect: cur[i] ?? null }],
  );
  await store.refs.updateMany(moves, { who: `push ${remote}`, message: `push to ${remote}` });
}

export interface FetchWarning {
  /** The remote's ref name (a warning about a ref). */
  ref?: string;
  /** The config hash (a warning about a config label). */
  config?: string;
  code: ErrorCode;
  message: string;
}

export interface FetchResult {
  /** Remote ref name -> local ref set. */
  refs: RefUpdate[];
  objectsReceived: number;
  bytesReceived: number;
  /** Refs of the remote that were left out, and why. */
  warnings: FetchWarning[];
  /** Commits a filtered fetch recorded as partial (their other tensors' data is promised by the remote). */
  partial: number;
  /** Commits whose data a fetch without filter completed, their promises dropped. */
  completed: number;
  /** Bytes the transport downloaded, when more than it handed on (whole S3 packs). */
  bytesDownloaded?: number;
  /** With --prune: the remote-tracking branches dropped, their branch gone from the remote. */
  pruned?: { name: string; old: ObjectId }[];
}

/** A received label left unapplied, said as fetch says a kept tag (BUNDLE.md §4). */
export function keptLabelWarning(k: KeptLabel, from: string): FetchWarning {
  return {
    config: k.config,
    code: 'CKVC_WOULD_OVERWRITE',
    message:
      `kept the local label of config ${k.config.slice(0, 12)} (${JSON.stringify(k.kept)}); ` +
      `${from} labels it ${JSON.stringify(k.received)}`,
  };
}

/**
 * Fetches every branch and tag of the remote: branches land as refs/remotes/<remote>/<branch>; tags are created
 * locally when absent (a different local tag of the same name is left alone and reported). Every ref is checked
 * before any moves, and they move as one batch.
 */
/**
 * Whether a remote tip must be asked for: absent, or here without everything it needs. Batches are promoted one
 * by one, so a fetch killed between two leaves its tip commit here with part of its data; asking only for absent
 * tips, the next run would take it for fetched and fail on its closure for ever.
 */
async function needsFetch(store: ObjectStore, id: ObjectId, where: string): Promise<boolean> {
  if ((await store.typeOf(id)) === undefined) return true;
  try {
    await checkClosure(store, id, where);
    return false;
  } catch (e) {
    if (isCkvcError(e, 'CKVC_BAD_BUNDLE')) return true;
    throw e;
  }
}

export async function fetchRemote(
  store: ObjectStore,
  t: Transport,
  remote: string,
  progress?: Progress,
  /** prune: drop the remote-tracking branches of `remote` whose branch the remote no longer has (git fetch --prune). */
  /** branches: only these branches of the remote (no tags); one it lacks fails the fetch before anything moves. */
  opts: { filter?: string[]; prune?: boolean; branches?: string[] } = {},
): Promise<FetchResult> {
  const warnings: FetchWarning[] = [];
  // A ref names a commit or an annotated tag: one naming anything else (held already, or once received) is left
  // out, as an invalid name is, rather than failing the fetch as if this store were damaged.
  const tipsOnly = async (refs: typeof wanted) => {
    const kinds = await Promise.all(refs.map((w) => store.typeOf(w.id)));
    return refs.filter((w, i) => {
      const kind = kinds[i];
      if (kind === undefined || kind === 'commit' || kind === 'tag') return true;
      warnings.push({
        ref: w.name,
        code: 'CKVC_REMOTE',
        message: `left out ${w.name} of ${t.url}: it names a ${kind} (${w.id.slice(0, 12)}), not a commit or tag`,
      });
      return false;
    });
  };
  const theirs = await t.refs();
  if (opts.branches) await requireBranches(store, theirs, opts.branches, remote);
  let wanted = await usableRefs(store, t, remote, theirs, warnings);
  if (opts.branches) wanted = wanted.filter((w) => opts.branches!.some((b) => w.name === REF_PREFIX.branch + b));
  wanted = await tipsOnly(wanted);
  const wants: ObjectId[] = [];
  // A tip held with its history cut short (a shallow store) is asked for again: the remote sends what is below.
  const cutShort = await tipsCutShort(
    store,
    wanted.map((w) => w.id),
  );
  for (const { name, id } of wanted)
    if (cutShort.has(id) || (await needsFetch(store, id, `${name} from ${t.url}`))) wants.push(id);
  // Commits a partial fetch from this remote left data out of are asked for again (FORMAT.md §13.2).
  const promises = await new PromiseRecords(store.layout).all();
  let refill = await promisedBy(t, remote, promises);
  if (opts.branches && refill.length) {
    // A fetch of some branches completes the partial commits of those branches alone.
    const tracking = opts.branches.map((b) => `${REF_PREFIX.remote}${remote}/${b}`);
    const tips = [
      ...wanted.map((w) => w.id),
      ...(await store.refs.readMany(tracking)).filter((id) => id !== undefined),
    ];
    const reach = await commitClosure(storeParents(store), tips);
    refill = refill.filter((c) => reach.has(c));
  }
  let received = 0;
  let bytesReceived = 0;
  let partial = 0;
  if (wants.length || refill.length) {
    const localTips: ObjectId[] = [];
    for (const kind of ['branch', 'tag', 'remote'] as const)
      for (const r of await store.refs.list(kind, { skipCorrupt: true })) localTips.push(r.id);
    const haves = [...(await completeHistory(store, localTips))].filter((c) => !promises.has(c));
    const plan = await t.plan([...new Set([...wants, ...refill])], haves, opts.filter);
    const recorded = opts.filter
      ? await recordPromises(store, remote, plan.commits ?? [], plan.objects, opts.filter, promises)
      : [];
    partial = recorded.length;
    // Chunk-level dedup: anything we already hold (an unchanged tensor of another branch) is not asked for.
    let need = await absent(store, plan.objects);
    let heldBack: ObjectId[] = [];
    if (plan.unwalked) ({ now: need, heldBack } = await holdBackReleased(store, need));
    const sizes = plan.sizes && new Map(plan.objects.map((id, i) => [id, plan.sizes![i]!]));
    const receive = async (ids: ObjectId[]) => {
      const r = await receiveObjects(
        store,
        t,
        ids,
        (objects, bytes) => progress?.({ phase: 'receive', objects, totalObjects: ids.length, bytes }),
        sizes,
      ).finally(() => dropUnarrivedPromises(store, recorded));
      for (const k of r.labelsKept) warnings.push(keptLabelWarning(k, t.url));
      received += r.objects;
      bytesReceived += r.bytes;
    };
    await receive(need);
    if (heldBack.length) {
      need = await stillNeeded(store, [...new Set([...wants, ...refill])], haves);
      await receive(need);
    }
  }
  wanted = await tipsOnly(wanted);
  const checked = new Set<ObjectId>();
  for (const { name, id } of wanted) {
    if (checked.has(id)) continue;
    await checkClosure(store, id, `${name} from ${t.url}`);
    checked.add(id);
  }
  const current = await store.refs.readMany(wanted.map((w) => w.local));
  const out: RefUpdate[] = [];
  const moves: RefMove[] = [];
  wanted.forEach(({ name, id, local }, i) => {
    const cur = current[i] ?? null;
    if (cur === id) out.push({ name: local, old: cur, new: id, forced: false, skipped: 'unchanged' });
    else if (name.startsWith(REF_PREFIX.tag) && cur !== null) {
      warnings.push({
        ref: name,
        code: 'CKVC_REF_CONFLICT',
        message: `kept the local tag ${name.slice(REF_PREFIX.tag.length)} (${cur.slice(0, 12)}); ${t.url} has it at ${id.slice(0, 12)}`,
      });
    } else {
      moves.push({ name: local, next: id, expect: cur, message: `fetch: ${name} from ${t.url}` });
      out.push({ name: local, old: cur, new: id, forced: false });
    }
  });
  // Gone from the remote, by its own listing (a branch it lists but this fetch left out stays). The reflog of
  // each keeps its commits for the reflog's expiry, as a deleted branch's does.
  const pruned: { name: string; old: ObjectId }[] = [];
  if (opts.prune) {
    const prefix = `${remote}/`;
    for (const r of await store.refs.list('remote', { skipCorrupt: true })) {
      if (!r.name.startsWith(prefix) || Object.hasOwn(theirs, REF_PREFIX.branch + r.name.slice(prefix.length)))
        continue;
      const local = REF_PREFIX.remote + r.name;
      moves.push({ name: local, next: null, expect: r.id, message: `fetch --prune: gone from ${t.url}` });
      pruned.push({ name: local, old: r.id });
    }
  }
  await store.refs.updateMany(moves, { who: `fetch ${remote}`, message: `fetch from ${t.url}` });
  const completed = opts.filter ? 0 : await settlePromises(store, promises.keys());
  const downloaded = t.bytesDownloaded?.();
  return {
    refs: out,
    objectsReceived: received,
    bytesReceived,
    warnings,
    partial,
    completed,
    ...(downloaded !== undefined && downloaded > bytesReceived ? { bytesDownloaded: downloaded } : {}),
    ...(opts.prune ? { pruned } : {}),
  };
}
