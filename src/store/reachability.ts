// The live set for gc (spec/FORMAT.md §15): everything reachable from refs, aliases and every unexpired reflog line,
// minus the tensor data that prune records released. Strict: any object that cannot be read stops the walk,
// because gc must never decide "dead" about data it could not see the users of.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { isObjectId, type ObjectId } from '../core/store-format/object-id.js';
import { ioError } from './durable-fs.js';
import { listFilesBelow } from './file-walk.js';
import { CODECS } from '../core/store-format/pack-format.js';
import type { ObjectStore } from './object-store.js';
import type { ObjectLocation } from './pack-reader.js';
import { walkObjects, type ReleaseRecord } from './object-walk.js';
import type { PruneRecord } from './prune-records.js';

/** A reflog line of the log `full` (a ref's full name) that gc is to ignore: one expiry drops (§15). */
export type SkipReflogLine = (full: string, line: string) => boolean;

/**
 * The lines of every reflog, by the ref's full name (the log's path below logs/). A log or folder that goes away
 * while read was moved aside by a new ref (reflog-paths.ts) or removed by an expiry: the whole scan starts again,
 * so that no log is read at neither of its places (gc would free what it names).
 */
export async function readReflogs(store: ObjectStore): Promise<Map<string, string[]>> {
  for (let attempt = 1; ; attempt++) {
    try {
      const out = new Map<string, string[]>();
      for (const rel of await listFilesBelow(store.layout.logsDir, { strict: true })) {
        const p = path.join(store.layout.logsDir, ...rel.split('/'));
        out.set(rel, (await fs.readFile(p, 'utf8')).split('\n'));
      }
      return out;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (attempt < 20 && (code === 'ENOENT' || code === 'ENOTDIR')) continue;
      throw ioError(e, 'read the reflogs in', store.layout.logsDir);
    }
  }
}

/** The IDs a reflog line names, old and new ("none", all zeros, left out). */
export function reflogLineIds(line: string): ObjectId[] {
  return line.split(' ', 2).filter((w) => isObjectId(w) && !/^0+$/.test(w));
}

/** Every ID named by a reflog line, old or new. */
export async function reflogIds(store: ObjectStore, skip?: SkipReflogLine): Promise<Set<ObjectId>> {
  const out = new Set<ObjectId>();
  for (const [full, lines] of await readReflogs(store)) {
    for (const line of lines) {
      if (skip?.(full, line)) continue;
      for (const id of reflogLineIds(line)) out.add(id);
    }
  }
  return out;
}

export interface Roots {
  refs: ObjectId[];
  reflog: ObjectId[];
  /** Commits a branch, tag or alias names (annotated tags followed): their data is never released (§13). */
  named: Set<ObjectId>;
}

export async function gcRoots(store: ObjectStore, skipReflogLine?: SkipReflogLine): Promise<Roots> {
  const refs: ObjectId[] = [];
  const named = new Set<ObjectId>();
  for (const kind of ['branch', 'tag', 'alias', 'remote'] as const) {
    // A damaged ref stops gc: what it pointed at cannot be known, so nothing may be called dead.
    for (const r of await store.refs.list(kind)) {
      refs.push(r.id);
      if (kind === 'remote') continue;
      let id = r.id;
      for (let hops = 0; hops < 64 && (await store.typeOf(id)) === 'tag'; hops++) id = (await store.readTag(id)).target;
      named.add(id);
    }
  }
  return { refs, reflog: [...(await reflogIds(store, skipReflogLine))], named };
}

/**
 * The records that release data: a record of a commit a branch, tag or alias names is ignored, whatever it
 * says (defence in depth: a record received from someone else must not free the data a name here points at).
 */
export function effectiveRecords(
  records: Map<ObjectId, PruneRecord>,
  named: Set<ObjectId>,
): (commit: ObjectId) => ReleaseRecord | undefined {
  return (commit) => (named.has(commit) ? undefined : records.get(commit));
}

/**
 * Live object IDs. Reflog IDs whose objects are gone (a commit a failed command never finished) are skipped;
 * a ref pointing at a missing object is an error.
 */
export async function liveObjects(
  store: ObjectStore,
  roots: Roots,
  pruned: Map<ObjectId, PruneRecord>,
): Promise<Set<ObjectId>> {
  const live = new Set<ObjectId>();
  const refSet = new Set(roots.refs);
  const start = [...roots.refs];
  for (const id of roots.reflog) if (refSet.has(id) || (await store.typeOf(id)) !== undefined) start.push(id);
  await walkObjects(store, start, {
    recordOf: effectiveRecords(pruned, roots.named),
    visit: (r) => {
      live.add(r.id);
    },
  });
  return live;
}

/**
 * Settles the delta bases of the live set (FORMAT.md §4.3, §15). `copies` lists every stored copy of each object
 * (after a crash an object can sit in two packs, encoded differently, and the index may name either). A copy
 * stored as a delta whose base is live is fine. One whose base is not live is re-encoded without it when gc may
 * rewrite its pack (`rewritable`), so the base can be freed (a pruned parent's chunks); otherwise its base
 * becomes live, transitively. Returns the IDs to re-encode; `live` gains the bases that must stay. A base
 * missing from the packs is left to verify to report. `kept` are records gc keeps whether live or not (those of
 * young packs): their bases stay too, so a pushed pack whose refs have not moved yet never loses one.
 */
export async function settleDeltaBases(
  store: ObjectStore,
  live: Set<ObjectId>,
  copies: Map<ObjectId, ObjectLocation[]>,
  rewritable: (packId: string) => boolean,
  kept: ObjectLocation[] = [],
): Promise<Set<ObjectId>> {
  const reencode = new Set<ObjectId>();
  const deadBase = async (loc: ObjectLocation): Promise<ObjectId | undefined> => {
    if (loc.entry.codec !== CODECS.xorPlanes) return undefined;
    const base = await store.packs.readDeltaBaseId(loc);
    return base && !live.has(base) ? base : undefined;
  };
  let frontier = [...live];
  for (const loc of kept) {
    const base = await deadBase(loc);
    if (base && !live.has(base)) {
      live.add(base);
      frontier.push(base);
    }
  }
  while (frontier.length) {
    const next: ObjectId[] = [];
    for (const id of frontier) {
      for (const loc of copies.get(id) ?? []) {
        const base = await deadBase(loc);
        if (!base) continue;
        if (rewritable(loc.packId)) reencode.add(id);
        else {
          live.add(base);
          next.push(base);
        }
      }
    }
    frontier = next;
  }
  // A base made live for a young copy may serve another copy too: an object none of whose copies lacks its
  // base need not change.
  for (const id of reencode) {
    let needed = false;
    for (const loc of copies.get(id) ?? []) if (await deadBase(loc)) needed = true;
    if (!needed) reencode.delete(id);
  }
  return reencode;
}
