// `ckvc checkout REV --to DIR`: byte-identical, hash-verified files; refuses to clobber different files, to
// serve tensor data that was pruned, and (with --config) to load a checkpoint under another config.
// With --tensor GLOB it writes new safetensors files holding only the matching tensors instead
// (api/checkout-tensors.ts).
import * as path from 'node:path';
import { configHash } from '../core/config-snapshot.js';
import { diffConfig } from '../core/diff/config-delta.js';
import { CkvcError } from '../core/errors.js';
import { tensorSelection } from '../core/glob.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { CommitObject } from '../core/store-format/objects/commit-object.js';
import { planCheckout, selectPaths } from '../store/checkout-plan.js';
import { writeRecipe } from '../store/checkout-write.js';
import { otherFilesIn } from '../store/checkout-other-files.js';
import { removeStaleTemps } from '../store/checkout-target.js';
import type { ObjectStore } from '../store/object-store.js';
import { listTreeFiles } from '../store/object-walk.js';
import { startOffThreadWriter, writtenOffThread } from '../store/off-thread-writer.js';
import { WrittenChunks } from '../store/written-chunks.js';
import { resolveRevision } from '../store/revision-resolver.js';
import { readConfigFile } from './config-file.js';
import { configOf } from './config.js';
import type { CheckoutOptions, CheckoutResult } from './checkout-options.js';
import { refusePruned } from './checkout-pruned.js';
import { namePartialCheckout } from './checkout-partial.js';
import { checkoutTensors } from './checkout-tensors.js';
import { fetchForCheckout, fetchLeftOut } from './fetch-on-demand.js';

export async function checkout(store: ObjectStore, options: CheckoutOptions): Promise<CheckoutResult> {
  // A bad glob fails before any reading.
  const sel = options.tensors?.length ? tensorSelection(options.tensors) : undefined;
  const fetched = options.fetch ? await fetchForCheckout(store, options.rev, options.tensors ?? []) : undefined;
  const { id } = await resolveRevision(store, options.rev);
  const opts = options.intoCommitFolder ? { ...options, to: path.join(options.to, id) } : options;
  const c = await store.readCommit(id);
  const configMismatch = opts.config !== undefined ? await checkConfig(store, id, c, opts) : undefined;
  const files = selectPaths(await listTreeFiles(store, c.tree), opts.paths ?? [], options.rev);
  if (sel)
    return {
      ...(await checkoutTensors(store, id, files, sel, opts)),
      ...(configMismatch ? { configMismatch } : {}),
      ...(fetched ? { fetched } : {}),
    };
  if (files.some((f) => writtenOffThread(f.size))) startOffThreadWriter();
  await refusePruned(store, id, files);
  const paths = new Set(files.map((f) => f.path));
  await fetchLeftOut(store, id, (p) => paths.has(p), 'checkout');
  const to = path.resolve(opts.to);
  const plan = await planCheckout(store, files, to, Boolean(opts.force), opts.verified);
  const temps = await removeStaleTemps(
    plan.write.map((w) => w.target),
    files.map((f) => f.path),
  );
  const written: CheckoutResult['written'] = [];
  // A chunk two files share (a safetensors file and a torch.save of the same model) is decoded once.
  const chunks = new WrittenChunks();
  try {
    for (const w of plan.write) {
      await writeRecipe(store, w.recipe, w.target, w.file.path, chunks);
      written.push({ path: w.file.path, bytes: w.recipe.size, ...(w.replaced ? { replaced: true } : {}) });
      opts.progress?.({ path: w.file.path, bytes: w.recipe.size });
    }
  } catch (e) {
    throw namePartialCheckout(e, written, plan.write.length);
  } finally {
    await chunks.close();
  }
  // Only for a whole commit: with --path the folder is expected to hold more.
  const otherFiles = opts.paths?.length ? undefined : await otherFilesIn(to, paths, [store.root]);
  return {
    commit: id,
    to,
    written,
    unchanged: plan.unchanged.map((f) => f.path),
    bytes: written.reduce((a, w) => a + w.bytes, 0),
    ...(configMismatch ? { configMismatch } : {}),
    ...(temps.removed.length ? { removedTemps: temps.removed } : {}),
    ...(temps.recent.length ? { recentTemps: temps.recent } : {}),
    ...(otherFiles ? { otherFiles } : {}),
  };
}

async function checkConfig(
  store: ObjectStore,
  id: ObjectId,
  c: CommitObject,
  opts: CheckoutOptions,
): Promise<CheckoutResult['configMismatch']> {
  const given = await readConfigFile(opts.config!);
  const givenHash = configHash(given.value.value);
  if (c.config?.hash === givenHash) return undefined;
  const changes = c.config ? diffConfig((await configOf(store, id)).value, given.value.value) : [];
  const mismatch = { expected: c.config?.hash, given: givenHash, changes };
  if (opts.allowConfigMismatch) return mismatch;
  const keys =
    changes
      .slice(0, 8)
      .map((ch) => ch.path || '(the whole config)')
      .join(', ') + (changes.length > 8 ? `, and ${changes.length - 8} more` : '');
  const what = c.config
    ? `its config ${c.config.hash.slice(0, 12)} differs from ${opts.config} (${givenHash.slice(0, 12)}) at: ${keys}`
    : `it was committed without a config, so ${opts.config} cannot be checked against it`;
  throw new CkvcError(
    'CKVC_CONFIG_MISMATCH',
    `refusing to check out ${id.slice(0, 12)}: ${what}; 'ckvc config diff ${id.slice(0, 12)} ${opts.config}' shows the values, --allow-config-mismatch proceeds anyway`,
    { commit: id, expected: c.config?.hash, given: givenHash, changes },
  );
}
