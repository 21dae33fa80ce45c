// The Node API: `import { openStore, initStore } from 'ckvc'`. Every operation returns data and never prints;
// the CLI is a thin layer over exactly these calls.
import { ObjectStore } from '../store/object-store.js';
import type { DecodedObjects } from '../store/decoded-objects.js';
import { createStore } from '../store/store-layout.js';
import { verifyStore, type VerifyReport } from '../store/verify-store.js';
import { checkout } from './checkout.js';
import type { CheckoutOptions, CheckoutResult } from './checkout-options.js';
import { commit, type CommitOptions, type CommitResult } from './commit.js';
import { log, show, type CommitInfo, type LogOptions, type ShowResult } from './history.js';
import {
  createBranch,
  createTag,
  deleteBranch,
  deleteTag,
  listBranches,
  listRemoteBranches,
  listTags,
  reflog,
  switchBranch,
  type RefTip,
} from './refs.js';
import { stats, status, type StatsResult, type StatusResult } from './store-info.js';
import { resolveRevision } from '../store/revision-resolver.js';
import { createAlias, deleteAlias, listAliases, type AliasInfo, type CreateAliasOptions } from './aliases.js';
import { best, type BestOptions, type BestResult } from './best.js';
import {
  packBundle,
  pullBundle,
  verifyBundle,
  type BundleReport,
  type PackOptions,
  type PackResult,
  type PullBundleOptions,
} from './bundle.js';
import {
  configDiff,
  configExtract,
  configLabel,
  configShow,
  type ConfigDiffResult,
  type ConfigSnapshot,
} from './config.js';
import { diff, type DiffOptions, type DiffResult } from './diff.js';
import { gc, type GcOptions, type GcReport } from './gc.js';
import { cat, ls, type ListedFile } from './inspect.js';
import { prune, type PruneOptions, type PruneResult } from './prune.js';
import { commitDryRun, type CommitDryRunResult } from './commit-dry-run.js';
import { unprune, type UnpruneResult } from './unprune.js';
import { watch as startWatch } from './watch/watcher.js';
import type { WatchCommit, WatchEvent, WatchHandle, WatchOptions, WatchSummary } from './watch/watch-types.js';
import {
  addRemote,
  fetchFromRemote,
  pullFromRemote,
  pushToRemote,
  remotes,
  removeRemote,
  type AddRemoteOptions,
  serve,
  serveOnStdio,
  type FetchOptions,
  type PullRemoteOptions,
  type PushOptions,
  type ServeOptions,
} from './remote.js';

export { parseCount } from './commit-input.js';
export { DEFAULT_GC_GRACE } from './gc.js';
export { DEFAULT_REFLOG_EXPIRY } from '../store/reflog-expiry.js';
export { releasedWording } from '../store/prune-records.js';
/** A long-lived process's memory of checkout files it verified (CheckoutOptions.verified). */
export { VerifiedFiles } from '../store/verified-files.js';
/** A long-lived process's memory of decoded commits, trees and recipes (openStore's `decoded`). */
export { DecodedObjects } from '../store/decoded-objects.js';
export { CkvcError, ERROR_CODES, EXIT, isCkvcError, type ErrorCode } from '../core/errors.js';
export type {
  AliasInfo,
  BestOptions,
  BestResult,
  ConfigDiffResult,
  ConfigSnapshot,
  CreateAliasOptions,
  DiffOptions,
  DiffResult,
  GcOptions,
  GcReport,
  CommitDryRunResult,
  ListedFile,
  PruneOptions,
  PruneResult,
  UnpruneResult,
  BundleReport,
  PackOptions,
  PackResult,
  PullBundleOptions,
};

/** Checks a bundle file without a store; serves a store over HTTP, or over stdin/stdout for SSH. */
export { serve, serveOnStdio, verifyBundle };
export type { FetchOptions, PullRemoteOptions, PushOptions, ServeOptions };
export type { WatchCommit, WatchEvent, WatchHandle, WatchOptions, WatchSummary };
export type {
  CheckoutOptions,
  CheckoutResult,
  CommitOptions,
  CommitResult,
  CommitInfo,
  LogOptions,
  ShowResult,
  RefTip,
  StatsResult,
  StatusResult,
  VerifyReport,
};

export class Store {
  constructor(readonly objects: ObjectStore) {}

  get root(): string {
    return this.objects.root;
  }

