// `ckvc checkout REV --to DIR`: byte-identical, hash-verified files; refuses to clobber different files.
import * as path from 'node:path';
import type { ObjectId } from '../core/object-id.js';
import { listTreeFiles, planCheckout, selectPaths, writeRecipe } from '../store/checkout.js';
import type { ObjectStore } from '../store/object-store.js';
import { resolveRevision } from '../store/revision-resolver.js';

export interface CheckoutOptions {
  rev: string;
  to: string;
  paths?: string[];
  force?: boolean;
  progress?: (e: { path: string; bytes: number }) => void;
}

export interface CheckoutResult {
  commit: ObjectId;
  to: string;
  written: { path: string; bytes: number }[];
  unchanged: string[];
  bytes: number;
}

export async function checkout(store: ObjectStore, opts: CheckoutOptions): Promise<CheckoutResult> {
  const { id } = await resolveRevision(store, opts.rev);
  const c = await store.readCommit(id);
  const files = selectPaths(await listTreeFiles(store, c.tree), opts.paths ?? []);
  const to = path.resolve(opts.to);
  const plan = await planCheckout(store, files, to, Boolean(opts.force));
  const written: CheckoutResult['written'] = [];
  for (const w of plan.write) {
    await writeRecipe(store, w.recipe, w.target, w.file.path);
    written.push({ path: w.file.path, bytes: w.recipe.size });
    opts.progress?.({ path: w.file.path, bytes: w.recipe.size });
  }
  return { commit: id, to, written, unchanged: plan.unchanged.map((f) => f.path), bytes: written.reduce((a, w) => a + w.bytes, 0) };
}
