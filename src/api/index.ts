// The Node API: `import { openStore, initStore } from 'ckvc'`. Every operation returns data and never prints;
// the CLI is a thin layer over exactly these calls.
import { ObjectStore } from '../store/object-store.js';
import { createStore } from '../store/store-layout.js';
import { verifyStore, type VerifyReport } from '../store/verify-store.js';
import { checkout, type CheckoutOptions, type CheckoutResult } from './checkout.js';
import { commit, type CommitOptions, type CommitResult } from './commit.js';
import { log, show, type CommitInfo, type LogOptions, type ShowResult } from './history.js';
import { createBranch, createTag, deleteBranch, deleteTag, listBranches, listTags, reflog, switchBranch, type RefTip } from './refs.js';
import { stats, status, type StatsResult, type StatusResult } from './store-info.js';
import { resolveRevision } from '../store/revision-resolver.js';

export { parseCount } from './commit-input.js';
export { CkvcError, ERROR_CODES, EXIT, isCkvcError, type ErrorCode } from '../core/errors.js';
export type { CheckoutOptions, CheckoutResult, CommitOptions, CommitResult, CommitInfo, LogOptions, ShowResult, RefTip, StatsResult, StatusResult, VerifyReport };

export class Store {
  constructor(readonly objects: ObjectStore) {}

  get root(): string {
    return this.objects.root;
  }

  commit(opts: CommitOptions): Promise<CommitResult> { return commit(this.objects, opts); }
  checkout(opts: CheckoutOptions): Promise<CheckoutResult> { return checkout(this.objects, opts); }
  log(opts?: LogOptions): Promise<CommitInfo[]> { return log(this.objects, opts); }
  show(rev = 'HEAD'): Promise<ShowResult> { return show(this.objects, rev); }
  status(): Promise<StatusResult> { return status(this.objects); }
  stats(): Promise<StatsResult> { return stats(this.objects); }
  branches(): Promise<RefTip[]> { return listBranches(this.objects); }
  createBranch(name: string, start?: string) { return createBranch(this.objects, name, start); }
  deleteBranch(name: string) { return deleteBranch(this.objects, name); }
  tags(): Promise<RefTip[]> { return listTags(this.objects); }
  createTag(name: string, rev?: string, message?: string) { return createTag(this.objects, name, rev, message); }
  deleteTag(name: string) { return deleteTag(this.objects, name); }
  switch(branch: string) { return switchBranch(this.objects, branch); }
  reflog(name: string, kind: 'branch' | 'tag' = 'branch') { return reflog(this.objects, name, kind); }
  resolve(rev: string): Promise<string> { return resolveRevision(this.objects, rev).then((r) => r.id); }
  verify(opts: { readData?: boolean } = {}): Promise<VerifyReport> { return verifyStore(this.objects, opts); }
  rebuildIndex(): Promise<{ packs: number; objects: number }> { return this.objects.index.rebuild(); }
  close(): Promise<void> { return this.objects.close(); }
}

/** Opens the store at `store` (a store or a folder holding .ckvc), else CKVC_DIR, else the nearest .ckvc upward. */
export async function openStore(store?: string, opts: { cwd?: string } = {}): Promise<Store> {
  return new Store(await ObjectStore.open(store, opts.cwd));
}

/** Creates DIR/.ckvc; `created` is false when a store was already there (nothing is changed then). */
export async function initStore(dir = '.'): Promise<{ root: string; created: boolean }> {
  return createStore(dir);
}
