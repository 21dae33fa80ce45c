// fsck for a store, in phases (spec/FORMAT.md §10): refs, then history (commits, trees, files, tensors),
// then packs and index, then with readData every record re-read and re-hashed. Problems are collected, each
// with its own code, rather than stopping at the first.
import { CkvcError, type ErrorCode } from '../core/errors.js';
import { isObjectId, type ObjectId } from '../core/store-format/object-id.js';
import { damagedCommits, lostObjects, type Damage, type DamagedCommit } from './damage-reach.js';
import { CODECS, PACK_FOOTER_BYTES } from '../core/store-format/pack-format.js';
import { findLeftovers, type LeftoverSummary } from './leftovers.js';
import { listPackIds } from './object-index.js';
import type { ObjectStore } from './object-store.js';
import type { ObjectLocation, PackReader } from './pack-reader.js';
import type { PruneRecord } from './prune-records.js';
import { PromiseRecords, withPromise, type PromiseRecord } from './promise-records.js';
import { walkObjects } from './object-walk.js';
import { verifyInChainOrder } from './verify-in-chain-order.js';
import { PackChecksums } from './pack-checksum.js';
import { setAsideTotals } from './set-aside-packs.js';
import { REF_PREFIX } from './ref-store.js';

export type VerifyPhase = 'refs' | 'history' | 'packs' | 'data';

export interface VerifyProblem {
  phase: VerifyPhase;
  code: ErrorCode;
  message: string;
  data: Record<string, unknown>;
}

export interface VerifyReport {
  ok: boolean;
  problems: VerifyProblem[];
  checked: {
    refs: number;
    commits: number;
    trees: number;
    files: number;
    tensors: number;
    chunks: number;
    packs: number;
    objectsRead: number;
  };
  /** A warning, not a problem: what crashed commands left in the store, for `ckvc gc` to remove. */
  leftovers: LeftoverSummary;
  /** Not a problem: commits where a shallow store's history stops (FORMAT.md §17), with the parents it lacks. */
  shallow: { commit: ObjectId; parents: ObjectId[] }[];
  /** What the damaged or missing objects among the problems cost: the commits and files that no longer rebuild. */
  damaged: DamagedCommit[];
  /** Not a problem: damaged packs `ckvc repair` set aside in damaged/ (FORMAT.md §10.1), not read. */
  setAside: { packs: number; bytes: number };
}

class Verifier {
  readonly problems: VerifyProblem[] = [];
  readonly checked = { refs: 0, commits: 0, trees: 0, files: 0, tensors: 0, chunks: 0, packs: 0, objectsRead: 0 };
  readonly shallow: { commit: ObjectId; parents: ObjectId[] }[] = [];
  readonly tips: ObjectId[] = [];
  /** Commits or tags refs name that are not in the store: a problem of the refs phase, and what they cost. */
  readonly missingTips: ObjectId[] = [];
  /** The refs naming each tip, as `ckvc` prints them (`main`, `tags/best`, `origin/main`). */
  readonly names = new Map<ObjectId, string[]>();
  /** Packs found damaged (FORMAT.md §10.1): unreadable header, footer or TOC, a wrong checksum, a bad record. */
  readonly damagedPacks = new Set<string>();
  private pruned = new Map<ObjectId, PruneRecord>();
  private promises = new Map<ObjectId, PromiseRecord>();
  readonly recordOf = (id: ObjectId) => withPromise(this.pruned.get(id), this.promises.get(id));

  constructor(private readonly store: ObjectStore) {}

  problem(phase: VerifyPhase, e: unknown, context?: string): void {
    if (!(e instanceof CkvcError)) throw e;
    const message = withoutVerifyAdvice(e.message);
    this.problems.push({ phase, code: e.code, message: context ? `${context}: ${message}` : message, data: e.data });
  }

