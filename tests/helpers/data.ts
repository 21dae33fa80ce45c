// Deterministic test data: a seeded PRNG, random bytes, float tensors, and a writer for valid safetensors files
// (header JSON padded with spaces to 8 bytes, tensors contiguous in the order given, like the reference writer).
import * as fs from 'node:fs';

/** mulberry32: small, fast, seeded. Returns a function giving uint32 values. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** The same generator as a float in [0, 1), for seeded fuzzing (a failing case replays from its seed). */
export function prngUnit(seed: number): () => number {
  const next = prng(seed);
  return () => next() / 4294967296;
}

/** n uniformly random bytes (incompressible), from `seed`. */
export function randomBytes(seed: number, n: number): Buffer {
  const next = prng(seed);
  const b = Buffer.allocUnsafe(n);
  const words = Math.floor(n / 4);
  for (let i = 0; i < words; i++) b.writeUInt32LE(next(), i * 4);
  for (let i = words * 4; i < n; i++) b[i] = next() & 0xff;
  return b;
}

/** `count` float32 values, roughly N(0, 0.05)-like in [-0.2, 0.2] (realistic weights: compressible exponents). */
export function randomFloat32(seed: number, count: number): Buffer {
  const next = prng(seed);
  const b = Buffer.allocUnsafe(count * 4);
  for (let i = 0; i < count; i++) {
    const u = (next() / 0x100000000 + next() / 0x100000000 + next() / 0x100000000) / 3 - 0.5;
    b.writeFloatLE(u * 0.4, i * 4);
  }
  return b;
}

/**
 * `count` float32 values shaped like trained weights at the bit level: random signs, exponents in a narrow band,
 * noise mantissas (their low bytes do not compress; the sign/exponent byte does).
 */
export function trainedFloat32(seed: number, count: number): Buffer {
  const next = prng(seed);
  const b = Buffer.alloc(count * 4);
  for (let i = 0; i < count; i++) {
    const r = next();
    b.writeUInt32LE((((r >>> 31) << 31) | ((118 + (r & 3)) << 23) | (next() >>> 9)) >>> 0, i * 4);
  }
  return b;
}

/**
 * An optimizer-like step on F32 data: the two low mantissa bytes of every element change (noise from
 * `trainedFloat32(seed)`), sign and exponent stay — every element differs, as after an Adam step.
 */
export function optimizerStepFloat32(prev: Buffer, seed: number): Buffer {
  const b = Buffer.from(prev);
  const noise = trainedFloat32(seed, b.length / 4);
  for (let i = 0; i < b.length; i += 4)
    b.writeUInt32LE((b.readUInt32LE(i) ^ (noise.readUInt32LE(i) & 0xffff)) >>> 0, i);
  return b;
}

export const DTYPE_WIDTH: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

export interface TensorSpec {
  dtype: string;
  shape: number[];
  /** The tensor's bytes; random (seeded by the tensor's position) when absent. */
  bytes?: Buffer;
}

export function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Plausible data for a dtype: float32 weights, their upper halves for BF16, random bits otherwise. */
export function tensorData(seed: number, dtype: string, shape: number[]): Buffer {
  const n = numel(shape);
  if (dtype === 'F32') return randomFloat32(seed, n);
  if (dtype === 'BF16') {
    const f = randomFloat32(seed, n);
    const out = Buffer.allocUnsafe(n * 2);
    for (let i = 0; i < n; i++) out.writeUInt16LE(f.readUInt32LE(i * 4) >>> 16, i * 2);
    return out;
  }
  return randomBytes(seed, n * (DTYPE_WIDTH[dtype] ?? 1));
}

/** Bytes of a safetensors file holding `tensors` in key order, with optional __metadata__. */
export function safetensorsBytes(
  tensors: Record<string, TensorSpec>,
  metadata?: Record<string, string>,
  seed = 1,
): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const datas: Buffer[] = [];
  let offset = 0;
  let i = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const data = t.bytes ?? tensorData(seed * 1000 + i, t.dtype, t.shape);
    const want = numel(t.shape) * (DTYPE_WIDTH[t.dtype] ?? 1);
    if (data.length !== want)
      throw new Error(`tensor ${name}: ${data.length} bytes given, ${t.dtype}${JSON.stringify(t.shape)} needs ${want}`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + data.length] };
    datas.push(data);
    offset += data.length;
    i++;
  }
  return safetensorsFromHeader(header, Buffer.concat(datas));
}

/** A safetensors file from an arbitrary header object (or raw JSON text) and data bytes: for malformed files too. */
export function safetensorsFromHeader(header: unknown, data: Buffer, opts: { pad?: boolean } = {}): Buffer {
  let json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  if (opts.pad !== false) {
    const padded = Math.ceil(json.length / 8) * 8;
    json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  }
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

export function writeSafetensors(
  file: string,
  tensors: Record<string, TensorSpec>,
  metadata?: Record<string, string>,
  seed = 1,
): Buffer {
  const b = safetensorsBytes(tensors, metadata, seed);
  fs.writeFileSync(file, b);
  return b;
}

/** Byte offset where the data section of a safetensors buffer starts. */
export function safetensorsDataStart(b: Buffer): number {
  return 8 + Number(b.readBigUInt64LE(0));
}
