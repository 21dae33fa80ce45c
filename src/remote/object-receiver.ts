// Receiving objects a client asked a remote for (spec/PROTOCOL.md §4): in batches, each an objects-only bundle
// verified in quarantine (every object re-hashed, only the objects asked for) and then promoted. fetch and the
// on-demand fetch of data a partial fetch left out (FORMAT.md §13.2) both receive through here.
import { CkvcError, isCkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import { promoteObjects, type KeptLabel } from './bundle-import.js';
import { receiveBundle, type ReceivedBundle } from './bundle-reader.js';
import { againstExpected, refuseRefs } from './objects-only-bundle.js';
import { localHolds } from './thin-bases.js';
import type { Transport } from './transport.js';
import type { Readable } from 'node:stream';

/** Objects per `objects` request: a bounded body, and an interrupted fetch re-asks for at most one batch. */
export const RECEIVE_BATCH_OBJECTS = 20_000;
/**
 * Stored bytes per request when the plan gave sizes (PROTOCOL.md §4): the first request at most 64 MiB, each next
 * one at most what the ones before brought (64 MiB at least), at most 512 MiB. Each request's end drains the
 * transfer's pipeline (the remote's set-up of the next, the receiver's last verifications): fixed 64 MiB requests
 * made a 480 MiB fetch over HTTP 25% slower than one request; growing ones keep them to a few per fetch, and the
 * batch a re-run asks for again after an interruption no larger than what was kept.
 */
export const RECEIVE_BATCH_BYTES = { first: 64 * 1024 * 1024, most: 512 * 1024 * 1024 };

/** `need` in requests of at most RECEIVE_BATCH_OBJECTS objects and, where `sizes` knows them, of growing bytes. */
function batchesOf(need: ObjectId[], sizes?: ReadonlyMap<ObjectId, number>): ObjectId[][] {
  const out: ObjectId[][] = [];
  let cur: ObjectId[] = [];
  let bytes = 0;
  let limit = RECEIVE_BATCH_BYTES.first;
  let kept = 0;
  for (const id of need) {
    const size = sizes?.get(id) ?? 0;
    if (cur.length && (cur.length >= RECEIVE_BATCH_OBJECTS || bytes + size > limit)) {
      out.push(cur);
      kept += bytes;
      cur = [];
      bytes = 0;
      limit = Math.min(Math.max(RECEIVE_BATCH_BYTES.first, kept), RECEIVE_BATCH_BYTES.most);
    }
    cur.push(id);
    bytes += size;
  }
  if (cur.length) out.push(cur);
  return out;
}

export interface Received {
  objects: number;
  bytes: number;
  labelsKept: KeptLabel[];
}

/** Refuses an objects-only bundle from `url` that is not exactly the objects `ids` (PROTOCOL.md §2 `objects`). */
export function checkAskedFor(rb: ReceivedBundle, ids: ObjectId[], url: string): void {
  refuseRefs(rb, `objects from ${url}`);
  const { extra, missing } = againstExpected(rb, ids);
  if (extra.length)
    throw new CkvcError('CKVC_BAD_BUNDLE', `${url} sent objects that were not asked for`, {
      url,
      extra: extra.slice(0, 10),
    });
  // A remote that holds what it planned sends all of it (else it answers an error): a short bundle is the
  // remote's fault, said as such, not a store of this side's found missing something later.
  if (missing.length) {
    throw new CkvcError(
      'CKVC_REMOTE',
      `${url} sent ${rb.ids.size} of the ${new Set(ids).size} objects asked for (outside the protocol; ` +
        `${missing[0]!.slice(0, 16)} is among those missing); nothing of that batch was kept`,
      { url, missing: missing.slice(0, 10) },
    );
  }
}

export async function receiveObjects(
  store: ObjectStore,
  t: Transport,
  need: ObjectId[],
  progress?: (received: number, bytes: number) => void,
  /** Stored lengths the remote's plan gave: batches of ~64 MiB rather than of 20,000 objects alone. */
  sizes?: ReadonlyMap<ObjectId, number>,
): Promise<Received> {
  const out: Received = { objects: 0, bytes: 0, labelsKept: [] };
  for (const ids of batchesOf(need, sizes)) {
    const holds = await localHolds(store, t, ids);
    const receive = async (source: Readable) => {
      const rb = await receiveBundle(source, store.layout.tmpDir, `objects from ${t.url}`, undefined, { store });
      try {
        checkAskedFor(rb, ids, t.url);
        const p = await promoteObjects(store, rb);
        return { ...p, bytes: rb.bytes };
      } finally {
        await rb.close();
      }
    };
    let r: Awaited<ReturnType<typeof receive>>;
    try {
      r = await t.fetchObjects(ids, receive, holds);
    } catch (e) {
      // A base held here but unreadable (damage) would refuse every thin try: asked once more, self-contained.
      if (!holds || !isCkvcError(e, 'CKVC_BAD_BUNDLE')) throw e;
      r = await t.fetchObjects(ids, receive);
    }
    out.objects += r.objects;
    out.bytes += r.bytes;
    out.labelsKept.push(...r.labelsKept);
    progress?.(out.objects, out.bytes);
  }
  return out;
}