  async refs(): Promise<ObjectId[]> {
    const tips = this.tips;
    try {
      await this.store.refs.readHead();
    } catch (e) {
      this.problem('refs', e);
    }
    for (const kind of ['branch', 'tag', 'alias', 'remote'] as const) {
      let list: { name: string; id: ObjectId }[] = [];
      try {
        // A damaged ref is one problem; the others of its kind are still checked, and their history.
        list = await this.store.refs.list(kind, { onCorrupt: (e) => this.problem('refs', e) });
      } catch (e) {
        this.problem('refs', e);
      }
      for (const r of list) {
        this.checked.refs++;
        const type = await this.store.typeOf(r.id);
        if (type === 'commit' || type === 'tag' || type === undefined) {
          (type ? tips : this.missingTips).push(r.id);
          const name =
            kind === 'branch' || kind === 'remote' ? r.name : `${kind === 'tag' ? 'tags' : 'aliases'}/${r.name}`;
          this.names.set(r.id, [...(this.names.get(r.id) ?? []), name]);
        }
        if (type !== 'commit' && type !== 'tag') {
          this.problem(
            'refs',
            new CkvcError(
              type ? 'CKVC_CORRUPT_REF' : 'CKVC_MISSING_OBJECT',
              `${kind} '${r.name}' points at ${r.id.slice(0, 16)}, which is ${type ? `a ${type}` : 'missing'}`,
              { ref: REF_PREFIX[kind] + r.name, id: r.id },
            ),
          );
        }
      }
    }
    return tips;
  }

  /**
   * Every object the refs reach must be present and decode, down to chunks, except tensor data a prune record
   * released (the walk gc uses; gc may keep more, never less: it ignores records of commits a name points at).
   */
  /** The prune and promise records the walk follows. */
  async records(): Promise<void> {
    try {
      this.pruned = await this.store.pruned.all();
    } catch (e) {
      this.problem('history', e);
    }
    for (const rec of this.pruned.values())
      if (rec.unreadable)
        this.problem(
          'history',
          new CkvcError(
            'CKVC_CORRUPT_OBJECT',
            `prune record pruned/${rec.commit}.json does not parse; it is read as releasing nothing, so gc keeps that commit's data: run the prune again to write it anew, or 'ckvc unprune ${rec.commit.slice(0, 12)}' to take it back`,
            { commit: rec.commit, path: `pruned/${rec.commit}.json` },
          ),
        );
    // Data a partial fetch left out is promised by a remote, not lost (FORMAT.md §13.2): not reported missing.
    try {
      this.promises = await new PromiseRecords(this.store.layout).all();
    } catch (e) {
      this.problem('history', e);
    }
  }

  async history(tips: ObjectId[]): Promise<void> {
    await this.records();
    const counted = new Set<ObjectId>();
    // Chunks, and tensors whose data every reach so far released: not read here, but they must exist.
    const leaves = new Map<ObjectId, 'chunk' | 'tensor'>();
    await walkObjects(this.store, tips, {
      recordOf: this.recordOf,
      visit: (r) => {
        if (r.kind === 'commit' && r.cut) this.shallow.push({ commit: r.id, parents: r.cut });
        if (r.kind === 'chunk') leaves.set(r.id, 'chunk');
        else if (r.kind === 'tensor' && r.released) {
          if (!leaves.has(r.id)) leaves.set(r.id, 'tensor');
        } else if (r.kind !== 'tag' && !counted.has(r.id)) {
          counted.add(r.id);
          if (r.kind === 'commit') this.checked.commits++;
          else if (r.kind === 'tree') this.checked.trees++;
          else if (r.kind === 'file') this.checked.files++;
          else if (r.kind === 'tensor') {
            this.checked.tensors++;
            leaves.delete(r.id);
          }
        }
      },
      onUnreadable: (e, at) => this.problem('history', e, at.where),
    });
    const ids = [...leaves.keys()];
    this.checked.chunks = ids.filter((id) => leaves.get(id) === 'chunk').length;
    const deltas: ObjectLocation[] = [];
    for (let i = 0; i < ids.length; i += 4096) {
      const batch = ids.slice(i, i + 4096);
      (await this.store.locate(batch)).forEach((l, k) => {
        const id = batch[k]!;
        if (!l)
          this.problem(
            'history',
            new CkvcError('CKVC_MISSING_OBJECT', `${leaves.get(id)} ${id.slice(0, 16)} is missing`, { id }),
          );
        else if (l.entry.codec === CODECS.xorPlanes) deltas.push(l);
      });
    }
    await this.deltaBases(deltas);
  }

