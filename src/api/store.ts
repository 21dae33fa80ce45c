// The Store facade of the Node API. It loads the code of an operation when the operation is first called: every
// CLI command opens a store, and compiling the commit, checkout, watch, diff and transfer code it does not use
// was a large part of a short command's start-up (issue 12). Reading history and refs stays loaded; the rest is
// in three groups (./operations-read.ts, ./operations-write.ts, ./operations-transfer.ts) and the watcher.
import type { DecodedObjects } from '../store/decoded-objects.js';
import { ObjectStore } from '../store/object-store.js';
import { resolveRevision } from '../store/revision-resolver.js';
import { createStore } from '../store/store-layout.js';
import type { VerifyReport } from '../store/verify-store.js';
import type { RepairOptions, RepairReport } from './repair.js';
import {
  createAlias,
  deleteAlias,
  listAliases,
  type AliasInfo,
  type CreateAliasOptions,
  type ReceivedAlias,
} from './aliases.js';
import { best, type BestOptions, type BestResult } from './best.js';
import type { PackOptions, PackResult, PullBundleOptions } from './bundle.js';
import type { CheckoutOptions, CheckoutResult } from './checkout-options.js';
import type { CommitDryRunResult } from './commit-dry-run.js';
import type { CommitOptions, CommitResult } from './commit.js';
import type { ConfigDiffResult, ConfigSnapshot } from './config.js';
import type { DiffOptions, DiffResult } from './diff.js';
import type { GcOptions, GcReport } from './gc.js';
import { log, show, type CommitInfo, type LogOptions, type ShowResult } from './history.js';
import type { PruneOptions, PruneResult } from './prune.js';
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
  type ListOptions,
  type RefTip,
} from './refs.js';
import type { AddRemoteOptions, FetchOptions, PullRemoteOptions, PushOptions, RemoteAuth } from './remote.js';
import { stats, status, type StatsResult, type StatusResult } from './store-info.js';
import type { UnpruneResult } from './unprune.js';
import { deferredWatch } from './watch/deferred-watch.js';
import type { WatchHandle, WatchOptions } from './watch/watch-types.js';

const reading = () => import('./operations-read.js');
const writing = () => import('./operations-write.js');
const transfer = () => import('./operations-transfer.js');

export class Store {
  constructor(readonly objects: ObjectStore) {}

  get root(): string {
    return this.objects.root;
  }

