// Fuzz target 1: the safetensors header parser (src/core/input-formats/safetensors.ts) over mutated valid files.
// Contract: readSafetensorsHeaderLength + parseSafetensorsHeader either return a layout that satisfies every
// invariant below (and agrees with JSON.parse), or throw CkvcError('CKVC_BAD_SAFETENSORS'); nothing else,
// never slowly.
import { describe, expect, it } from 'vitest';
import { SAFETENSORS_DTYPE_BITS } from '../../src/core/input-formats/safetensors-dtypes.js';
import {
  parseSafetensorsHeader,
  readSafetensorsHeaderLength,
  type SafetensorsLayout,
} from '../../src/core/input-formats/safetensors.js';
import { attempt, FuzzStats, fuzzTimeout, mutate, Rng, scaled, type MutationContext } from './fuzz-helpers.js';

const enc = new TextEncoder();
const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

interface TensorDef {
  name: string;
  dtype: string;
  shape: number[];
}

function byteSize(dtype: string, shape: number[]): number {
  const bits = BigInt(SAFETENSORS_DTYPE_BITS[dtype]!);
  const total = shape.reduce((a, d) => a * BigInt(d), 1n) * bits;
  if (total % 8n !== 0n) throw new Error(`${dtype}${JSON.stringify(shape)} is not a whole number of bytes`);
  return Number(total / 8n);
}

interface BuildOpts {
  metadata?: Record<string, string> | null;
  /** Header key order: data order, reversed, or shuffled. */
  order?: 'data' | 'reversed' | 'shuffled';
  /** Unknown keys inside tensor entries (the parser ignores them). */
  extraKeys?: boolean;
  /** Pad the header with spaces to a multiple of 8 (the reference writer does). */
  pad?: boolean;
  /** Where __metadata__ goes among the keys. */
  metadataLast?: boolean;
}

