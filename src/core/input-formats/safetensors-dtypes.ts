// The dtypes of safetensors files (the reference crate's `Dtype` enum): bits per element, which the header
// rules use to size tensors, and the element width byte-grouping codecs use. spec/SAFETENSORS.md "Dtypes".

/** Every dtype the reference `Dtype` enum knows, with its width in bits per element. */
export const SAFETENSORS_DTYPE_BITS: Readonly<Record<string, number>> = Object.freeze({
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
});

const ELEMENT_WIDTH: Readonly<Record<string, number>> = Object.freeze({
  F16: 2,
  BF16: 2,
  I16: 2,
  U16: 2,
  F32: 4,
  I32: 4,
  U32: 4,
  C64: 4, // complex64 = two f32 parts: group bytes like F32
  F64: 8,
  I64: 8,
  U64: 8,
});

/** Bytes per element for byte-grouping codecs; 1 for byte and sub-byte dtypes (and anything unknown). */
export function safetensorsElementWidth(dtype: string): number {
  return Object.hasOwn(ELEMENT_WIDTH, dtype) ? (ELEMENT_WIDTH[dtype] as number) : 1;
}
