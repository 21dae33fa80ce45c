// What the symbolic pickle machine (pickle-machine.ts) builds, and the error for a pickle it does not read.

export class PickleNotUnderstood extends Error {}

export type Value =
  | null
  | boolean
  | number
  | string
  /** Raw bytes (BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8): where they lie in the pickle. */
  | { k: 'bytes'; start: number; end: number }
  | { k: 'float' }
  | { k: 'list'; items: Value[] }
  | { k: 'tuple'; items: Value[] }
  | { k: 'dict'; entries: [Value, Value][] }
  | { k: 'global'; name: string }
  | { k: 'pid'; value: Value }
  | { k: 'call'; fn: Value; args: Value; entries: [Value, Value][]; state?: Value }
  | { k: 'mark' };
