// The store side of the sync protocol (spec/PROTOCOL.md): what a remote answers, whether it is reached as a
// directory (in-process) or over HTTP (src/remote/http-server.ts). Everything received is untrusted: bundles
// go through the quarantine, ref updates are checked for completeness and fast-forward, all of them before any
// moves, and then moved as one batch under compare-and-swap.
import type { Readable, Writable } from 'node:stream';
import { bad } from '../core/store-format/bundle-format.js';
import { CkvcError, isCkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import { type ChainInfo, chainsOf } from '../store/delta-chains.js';
import { isAncestor, storeParents, type ParentsOf } from '../store/ancestry.js';
import { registerReader, registerWriter } from '../store/gc-exclusion.js';
import type { ObjectStore } from '../store/object-store.js';
import { REF_PREFIX } from '../store/ref-store.js';
import { checkClosure, promoteObjects } from './bundle-import.js';
import { receiveBundle } from './bundle-reader.js';
import { againstExpected, refuseRefs } from './objects-only-bundle.js';
import { writeBundle } from './bundle-writer.js';
import { collectObjects } from './object-collector.js';
import { checkRefChanges, type RefChange } from './request-body.js';
import type { Plan, RemoteRefUpdate } from './transport.js';

export type { RefChange } from './request-body.js';

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
    for (let i = 0; i < ids.length; i += 4096)
      out.push(...(await this.store.locate(ids.slice(i, i + 4096))).map(Boolean));
    return out;
  }

  /** How each object is stored here as far as delta coding goes (PROTOCOL.md §2 `chains`); null: not held. */
  chains(ids: ObjectId[]): Promise<(ChainInfo | null)[]> {
    return chainsOf(this.store, ids);
  }

  /**
   * Objects a client that has `haves` (commits, with their history) lacks to have `wants`; with a filter, only
   * the data of the tensors it selects, and the commits among them listed (PROTOCOL.md §4).
   */
  async plan(wants: ObjectId[], haves: ObjectId[], filter?: string[]): Promise<Plan> {
    const have = new Set(haves);
    for (const w of wants)
      if ((await this.store.typeOf(w)) === undefined)
        throw new CkvcError(
          'CKVC_UNKNOWN_REVISION',
          `the remote has no object ${w.slice(0, 16)}; fetch its refs again`,
          { id: w },
        );
    const c = await collectObjects(this.store, wants, { isBoundary: async (id) => have.has(id), filter });
    const sizes = await this.sizesOf(c.objects);
    const plan = { objects: c.objects, prerequisites: c.prerequisites, ...(sizes ? { sizes } : {}) };
    return filter ? { ...plan, commits: c.commits } : plan;
  }

  /** Each object's stored length, for the client's batches; none when one cannot be located (sending will say). */
  private async sizesOf(ids: ObjectId[]): Promise<number[] | undefined> {
    const out: number[] = [];
    for (let i = 0; i < ids.length; i += 4096) {
      const locs = await this.store.locate(ids.slice(i, i + 4096));
      for (const l of locs) {
        if (!l) return undefined;
        out.push(l.entry.storedLength);
      }
    }
    return out;
  }

  /**
   * An objects-only bundle of `ids` (with the prune records of the commits among them) into `sink`; thin on the
   * chunks `clientHolds` names (BUNDLE.md §5).
   */
  async sendObjects(ids: ObjectId[], sink: Writable, clientHolds?: ReadonlyMap<ObjectId, number>): Promise<void> {
    const records = await this.store.pruned.all();
    const pruned = ids.map((id) => records.get(id)).filter((r) => r !== undefined);
    const shallow = await this.cutCommits(ids);
    const registration = await registerReader(this.store.layout);
    try {
      const content = { refs: [], objects: ids, prerequisites: [], pruned, shallow };
      await writeBundle(this.store, clientHolds ? { ...content, receiverHolds: clientHolds } : content, sink);
    } finally {
      await registration.release();
    }
  }

  /** This store's grafted commits among `ids` that cut a parent the bundle does not carry (FORMAT.md §17). */
  private async cutCommits(ids: ObjectId[]): Promise<ObjectId[]> {
    const grafts = await this.store.shallow.all();
    if (!grafts.size) return [];
    const sending = new Set(ids);
    const out: ObjectId[] = [];
    for (const id of ids) {
      if (!grafts.has(id) || (await this.store.typeOf(id)) !== 'commit') continue;
      const parents = (await this.store.readCommit(id)).parents;
      if (parents.some((p) => !sending.has(p))) out.push(id);
    }
    return out;
  }

  /**
   * Stores the objects of an objects-only bundle after verifying every one of them. `expect`, when the sender
   * said beforehand what it sends (an S3 pack: its object's length and its listing): a bundle of another length,
   * or holding other objects, is refused before anything is promoted.
   */
  async receiveObjects(
    source: Readable | AsyncIterable<Buffer>,
    where: string,
    expect: { bytes?: number; ids?: readonly ObjectId[] } = {},
  ): Promise<{ objects: number; newObjects: number }> {
    const rb = await receiveBundle(source, this.store.layout.tmpDir, where, expect.bytes, { store: this.store });
    try {
      refuseRefs(rb, where);
      if (expect.ids) {
        const { extra, missing } = againstExpected(rb, expect.ids);
        if (extra.length || missing.length)
          throw bad(where, `holds ${rb.ids.size} objects that are not the ${expect.ids.length} its listing names`);
      }
      // The answer is the protocol's; labels this store keeps instead of the pushed ones are its own business.
      const { objects, newObjects } = await promoteObjects(this.store, rb);
      return { objects, newObjects };
    } finally {
      await rb.close();
    }
  }

  /** git's receive.denyDeleteCurrent: the branch this store's HEAD is on stays (its HEAD would name nothing). */
  private async refuseDeletingHead(changes: RefChange[]): Promise<void> {
    // Read only for a branch deletion: a push that moves refs never needed HEAD (it may be damaged or absent).
    if (!changes.some((c) => c.new === null && c.name.startsWith(REF_PREFIX.branch))) return;
    const head = await this.store.refs.readHead();
    if (head.kind !== 'branch') return;
    const gone = changes.find((c) => c.new === null && c.name === REF_PREFIX.branch + head.branch);
    if (gone)
      throw new CkvcError(
        'CKVC_BAD_ARGUMENT',
        `the remote refused to delete branch '${head.branch}': its store's HEAD is on it; nothing was changed on the ` +
          `remote ('ckvc switch OTHER' in that store moves its HEAD, after which the branch can go)`,
        { ref: gone.name },
      );
  }

  /**
   * Moves refs by compare-and-swap once everything they reach is here; refuses non-fast-forward without force.
   * Every change is checked before any ref moves: one refusal refuses them all and changes nothing.
   */
  async updateRefs(input: RefChange[], force: boolean, who: string): Promise<RemoteRefUpdate[]> {
    const changes = checkRefChanges(input, 'the ref update');
    await this.refuseDeletingHead(changes);
    const registration = await registerWriter(this.store.layout);
    try {
      for (const c of changes) if (c.new !== null) await checkClosure(this.store, c.new, `the push of ${c.name}`);
      const current = await this.store.refs.readMany(changes.map((c) => c.name));
      const out = await judgeRefChanges(
        changes,
        current.map((c) => c ?? null),
        storeParents(this.store),
        force,
      );
      // A deleted ref's reflog stays (FORMAT.md §6.3): gc keeps what it names until it expires.
      const moves = out
        .filter((u) => !u.skipped)
        .map((u) => ({
          name: u.name,
          next: u.new,
          expect: u.old,
          message: u.new === null ? 'push --delete' : `push${u.forced ? ' --force' : ''}`,
        }));
      try {
        await this.store.refs.updateMany(moves, { who, message: 'push' });
      } catch (e) {
        // Another push moved a ref between the check above and the swap: refused as a ref that had moved before it.
        if (!isCkvcError(e, 'CKVC_REF_CONFLICT') || e.data.ref === undefined) throw e;
        throw refusal([movedOnRemote(e.data.ref, e.data.expected ?? null, e.data.actual ?? null)], changes.length);
      }
      return out;
    } finally {
      await registration.release();
    }
  }
}

