// `ckvc checkout REV --to DIR`: byte-identical, hash-verified files; refuses to clobber different files, to
// serve tensor data that was pruned, and (with --config) to load a checkpoint under another config.
import * as path from 'node:path';
import { configHash } from '../core/config-snapshot.js';
import { diffConfig, type ConfigChange } from '../core/diff/config-delta.js';
import { CkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/object-id.js';
import type { CommitObject } from '../core/objects/commit-object.js';
import { listTreeFiles, planCheckout, selectPaths, writeRecipe, type TreeFile } from '../store/checkout.js';
import type { ObjectStore } from '../store/object-store.js';
import { tensorReleased } from '../store/reachability.js';
import { resolveRevision } from '../store/revision-resolver.js';
import { readConfigFile } from './config-file.js';
import { configOf } from './config.js';

export interface CheckoutOptions {
  rev: string;
  to: string;
  paths?: string[];
  force?: boolean;
  /** The config the caller will load the checkpoint under: it must be the commit's (by canonical hash). */
  config?: string;
  allowConfigMismatch?: boolean;
  progress?: (e: { path: string; bytes: number }) => void;
}

export interface CheckoutResult {
  commit: ObjectId;
  to: string;
  written: { path: string; bytes: number }[];
  unchanged: string[];
  bytes: number;
  /** Set when --allow-config-mismatch let a differing config through. */
  configMismatch?: { expected?: string; given: string; changes: ConfigChange[] };
}

export async function checkout(store: ObjectStore, opts: CheckoutOptions): Promise<CheckoutResult> {
  const { id } = await resolveRevision(store, opts.rev);
  const c = await store.readCommit(id);
  const configMismatch = opts.config !== undefined ? await checkConfig(store, id, c, opts) : undefined;
  const files = selectPaths(await listTreeFiles(store, c.tree), opts.paths ?? []);
  await refusePruned(store, id, files);
  const to = path.resolve(opts.to);
  const plan = await planCheckout(store, files, to, Boolean(opts.force));
  const written: CheckoutResult['written'] = [];
  for (const w of plan.write) {
    await writeRecipe(store, w.recipe, w.target, w.file.path);
    written.push({ path: w.file.path, bytes: w.recipe.size });
    opts.progress?.({ path: w.file.path, bytes: w.recipe.size });
  }
  return {
    commit: id, to, written, unchanged: plan.unchanged.map((f) => f.path), bytes: written.reduce((a, w) => a + w.bytes, 0),
    ...(configMismatch ? { configMismatch } : {}),
  };
}

async function checkConfig(store: ObjectStore, id: ObjectId, c: CommitObject, opts: CheckoutOptions): Promise<CheckoutResult['configMismatch']> {
  const given = await readConfigFile(opts.config!);
  const givenHash = configHash(given.value.value);
  if (c.config?.hash === givenHash) return undefined;
  const changes = c.config ? diffConfig((await configOf(store, id)).value, given.value.value) : [];
  const mismatch = { expected: c.config?.hash, given: givenHash, changes };
  if (opts.allowConfigMismatch) return mismatch;
  const keys = changes.slice(0, 8).map((ch) => ch.path || '(the whole config)').join(', ') + (changes.length > 8 ? `, and ${changes.length - 8} more` : '');
  const what = c.config
    ? `its config ${c.config.hash.slice(0, 12)} differs from ${opts.config} (${givenHash.slice(0, 12)}) at: ${keys}`
    : `it was committed without a config, so ${opts.config} cannot be checked against it`;
  throw new CkvcError('CKVC_CONFIG_MISMATCH', `refusing to check out ${id.slice(0, 12)}: ${what}; 'ckvc config diff ${id.slice(0, 12)} ${opts.config}' shows the values, --allow-config-mismatch proceeds anyway`, { commit: id, expected: c.config?.hash, given: givenHash, changes });
}

/** A file whose tensor data a prune record released cannot be rebuilt, whether or not gc has run yet. */
async function refusePruned(store: ObjectStore, id: ObjectId, files: TreeFile[]): Promise<void> {
  const rec = await store.pruned.get(id);
  if (!rec) return;
  for (const f of files) {
    const recipe = await store.readFileRecipe(f.id);
    const released = recipe.parts.filter((p) => p.kind === 'tensor' && tensorReleased(rec, f.path, p.name)).map((p) => (p as { name: string }).name);
    if (released.length === 0) continue;
    const when = new Date(rec.time).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
    const which = rec.tensors === null ? 'all tensor data' : `tensors matching ${rec.tensors.join(', ')}`;
    throw new CkvcError('CKVC_PRUNED', `${f.path} of commit ${id.slice(0, 12)} cannot be checked out: ${which} of this commit was released by 'ckvc prune' on ${when} (${released.length} tensor(s) in this file, e.g. '${released[0]}'); its config, metrics and tensor shapes remain ('ckvc show ${id.slice(0, 12)}'); use --path to take other files`, { commit: id, path: f.path, prunedAt: rec.time, tensors: released });
  }
}