  /** Every base a reachable delta record needs must be stored too, transitively (FORMAT.md §4.3). */
  private async deltaBases(deltas: ObjectLocation[]): Promise<void> {
    const seen = new Set<ObjectId>();
    for (let frontier = deltas; frontier.length; ) {
      const next: ObjectLocation[] = [];
      for (const loc of frontier) {
        try {
          const base = await this.store.packs.readDeltaBaseId(loc);
          if (!base || seen.has(base)) continue;
          seen.add(base);
          const at = (await this.store.locate([base]))[0];
          if (!at) {
            this.problem(
              'history',
              new CkvcError(
                'CKVC_MISSING_OBJECT',
                `chunk ${base.slice(0, 16)}, the delta base of chunk ${loc.entry.id.slice(0, 16)}, is missing`,
                { id: base },
              ),
            );
          } else if (at.entry.codec === CODECS.xorPlanes) next.push(at);
        } catch (e) {
          this.problem('history', e);
        }
      }
      frontier = next;
    }
  }

  async packs(readData: boolean): Promise<void> {
    const packIds = await listPackIds(this.store.layout);
    const indexed = await this.store.index.session((s) => s.indexedPacks(), { sync: true });
    const records: ObjectLocation[] = [];
    // The pack phase's problems and each pack's whole-file hash, in pack order, reported once the hashes are in: a
    // large pack is hashed on the worker thread while this one decodes and hashes the records.
    const inOrder: {
      phase: VerifyPhase;
      problem: CkvcError | undefined | Promise<CkvcError | undefined>;
      /** The pack the problem, if any, finds damaged. */
      damages?: string;
    }[] = [];
    const note = (phase: VerifyPhase, e: unknown, damages?: string) => {
      if (!(e instanceof CkvcError)) throw e;
      inOrder.push({ phase, problem: e, ...(damages ? { damages } : {}) });
    };
    const stop = new AbortController(); // a verify that fails midway leaves the worker no hashing to finish
    const sums = new PackChecksums(this.store.layout, stop.signal);
    try {
      for (const packId of packIds) {
        this.checked.packs++;
        let toc: Awaited<ReturnType<PackReader['readToc']>>;
        try {
          toc = await this.store.packs.readToc(packId);
        } catch (e) {
          note('packs', e, packId);
          continue;
        }
        if (toc.checksum !== packId) {
          note(
            'packs',
            new CkvcError(
              'CKVC_CORRUPT_PACK',
              `pack ${packId.slice(0, 16)}: footer checksum ${toc.checksum.slice(0, 16)} does not match the file name`,
              { pack: packId },
            ),
            packId,
          );
        }
        if (!indexed.has(packId)) {
          note(
            'packs',
            new CkvcError(
              'CKVC_CORRUPT_PACK',
              `pack ${packId.slice(0, 16)} is not in the index; run 'ckvc index rebuild'`,
              { pack: packId },
            ),
          );
        }
        if (!readData) continue;
        const end = toc.size - PACK_FOOTER_BYTES + 16; // the checksum covers all up to the footer's first 16 bytes
        const later = sums.offThread(packId, end);
        inOrder.push({ phase: 'data', problem: later ?? (await sums.here(packId, end)), damages: packId });
        for (const entry of toc.entries) records.push({ packId, entry });
      }
      // Every record decoded and hashed, each delta against its base verified just before (not through its chain).
      const found: { loc: ObjectLocation; e: unknown }[] = [];
      await verifyInChainOrder(this.store.packs, records, {
        onObject: () => this.checked.objectsRead++,
        problem: (loc, e) => found.push({ loc, e }),
      });
      for (const { phase, problem, damages } of inOrder) {
        const p = await problem;
        if (!p) continue;
        this.problem(phase, p);
        if (damages) this.damagedPacks.add(damages);
      }
      const tainted = await this.blamePacks(found.map((f) => f.loc));
      for (const { loc, e } of found) if (!tainted.has(loc.entry.id)) this.problem('data', e);
      // What a damaged or missing base costs is one line, not one per delta on it, nested down its chain.
      if (tainted.size) {
        const [first] = found.filter((f) => tainted.has(f.loc.entry.id));
        const at = `object ${first!.loc.entry.id.slice(0, 16)} in pack ${first!.loc.packId.slice(0, 16)}`;
        this.problem(
          'data',
          new CkvcError(
            'CKVC_CORRUPT_OBJECT',
            `${tainted.size} delta record(s) no longer decode because their base is damaged or missing (${at}${tainted.size > 1 ? ', ...' : ''}); they read again once it is back`,
            { id: first!.loc.entry.id, count: tainted.size },
          ),
        );
      }
    } finally {
      stop.abort();
    }
  }