/**
 * The moves `changes` make from `current` (the refs' values now, in the same order): each `old` must still be the
 * value, and a branch moves only forward (judged on `parentsOf`'s history) unless `force`. One refusal refuses
 * them all: the error names every refused ref. Shared by every remote that moves refs (this service, S3).
 */
export async function judgeRefChanges(
  changes: RefChange[],
  current: (ObjectId | null)[],
  parentsOf: ParentsOf,
  force: boolean,
): Promise<RemoteRefUpdate[]> {
  const out: RemoteRefUpdate[] = [];
  const refused: CkvcError[] = [];
  for (const [i, c] of changes.entries()) {
    const cur = current[i] ?? null;
    if (cur !== c.old) {
      refused.push(movedOnRemote(c.name, c.old, cur));
      continue;
    }
    let forced = false;
    if (c.new === null) {
      // A deletion names the value it deletes (checked above): nothing to judge but that.
      out.push({ name: c.name, old: cur, new: null, forced: false });
      continue;
    }
    if (cur !== null && cur !== c.new) {
      const isTag = c.name.startsWith('refs/tags/');
      const ff = !isTag && (await isAncestor(parentsOf, cur, c.new));
      if (!ff && !force) {
        refused.push(
          new CkvcError(
            'CKVC_NON_FAST_FORWARD',
            `${c.name} on the remote is at ${cur.slice(0, 12)}, which ${isTag ? 'is another commit' : `is not an ancestor of ${c.new.slice(0, 12)}`}`,
            { ref: c.name, old: cur, new: c.new },
          ),
        );
        continue;
      }
      forced = !ff;
    }
    out.push({
      name: c.name,
      old: cur,
      new: c.new,
      forced,
      ...(cur === c.new ? { skipped: 'unchanged' as const } : {}),
    });
  }
  if (refused.length) throw refusal(refused, changes.length);
  return out;
}

