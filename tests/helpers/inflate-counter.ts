// Counts the zstd binding's inflates, for tests that assert how much decoding an operation does (a plane per
// chain link, or none at all).
import { zstd } from '../../src/core/store-format/codec/zstd-binding.js';

export interface InflateCounter {
  /** Inflates since the counter was made or last set to 0. */
  count: number;
  /** Puts the binding's own decompress back. */
  restore(): void;
}

/** Counts every decompress call of the binding until restore(). */
export async function countInflates(): Promise<InflateCounter> {
  const binding = await zstd();
  const decompress = binding.decompress;
  const counter: InflateCounter = {
    count: 0,
    restore: () => {
      binding.decompress = decompress;
    },
  };
  binding.decompress = (data) => {
    counter.count++;
    return decompress(data);
  };
  return counter;
}
