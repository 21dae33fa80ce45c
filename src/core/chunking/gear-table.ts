// The gear table for content-defined chunking (spec/CHUNKING.md, "Gear table").
//
// Rule (reproducible anywhere): run SplitMix64 from seed 0 and keep the HIGH 32 bits of each of the first
// 256 outputs. SplitMix64, all arithmetic modulo 2^64:
//   state = state + 0x9E3779B97F4A7C15
//   z = state
//   z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
//   z = (z ^ (z >> 27)) * 0x94D049BB133111EB
//   output z ^ (z >> 31)
// GEAR_TABLE[i] = output_i >> 32 (i = 0..255). The first output from seed 0 is 0xE220A8397B1DCDAF, so
// GEAR_TABLE[0] = 0xE220A839. spec/vectors/cdc.json lists the first eight entries.
//
// The table is computed once at module load (256 BigInt steps, microseconds). It is a stored-format constant:
// changing the seed or the rule changes every chunk boundary and therefore every chunk ID.

const GEAR_SEED = 0n;

const MASK64 = (1n << 64n) - 1n;

function buildGearTable(seed: bigint): Uint32Array {
  const table = new Uint32Array(256);
  let state = seed & MASK64;
  for (let i = 0; i < 256; i++) {
    state = (state + 0x9e3779b97f4a7c15n) & MASK64;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    z = z ^ (z >> 31n);
    table[i] = Number(z >> 32n);
  }
  return table;
}

export const GEAR_TABLE: Uint32Array = buildGearTable(GEAR_SEED);