function movedOnRemote(ref: string, expected: ObjectId | null, actual: ObjectId | null): CkvcError {
  const now = actual?.slice(0, 12) ?? '(deleted)';
  const was = expected?.slice(0, 12) ?? 'nothing';
  return new CkvcError('CKVC_REF_CONFLICT', `${ref} on the remote moved to ${now} (expected ${was})`, {
    ref,
    expected,
    actual,
  });
}

/** One error for every refused ref of a push (git's "atomic push failed" for the others): its code is the first's. */
function refusal(refused: CkvcError[], total: number): CkvcError {
  const first = refused[0]!;
  // ckvc has no merge: a diverged branch is kept under another name or replaced, never combined.
  const nonFf = refused.filter((e) => e.code === 'CKVC_NON_FAST_FORWARD');
  const tagsOnly = nonFf.length > 0 && nonFf.every((e) => String(e.data.ref).startsWith('refs/tags/'));
  const advice = tagsOnly
    ? "a tag names one commit for good: tag yours under another name ('ckvc tag NEW REV') and push that, or push --force to move the remote's"
    : nonFf.length
      ? "'ckvc fetch' brings the remote's commits to compare; push yours to another branch name, or push --force to replace it"
      : 'fetch and push again';
  const others = total - refused.length;
  return new CkvcError(
    first.code,
    `the remote refused ${refused.length === 1 ? 'the push: ' : `${refused.length} ref(s): `}${refused.map((e) => e.message).join('; ')}; nothing was changed on the remote${others ? ` (the ${others} other ref(s) were not moved either)` : ''}: ${advice}`,
    {
      ...first.data,
      refused: refused.map((e) => ({ code: e.code, ...e.data })),
    },
  );
}