  commit(opts: CommitOptions): Promise<CommitResult> {
    return commit(this.objects, opts);
  }
  /** Every check of a commit and what it would store, writing nothing. */
  commitDryRun(opts: CommitOptions): Promise<CommitDryRunResult> {
    return commitDryRun(this.objects, opts);
  }
  checkout(opts: CheckoutOptions): Promise<CheckoutResult> {
    return checkout(this.objects, opts);
  }
  log(opts?: LogOptions): Promise<CommitInfo[]> {
    return log(this.objects, opts);
  }
  show(rev = 'HEAD'): Promise<ShowResult> {
    return show(this.objects, rev);
  }
  status(): Promise<StatusResult> {
    return status(this.objects);
  }
  stats(): Promise<StatsResult> {
    return stats(this.objects);
  }
  branches(): Promise<RefTip[]> {
    return listBranches(this.objects);
  }
  remoteBranches(): Promise<RefTip[]> {
    return listRemoteBranches(this.objects);
  }
  createBranch(name: string, start?: string) {
    return createBranch(this.objects, name, start);
  }
  deleteBranch(name: string) {
    return deleteBranch(this.objects, name);
  }
  tags(): Promise<RefTip[]> {
    return listTags(this.objects);
  }
  createTag(name: string, rev?: string, message?: string) {
    return createTag(this.objects, name, rev, message);
  }
  deleteTag(name: string) {
    return deleteTag(this.objects, name);
  }
  switch(branch: string) {
    return switchBranch(this.objects, branch);
  }
  reflog(name: string, kind: 'branch' | 'tag' | 'alias' = 'branch') {
    return reflog(this.objects, name, kind);
  }
  diff(opts: DiffOptions): Promise<DiffResult> {
    return diff(this.objects, opts);
  }
  best(opts: BestOptions): Promise<BestResult> {
    return best(this.objects, opts);
  }
  /** Tags the best commit of a branch by a metric. */
  async tagBest(name: string, opts: BestOptions & { message?: string }): Promise<BestResult & { tag: string }> {
    const b = await best(this.objects, opts);
    await createTag(this.objects, name, b.id, opts.message);
    return { ...b, tag: name };
  }
  aliases(): Promise<AliasInfo[]> {
    return listAliases(this.objects);
  }
  createAlias(opts: CreateAliasOptions): Promise<AliasInfo> {
    return createAlias(this.objects, opts);
  }
  deleteAlias(name: string) {
    return deleteAlias(this.objects, name);
  }
  configShow(rev = 'HEAD'): Promise<ConfigSnapshot> {
    return configShow(this.objects, rev);
  }
  configExtract(rev: string, out: string, force = false) {
    return configExtract(this.objects, rev, out, force);
  }
  /** A and B are revisions or config files. */
  configDiff(a: string, b: string): Promise<ConfigDiffResult> {
    return configDiff(this.objects, a, b);
  }
  configLabel(hash: string, text: string) {
    return configLabel(this.objects, hash, text);
  }
  prune(opts: PruneOptions): Promise<PruneResult> {
    return prune(this.objects, opts);
  }
  /** Takes prune records back while gc has not yet deleted the data they released. */
  unprune(revs: string[]): Promise<UnpruneResult> {
    return unprune(this.objects, revs);
  }
  gc(opts?: GcOptions): Promise<GcReport> {
    return gc(this.objects, opts);
  }
  pack(opts: PackOptions): Promise<PackResult> {
    return packBundle(this.objects, opts);
  }
  pullBundle(opts: PullBundleOptions) {
    return pullBundle(this.objects, opts);
  }
  ls(rev: string, opts?: { path?: string; tensors?: boolean }) {
    return ls(this.objects, rev, opts);
  }
  /** Streams `REV:PATH` (or one tensor of it) to `sink`, verified chunk by chunk. */
  cat(spec: string, sink: (bytes: Uint8Array) => Promise<void>, opts?: { tensor?: string }) {
    return cat(this.objects, spec, sink, opts);
  }
  remotes() {
    return remotes(this.objects).list();
  }
  addRemote(name: string, url: string, opts: AddRemoteOptions = {}) {
    return addRemote(this.objects, name, url, opts);
  }
  removeRemote(name: string) {
    return removeRemote(this.objects, name);
  }
  push(opts: PushOptions) {
    return pushToRemote(this.objects, opts);
  }
  fetch(opts: FetchOptions) {
    return fetchFromRemote(this.objects, opts);
  }
  pull(opts: PullRemoteOptions) {
    return pullFromRemote(this.objects, opts);
  }
  resolve(rev: string): Promise<string> {
    return resolveRevision(this.objects, rev).then((r) => r.id);
  }
  verify(opts: { readData?: boolean } = {}): Promise<VerifyReport> {
    return verifyStore(this.objects, opts);
  }
  rebuildIndex(): Promise<{ packs: number; objects: number }> {
    return this.objects.index.rebuild();
  }
  /** Commits each checkpoint written into `opts.dir` once complete, until `stop()` (or `once`); see WatchOptions. */
  watch(opts: WatchOptions): WatchHandle {
    return startWatch(this.objects, opts);
  }
  close(): Promise<void> {
    return this.objects.close();
  }
}

/**
 * Opens the store at `store` (a store or a folder holding .ckvc), else CKVC_DIR, else the nearest .ckvc upward.
 * `decoded`: objects a long-lived process keeps decoded between opens (store/decoded-objects.ts).
 */
export async function openStore(store?: string, opts: { cwd?: string; decoded?: DecodedObjects } = {}): Promise<Store> {
  return new Store(await ObjectStore.open(store, opts.cwd, opts.decoded));
}

/** Creates DIR/.ckvc; `created` is false when a store was already there (nothing is changed then). */
export async function initStore(dir = '.'): Promise<{ root: string; created: boolean }> {
  return createStore(dir);
}
