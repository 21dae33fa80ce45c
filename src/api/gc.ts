// `ckvc gc`: delete data nothing needs any more, once it is older than the grace period.
import { parseDuration } from '../core/duration.js';
import { collectGarbage, type GcReport } from '../store/garbage-collector.js';
import type { ObjectStore } from '../store/object-store.js';
import { DEFAULT_GC_GRACE, DEFAULT_REFLOG_EXPIRY } from '../core/retention-defaults.js';

export interface GcOptions {
  dryRun?: boolean;
  /** A duration such as '1h', '30m' or '0' (default 1h). */
  grace?: string;
  /** Reflog lines naming commits no ref reaches expire after this (default 90d); 'never' keeps them all. */
  expireReflog?: string;
}

export async function gc(store: ObjectStore, opts: GcOptions = {}): Promise<GcReport> {
  const graceMs = parseDuration(opts.grace ?? DEFAULT_GC_GRACE, 'grace');
  const expire = opts.expireReflog ?? DEFAULT_REFLOG_EXPIRY;
  const expireReflogMs = expire === 'never' ? undefined : parseDuration(expire, 'expire-reflog');
  return collectGarbage(store, { dryRun: opts.dryRun, graceMs, expireReflogMs });
}

export type { GcReport };
