// The store side of the sync protocol (spec/PROTOCOL.md): what a remote answers, whether it is reached as a
// directory (in-process) or over HTTP (src/remote/http-server.ts). Everything received is untrusted: bundles
// go through the quarantine, ref updates are checked for completeness and fast-forward, under compare-and-swap.
import type { Readable, Writable } from 'node:stream';
import { bad, bundleRefNameProblem } from '../core/bundle-format.js';
import { CkvcError } from '../core/errors.js';
import { isObjectId, type ObjectId } from '../core/object-id.js';
import { isAncestor, storeParents } from '../store/ancestry.js';
import { registerReader, registerWriter } from '../store/gc-exclusion.js';
import type { ObjectStore } from '../store/object-store.js';
import { checkClosure, promoteObjects, type RefUpdate } from './bundle-import.js';
import { receiveBundle } from './bundle-reader.js';
import { writeBundle } from './bundle-writer.js';
import { collectObjects } from './object-collector.js';

export const MAX_IDS_PER_REQUEST = 200_000;

export interface RefChange {
  name: string;
  old: ObjectId | null;
  new: ObjectId;
}

export function checkIds(ids: unknown, what: string): ObjectId[] {
  if (!Array.isArray(ids) || ids.length > MAX_IDS_PER_REQUEST || !ids.every((x) => typeof x === 'string' && isObjectId(x))) {
    throw bad('request', `${what} must be a list of at most ${MAX_IDS_PER_REQUEST} object IDs`);
  }
  return ids as ObjectId[];
}

export class StoreService {
  constructor(readonly store: ObjectStore) {}

  async refs(): Promise<Record<string, ObjectId>> {
    const out: Record<string, ObjectId> = {};
    for (const kind of ['branch', 'tag', 'alias'] as const) {
      const prefix = kind === 'branch' ? 'refs/heads/' : kind === 'tag' ? 'refs/tags/' : 'refs/aliases/';
      for (const r of await this.store.refs.list(kind, { skipCorrupt: true })) out[prefix + r.name] = r.id;
    }
    return out;
  }

  async has(ids: ObjectId[]): Promise<boolean[]> {
    const out: boolean[] = [];
    for (let i = 0; i < ids.length; i += 4096) out.push(...(await this.store.locate(ids.slice(i, i + 4096))).map(Boolean));
    return out;
  }

  /** Objects a client that has `haves` (commits, with their history) lacks to have `wants`. */
  async plan(wants: ObjectId[], haves: ObjectId[]): Promise<{ objects: ObjectId[]; prerequisites: ObjectId[] }> {
    const have = new Set(haves);
    for (const w of wants) if ((await this.store.typeOf(w)) === undefined) throw new CkvcError('CKVC_UNKNOWN_REVISION', `the remote has no object ${w.slice(0, 16)}; fetch its refs again`, { id: w });
    const c = await collectObjects(this.store, wants, { isBoundary: async (id) => have.has(id) });
    return { objects: c.objects, prerequisites: c.prerequisites };
  }

  /** An objects-only bundle of `ids` (with the prune records of the commits among them) into `sink`. */
  async sendObjects(ids: ObjectId[], sink: Writable): Promise<void> {
    const records = await this.store.pruned.all();
    const pruned = ids.map((id) => records.get(id)).filter((r) => r !== undefined);
    const registration = await registerReader(this.store.layout);
    try {
      await writeBundle(this.store, { refs: [], objects: ids, prerequisites: [], pruned }, sink);
    } finally {
      await registration.release();
    }
  }

  /** Stores the objects of an objects-only bundle after verifying every one of them. */
  async receiveObjects(source: Readable | AsyncIterable<Buffer>, where: string): Promise<{ objects: number; newObjects: number }> {
    const rb = await receiveBundle(source, this.store.layout.tmpDir, where);
    try {
      if (rb.header.refs.length) throw bad(where, 'carries refs; ref updates are a separate request');
      return await promoteObjects(this.store, rb);
    } finally {
      await rb.close();
    }
  }

  /** Moves refs by compare-and-swap once everything they reach is here; refuses non-fast-forward without force. */
  async updateRefs(changes: RefChange[], force: boolean, who: string): Promise<RefUpdate[]> {
    for (const c of changes) {
      const problem = bundleRefNameProblem(c.name);
      if (problem) throw new CkvcError('CKVC_BAD_REF_NAME', `ref ${JSON.stringify(c.name)} ${problem}`, { ref: c.name });
      if (!isObjectId(c.new) || (c.old !== null && !isObjectId(c.old))) throw bad('request', `ref update of ${c.name} has a malformed ID`);
    }
    const registration = await registerWriter(this.store.layout);
    try {
      const out: RefUpdate[] = [];
      for (const c of changes) {
        await checkClosure(this.store, c.new, `the push of ${c.name}`);
        const cur = (await this.store.refs.read(c.name)) ?? null;
        if (cur !== c.old) {
          throw new CkvcError('CKVC_REF_CONFLICT', `${c.name} on the remote moved to ${cur?.slice(0, 12) ?? '(deleted)'} (expected ${c.old?.slice(0, 12) ?? 'nothing'}); fetch, reconcile and push again`, { ref: c.name, expected: c.old, actual: cur });
        }
        let forced = false;
        if (cur !== null && cur !== c.new) {
          const ff = !c.name.startsWith('refs/tags/') && (await isAncestor(storeParents(this.store), cur, c.new));
          if (!ff && !force) {
            throw new CkvcError('CKVC_NON_FAST_FORWARD', `${c.name} on the remote is at ${cur.slice(0, 12)}, which ${c.name.startsWith('refs/tags/') ? 'is another commit' : `is not an ancestor of ${c.new.slice(0, 12)}`}; fetch and reconcile first, or push --force`, { ref: c.name, old: cur, new: c.new });
          }
          forced = !ff;
        }
        if (cur !== c.new) await this.store.refs.update(c.name, c.new, { expect: cur, who, message: `push${forced ? ' --force' : ''}` });
        out.push({ name: c.name, old: cur, new: c.new, forced, ...(cur === c.new ? { skipped: 'unchanged' as const } : {}) });
      }
      return out;
    } finally {
      await registration.release();
    }
  }
}
