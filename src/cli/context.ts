// What every command handler gets: the parsed global options and a way to open the store once.
import { openStore, type Store } from '../api/index.js';

export interface GlobalArgs {
  store?: string;
  json?: boolean;
}

/** Opens the store for the length of `fn` and always closes it. */
export async function withStore<T>(args: GlobalArgs, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(args.store);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
