// Shared machinery of the fuzz tests ("Prove that nothing is lost"): a seeded PRNG, a byte-level mutator,
// an outcome classifier that separates clean refusals (CkvcError with a code) from crashes, and memory probes.
//
// Reproducing a failure: every case draws from its own PRNG seeded by (CKVC_FUZZ_SEED, target, case index),
// so a reported "target X case N" replays exactly with the same CKVC_FUZZ_SEED, whatever the scale.
//
// Environment:
//   CKVC_FUZZ_SCALE  multiplies every case count (default 1; the soak run uses e.g. 50)
//   CKVC_FUZZ_SEED   base seed (default 0x5eed); change it to explore new inputs
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import * as v8 from 'node:v8';
import { ERROR_CODES, isCkvcError } from '../../src/core/errors.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
}

export const FUZZ_SCALE = envNumber('CKVC_FUZZ_SCALE', 1);
export const FUZZ_SEED = Math.floor(envNumber('CKVC_FUZZ_SEED', 0x5eed)) >>> 0;

/** A per-test timeout for a fuzz loop that takes well under `baseMs` at scale 1, grown with CKVC_FUZZ_SCALE. */
export function fuzzTimeout(baseMs = 120_000): number {
  return Math.round(baseMs * Math.max(1, FUZZ_SCALE));
}

/** `base` cases at scale 1, scaled by CKVC_FUZZ_SCALE (at least 1). */
export function scaled(base: number, scale = FUZZ_SCALE): number {
  return Math.max(1, Math.round(base * scale));
}

// ---------------------------------------------------------------------------------------------------------
// PRNG: xoshiro128** seeded through splitmix32. Small, fast, and the same on every platform.

function splitmix32(state: number): [number, number] {
  state = (state + 0x9e3779b9) >>> 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return [state, (z ^ (z >>> 16)) >>> 0];
}

/** FNV-1a of a string, to turn target names into seed material. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    let st = seed >>> 0;
    const out: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [n, v] = splitmix32(st);
      st = n;
      out.push(v);
    }
    [this.s0, this.s1, this.s2, this.s3] = out as [number, number, number, number];
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** The PRNG of case `index` of `target`: independent of every other case. */
  static forCase(target: string, index: number, base = FUZZ_SEED): Rng {
    return new Rng((Math.imul(fnv1a(target) ^ base, 0x9e3779b1) + Math.imul(index + 1, 0x85ebca77)) >>> 0);
  }

  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0;
    this.s1 >>>= 0;
    this.s2 >>>= 0;
    return result;
  }

  /** Uniform integer in [0, n) for n >= 1. */
  int(n: number): number {
    if (n <= 1) return 0;
    if (n <= 0x1_0000_0000) return Math.floor((this.u32() / 0x1_0000_0000) * n);
    return Math.floor(((this.u32() * 0x1_0000_0000 + this.u32()) / 2 ** 64) * n);
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  bool(p = 0.5): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }

  hex(nBytes: number): string {
    return Buffer.from(this.bytes(nBytes)).toString('hex');
  }

  /** A length biased towards small values: most ranges mutated are short, some are long. */
  smallLength(max: number): number {
    if (max <= 0) return 0;
    const r = this.int(10);
    if (r < 6) return 1 + this.int(Math.min(8, max));
    if (r < 9) return 1 + this.int(Math.min(128, max));
    return 1 + this.int(max);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

// ---------------------------------------------------------------------------------------------------------
// Mutator

export const INTERESTING_BYTES = [0x00, 0xff, 0x7f, 0x80] as const;

/** Values written over length fields: zero, off-by-one, sign-bit, all-ones, the 64 MiB limit and around it. */
export const HUGE_VALUES: readonly bigint[] = [
  0n,
  1n,
  0x7fn,
  0x80n,
  0xffn,
  0x7fffn,
  0x8000n,
  0xffffn,
  0x7fff_ffffn,
  0x8000_0000n,
  0xffff_ffffn,
  0x1_0000_0000n,
  64n * 1024n * 1024n,
  64n * 1024n * 1024n + 1n,
  64n * 1024n * 1024n - 1n,
  100_000_000n,
  100_000_001n,
  2n ** 53n - 1n,
  2n ** 53n,
  2n ** 53n + 1n,
  0x7fff_ffff_ffff_ffffn,
  0x8000_0000_0000_0000n,
  0xffff_ffff_ffff_ffffn,
];

/** A length (or count, or offset) field inside an input, for targeted overwrites. */
export interface FieldHint {
  offset: number;
  size: 1 | 2 | 4 | 8;
  endian: 'le' | 'be';
}

export interface MutationContext {
  /** Other valid inputs of the same kind, for splicing. */
  corpus?: readonly Uint8Array[];
  /** Length/count/offset fields of `input`, overwritten with huge values by the 'length-field' op. */
  fields?: (input: Uint8Array) => FieldHint[];
  /** Format-aware extra operations; each returns the mutated bytes and a description, or undefined to pass. */
  extra?: readonly ((rng: Rng, input: Uint8Array) => { bytes: Uint8Array; op: string } | undefined)[];
  /** Most mutations stack 1 op; up to this many (default 3). */
  maxOps?: number;
}

export interface Mutated {
  bytes: Uint8Array;
  ops: string[];
}

function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function writeField(b: Uint8Array, hint: FieldHint, value: bigint): void {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, value & 0xffff_ffff_ffff_ffffn, true);
  for (let i = 0; i < hint.size; i++) {
    const at = hint.endian === 'le' ? hint.offset + i : hint.offset + hint.size - 1 - i;
    if (at >= 0 && at < b.length) b[at] = bytes[i]!;
  }
}

