// Moving aliases (spec/FORMAT.md §12): a ref that always names the best commit of a branch by one metric,
// moved by every commit to that branch that beats it, so "best" needs no script.
import { CkvcError, isCkvcError } from '../core/errors.js';
import { defaultMetricMode, isBetter, type MetricMode } from '../core/metric-mode.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import { assertRefName } from '../core/ref-name.js';
import type { AliasDefinition } from '../store/alias-definitions.js';
import type { ObjectStore } from '../store/object-store.js';
import { REF_PREFIX } from '../store/ref-store.js';
import { peel } from '../store/revision-resolver.js';
import { defaultAuthor } from './author.js';
import { best } from './best.js';
import { currentBranch } from './refs.js';

export interface AliasInfo extends AliasDefinition {
  /** The commit it names now; absent until a commit of the branch has the metric. */
  id?: ObjectId;
  value?: number;
  step?: number;
  message?: string;
  /**
   * When no commit has the metric yet: the metrics the branch's tip records (absent when the branch has no
   * commit), so that a mistyped metric (`los` for `loss`) is seen at once.
   */
  tipMetrics?: string[];
}

export interface CreateAliasOptions {
  name: string;
  track: string;
  mode?: MetricMode;
  branch?: string;
  /** Replace an existing alias's definition. */
  force?: boolean;
}

export async function createAlias(store: ObjectStore, opts: CreateAliasOptions): Promise<AliasInfo> {
  assertRefName(opts.name, 'alias');
  if (!opts.track) throw new CkvcError('CKVC_BAD_ARGUMENT', 'give the metric the alias tracks: --track KEY', {});
  const branch = opts.branch ?? (await currentBranch(store));
  assertRefName(branch, 'branch');
  for (const other of ['branch', 'tag'] as const) {
    if (await store.refs.read(REF_PREFIX[other] + opts.name)) {
      throw new CkvcError(
        'CKVC_REF_CONFLICT',
        `a ${other} named '${opts.name}' exists; an alias of the same name would be shadowed by it, so pick another name`,
        { name: opts.name },
      );
    }
  }
  const existing = await store.aliases.read(opts.name);
  if (existing && !opts.force) {
    throw new CkvcError(
      'CKVC_REF_CONFLICT',
      `alias '${opts.name}' already exists (tracks ${existing.track} on ${existing.branch}); add --force to redefine it`,
      { name: opts.name },
    );
  }
  const def: AliasDefinition = {
    name: opts.name,
    track: opts.track,
    mode: opts.mode ?? defaultMetricMode(opts.track),
    branch,
    created: Date.now(),
  };
  // The alias starts at the branch's current best, if any commit has the metric yet.
  // An alias may be set up before its branch's first commit: it stays empty until a commit has the metric.
  const current = await best(store, { metric: def.track, mode: def.mode, branch }).catch((e) => {
    if ((isCkvcError(e, 'CKVC_UNKNOWN_REVISION') || isCkvcError(e, 'CKVC_NO_METRIC')) && e.data.branch === branch)
      return undefined;
    throw e;
  });
  await store.aliases.write(def);
  const ref = REF_PREFIX.alias + opts.name;
  const cur = (await store.refs.read(ref)) ?? null;
  if (current && cur !== current.id) {
    await store.refs.update(ref, current.id, {
      expect: cur,
      who: defaultAuthor(),
      message: `alias: best ${def.track} (${def.mode}) on ${branch}`,
    });
  } else if (!current && cur) {
    await store.refs.update(ref, null, {
      expect: cur,
      who: defaultAuthor(),
      message: 'alias: redefined, no commit has the metric yet',
    });
  }
  const tip = current ? undefined : await store.refs.read(REF_PREFIX.branch + branch);
  const tipMetrics = tip ? Object.keys((await store.readCommit(tip)).metrics ?? {}).sort() : undefined;
  return {
    ...def,
    id: current?.id,
    value: current?.value,
    step: current?.step,
    message: current?.message,
    ...(tipMetrics ? { tipMetrics } : {}),
  };
}

