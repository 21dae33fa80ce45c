// The zstd binding is a native addon that costs tens of ms to load on every start; commands that never compress
// or inflate a record (log, branch, status: commit bodies come from the index) do not load it.
type ZstdBinding = typeof import('@mongodb-js/zstd');

let binding: Promise<ZstdBinding> | undefined;

export function zstd(): Promise<ZstdBinding> {
  binding ??= import('@mongodb-js/zstd');
  return binding;
}
