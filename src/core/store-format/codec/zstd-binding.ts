// The zstd binding is a native addon that costs tens of ms to load on every start; commands that never compress
// or inflate a record (log, branch, status: commit bodies come from the index) do not load it.
//
// The addon is loaded through the package's `bindings.js`, not its index.js: index.js (1.x) passes only the
// data on and drops the level, so every frame was written at the addon's default level 3 — on byte planes both
// larger and 2-4x slower to write and to inflate than level 1 (see ZSTD_LEVELS in record-codec.ts).

export interface Zstd {
  /** One zstd frame of `data` at `level` (1-22), compressed on the libuv thread pool. */
  compress(data: Buffer, level: number): Promise<Buffer>;
  /** The content of one or more concatenated frames, inflated on the libuv thread pool. */
  decompress(data: Buffer): Promise<Buffer>;
}

let binding: Promise<Zstd> | undefined;

/** The addon's errors carry no JS stack (napi); a fresh Error gives them one, prefixed as the package does. */
async function withStack<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    throw new Error(`zstd: ${(e as Error).message}`);
  }
}

function wrap(addon: typeof import('@mongodb-js/zstd/bindings.js')): Zstd {
  return {
    // Called inside withStack: an argument the addon throws on at once (not in its promise) gets the prefix too.
    compress: (data, level) => withStack(() => addon.compress(data, level)),
    decompress: (data) => withStack(() => addon.decompress(data)),
  };
}

export function zstd(): Promise<Zstd> {
  binding ??= import('@mongodb-js/zstd/bindings.js').then(wrap);
  return binding;
}
