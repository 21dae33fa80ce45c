// push and fetch (spec/PROTOCOL.md §4): negotiate by commit and then object IDs, send only what the other side
// lacks, in bundles of bounded size that are each verified and stored on arrival (so an interrupted transfer,
// re-run, re-sends at most the bundle that was in flight), then move refs by compare-and-swap.
import { CkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import { REF_PREFIX } from '../store/ref-store.js';
import { checkClosure, promoteObjects, type RefUpdate } from './bundle-import.js';
import { receiveBundle } from './bundle-reader.js';
import { writeBundle } from './bundle-writer.js';
import { collectObjects } from './object-collector.js';
import { commitClosure, storeParents } from '../store/ancestry.js';
import type { Transport } from './transport.js';

/** Objects per bundle are bounded by bytes and count, so one interrupted transfer loses little. */
const BATCH_BYTES = 64 * 1024 * 1024;
const BATCH_OBJECTS = 20_000;

export interface Progress {
  (e: { phase: 'send' | 'receive'; objects: number; totalObjects: number; bytes: number }): void;
}

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

/** Pushes local refs (full names) to the same names on the remote. */
export async function push(store: ObjectStore, t: Transport, refs: { local: string; remote: string }[], force: boolean, progress?: Progress): Promise<PushResult> {
  const theirs = await t.refs();
  const tips: ObjectId[] = [];
  for (const r of refs) {
    const id = await store.refs.read(r.local);
    if (!id) throw new CkvcError('CKVC_UNKNOWN_REVISION', `nothing to push: ${r.local} does not exist here`, { ref: r.local });
    tips.push(id);
  }
  // Commits the remote has are boundaries; below them it has everything (its verify's promise).
  const known = new Map<ObjectId, boolean>();
  for (const id of Object.values(theirs)) known.set(id, true);
  const isBoundary = async (id: ObjectId) => {
    if (!known.has(id)) known.set(id, (await t.has([id]))[0]!);
    return known.get(id)!;
  };
  const c = await collectObjects(store, tips, { isBoundary, receiverHas: (ids) => t.has(ids) });
  const records = await store.pruned.all();
  let sent = 0;
  let bytesSent = 0;
  for (const batch of await batches(store, c.objects)) {
    const pruned = batch.map((id) => records.get(id)).filter((r) => r !== undefined);
    await t.sendObjects(async (sink) => {
      const w = await writeBundle(store, { refs: [], objects: batch, prerequisites: [], pruned }, sink);
      bytesSent += w.bytes;
    });
    sent += batch.length;
    progress?.({ phase: 'send', objects: sent, totalObjects: c.objects.length, bytes: bytesSent });
  }
  const changes = refs.map((r, i) => ({ name: r.remote, old: theirs[r.remote] ?? null, new: tips[i]! }));
  const updated = await t.updateRefs(changes, force);
  return { refs: updated, objectsSent: sent, bytesSent, commits: c.commits.length };
}

export interface FetchResult {
  /** Remote ref name -> local ref set. */
  refs: RefUpdate[];
  objectsReceived: number;
  bytesReceived: number;
}

/**
 * Fetches every branch and tag of the remote: branches land as refs/remotes/<remote>/<branch>; tags are created
 * locally when absent (a different local tag of the same name is left alone and reported).
 */
export async function fetchRemote(store: ObjectStore, t: Transport, remote: string, progress?: Progress): Promise<FetchResult> {
  const theirs = await t.refs();
  const wanted = Object.entries(theirs).filter(([name]) => name.startsWith(REF_PREFIX.branch) || name.startsWith(REF_PREFIX.tag));
  const wants: ObjectId[] = [];
  for (const [, id] of wanted) if ((await store.typeOf(id)) === undefined) wants.push(id);
  let received = 0;
  let bytesReceived = 0;
  if (wants.length) {
    const localTips: ObjectId[] = [];
    for (const kind of ['branch', 'tag', 'remote'] as const) for (const r of await store.refs.list(kind, { skipCorrupt: true })) localTips.push(r.id);
    const haves = [...(await commitClosure(storeParents(store), localTips))];
    const plan = await t.plan(wants, haves);
    // Chunk-level dedup: anything we already hold (an unchanged tensor of another branch) is not asked for.
    const need: ObjectId[] = [];
    for (let i = 0; i < plan.objects.length; i += 4096) {
      const batch = plan.objects.slice(i, i + 4096);
      (await store.locate(batch)).forEach((l, k) => { if (!l) need.push(batch[k]!); });
    }
    for (let i = 0; i < need.length; i += BATCH_OBJECTS) {
      const ids = need.slice(i, i + BATCH_OBJECTS);
      const r = await t.fetchObjects(ids, async (source) => {
        const rb = await receiveBundle(source, store.layout.tmpDir, `objects from ${t.url}`);
        try {
          if (rb.header.refs.length) throw new CkvcError('CKVC_BAD_BUNDLE', `objects from ${t.url} carry refs`, {});
          const asked = new Set(ids);
          if (rb.entries.some((e) => !asked.has(e.id))) throw new CkvcError('CKVC_BAD_BUNDLE', `${t.url} sent objects that were not asked for`, {});
          const p = await promoteObjects(store, rb);
          return { ...p, bytes: rb.bytes };
        } finally {
          await rb.close();
        }
      });
      received += r.objects;
      bytesReceived += r.bytes;
      progress?.({ phase: 'receive', objects: received, totalObjects: need.length, bytes: bytesReceived });
    }
  }
  const out: RefUpdate[] = [];
  for (const [name, id] of wanted) {
    await checkClosure(store, id, `${name} from ${t.url}`);
    const local = name.startsWith(REF_PREFIX.branch) ? `${REF_PREFIX.remote}${remote}/${name.slice(REF_PREFIX.branch.length)}` : name;
    const cur = (await store.refs.read(local).catch(() => undefined)) ?? null;
    if (cur === id) {
      out.push({ name: local, old: cur, new: id, forced: false, skipped: 'unchanged' });
      continue;
    }
    if (name.startsWith(REF_PREFIX.tag) && cur !== null) continue; // a local tag of that name wins
    await store.refs.update(local, id, { expect: cur, who: `fetch ${remote}`, message: `fetch: ${name} from ${t.url}` });
    out.push({ name: local, old: cur, new: id, forced: false });
  }
  return { refs: out, objectsReceived: received, bytesReceived };
}
