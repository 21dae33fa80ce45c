// The delta-base cache a store's commits leave in the user's cache folder (spec/FORMAT.md §18), for tests that
// look at it or take it away.
import * as fs from 'node:fs';
import { baseCacheFile } from '../../src/store/base-cache.js';
import { StoreLayout } from '../../src/store/store-layout.js';

/** Where the cache of the store at `store` is, for this process's CKVC_CACHE / XDG_CACHE_HOME / HOME. */
export function baseCacheOf(store: string): string {
  const file = baseCacheFile(new StoreLayout(store));
  if (!file) throw new Error(`no cache folder to use for ${store}`);
  return file;
}

/**
 * Removes the store's cache, as a gc that frees packs does: its next commit reads its bases from the store. Where
 * there is no cache folder to use, there is no cache either.
 */
export function forgetBaseCache(store: string): void {
  const file = baseCacheFile(new StoreLayout(store), false);
  if (file) fs.rmSync(file, { force: true });
}
