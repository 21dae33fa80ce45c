// The zstd package's native loader (1.x): the addon's own functions, which take the level that index.js drops.
declare module '@mongodb-js/zstd/bindings.js' {
  export function compress(data: Buffer, level?: number): Promise<Buffer>;
  export function decompress(data: Buffer): Promise<Buffer>;
}