/**
 * An alias ref with no definition here: one a pull or fetch brought (refs/aliases/bundle/NAME), which names the
 * commit the sender's alias named and which no commit here moves (spec/FORMAT.md §12).
 */
export interface ReceivedAlias {
  name: string;
  id: ObjectId;
  received: true;
  step?: number;
  message?: string;
}

/** Every alias: those defined here, then received ones, each group by name. */
export async function listAliases(store: ObjectStore): Promise<(AliasInfo | ReceivedAlias)[]> {
  const out: (AliasInfo | ReceivedAlias)[] = [];
  const defined = new Set<string>();
  // One listing of the alias refs serves both groups (a damaged ref reads as none, as an empty alias).
  const refs = new Map((await store.refs.list('alias', { skipCorrupt: true })).map((r) => [r.name, r.id]));
  for (const def of await store.aliases.list()) {
    defined.add(def.name);
    const id = refs.get(def.name);
    if (!id) {
      out.push(def);
      continue;
    }
    const c = await store.readCommit(id);
    out.push({ ...def, id, value: c.metrics?.[def.track], step: c.step, message: c.message });
  }
  for (const [name, id] of refs) {
    if (defined.has(name)) continue;
    // Received: it may name an annotated tag (peeled, as a revision is), or what this store does not hold.
    const c = await peel(store, id, `alias ${name}`)
      .then((commit) => store.readCommit(commit))
      .catch(() => undefined);
    out.push({ name, id, received: true, ...(c ? { step: c.step, message: c.message } : {}) });
  }
  return out;
}

export async function deleteAlias(store: ObjectStore, name: string): Promise<{ name: string; id?: ObjectId }> {
  assertRefName(name, 'alias');
  const def = await store.aliases.read(name);
  const ref = REF_PREFIX.alias + name;
  const id = await store.refs.read(ref);
  if (!def && !id)
    throw new CkvcError('CKVC_UNKNOWN_REVISION', `no alias named '${name}'; 'ckvc alias' lists them`, { name });
  if (id) await store.refs.update(ref, null, { expect: id, who: defaultAuthor(), message: 'alias: deleted' });
  await store.aliases.remove(name);
  return { name, id };
}

/**
 * After a commit landed on `branch`: move every alias tracking that branch to it if it beats the alias's
 * current commit. Returns warnings (the commit counts whatever happens here).
 */
export async function advanceAliases(
  store: ObjectStore,
  branch: string,
  id: ObjectId,
  metrics: Record<string, number> | undefined,
): Promise<{ moved: string[]; warnings: string[] }> {
  const moved: string[] = [];
  const warnings: string[] = [];
  if (!metrics || Object.keys(metrics).length === 0) return { moved, warnings };
  let defs: AliasDefinition[];
  try {
    defs = await store.aliases.tracking(branch);
  } catch (e) {
    return { moved, warnings: [`could not read the aliases: ${(e as Error).message}`] };
  }
  for (const def of defs) {
    const v = metrics[def.track];
    if (v === undefined || !Number.isFinite(v)) continue; // a NaN or infinite value never becomes the best
    const ref = REF_PREFIX.alias + def.name;
    try {
      for (let attempt = 0; ; attempt++) {
        const cur = (await store.refs.read(ref)) ?? null;
        const curValue = cur ? (await store.readCommit(cur)).metrics?.[def.track] : undefined;
        if (cur && !isBetter(v, curValue, def.mode)) break;
        try {
          await store.refs.update(ref, id, {
            expect: cur,
            who: defaultAuthor(),
            message: `alias: ${def.track}=${v} beats ${curValue ?? 'nothing'}`,
          });
          moved.push(def.name);
          break;
        } catch (e) {
          if (!(e instanceof CkvcError && e.code === 'CKVC_REF_CONFLICT') || attempt >= 20) throw e;
        }
      }
    } catch (e) {
      warnings.push(
        `alias '${def.name}' was not updated: ${(e as Error).message}; run 'ckvc alias ${def.name} --track ${def.track} -b ${branch} --force' to recompute it`,
      );
    }
  }
  return { moved, warnings };
}