/** A valid safetensors file: tensors laid out back to back in `tensors` order, random data. */
function buildSafetensors(rng: Rng, tensors: TensorDef[], opts: BuildOpts = {}): Uint8Array {
  const entries: [string, unknown][] = [];
  const datas: Uint8Array[] = [];
  let off = 0;
  for (const t of tensors) {
    const n = byteSize(t.dtype, t.shape);
    const entry: Record<string, unknown> = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + n] };
    if (opts.extraKeys) entry.comment = 'ignored';
    entries.push([t.name, entry]);
    datas.push(rng.bytes(n));
    off += n;
  }
  if (opts.order === 'reversed') entries.reverse();
  if (opts.order === 'shuffled') {
    for (let i = entries.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [entries[i], entries[j]] = [entries[j]!, entries[i]!];
    }
  }
  if (opts.metadata !== undefined) {
    const m: [string, unknown] = ['__metadata__', opts.metadata];
    if (opts.metadataLast) entries.push(m);
    else entries.unshift(m);
  }
  // Written by hand so key order is exactly ours (JSON.stringify would move integer-like keys first).
  let text = `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
  if (opts.pad !== false) text += ' '.repeat((8 - (enc.encode(text).length % 8)) % 8);
  const header = enc.encode(text);
  const out = new Uint8Array(8 + header.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  let at = 8 + header.length;
  for (const d of datas) {
    out.set(d, at);
    at += d.length;
  }
  return out;
}

function seedCorpus(): { name: string; bytes: Uint8Array; tensors: number }[] {
  const rng = new Rng(0xc0ffee);
  const all = (defs: TensorDef[], opts?: BuildOpts) => ({
    bytes: buildSafetensors(rng, defs, opts),
    tensors: defs.length,
  });
  const manyDtypes: TensorDef[] = [
    { name: 'w.f16', dtype: 'F16', shape: [2, 2] },
    { name: 'w.i64', dtype: 'I64', shape: [3] },
    { name: 'w.u8', dtype: 'U8', shape: [7] },
    { name: 'w.bool', dtype: 'BOOL', shape: [2] },
    { name: 'w.f64', dtype: 'F64', shape: [1] },
    { name: 'scalar.i32', dtype: 'I32', shape: [] },
    { name: 'w.c64', dtype: 'C64', shape: [2] },
    { name: 'w.f8', dtype: 'F8_E4M3', shape: [3] },
    { name: 'w.f4', dtype: 'F4', shape: [4] },
    { name: 'w.f6', dtype: 'F6_E2M3', shape: [4] },
    { name: 'w.bf16', dtype: 'BF16', shape: [3, 1] },
    { name: 'w.u64', dtype: 'U64', shape: [1, 1, 1] },
  ];
  const big: TensorDef[] = [];
  for (let i = 0; i < 40; i++)
    big.push({
      name: `model.layers.${i}.weight`,
      dtype: i % 3 === 0 ? 'F32' : i % 3 === 1 ? 'BF16' : 'F16',
      shape: [1 + (i % 5), 3],
    });
  return [
    {
      name: 'f32+bf16+metadata',
      ...all(
        [
          { name: 'embed', dtype: 'F32', shape: [4, 3] },
          { name: 'head', dtype: 'BF16', shape: [5] },
        ],
        { metadata: { format: 'pt' } },
      ),
    },
    {
      name: 'every dtype, shuffled keys',
      ...all(manyDtypes, { order: 'shuffled', metadata: { a: '1', b: 'two' }, metadataLast: true }),
    },
    {
      name: 'zero-size tensors sharing offsets',
      ...all(
        [
          { name: 'first', dtype: 'F32', shape: [2] },
          { name: 'zz', dtype: 'F32', shape: [0] },
          { name: 'aa', dtype: 'I8', shape: [3, 0] },
          { name: 'mid', dtype: 'F16', shape: [2] },
          { name: 'empty.end', dtype: 'U8', shape: [0, 0, 5] },
        ],
        { order: 'reversed' },
      ),
    },
    { name: 'no tensors', ...all([]) },
    {
      name: 'metadata only, unicode and escapes',
      ...all([], { metadata: { clé: 'välue "quoted" \\ back\nslash', emoji: '\u{1F600}', ctl: '\u0001\t' } }),
    },
    { name: 'metadata null', ...all([{ name: 'x', dtype: 'U16', shape: [2] }], { metadata: null }) },
    {
      name: 'odd names',
      ...all(
        [
          { name: '', dtype: 'U8', shape: [1] },
          { name: '0', dtype: 'U8', shape: [1] },
          { name: 'layer.0/weight', dtype: 'I16', shape: [2] },
          { name: 'é\u00e9"\\', dtype: 'U8', shape: [1] },
          { name: '__proto__', dtype: 'U8', shape: [1] },
        ],
        { order: 'shuffled' },
      ),
    },
    {
      name: 'extra entry keys, unpadded',
      ...all(
        [
          { name: 'a', dtype: 'F64', shape: [2, 1] },
          { name: 'b', dtype: 'I32', shape: [1] },
        ],
        { extraKeys: true, pad: false },
      ),
    },
    { name: '40 tensors', ...all(big, { metadata: { format: 'pt', step: '1000' } }) },
  ];
}

/** Every invariant an accepted layout must satisfy; returns a description of the first broken one. */
function layoutProblem(file: Uint8Array, headerLength: number, layout: SafetensorsLayout): string | undefined {
  if (layout.headerLength !== headerLength) return `headerLength ${layout.headerLength} != ${headerLength}`;
  if (layout.dataStart !== 8 + headerLength) return `dataStart ${layout.dataStart} != 8 + ${headerLength}`;
  const ts = layout.tensors;
  let cursor = layout.dataStart;
  const names = new Set<string>();
  for (let i = 0; i < ts.length; i++) {
    const t = ts[i]!;
    if (names.has(t.name)) return `tensor name ${JSON.stringify(t.name)} listed twice`;
    names.add(t.name);
    if (t.begin !== cursor)
      return `tensor ${i} ${JSON.stringify(t.name)} begins at ${t.begin}, expected ${cursor} (gap or overlap)`;
    if (t.end < t.begin) return `tensor ${i} ends before it begins`;
    if (i > 0) {
      const p = ts[i - 1]!;
      const order = p.begin - t.begin || p.end - t.end || (p.name < t.name ? -1 : p.name > t.name ? 1 : 0);
      if (order >= 0) return `tensors ${i - 1} and ${i} are not sorted by (begin, end, name)`;
    }
    if (!Object.hasOwn(SAFETENSORS_DTYPE_BITS, t.dtype)) return `tensor ${i} has unknown dtype ${t.dtype}`;
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      return `tensor ${i} has a bad shape ${JSON.stringify(t.shape)}`;
    const bits = BigInt(SAFETENSORS_DTYPE_BITS[t.dtype]!) * t.shape.reduce((a, d) => a * BigInt(d), 1n);
    if (bits % 8n !== 0n || bits / 8n !== BigInt(t.end - t.begin)) {
      return `tensor ${i} ${t.dtype}${JSON.stringify(t.shape)} spans ${t.end - t.begin} bytes, numel*bits/8 = ${Number(bits) / 8}`;
    }
    cursor = t.end;
  }
  if (cursor !== file.length) return `tensors cover the file up to ${cursor}, the file has ${file.length} bytes`;

  // Differential check: whatever the strict parser accepts, JSON.parse reads the same way.
  let json: Record<string, any>;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(file.subarray(8, 8 + headerLength)));
  } catch (e) {
    return `accepted, but JSON.parse refuses the header: ${(e as Error).message}`;
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    return 'accepted, but the header is not a JSON object';
  const tensorKeys = Object.keys(json).filter((k) => k !== '__metadata__');
  if (tensorKeys.length !== ts.length) return `JSON.parse sees ${tensorKeys.length} tensors, the layout ${ts.length}`;
  for (const t of ts) {
    const e = json[t.name];
    if (!e || e.dtype !== t.dtype || JSON.stringify(e.shape) !== JSON.stringify(t.shape))
      return `JSON.parse disagrees on tensor ${JSON.stringify(t.name)}`;
    if (e.data_offsets[0] + layout.dataStart !== t.begin || e.data_offsets[1] + layout.dataStart !== t.end)
      return `JSON.parse disagrees on the offsets of ${JSON.stringify(t.name)}`;
  }
  const meta = json.__metadata__ ?? undefined;
  if (JSON.stringify(meta) !== JSON.stringify(layout.metadata))
    return `metadata differs: JSON.parse ${JSON.stringify(meta)}, layout ${JSON.stringify(layout.metadata)}`;
  return undefined;
}

function parseFile(file: Uint8Array, headerSlice?: number): { headerLength: number; layout: SafetensorsLayout } {
  const n = headerSlice ?? readSafetensorsHeaderLength(file.subarray(0, 8), file.length, 'fuzz.safetensors');
  return { headerLength: n, layout: parseSafetensorsHeader(file.subarray(8, 8 + n), file.length, 'fuzz.safetensors') };
}

// ---------------------------------------------------------------------------------------------------------
// Format-aware mutations: edit the header text and keep the length prefix consistent, so the JSON rules are
// reached (a byte-level edit of the header usually only breaks the prefix).

function declaredLength(file: Uint8Array): number | undefined {
  if (file.length < 8) return undefined;
  const v = new DataView(file.buffer, file.byteOffset, 8).getBigUint64(0, true);
  return v <= BigInt(file.length - 8) ? Number(v) : undefined;
}

function editHeader(file: Uint8Array, start: number, end: number, replacement: string): Uint8Array {
  const n = declaredLength(file)!;
  const rep = enc.encode(replacement);
  const out = new Uint8Array(file.length - (end - start) + rep.length);
  out.set(file.subarray(0, 8 + start));
  out.set(rep, 8 + start);
  out.set(file.subarray(8 + end), 8 + start + rep.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(n - (end - start) + rep.length), true);
  return out;
}

const NUMBER_LITERALS = [
  '0',
  '1',
  '00',
  '01',
  '-1',
  '-0',
  '1.0',
  '1e2',
  '2E0',
  '0.5',
  '9007199254740991',
  '9007199254740992',
  '9007199254740993',
  '4294967295',
  '4294967296',
  '18446744073709551615',
  '18446744073709551616',
  '99999999999999999999999',
  '1e400',
  '-1e400',
  '1e-400',
];
const TOKENS = [
  'null',
  'true',
  'false',
  '{}',
  '[]',
  '""',
  '"F32"',
  '"F4"',
  '"F6_E3M2"',
  '"C64"',
  '"f32"',
  '"__metadata__"',
  '[0,0]',
  '[0]',
  '[1,2,3]',
  '[[1]]',
  ',',
  ':',
  '"\\ud800"',
  '"\\udc00x"',
  '"\\u0000"',
  '"\\uD83D\\uDE00"',
  ' ',
  '\t',
  '\u00a0',
  '\ufeff',
  '{"a":1}',
  '"dtype"',
  '"shape"',
  '"data_offsets"',
  '"data_offsets":[0,0]',
  '"x":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},',
  '['.repeat(130),
  ']'.repeat(3),
];

const jsonNumberOp = (rng: Rng, file: Uint8Array) => {
  const n = declaredLength(file);
  if (n === undefined) return undefined;
  const text = latin1(file.subarray(8, 8 + n));
  const runs = [...text.matchAll(/-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/g)];
  if (runs.length === 0) return undefined;
  const m = rng.pick(runs);
  const lit = rng.bool(0.2) ? String(rng.u32() * (rng.bool() ? 2 ** 21 : 1)) : rng.pick(NUMBER_LITERALS);
  return {
    bytes: editHeader(file, m.index!, m.index! + m[0].length, lit),
    op: `json-number @${m.index} ${m[0]}->${lit}`,
  };
};

const jsonTokenOp = (rng: Rng, file: Uint8Array) => {
  const n = declaredLength(file);
  if (n === undefined || n === 0) return undefined;
  const text = latin1(file.subarray(8, 8 + n));
  const marks: number[] = [];
  for (let i = 0; i < text.length; i++) if ('"{}[],:'.includes(text[i]!)) marks.push(i);
  const at = marks.length ? rng.pick(marks) : rng.int(n);
  const len = rng.int(Math.min(16, n - at) + 1);
  const tok = rng.pick(TOKENS);
  return {
    bytes: editHeader(file, at, at + len, tok),
    op: `json-token @${at}+${len} -> ${JSON.stringify(tok.slice(0, 20))}`,
  };
};

const jsonDuplicateEntryOp = (rng: Rng, file: Uint8Array) => {
  const n = declaredLength(file);
  if (n === undefined) return undefined;
  const text = new TextDecoder().decode(file.subarray(8, 8 + n));
  const m = [...text.matchAll(/"((?:[^"\\]|\\.)*)":\{[^{}]*\}/g)];
  if (m.length === 0) return undefined;
  const e = rng.pick(m);
  const insertAt = Buffer.byteLength(text.slice(0, 1), 'utf8');
  return {
    bytes: editHeader(file, insertAt, insertAt, `${e[0]},`),
    op: `json-duplicate-entry ${JSON.stringify(e[1])}`,
  };
};

const jsonResizeOp = (rng: Rng, file: Uint8Array) => {
  // Keep the header, change the data section: drop or add bytes at the end, or move the prefix by a little.
  const n = declaredLength(file);
  if (n === undefined) return undefined;
  if (rng.bool()) {
    const delta = rng.range(-8, 8);
    const out = Uint8Array.from(file);
    new DataView(out.buffer).setBigUint64(0, BigInt(Math.max(0, n + delta)), true);
    return { bytes: out, op: `prefix ${n}->${Math.max(0, n + delta)}` };
  }
  const cut = rng.range(-4, 4);
  const out =
    cut < 0 ? file.slice(0, Math.max(0, file.length + cut)) : Uint8Array.from([...file, ...new Uint8Array(cut)]);
  return { bytes: out, op: `data ${cut >= 0 ? '+' : ''}${cut}` };
};

describe('fuzz: safetensors header parser', () => {
  const corpus = seedCorpus();

  it('accepts every seed file with the expected layout', () => {
    for (const seed of corpus) {
      const { headerLength, layout } = parseFile(seed.bytes);
      expect(layoutProblem(seed.bytes, headerLength, layout), seed.name).toBeUndefined();
      expect(layout.tensors, seed.name).toHaveLength(seed.tensors);
    }
  });

  it(
    'mutated files: a valid layout or CKVC_BAD_SAFETENSORS, nothing else',
    () => {
      const stats = new FuzzStats('safetensors');
      const files = corpus.map((c) => c.bytes);
      const ctx: MutationContext = {
        corpus: files,
        fields: () => [
          { offset: 0, size: 8, endian: 'le' },
          { offset: 0, size: 4, endian: 'le' },
          { offset: 4, size: 4, endian: 'le' },
        ],
        extra: [jsonNumberOp, jsonTokenOp, jsonDuplicateEntryOp, jsonResizeOp],
      };
      const n = scaled(5000);
      for (let i = 0; i < n; i++) {
        const rng = Rng.forCase('safetensors', i);
        const { bytes: file, ops } = mutate(rng, rng.pick(files), ctx);
        // 1 case in 10 hands parseSafetensorsHeader a header slice of its own choosing (the prefix is not read).
        const slice = rng.bool(0.1) && file.length >= 8 ? rng.int(file.length - 8 + 1) : undefined;
        if (slice !== undefined) ops.push(`header slice ${slice}`);
        const o = attempt(() => parseFile(file, slice));
        if (stats.check(i, o, ['CKVC_BAD_SAFETENSORS'], ops, file)) {
          const problem = layoutProblem(file, o.value.headerLength, o.value.layout);
          if (problem) stats.fail(i, `accepted a layout that breaks an invariant: ${problem}`, ops, file);
          else stats.note(o.value.layout.tensors.length ? 'accepted-with-tensors' : 'accepted-empty');
        } else if (o.kind === 'refused') {
          const rule = (o.error as { data?: { rule?: unknown } }).data?.rule;
          if (typeof rule !== 'string') stats.fail(i, `refusal carries no data.rule: ${o.error.message}`, ops, file);
          else stats.note(rule);
        }
      }
      expect(stats.report()).toEqual([]);
      expect(stats.cases).toBe(n);
    },
    fuzzTimeout(),
  );
});
