// `ckvc repair --from SOURCE...` (spec/FORMAT.md §10.1): with writers and gc held off, check every record, set
// the damaged packs aside once their sound records are copied, then fetch what the refs need and no longer have
// from the sources, round by round (what lies below a lost commit, tree or recipe shows only once it is back).
import * as fs from 'node:fs';
import { CkvcError, isCkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { DamagedCommit } from '../store/damage-reach.js';
import { acquireGcLock } from '../store/gc-exclusion.js';
import type { ObjectStore } from '../store/object-store.js';
import { repairFault, salvagePacks, type SalvageReport } from '../store/pack-salvage.js';
import { setAsideRecords } from '../store/set-aside-packs.js';
import { reflogIds } from '../store/reachability.js';
import { checkStore, currentLosses } from '../store/verify-store.js';
import { bundleSource, transportSource, type RepairSource } from '../remote/repair-sources.js';
import { openBundleFile } from './bundle.js';
import { openTransport, remotes, type RemoteAuth } from './remote.js';

export interface RepairOptions extends RemoteAuth {
  /** Remote names or bundle files, asked in this order. */
  from: string[];
  dryRun?: boolean;
}

export interface RepairSourceReport {
  source: string;
  /** Lost objects asked of it (those the sources before it did not hold), and how many of them it held. */
  asked: number;
  held: number;
  /** Objects stored from it (0 in a dry run) and the bytes received. */
  restored: number;
  bytes: number;
  /** Why it was asked nothing more (unreachable, or it sent what did not verify): the next sources were asked. */
  error?: { code: string; message: string };
}

export interface RepairReport {
  dryRun: boolean;
  /** What the check found (verify --read-data's problems), before anything changed. */
  problems: number;
  /** Problems repair does not mend (a damaged ref, an unreadable prune record): `ckvc verify` lists them. */
  otherProblems: number;
  salvaged: SalvageReport;
  sources: RepairSourceReport[];
  /** Objects the refs need that no source held (a dry run: that none holds, of those known so far). */
  unrepaired: number;
  /** The commits still not whole afterwards (a dry run: the ones the damage costs now). */
  damaged: DamagedCommit[];
  /** Whether the store is whole afterwards: nothing damaged or missing. */
  whole: boolean;
  /** Objects only reflog lines reach (gc keeps them) that no source held: counted, not part of `whole`. */
  reflogUnrepaired: number;
}

/** Errors that are a source's (it cannot be reached, refuses, or sent what does not verify), not this store's. */
function fromSource(e: unknown): e is CkvcError {
  if (!isCkvcError(e)) return false;
  return !['CKVC_IO', 'CKVC_INTERRUPTED', 'CKVC_INTERNAL', 'CKVC_LOCKED'].includes(e.code);
}

/** A `--from` as named: an existing file is a bundle, anything else names a remote. */
interface NamedSource {
  from: string;
  kind: 'bundle' | 'remote';
}

/**
 * Resolves every `--from` without reaching anything, so that a typo is refused before the store is read or
 * changed, whatever state it is in.
 */
async function resolveSources(store: ObjectStore, from: string[]): Promise<NamedSource[]> {
  const known = (await remotes(store).list()).map((r) => r.name);
  return from.map((f) => {
    const st = fs.statSync(f, { throwIfNoEntry: false });
    if (st?.isFile()) return { from: f, kind: 'bundle' as const };
    if (known.includes(f)) return { from: f, kind: 'remote' as const };
    const what = st?.isDirectory()
      ? `${f} is a folder, and --from takes a bundle file or a remote's name (for a folder holding a ckvc store: 'ckvc remote add NAME ${f}', then --from NAME)`
      : `no remote of this store has that name (${known.length ? `remotes: ${known.join(', ')}` : 'it has none'}) and no bundle file is there`;
    throw new CkvcError('CKVC_UNKNOWN_REMOTE', `--from ${f}: ${what}; nothing was changed`, { name: f });
  });
}

/** A source opened, or why it could not be (then it is asked nothing, and the next ones are). */
interface OpenedSource {
  name: string;
  source?: Pick<RepairSource, 'holds' | 'restore' | 'close'>;
  error?: CkvcError;
}

async function openSources(store: ObjectStore, named: NamedSource[], auth: RemoteAuth): Promise<OpenedSource[]> {
  const out: OpenedSource[] = [];
  for (const { from, kind } of named) {
    const name = kind === 'bundle' ? `bundle ${from}` : `remote '${from}'`;
    try {
      if (kind === 'bundle')
        out.push({ name, source: bundleSource(store, from, await openBundleFile(from, store.layout.tmpDir, false)) });
      else out.push({ name, source: transportSource(store, from, (await openTransport(store, from, auth)).t) });
    } catch (e) {
      if (!fromSource(e)) {
        await Promise.allSettled(out.map((o) => o.source?.close()));
        throw e;
      }
      out.push({ name, error: e });
    }
  }
  return out;
}

export async function repair(store: ObjectStore, opts: RepairOptions): Promise<RepairReport> {
  if (!opts.from.length)
    throw new CkvcError(
      'CKVC_USAGE',
      'repair needs --from: a remote or a bundle file holding the lost objects (several may be given)',
      {},
    );
  const named = await resolveSources(store, opts.from);
  // A dry run writes nothing, so it holds off no writer and needs no right to write.
  if (opts.dryRun) return repairChecked(store, opts, named);
  const lock = await acquireGcLock(store.layout);
  try {
    repairFault('repair.locked', store.layout.root);
    store.index.forWriting();
    return await repairChecked(store, opts, named);
  } finally {
    await lock.release();
  }
}

async function repairChecked(store: ObjectStore, opts: RepairOptions, named: NamedSource[]): Promise<RepairReport> {
  const check = await checkStore(store, { readData: true });
  const { report: verified, damage, damagedPacks } = check;
  const mended = (code: string) =>
    code === 'CKVC_CORRUPT_OBJECT' || code === 'CKVC_CORRUPT_PACK' || code === 'CKVC_MISSING_OBJECT';
  const out: RepairReport = {
    dryRun: Boolean(opts.dryRun),
    problems: verified.problems.length,
    otherProblems: verified.problems.filter((p) => !mended(p.code)).length,
    salvaged: { packs: 0, bytes: 0, kept: 0, dropped: 0, rewritten: 0 },
    sources: [],
    unrepaired: 0,
    damaged: verified.damaged,
    whole: true,
    reflogUnrepaired: 0,
  };
  // Commits only the reflog keeps (a deleted branch, a tip a forced push replaced) are live to gc: their losses are
  // asked for too. What no source holds of them does not make the refs' history less whole, so it is only counted.
  // A reflog line naming a commit that is not here at all is left out: a failed command may never have made it.
  const reflog: ObjectId[] = [];
  for (const id of await reflogIds(store)) if ((await store.typeOf(id)) !== undefined) reflog.push(id);
  const reflogLosses = () => currentLosses(store, undefined, { roots: reflog, stopAt: async () => false });
  const reflogLost = reflog.length ? (await reflogLosses()).lost : new Set<ObjectId>();
  if (!damagedPacks.size && !damage.bad.size && !verified.damaged.length && !reflogLost.size) return out;
  const sources = await openSources(store, named, opts);
  try {
    if (opts.dryRun) {
      const asking = new SourceRound(store, sources);
      out.sources = asking.reports;
      const { lost } = await currentLosses(store, damage);
      out.unrepaired = (await asking.ask([...lost], true)).length;
      out.reflogUnrepaired = (
        await asking.ask(
          [...reflogLost].filter((id) => !lost.has(id)),
          true,
        )
      ).length;
      out.whole = lost.size === 0;
      return out;
    }
    out.salvaged = await salvagePacks(store, [...damagedPacks].sort());
    // Last, what damaged/ holds: a delta there that did not decode for want of its base reads once that is back.
    const aside = await setAsideRecords(store);
    if (aside) sources.push({ name: aside.name, source: aside });
    const asking = new SourceRound(store, sources);
    out.sources = asking.reports;
    const asked = new Set<ObjectId>();
    for (;;) {
      await restoreLost(store, asking, asked, () => currentLosses(store));
      if (reflog.length) await restoreLost(store, asking, asked, reflogLosses);
      // A delta in damaged/ asked for before its base came back (found lost in a later round) is tried again.
      if (!aside) break;
      const still = [...(await currentLosses(store)).lost];
      if (reflog.length) still.push(...(await reflogLosses()).lost);
      await asking.ask([...new Set(still)], false, sources.length - 1);
      if (!asking.restoredLast) break;
    }
    const after = await currentLosses(store);
    if (reflog.length) {
      const lostBelowReflog = (await reflogLosses()).lost;
      out.reflogUnrepaired = [...lostBelowReflog].filter((id) => !after.lost.has(id)).length;
    }
    out.unrepaired = after.lost.size;
    out.damaged = await after.damaged();
    out.whole = after.lost.size === 0;
    return out;
  } finally {
    await Promise.allSettled(sources.map((s) => s.source?.close()));
  }
}

/**
 * Restores what `lostNow` finds lost, then what lies below what came back, until nothing new is found: the history
 * of the commits and tags restored is walked down to the commits that were here already (`lostNow`'s walk covered
 * those), so a chain of lost commits takes a request each, not a walk of everything each. `asked` grows.
 */
async function restoreLost(
  store: ObjectStore,
  asking: SourceRound,
  asked: Set<ObjectId>,
  lostNow: () => Promise<{ lost: Set<ObjectId> }>,
): Promise<void> {
  const fresh = (ids: Iterable<ObjectId>) => [...ids].filter((id) => !asked.has(id));
  let ask = fresh((await lostNow()).lost);
  while (ask.length) {
    for (const id of ask) asked.add(id);
    await asking.ask(ask, false);
    const back = (await Promise.all(ask.map(async (id) => ({ id, type: await store.typeOf(id) })))).filter(
      (o) => o.type === 'commit' || o.type === 'tag',
    );
    const stopAt = async (id: ObjectId) => !asked.has(id) && (await store.typeOf(id)) !== undefined;
    ask = back.length
      ? fresh((await currentLosses(store, undefined, { roots: back.map((o) => o.id), stopAt })).lost)
      : [];
    if (!ask.length) ask = fresh((await lostNow()).lost);
  }
}

/** Asks the sources in order, each for what the ones before did not hold; a source that fails is asked no more. */
class SourceRound {
  readonly reports: RepairSourceReport[];

  constructor(
    private readonly store: ObjectStore,
    private readonly sources: OpenedSource[],
  ) {
    this.reports = sources.map((s) => ({
      source: s.name,
      asked: 0,
      held: 0,
      restored: 0,
      bytes: 0,
      ...(s.error ? { error: { code: s.error.code, message: s.error.message } } : {}),
    }));
  }

  /** Objects the last call's sources restored. */
  restoredLast = 0;

  /** Restores what the sources hold of `ids` (with `dryRun`, only asks), from source `first` on; returns what none held. */
  async ask(ids: ObjectId[], dryRun: boolean, first = 0): Promise<ObjectId[]> {
    let remaining = ids;
    this.restoredLast = 0;
    for (const [i, { source: s }] of this.sources.entries()) {
      const r = this.reports[i]!;
      if (!remaining.length) break;
      if (i < first || r.error || !s) continue;
      try {
        const held = await s.holds(remaining);
        const take = remaining.filter((_, k) => held[k]);
        r.asked += remaining.length;
        r.held += take.length;
        remaining = remaining.filter((_, k) => !held[k]);
        if (dryRun) continue;
        const got = await s.restore(take);
        r.restored += got.objects;
        r.bytes += got.bytes;
        this.restoredLast += got.objects;
      } catch (e) {
        if (!fromSource(e)) throw e;
        r.error = { code: e.code, message: e.message };
        if (dryRun) continue;
        // What it restored before it failed stays; the rest is asked of the next source.
        const here = await this.store.locate(ids);
        remaining = ids.filter((_, k) => !here[k]);
      }
    }
    return remaining;
  }
}