/** Applies one random mutation to a copy of `input`. Never returns the same array object. */
export function mutateOnce(rng: Rng, input: Uint8Array, ctx: MutationContext = {}): Mutated {
  const b = Uint8Array.from(input);
  const n = b.length;
  const extraCount = ctx.extra?.length ?? 0;
  // Weighted choice of operations (extra ops share one slot of weight 3 each).
  const table: [string, number][] = [
    ['bit-flip', 6],
    ['interesting-byte', 4],
    ['random-byte', 2],
    ['truncate', 3],
    ['extend-junk', 2],
    ['duplicate-range', 2],
    ['remove-range', 2],
    ['length-field', ctx.fields ? 4 : 1],
    ['splice', ctx.corpus && ctx.corpus.length > 0 ? 2 : 0],
    ['extra', extraCount > 0 ? 3 * extraCount : 0],
  ];
  const total = table.reduce((a, [, w]) => a + w, 0);
  let r = rng.int(total);
  let op = 'bit-flip';
  for (const [name, w] of table) {
    if (r < w) {
      op = name;
      break;
    }
    r -= w;
  }
  if (
    n === 0 &&
    ['bit-flip', 'interesting-byte', 'random-byte', 'truncate', 'duplicate-range', 'remove-range'].includes(op)
  )
    op = 'extend-junk';

  switch (op) {
    case 'bit-flip': {
      const flips = rng.bool(0.8) ? 1 : rng.range(2, 8);
      const where: string[] = [];
      for (let i = 0; i < flips; i++) {
        const at = rng.int(n);
        const bit = rng.int(8);
        b[at] = b[at]! ^ (1 << bit);
        where.push(`${at}.${bit}`);
      }
      return { bytes: b, ops: [`bit-flip ${where.join(',')}`] };
    }
    case 'interesting-byte': {
      const count = rng.bool(0.7) ? 1 : rng.range(2, 8);
      const v = rng.pick(INTERESTING_BYTES);
      const at = rng.int(n);
      const run = rng.bool(0.5);
      for (let i = 0; i < count; i++) {
        const p = run ? at + i : rng.int(n);
        if (p < n) b[p] = v;
      }
      return { bytes: b, ops: [`set 0x${v.toString(16)} x${count}${run ? ' run' : ''} at ${at}`] };
    }
    case 'random-byte': {
      const at = rng.int(n);
      const v = rng.int(256);
      b[at] = v;
      return { bytes: b, ops: [`byte ${at}=0x${v.toString(16)}`] };
    }
    case 'truncate': {
      const to = rng.bool(0.5) ? Math.max(0, n - rng.smallLength(n)) : rng.int(n);
      return { bytes: b.subarray(0, to).slice(), ops: [`truncate ${n}->${to}`] };
    }
    case 'extend-junk': {
      const len = rng.smallLength(256);
      const junk = rng.bool(0.5) ? rng.bytes(len) : new Uint8Array(len).fill(rng.pick(INTERESTING_BYTES));
      return { bytes: concat(b, junk), ops: [`extend +${len}`] };
    }
    case 'duplicate-range': {
      const start = rng.int(n);
      const len = Math.min(rng.smallLength(n), n - start);
      const at = rng.int(n + 1);
      return {
        bytes: concat(b.subarray(0, at), b.subarray(start, start + len), b.subarray(at)),
        ops: [`dup [${start},+${len}) at ${at}`],
      };
    }
    case 'remove-range': {
      const start = rng.int(n);
      const len = Math.min(rng.smallLength(n), n - start);
      return { bytes: concat(b.subarray(0, start), b.subarray(start + len)), ops: [`remove [${start},+${len})`] };
    }
    case 'length-field': {
      const hints = ctx.fields?.(b).filter((h) => h.offset >= 0 && h.offset + h.size <= n) ?? [];
      const hint: FieldHint =
        hints.length > 0 && rng.bool(0.85)
          ? rng.pick(hints)
          : {
              offset: rng.int(Math.max(1, n - 3)),
              size: rng.pick([1, 2, 4, 8] as const),
              endian: rng.bool() ? 'le' : 'be',
            };
      let value = rng.pick(HUGE_VALUES);
      if (rng.bool(0.15)) value = BigInt(rng.u32()) * (rng.bool(0.3) ? 0x1_0000_0000n : 1n);
      writeField(b, hint, value);
      return { bytes: b, ops: [`field@${hint.offset}/${hint.size}${hint.endian}=0x${value.toString(16)}`] };
    }
    case 'splice': {
      const other = rng.pick(ctx.corpus!);
      const cutA = rng.int(n + 1);
      const cutB = rng.int(other.length + 1);
      return {
        bytes: concat(b.subarray(0, cutA), other.subarray(cutB)),
        ops: [`splice a[0,${cutA})+b[${cutB},${other.length})`],
      };
    }
    case 'extra': {
      const fn = ctx.extra![rng.int(extraCount)]!;
      const res = fn(rng, b);
      if (res) return { bytes: res.bytes, ops: [res.op] };
      const at = rng.int(Math.max(1, n));
      if (n > 0) b[at] = b[at]! ^ 0x01;
      return { bytes: b, ops: [`bit-flip ${at}.0 (extra passed)`] };
    }
  }
  throw new Error(`unreachable mutation ${op}`);
}

