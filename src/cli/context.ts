// What every command handler gets: the parsed global options and a way to open the store once.
import type { ArgumentsCamelCase, Argv, InferredOptionTypes } from 'yargs';
import type { Store } from '../api/store.js';
import { escaped } from './terminal-text.js';

/** The options every command takes; main.ts registers them before any command. */
export const GLOBAL_OPTIONS = {
  store: { type: 'string', global: true, describe: 'store folder (default: $CKVC_DIR, else nearest .ckvc upward)' },
  json: { type: 'boolean', global: true, describe: 'machine-readable output on stdout' },
} as const;

export type GlobalArgs = InferredOptionTypes<typeof GLOBAL_OPTIONS>;

/** The parser each command module adds its commands to. */
export type CliParser = Argv<GlobalArgs>;

/** yargs' parsed arguments without their `[name: string]: unknown` catch-all: only what the builder defined. */
type DefinedOnly<T> = { [K in keyof T as string extends K ? never : number extends K ? never : K]: T[K] };

/** A handler's arguments: exactly the options and positionals its command defines (both spellings of each,
 * `dry-run` and `dryRun`), so reading one the command does not define fails to compile. */
export type CommandArgs<U> = DefinedOnly<ArgumentsCamelCase<U>>;

/** Registers a command whose handler's argument type is inferred from the options its builder defines. */
export function addCommand<U>(
  parser: CliParser,
  usage: string,
  description: string,
  builder: (command: CliParser) => Argv<U>,
  handler: (args: CommandArgs<U>) => Promise<void>,
): void {
  // Every ArgumentsCamelCase<U> is a CommandArgs<U> (the same keys less the catch-all), which TypeScript cannot
  // show for a generic U.
  const yargsHandler = handler as (args: ArgumentsCamelCase<U>) => Promise<void>;
  parser.command<U>(usage, description, builder, yargsHandler);
}

/**
 * The whole API, loaded when a command first needs it: it brings the store, its codecs and native addons, which
 * `--help`, `--version` and a usage error never use (every command pays for what it loads at start-up).
 */
export function loadApi(): Promise<typeof import('../api/index.js')> {
  return import('../api/index.js');
}

/** Only the Store facade (opening, init), which loads each operation's code when it is called. */
export function loadStoreApi(): Promise<typeof import('../api/store.js')> {
  return import('../api/store.js');
}

/** Opens the store for the length of `fn` and always closes it. */
export async function withStore<T>(args: { store?: string }, fn: (store: Store) => Promise<T>): Promise<T> {
  const { openStore } = await loadStoreApi();
  const store = await openStore(args.store);
  // Lines about work done beyond the command's own (a fetch on demand): escaped, they come from the store's data.
  store.objects.notify = (m) => process.stderr.write(`ckvc: note: ${escaped(m)}\n`);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