  async commit(opts: CommitOptions): Promise<CommitResult> {
    return (await writing()).commit(this.objects, opts);
  }
  /** Every check of a commit and what it would store, writing nothing. */
  async commitDryRun(opts: CommitOptions): Promise<CommitDryRunResult> {
    return (await writing()).commitDryRun(this.objects, opts);
  }
  async checkout(opts: CheckoutOptions): Promise<CheckoutResult> {
    return (await reading()).checkout(this.objects, opts);
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
  branches(opts?: ListOptions): Promise<RefTip[]> {
    return listBranches(this.objects, opts);
  }
  remoteBranches(opts?: ListOptions): Promise<RefTip[]> {
    return listRemoteBranches(this.objects, opts);
  }
  createBranch(name: string, start?: string, opts?: { force?: boolean }) {
    return createBranch(this.objects, name, start, opts);
  }
  deleteBranch(name: string) {
    return deleteBranch(this.objects, name);
  }
  tags(opts?: ListOptions): Promise<RefTip[]> {
    return listTags(this.objects, opts);
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
  async diff(opts: DiffOptions): Promise<DiffResult> {
    return (await reading()).diff(this.objects, opts);
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
  aliases(): Promise<(AliasInfo | ReceivedAlias)[]> {
    return listAliases(this.objects);
  }
  createAlias(opts: CreateAliasOptions): Promise<AliasInfo> {
    return createAlias(this.objects, opts);
  }
  deleteAlias(name: string) {
    return deleteAlias(this.objects, name);
  }
  async configShow(rev = 'HEAD'): Promise<ConfigSnapshot> {
    return (await reading()).configShow(this.objects, rev);
  }
  async configExtract(rev: string, out: string, force = false) {
    return (await reading()).configExtract(this.objects, rev, out, force);
  }
  /** A and B are revisions or config files. */
  async configDiff(a: string, b: string): Promise<ConfigDiffResult> {
    return (await reading()).configDiff(this.objects, a, b);
  }
  async configLabel(hash: string, text: string) {
    return (await reading()).configLabel(this.objects, hash, text);
  }
  async prune(opts: PruneOptions): Promise<PruneResult> {
    return (await writing()).prune(this.objects, opts);
  }
  /** Takes prune records back while gc has not yet deleted the data they released. */
  async unprune(revs: string[]): Promise<UnpruneResult> {
    return (await writing()).unprune(this.objects, revs);
  }
  async gc(opts?: GcOptions): Promise<GcReport> {
    return (await writing()).gc(this.objects, opts);
  }
  async pack(opts: PackOptions): Promise<PackResult> {
    return (await transfer()).packBundle(this.objects, opts);
  }
  async pullBundle(opts: PullBundleOptions) {
    return (await transfer()).pullBundle(this.objects, opts);
  }
  async ls(rev: string, opts?: { path?: string; tensors?: boolean }) {
    return (await reading()).ls(this.objects, rev, opts);
  }
  /**
   * Streams `REV:PATH` (or one tensor of it) to `sink`, verified chunk by chunk. The bytes handed to `sink` are
   * reused once its promise resolves: write them out (and wait for that) or copy them, never keep them.
   */
  async cat(spec: string, sink: (bytes: Uint8Array) => Promise<void>, opts?: { tensor?: string }) {
    return (await reading()).cat(this.objects, spec, sink, opts);
  }
  async remotes() {
    return (await transfer()).remotes(this.objects).list();
  }
  async addRemote(name: string, url: string, opts: AddRemoteOptions = {}) {
    return (await transfer()).addRemote(this.objects, name, url, opts);
  }
  async setRemote(name: string, url: string | undefined, opts: AddRemoteOptions = {}) {
    return (await transfer()).setRemote(this.objects, name, url, opts);
  }
  async removeRemote(name: string, opts: { force?: boolean } = {}) {
    return (await transfer()).removeRemote(this.objects, name, opts);
  }
  async push(opts: PushOptions) {
    return (await transfer()).pushToRemote(this.objects, opts);
  }
  /** Deletes branches or tags on a remote (`push REMOTE --delete NAME...`). */
  async deleteOnRemote(opts: RemoteAuth & { remote: string; refs: string[] }) {
    return (await transfer()).deleteOnRemote(this.objects, opts);
  }
  async fetch(opts: FetchOptions) {
    return (await transfer()).fetchFromRemote(this.objects, opts);
  }
  async pull(opts: PullRemoteOptions) {
    return (await transfer()).pullFromRemote(this.objects, opts);
  }
  resolve(rev: string): Promise<string> {
    return resolveRevision(this.objects, rev).then((r) => r.id);
  }
  /** Mends a damaged store from remotes or bundle files holding its lost objects (spec/FORMAT.md §10.1). */
  async repair(opts: RepairOptions): Promise<RepairReport> {
    return (await transfer()).repair(this.objects, opts);
  }
  async verify(opts: { readData?: boolean } = {}): Promise<VerifyReport> {
    return (await reading()).verifyStore(this.objects, opts);
  }
  rebuildIndex(): Promise<{ packs: number; objects: number }> {
    return this.objects.index.rebuild();
  }
  /** Commits each checkpoint written into `opts.dir` once complete, until `stop()` (or `once`); see WatchOptions. */
  watch(opts: WatchOptions): WatchHandle {
    return deferredWatch(import('./watch/watcher.js').then((m) => m.watch(this.objects, opts)));
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