/** 1 op most of the time, sometimes up to ctx.maxOps stacked. */
export function mutate(rng: Rng, input: Uint8Array, ctx: MutationContext = {}): Mutated {
  const max = ctx.maxOps ?? 3;
  const count = rng.bool(0.7) ? 1 : rng.range(1, max);
  let cur: Uint8Array = input;
  const ops: string[] = [];
  for (let i = 0; i < count; i++) {
    const m = mutateOnce(rng, cur, ctx);
    cur = m.bytes;
    ops.push(...m.ops);
  }
  return { bytes: cur, ops };
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

export function hexPreview(b: Uint8Array, max = 160): string {
  const h = Buffer.from(b.buffer, b.byteOffset, Math.min(b.byteLength, max)).toString('hex');
  return b.byteLength > max ? `${h}… (${b.byteLength} bytes)` : `${h} (${b.byteLength} bytes)`;
}

// ---------------------------------------------------------------------------------------------------------
// Outcomes and statistics

export type Outcome<T> =
  | { kind: 'accepted'; value: T; ms: number }
  | { kind: 'refused'; code: string; error: Error; ms: number }
  | { kind: 'crash'; error: unknown; ms: number };

function classifyError(e: unknown, ms: number): Outcome<never> {
  if (isCkvcError(e) && typeof e.code === 'string' && Object.hasOwn(ERROR_CODES, e.code))
    return { kind: 'refused', code: e.code, error: e, ms };
  return { kind: 'crash', error: e, ms };
}

export function attempt<T>(fn: () => T): Outcome<T> {
  const t0 = performance.now();
  try {
    const value = fn();
    return { kind: 'accepted', value, ms: performance.now() - t0 };
  } catch (e) {
    return classifyError(e, performance.now() - t0);
  }
}

export async function attemptAsync<T>(fn: () => Promise<T>): Promise<Outcome<T>> {
  const t0 = performance.now();
  try {
    const value = await fn();
    return { kind: 'accepted', value, ms: performance.now() - t0 };
  } catch (e) {
    return classifyError(e, performance.now() - t0);
  }
}

export function describeError(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return `${e.constructor.name}${code !== undefined ? `(${String(code)})` : ''}: ${e.message}${e.stack ? `\n${e.stack.split('\n').slice(1, 6).join('\n')}` : ''}`;
  }
  return `non-Error thrown: ${String(e)}`;
}

const MAX_FAILURES_KEPT = Math.floor(envNumber('CKVC_FUZZ_MAX_FAILURES', 12));

/** A single case slower than this counts as a hang (the whole-test timeout catches real infinite loops). */
export const SLOW_CASE_MS = 2_000;

export class FuzzStats {
  cases = 0;
  accepted = 0;
  refused = 0;
  readonly codes = new Map<string, number>();
  readonly notes = new Map<string, number>();
  readonly failures: string[] = [];
  failureCount = 0;
  maxCaseMs = 0;
  private readonly t0 = performance.now();
  private readonly mem0: MemSample;

  /**
   * `peakGrowthLimit`: how much the process's peak RSS may grow while this target runs. The inputs are small, so
   * growth beyond it means something allocated what a damaged length field declared.
   */
  constructor(
    readonly target: string,
    readonly peakGrowthLimit = 128 * MiB,
  ) {
    this.mem0 = memSample();
  }

