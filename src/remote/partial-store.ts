// A store filled by a partial fetch (spec/FORMAT.md §13.2): what it left out is promised by a remote. This file
// holds the rules that depend on it: what a transfer from such a store may send, what a fetch records and
// drops, and which chunks a commit's selected tensors still lack.
import { CkvcError } from '../core/errors.js';
import { isObjectId, type ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import { tensorPartNames } from '../core/store-format/objects/file-recipe.js';
import type { TensorObject } from '../core/store-format/objects/tensor-object.js';
import { listTreeFiles, tensorReleased } from '../store/object-walk.js';
import { PromiseRecords, type PromiseRecord } from '../store/promise-records.js';
import type { Transport } from './transport.js';

/** How a promise's filters read in a message. */
export function filterWording(rec: PromiseRecord): string {
  if (!rec.filters.length) return 'no tensor data (its record was unreadable)';
  return rec.filters.map((f) => `tensors ${f.map((g) => `'${g}'`).join(' ')}`).join(', or ');
}

/** IDs among `ids` this store does not hold. */
export async function absent(store: ObjectStore, ids: ObjectId[]): Promise<ObjectId[]> {
  const out: ObjectId[] = [];
  for (let i = 0; i < ids.length; i += 4096) {
    const batch = ids.slice(i, i + 4096);
    (await store.locate(batch)).forEach((l, k) => {
      if (!l) out.push(batch[k]!);
    });
  }
  return out;
}

/**
 * Refuses to send objects a partial fetch left out (pack, push, or a partial store serving a plan): the receiver
 * would lack them. What is missing for another reason is left to the sender's usual error.
 */
export async function refuseLeftOut(
  store: ObjectStore,
  objects: ObjectId[],
  chunkCommit: Map<ObjectId, ObjectId>,
  promises: Map<ObjectId, PromiseRecord>,
): Promise<void> {
  const missing = await absent(store, objects);
  const commit = missing.map((id) => chunkCommit.get(id)).find((c) => c !== undefined && promises.has(c));
  if (commit === undefined) return;
  const rec = promises.get(commit)!;
  throw new CkvcError(
    'CKVC_NOT_FETCHED',
    `${missing.length} chunk(s) this would send are not in this store: commit ${commit.slice(0, 12)} was fetched ` +
      `partially from remote '${rec.remote}' (only ${filterWording(rec)}); nothing was sent: run ` +
      `'ckvc fetch ${rec.remote} --no-filter' to fetch the rest, then try again`,
    { commit, remote: rec.remote, missing: missing.length },
  );
}

/**
 * The chunks of `commit`'s tensors that `wanted` selects (data no prune record released), that this store lacks.
 * `wanted` sees each file at each of its paths and each tensor with all its names (FORMAT.md §5.3): a tensor
 * that twin files share (model.safetensors beside a torch.save of it) is wanted under whichever path and name
 * selects it, so this lists the commit's files rather than walking objects, which meets each tensor once.
 * Its parents are other commits' business.
 */
export async function missingTensorChunks(
  store: ObjectStore,
  commit: ObjectId,
  wanted: (path: string, names: readonly string[]) => boolean,
): Promise<{ chunks: ObjectId[]; tensors: { path: string; name: string }[] }> {
  const record = await store.pruned.get(commit);
  const { tree } = await store.readCommit(commit);
  const chunkOf = new Map<ObjectId, { path: string; name: string }>();
  const tensors = new Map<ObjectId, TensorObject>();
  for (const file of await listTreeFiles(store, tree)) {
    const recipe = await store.readFileRecipe(file.id);
    for (const part of recipe.parts) {
      if (part.kind !== 'tensor' || tensorReleased(record, file.path, part)) continue;
      if (!wanted(file.path, tensorPartNames(part))) continue;
      let tensor = tensors.get(part.id);
      if (!tensor) tensors.set(part.id, (tensor = await store.readTensor(part.id)));
      for (const c of tensor.chunks) if (!chunkOf.has(c)) chunkOf.set(c, { path: file.path, name: part.name });
    }
  }
  const chunks = await absent(store, [...chunkOf.keys()]);
  const named = new Map<string, { path: string; name: string }>();
  for (const c of chunks) {
    const t = chunkOf.get(c)!;
    named.set(`${t.path}:${t.name}`, t);
  }
  return { chunks, tensors: [...named.values()] };
}

/** Drops the promises of `commits` whose tensor data is all here now (a fetch without filter completed them). */
export async function settlePromises(store: ObjectStore, commits: Iterable<ObjectId>): Promise<number> {
  const records = new PromiseRecords(store.layout);
  let dropped = 0;
  for (const c of commits) {
    if (!(await records.get(c))) continue;
    // A commit whose fetch failed before it arrived: its record waits for the next fetch of it.
    if ((await store.typeOf(c)) === undefined) continue;
    if ((await missingTensorChunks(store, c, () => true)).chunks.length) continue;
    if (await records.remove(c)) dropped++;
  }
  return dropped;
}

/** The commits promised by `remote` that it still has: a fetch from it asks for them again. */
export async function promisedBy(
  t: Transport,
  remote: string,
  promises: Map<ObjectId, PromiseRecord>,
): Promise<ObjectId[]> {
  const mine = [...promises.values()].filter((p) => p.remote === remote).map((p) => p.commit);
  if (!mine.length) return [];
  const has = await t.has(mine);
  return mine.filter((_, i) => has[i]);
}

/**
 * Records, before any object arrives, that of each commit a filtered plan lists only the filter's tensors will
 * be here: a commit new to this store, or one already partial (a commit held whole stays whole). The plan's list
 * is the remote's word, so it is held to the protocol: a listed commit must be among the objects the plan sends
 * (else a record could stand for a commit that never comes, and be taken later for one that comes without its
 * data). Returns the commits recorded, for dropUnarrivedPromises.
 */
export async function recordPromises(
  store: ObjectStore,
  remote: string,
  commits: ObjectId[],
  objects: ObjectId[],
  filter: string[],
  promises: Map<ObjectId, PromiseRecord>,
): Promise<ObjectId[]> {
  const sent = new Set(objects);
  for (const c of commits) {
    if (!isObjectId(c))
      throw new CkvcError('CKVC_REMOTE', `the plan of the remote lists ${JSON.stringify(c)}, not a commit ID`, {});
    if (!sent.has(c))
      throw new CkvcError(
        'CKVC_REMOTE',
        `the plan of the remote lists commit ${c.slice(0, 12)} as partial but does not send it; nothing was fetched`,
        { id: c },
      );
  }
  const records = new PromiseRecords(store.layout);
  const recorded: ObjectId[] = [];
  for (const c of commits) {
    if (!promises.has(c) && (await store.typeOf(c)) !== undefined) continue;
    await records.add(c, remote, filter);
    recorded.push(c);
  }
  return recorded;
}

/**
 * Drops the records a fetch wrote for commits that did not arrive (the fetch failed, or the remote did not send
 * them): a record stands for a commit this store holds, never for one it may receive later by other means.
 */
export async function dropUnarrivedPromises(store: ObjectStore, recorded: ObjectId[]): Promise<void> {
  const records = new PromiseRecords(store.layout);
  let dropped = false;
  for (const c of recorded) if ((await store.typeOf(c)) === undefined) dropped = (await records.remove(c)) || dropped;
  // Tidying only: an error here must not take the place of the fetch's own.
  if (dropped) await records.removeFolderIfEmpty().catch(() => {});
}
