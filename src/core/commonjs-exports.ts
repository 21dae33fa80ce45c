// A CommonJS package loaded with a dynamic import() (yaml, level: loaded only by the commands that need them).
// Node hands its exports over as named exports and as `default`; the bundled CLI (esbuild) only as `default`.

/** The package's exports, however it was loaded. */
export function commonJsExports<T extends object>(loaded: T): T {
  return (loaded as { default?: T }).default ?? loaded;
}