  record<T>(o: Outcome<T>): void {
    this.cases++;
    this.maxCaseMs = Math.max(this.maxCaseMs, o.ms);
    if (o.kind === 'accepted') this.accepted++;
    else if (o.kind === 'refused') {
      this.refused++;
      this.codes.set(o.code, (this.codes.get(o.code) ?? 0) + 1);
    }
  }

  note(what: string): void {
    this.notes.set(what, (this.notes.get(what) ?? 0) + 1);
  }

  /** Keeps the first CKVC_FUZZ_MAX_FAILURES (default 12) failure descriptions; all are counted. */
  fail(caseIndex: number, what: string, ops: string[], input?: Uint8Array): void {
    this.failureCount++;
    if (this.failures.length < MAX_FAILURES_KEPT) {
      this.failures.push(
        `[${this.target} case ${caseIndex}, CKVC_FUZZ_SEED=${FUZZ_SEED}] ${what}\n  mutation: ${ops.join(' ; ') || '(none)'}${input ? `\n  input: ${hexPreview(input)}` : ''}`,
      );
    }
  }

  /** Checks the common contract of an outcome; returns true when the caller should go on checking invariants. */
  check<T>(
    caseIndex: number,
    o: Outcome<T>,
    allowedCodes: readonly string[],
    ops: string[],
    input?: Uint8Array,
  ): o is Extract<Outcome<T>, { kind: 'accepted' }> {
    this.record(o);
    if (o.ms > SLOW_CASE_MS) this.fail(caseIndex, `took ${o.ms.toFixed(0)} ms (hang?)`, ops, input);
    if (o.kind === 'crash') {
      this.fail(caseIndex, `threw something other than a CkvcError: ${describeError(o.error)}`, ops, input);
      return false;
    }
    if (o.kind === 'refused') {
      if (!allowedCodes.includes(o.code))
        this.fail(
          caseIndex,
          `refused with ${o.code}, expected one of ${allowedCodes.join('/')}: ${o.error.message}`,
          ops,
          input,
        );
      return false;
    }
    return true;
  }

  private peakGrowth(): number {
    return process.resourceUsage().maxRSS * 1024 - this.mem0.maxRss;
  }

  summary(): string {
    const secs = ((performance.now() - this.t0) / 1000).toFixed(2);
    const codes = [...this.codes.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([c, n]) => `${c}=${n}`)
      .join(' ');
    const notes = [...this.notes.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([c, n]) => `${c}=${n}`)
      .join(' ');
    return (
      `fuzz ${this.target}: ${this.cases} cases in ${secs}s (scale ${FUZZ_SCALE}, seed ${FUZZ_SEED}): ` +
      `${this.accepted} accepted, ${this.refused} refused [${codes}]${notes ? ` {${notes}}` : ''}, ` +
      `slowest ${this.maxCaseMs.toFixed(1)} ms, peak RSS +${fmtMiB(Math.max(0, this.peakGrowth()))}, ${this.failureCount} failure(s)`
    );
  }

  /** Prints the summary line (the README quotes these counts) and returns the failures for expect(...).toEqual([]). */
  report(): string[] {
    const grew = this.peakGrowth();
    if (grew > this.peakGrowthLimit) {
      this.failureCount++;
      this.failures.unshift(
        `[${this.target}] peak RSS grew by ${fmtMiB(grew)} (limit ${fmtMiB(this.peakGrowthLimit)}): an allocation followed a declared size?`,
      );
    }
    console.log(this.summary());
    return this.failureCount > this.failures.length
      ? [...this.failures, `... and ${this.failureCount - this.failures.length} more failure(s)`]
      : this.failures;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Memory probes

let gcFn: (() => void) | undefined;
/** A full GC, if it can be had without --expose-gc (via V8 flags); a no-op otherwise. */
export function collectGarbage(): void {
  if (!gcFn) {
    try {
      v8.setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as () => void;
    } catch {
      gcFn = () => {};
    }
  }
  gcFn();
}

export interface MemSample {
  rss: number;
  arrayBuffers: number;
  external: number;
  /** Peak resident set size of this process so far, in bytes. */
  maxRss: number;
}

export function memSample(): MemSample {
  collectGarbage();
  const m = process.memoryUsage();
  return {
    rss: m.rss,
    arrayBuffers: m.arrayBuffers,
    external: m.external,
    maxRss: process.resourceUsage().maxRSS * 1024,
  };
}

export const MiB = 1024 * 1024;

export function fmtMiB(n: number): string {
  return `${(n / MiB).toFixed(1)} MiB`;
}