  /**
   * The packs the records that failed make damaged (FORMAT.md §10.1). A delta record whose base failed too, or is
   * missing, may be sound itself (it cannot be told without the base): its pack is not called damaged, so repair
   * keeps it in place, to read again once the base is back.
   */
  private async blamePacks(failed: ObjectLocation[]): Promise<Set<ObjectId>> {
    const ids = new Set(failed.map((l) => l.entry.id));
    const tainted = new Set<ObjectId>();
    for (const loc of failed) {
      const base = await this.store.packs.readDeltaBaseId(loc).catch(() => undefined);
      const baseFailed = base !== undefined && (ids.has(base) || !(await this.store.locate([base]))[0]);
      if (baseFailed) tainted.add(loc.entry.id);
      else this.damagedPacks.add(loc.packId);
    }
    return tainted;
  }
}

/** A read error's advice to run verify (for the commands that meet it), said inside verify itself, left out. */
function withoutVerifyAdvice(message: string): string {
  return message
    .replace(/; run 'ckvc verify(?: --read-data)?'(?: to see what is affected)?/g, '')
    .replace(/, run 'ckvc verify(?: --read-data)?'/g, '')
    .replace(/'ckvc verify --read-data' lists the checkpoints it costs, /g, '');
}

/** Leftovers whose process is gone, young or old: a running command's temp files are its work, not leftovers. */
async function leftovers(store: ObjectStore): Promise<LeftoverSummary> {
  const dead = (await findLeftovers(store.layout)).filter((l) => !l.ownerRunning);
  return { count: dead.length, bytes: dead.reduce((a, l) => a + l.bytes, 0), paths: dead.map((l) => l.path) };
}

export async function verifyStore(store: ObjectStore, opts: { readData?: boolean } = {}): Promise<VerifyReport> {
  return (await checkStore(store, opts)).report;
}

/** verify's report, and for `ckvc repair` (FORMAT.md §10.1) the damage it found and the packs holding it. */
export async function checkStore(
  store: ObjectStore,
  opts: { readData?: boolean } = {},
): Promise<{ report: VerifyReport; damage: Damage; damagedPacks: Set<string> }> {
  const v = new Verifier(store);
  const tips = await v.refs();
  await v.history(tips);
  await v.packs(Boolean(opts.readData));
  const found = await leftovers(store);
  // Objects and packs a problem names as damaged or missing: what they cost is worth a walk only when there are.
  const bad = new Set<ObjectId>();
  const packs = new Set<string>();
  for (const p of v.problems) {
    const { id, pack } = p.data;
    const damaged = p.code === 'CKVC_CORRUPT_OBJECT' || p.code === 'CKVC_CORRUPT_PACK';
    if ((damaged || p.code === 'CKVC_MISSING_OBJECT') && typeof id === 'string' && isObjectId(id)) bad.add(id);
    if (p.code === 'CKVC_CORRUPT_PACK' && typeof pack === 'string' && isObjectId(pack)) packs.add(pack);
  }
  const report: VerifyReport = {
    ok: v.problems.length === 0,
    problems: v.problems,
    checked: v.checked,
    leftovers: found,
    shallow: v.shallow,
    damaged: await damagedCommits(store, [...v.tips, ...v.missingTips], v.names, { bad, packs }, v.recordOf),
    setAside: await setAsideTotals(store.layout),
  };
  return { report, damage: { bad, packs }, damagedPacks: v.damagedPacks };
}

/**
 * The objects the refs need that are absent or do not read back now (`damage` names suspects, as verify's
 * problems do), and, on demand, the commits that costs: what `ckvc repair` asks its sources for, round by round.
 */
export async function currentLosses(
  store: ObjectStore,
  damage: Damage = { bad: new Set(), packs: new Set() },
  /** Walk from these commits and tags instead of the refs, not past those `stopAt` says. */
  from?: { roots: ObjectId[]; stopAt: (id: ObjectId) => Promise<boolean> },
): Promise<{ lost: Set<ObjectId>; damaged: () => Promise<DamagedCommit[]> }> {
  const v = new Verifier(store);
  const tips = from ? from.roots : [...(await v.refs()), ...v.missingTips];
  await v.records();
  const lost = await lostObjects(store, tips, damage, v.recordOf, from?.stopAt);
  return {
    lost,
    damaged: () => damagedCommits(store, tips, v.names, { bad: lost, packs: damage.packs }, v.recordOf),
  };
}
