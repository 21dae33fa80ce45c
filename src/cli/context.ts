// What every command handler gets: the parsed global options and a way to open the store once.
import type { Store } from '../api/index.js';

export interface GlobalArgs {
  store?: string;
  json?: boolean;
}

/**
 * The API, loaded when a command first needs it: it brings the store, its codecs and native addons, which
 * `--help`, `--version` and a usage error never use (every command pays for what it loads at start-up).
 */
export function loadApi(): Promise<typeof import('../api/index.js')> {
  return import('../api/index.js');
}

/** Opens the store for the length of `fn` and always closes it. */
export async function withStore<T>(args: GlobalArgs, fn: (store: Store) => Promise<T>): Promise<T> {
  const { openStore } = await loadApi();
  const store = await openStore(args.store);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
