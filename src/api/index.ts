// The Node API: `import { openStore, initStore } from 'ckvc'`. Every operation returns data and never prints;
// the CLI is a thin layer over exactly these calls. The Store facade (./store.ts) loads each operation's code
// when it is first called.
export { initStore, openStore, Store } from './store.js';

export { parseCount } from './commit-input.js';
export { DEFAULT_GC_GRACE, DEFAULT_REFLOG_EXPIRY } from '../core/retention-defaults.js';
export { releasedWording } from '../core/released-wording.js';
/** A long-lived process's memory of checkout files it verified (CheckoutOptions.verified). */
export { VerifiedFiles } from '../store/verified-files.js';
/** A long-lived process's memory of decoded commits, trees and recipes (openStore's `decoded`). */
export { DecodedObjects } from '../store/decoded-objects.js';
export { CkvcError, ERROR_CODES, EXIT, isCkvcError, type ErrorCode } from '../core/errors.js';

/** Checks a bundle file without a store; serves a store over HTTP, or over stdin/stdout for SSH. */
export { verifyBundle } from './bundle.js';
export { serve, serveOnStdio } from './remote.js';

export type { AliasInfo, CreateAliasOptions, ReceivedAlias } from './aliases.js';
export type { BestOptions, BestResult } from './best.js';
export type { BundleReport, PackOptions, PackResult, PullBundleOptions } from './bundle.js';
export type { CheckoutOptions, CheckoutResult } from './checkout-options.js';
export type { CommitDryRunResult } from './commit-dry-run.js';
export type { CommitOptions, CommitResult } from './commit.js';
export type { ConfigDiffResult, ConfigSnapshot } from './config.js';
export type { DiffOptions, DiffResult } from './diff.js';
export type { GcOptions, GcReport } from './gc.js';
export type { CommitInfo, LogOptions, ShowResult } from './history.js';
export type { ListedFile } from './inspect.js';
export type { PruneOptions, PruneResult } from './prune.js';
export type { RefTip } from './refs.js';
export type { FetchOptions, PullRemoteOptions, PushOptions, ServeOptions } from './remote.js';
export type { StatsResult, StatusResult } from './store-info.js';
export type { UnpruneResult } from './unprune.js';
export type { WatchCommit, WatchEvent, WatchHandle, WatchOptions, WatchSummary } from './watch/watch-types.js';
export type { VerifyReport } from '../store/verify-store.js';
