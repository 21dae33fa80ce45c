// The store fuzz machinery shared by tests/reliability/fuzz-store.test.ts (CI size) and
// tests/soak/fuzz-long.soak.ts (long runs, bigger checkpoints): a fixture store made with the real CLI, the
// in-process PackReader fuzz loop and the end-to-end (spawned CLI) fuzz loop. fuzz-store.test.ts describes the
// contract being checked. Needs dist/ (the CLI runs compiled code): `npx tsc -p .` or `npm run build` first.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BufferPool } from '../../src/core/buffer-pool.js';
import { ERROR_CODES } from '../../src/core/errors.js';
import { objectId } from '../../src/core/store-format/object-id.js';
import {
  decodeFooter,
  decodeToc,
  PACK_FOOTER_BYTES,
  PACK_HEADER_BYTES,
  RECORD_HEADER_BYTES,
  TOC_ENTRY_BYTES,
  type PackEntry,
} from '../../src/core/store-format/pack-format.js';
import { PackReader } from '../../src/store/pack-reader.js';
import { StoreLayout } from '../../src/store/store-layout.js';
import {
  attemptAsync,
  FUZZ_SEED,
  FuzzStats,
  mutate,
  REPO_ROOT,
  Rng,
  sameBytes,
  type FieldHint,
} from './fuzz-helpers.js';

const BIN = path.join(REPO_ROOT, 'bin', 'ckvc');
const PRELOAD = pathToFileURL(path.join(REPO_ROOT, 'tests', 'reliability', 'fuzz-rss-preload.mjs')).href;
export const SPAWN_TIMEOUT_MS = 10_000;

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  error?: Error;
  /** Peak RSS of the child (KiB), written by fuzz-rss-preload.mjs on exit. */
  maxRssKiB?: number;
  ms: number;
}

function childEnv(rssFile: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CKVC_AUTHOR: 'fuzz', NO_COLOR: '1', CKVC_FUZZ_RSS_OUT: rssFile };
  delete env.CKVC_DIR;
  return env;
}

function readRss(rssFile: string): number | undefined {
  try {
    const v = Number(fs.readFileSync(rssFile, 'utf8'));
    fs.rmSync(rssFile);
    return v;
  } catch {
    return undefined;
  }
}

let rssCounter = 0;
const rssPath = (cwd: string) => path.join(cwd, `.rss-${process.pid}-${++rssCounter}`);

/** Runs `ckvc ARGS` to completion (spawnSync, killed after timeoutMs). */
export function run(cwd: string, args: string[], timeoutMs = SPAWN_TIMEOUT_MS): RunResult {
  const rssFile = rssPath(cwd);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', PRELOAD, BIN, ...args], {
    cwd,
    env: childEnv(rssFile),
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 16 * 1024 * 1024,
  });
  return {
    code: r.status,
    signal: r.signal,
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? '',
    error: r.error,
    maxRssKiB: readRss(rssFile),
    ms: performance.now() - t0,
  };
}

/**
 * Like run(), without blocking: the end-to-end loop runs verify and checkout of one case side by side (on
 * separate copies of the damaged store) to stay inside the CI time budget. A child still running after
 * timeoutMs is killed (SIGKILL) and reported as a hang.
 */
export function runAsync(cwd: string, args: string[], timeoutMs = SPAWN_TIMEOUT_MS): Promise<RunResult> {
  const rssFile = rssPath(cwd);
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', PRELOAD, BIN, ...args], {
      cwd,
      env: childEnv(rssFile),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let error: Error | undefined;
    const timer = setTimeout(() => {
      error = new Error(`timed out after ${timeoutMs} ms (hang?)`);
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', (e) => {
      error = e;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, error, maxRssKiB: readRss(rssFile), ms: performance.now() - t0 });
    });
  });
}

function ok(cwd: string, args: string[]): RunResult {
  const r = run(cwd, args, 120_000);
  if (r.code !== 0)
    throw new Error(
      `ckvc ${args.join(' ')} failed (exit ${r.code}): ${r.stderr}${r.error ? ` ${r.error.message}` : ''}`,
    );
  return r;
}

// ---------------------------------------------------------------------------------------------------------
// Fixture store

function f32Bytes(rng: Rng, n: number): Buffer {
  const b = Buffer.alloc(n * 4);
  for (let i = 0; i < n; i++) b.writeFloatLE((rng.u32() / 2 ** 32 - 0.5) * 0.2, i * 4);
  return b;
}

function safetensors(
  tensors: { name: string; dtype: string; shape: number[]; data: Buffer }[],
  metadata: Record<string, string>,
): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.length] };
    off += t.data.length;
  }
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - (Buffer.byteLength(text) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  return Buffer.concat([len, Buffer.from(text), ...tensors.map((t) => t.data)]);
}

/** Writes the checkpoint of `step` into srcDir. `big`: tensors of several 256 KiB chunks and a CDC-chunked file. */
function writeCheckpoint(srcDir: string, rng: Rng, step: number, big: boolean): void {
  const side = big ? 512 : 64; // F32 [side, side]: 16 KiB, or 1 MiB = 4 tensor chunks
  const nbf = big ? 256 * 1024 : 300; // BF16 elements: 600 B, or 512 KiB = 2 chunks
  const f = f32Bytes(rng, nbf);
  const bf16 = Buffer.alloc(nbf * 2);
  for (let i = 0; i < nbf; i++) bf16.writeUInt16LE(f.readUInt32LE(i * 4) >>> 16, i * 2);
  const i64 = Buffer.alloc(40);
  for (let i = 0; i < 5; i++) i64.writeBigInt64LE(BigInt(step * 1000 + i), i * 8);
  fs.writeFileSync(
    path.join(srcDir, 'model.safetensors'),
    safetensors(
      [
        { name: 'embed.weight', dtype: 'F32', shape: [side, side], data: f32Bytes(rng, side * side) },
        { name: 'head.weight', dtype: 'BF16', shape: [nbf], data: bf16 },
        { name: 'empty', dtype: 'F16', shape: [0], data: Buffer.alloc(0) },
        { name: 'steps', dtype: 'I64', shape: [5], data: i64 },
      ],
      { format: 'pt', step: String(step) },
    ),
  );
  fs.writeFileSync(
    path.join(srcDir, 'notes.txt'),
    Array.from({ length: 150 }, (_, i) => `step ${step} line ${i}: loss ${(1 / (i + step)).toFixed(5)}`).join('\n'),
  );
  if (big) {
    // An opaque file of ~1.5 MiB, half-compressible, for content-defined chunks.
    const opt = Buffer.alloc(1536 * 1024);
    for (let i = 0; i < opt.length; i += 4) opt.writeUInt32LE(rng.u32() & 0x0f0f0f0f, i);
    fs.writeFileSync(path.join(srcDir, 'optimizer.bin'), opt);
  }
}

export function listFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(dir, r));
    else out.push(r);
  }
  return out.sort();
}

export function packsOf(storeDir: string): string[] {
  return fs
    .readdirSync(path.join(storeDir, 'packs'))
    .filter((n) => /^[0-9a-f]{64}\.pack$/.test(n))
    .sort();
}

function tocOf(bytes: Uint8Array): { entries: PackEntry[]; tocOffset: number } {
  const f = decodeFooter(bytes.subarray(bytes.length - PACK_FOOTER_BYTES), bytes.length, 'seed');
  return {
    entries: decodeToc(
      bytes.subarray(f.tocOffset, f.tocOffset + f.count * TOC_ENTRY_BYTES),
      f.count,
      f.tocOffset,
      'seed',
    ),
    tocOffset: f.tocOffset,
  };
}

export interface Fixture {
  root: string;
  srcDir: string;
  store: string;
  /** `ckvc checkout HEAD` of the intact store. */
  expectedDir: string;
  cleanup(): void;
}

/** A store made with the CLI: three commits (safetensors, text, random, zeros, a config) and an annotated tag. */
export function createFixture(opts: { big?: boolean } = {}): Fixture {
  const dist = path.join(REPO_ROOT, 'dist', 'cli', 'main.js');
  if (!fs.existsSync(dist)) throw new Error(`${dist} is missing: build first (npx tsc -p . in ${REPO_ROOT})`);
  const built = fs.statSync(dist).mtimeMs;
  const newer = (dir: string): string | undefined => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      const hit = e.isDirectory() ? newer(p) : e.name.endsWith('.ts') && fs.statSync(p).mtimeMs > built ? p : undefined;
      if (hit) return hit;
    }
    return undefined;
  };
  const stale = newer(path.join(REPO_ROOT, 'src'));
  if (stale)
    console.warn(
      `fuzz store: ${path.relative(REPO_ROOT, stale)} is newer than dist/: the CLI runs stale code (npx tsc -p . to rebuild)`,
    );
  const big = Boolean(opts.big);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-fuzz-store-'));
  const srcDir = path.join(root, 'src');
  fs.mkdirSync(path.join(srcDir, 'sub'), { recursive: true });
  const rng = new Rng(big ? 0xb16 : 0x5704e);
  fs.writeFileSync(path.join(srcDir, 'random.bin'), rng.bytes(3000));
  fs.writeFileSync(path.join(srcDir, 'sub', 'zeros.bin'), new Uint8Array(20000));
  const config = path.join(root, 'config.yaml');
  fs.writeFileSync(config, 'lr: 0.001\nbatch: 32\nmodel: {layers: 4, width: 64}\n');
  ok(root, ['init', root]);
  const store = path.join(root, '.ckvc');
  writeCheckpoint(srcDir, rng, 1, big);
  ok(root, [
    'commit',
    srcDir,
    '-m',
    'step 1',
    '--config',
    config,
    '--metric',
    'loss=1.5',
    '--step',
    '1',
    '--store',
    store,
  ]);
  ok(root, ['tag', 'v1', 'HEAD', '-m', 'first release', '--store', store]);
  writeCheckpoint(srcDir, rng, 2, big);
  ok(root, ['commit', srcDir, '-m', 'step 2', '--metric', 'loss=0.9', '--step', '2', '--store', store]);
  fs.writeFileSync(path.join(srcDir, 'sub', 'extra.txt'), 'added at step 3\n'.repeat(20));
  writeCheckpoint(srcDir, rng, 3, big);
  ok(root, [
    'commit',
    srcDir,
    '-m',
    'step 3',
    '--metric',
    'loss=0.5',
    '--step',
    '3',
    '--label',
    'phase=warmup',
    '--store',
    store,
  ]);
  const expectedDir = path.join(root, 'expected');
  ok(root, ['checkout', 'HEAD', '--to', expectedDir, '--store', store]);
  return { root, srcDir, store, expectedDir, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}

// ---------------------------------------------------------------------------------------------------------
// In process: PackReader over mutated packs

/**
 * readToc gives entries that tile the pack or refuses (CKVC_CORRUPT_PACK / CKVC_UNSUPPORTED_VERSION); readObject,
 * at the intact pack's locations (what the index holds) and at the damaged TOC's, returns exactly the original
 * bytes of that object or refuses (CKVC_CORRUPT_PACK / CKVC_CORRUPT_OBJECT). Returns the failures.
 */
interface LoadedPack {
  id: string;
  bytes: Uint8Array;
  entries: PackEntry[];
  fields: FieldHint[];
}

/** The fixture's intact packs, their length/offset fields, and every object in them read with the real reader. */
async function loadPacks(fx: Fixture): Promise<{ packs: LoadedPack[]; originals: Map<string, Uint8Array> }> {
  const intact = new PackReader(new StoreLayout(fx.store));
  const packs: LoadedPack[] = [];
  const originals = new Map<string, Uint8Array>();
  try {
    for (const name of packsOf(fx.store)) {
      const id = name.slice(0, 64);
      const bytes = Uint8Array.from(fs.readFileSync(path.join(fx.store, 'packs', name)));
      const { entries, tocOffset } = tocOf(bytes);
      for (const e of entries)
        originals.set(e.id, Uint8Array.from(await intact.readObject({ packId: id, entry: e }, e.id, e.type)));
      const fields: FieldHint[] = [
        { offset: 8, size: 4, endian: 'le' },
        { offset: bytes.length - 56, size: 8, endian: 'le' },
        { offset: bytes.length - 48, size: 4, endian: 'le' },
      ];
      entries.forEach((e, k) => {
        fields.push({ offset: e.offset + 4, size: 4, endian: 'le' }, { offset: e.offset + 8, size: 4, endian: 'le' });
        const at = tocOffset + k * TOC_ENTRY_BYTES;
        fields.push(
          { offset: at + 36, size: 8, endian: 'le' },
          { offset: at + 44, size: 4, endian: 'le' },
          { offset: at + 48, size: 4, endian: 'le' },
        );
      });
      packs.push({ id, bytes, entries, fields });
    }
  } finally {
    await intact.close();
  }
  return { packs, originals };
}

/**
 * readToc gives entries that tile the pack or refuses (CKVC_CORRUPT_PACK / CKVC_UNSUPPORTED_VERSION); readObject,
 * at the intact pack's locations (what the index holds) and at the damaged TOC's, returns exactly the original
 * bytes of that object or refuses (CKVC_CORRUPT_PACK / CKVC_CORRUPT_OBJECT). Returns the failures.
 */
export async function fuzzPackReader(fx: Fixture, cases: number, target = 'pack-reader'): Promise<string[]> {
  const stats = { toc: new FuzzStats(`${target}.readToc`), read: new FuzzStats(`${target}.readObject`) };
  const { packs, originals } = await loadPacks(fx);

  const scratchRoot = fs.mkdtempSync(path.join(fx.root, 'reader-'));
  fs.mkdirSync(path.join(scratchRoot, 'packs'));
  const layout = new StoreLayout(scratchRoot);
  const pool = new BufferPool();
  try {
    for (let i = 0; i < cases; i++) {
      const rng = Rng.forCase(target, i);
      const p = rng.pick(packs);
      const { bytes, ops } = mutate(rng, p.bytes, { corpus: packs.map((x) => x.bytes), fields: () => p.fields });
      fs.writeFileSync(layout.packFile(p.id), bytes);
      const reader = new PackReader(layout);
      try {
        const read = async (entry: PackEntry, from: 'index' | 'toc') => {
          const usePool = rng.bool();
          const where = [...ops, `read ${entry.type} ${entry.id.slice(0, 12)} at ${entry.offset} (${from})`];
          const o = await attemptAsync(() =>
            reader.readObject({ packId: p.id, entry }, entry.id, entry.type, usePool ? pool : undefined),
          );
          if (stats.read.check(i, o, ['CKVC_CORRUPT_PACK', 'CKVC_CORRUPT_OBJECT'], where)) {
            const orig = originals.get(entry.id);
            if (objectId(entry.type, o.value) !== entry.id)
              stats.read.fail(i, 'returned bytes that do not hash to the requested ID', where);
            else if (orig && !sameBytes(orig, o.value))
              stats.read.fail(i, 'returned bytes that differ from the original object', where);
            else stats.read.note(`intact-by-${from}`);
            if (usePool) pool.release(o.value);
          }
        };
        for (const e of p.entries) await read(e, 'index');
        const toc = await attemptAsync(() => reader.readToc(p.id));
        if (stats.toc.check(i, toc, ['CKVC_CORRUPT_PACK', 'CKVC_UNSUPPORTED_VERSION'], ops)) {
          let expected = PACK_HEADER_BYTES;
          for (const e of toc.value.entries) {
            if (e.offset !== expected)
              stats.toc.fail(i, `entries do not tile the pack (entry at ${e.offset}, expected ${expected})`, ops);
            expected = e.offset + RECORD_HEADER_BYTES + e.storedLength;
          }
          if (toc.value.size !== bytes.length)
            stats.toc.fail(i, `reports size ${toc.value.size}, the file has ${bytes.length}`, ops);
          for (const e of toc.value.entries) await read(e, 'toc');
        }
      } finally {
        await reader.close();
      }
    }
  } finally {
    fs.rmSync(scratchRoot, { recursive: true, force: true });
  }
  return [...stats.toc.report(), ...stats.read.report()];
}

/**
 * The other input of readObject: the location. The index is a cache (spec/FORMAT.md §8) and its values can be
 * damaged or stale, so readObject gets intact packs with locations whose offset, stored/raw length, codec, type
 * or ID are wrong. It must return the original bytes of the requested object or refuse with CKVC_CORRUPT_PACK /
 * CKVC_CORRUPT_OBJECT, without allocating what a damaged length says.
 */
export async function fuzzPackReaderLocations(
  fx: Fixture,
  cases: number,
  target = 'pack-reader-locations',
): Promise<string[]> {
  const stats = new FuzzStats(target);
  const { packs, originals } = await loadPacks(fx);
  const reader = new PackReader(new StoreLayout(fx.store));
  const u32s = (rng: Rng, e: PackEntry) =>
    rng.pick([
      0,
      1,
      Math.max(0, e.storedLength - 1),
      e.storedLength + 1,
      e.rawLength,
      64 * 1024 * 1024,
      64 * 1024 * 1024 + 1,
      0x7fffffff,
      0x80000000,
      0xffffffff - 44,
      0xffffffff - 43,
      0xffffffff,
      rng.u32(),
    ]);
  try {
    for (let i = 0; i < cases; i++) {
      const rng = Rng.forCase(target, i);
      const p = rng.pick(packs.filter((x) => x.entries.length > 0));
      const e = rng.pick(p.entries);
      const entry: PackEntry = { ...e };
      const ops: string[] = [];
      const changes = 1 + rng.int(2);
      for (let k = 0; k < changes; k++) {
        switch (rng.int(6)) {
          case 0:
            entry.offset = rng.pick([
              0,
              1,
              Math.max(0, e.offset - 1),
              e.offset + 1,
              e.offset + 44,
              p.bytes.length - 1,
              p.bytes.length,
              p.bytes.length + 100,
              2 ** 32,
              2 ** 53 - 1,
              rng.int(p.bytes.length),
            ]);
            ops.push(`offset ${e.offset}->${entry.offset}`);
            break;
          case 1:
            entry.storedLength = u32s(rng, e);
            ops.push(`stored_length ${e.storedLength}->${entry.storedLength}`);
            break;
          case 2:
            entry.rawLength = u32s(rng, e);
            ops.push(`raw_length ${e.rawLength}->${entry.rawLength}`);
            break;
          case 3:
            entry.codec = rng.int(256) as PackEntry['codec'];
            ops.push(`codec ${e.codec}->${entry.codec}`);
            break;
          case 4:
            entry.type = rng.pick(['chunk', 'tensor', 'file', 'tree', 'commit', 'tag'] as const);
            ops.push(`type ${e.type}->${entry.type}`);
            break;
          default: {
            const other = rng.pick(p.entries);
            entry.id = other.id;
            ops.push(`id of ${other.type} at ${other.offset}`);
          }
        }
      }
      const pool = rng.bool(0.2) ? new BufferPool(1) : undefined;
      const o = await attemptAsync(() => reader.readObject({ packId: p.id, entry }, entry.id, entry.type, pool));
      if (
        stats.check(i, o, ['CKVC_CORRUPT_PACK', 'CKVC_CORRUPT_OBJECT'], [`${e.type} at ${e.offset}: ${ops.join(', ')}`])
      ) {
        const orig = originals.get(entry.id);
        if (!orig || !sameBytes(orig, o.value) || objectId(entry.type, o.value) !== entry.id)
          stats.fail(i, 'returned bytes that are not the requested object', ops);
        else stats.note('intact');
      }
    }
  } finally {
    await reader.close();
  }
  return stats.report();
}

// ---------------------------------------------------------------------------------------------------------
// End to end: damaged copies of the store through the CLI

export interface CliFuzzResult {
  cases: number;
  failures: string[];
  /** Cases verify --read-data passed (only allowed when no byte changed). */
  undetected: number;
  counts: Map<string, number>;
  maxChildRssMiB: number;
}

interface PackMutation {
  bytes: Uint8Array;
  op: string;
  kind: string;
}

/** One mutation of a pack: flip a bit, truncate, zero a range, or swap two records (TOC and footer untouched). */
function mutatePack(rng: Rng, orig: Uint8Array): PackMutation {
  const { entries, tocOffset } = tocOf(orig);
  let kind = rng.pick(['flip', 'flip', 'truncate', 'zero-range', 'swap-records']);
  if (kind === 'swap-records' && entries.length < 2) kind = 'flip';
  if (kind === 'truncate') {
    const to = rng.bool() ? Math.max(0, orig.length - 1 - rng.int(200)) : rng.int(orig.length);
    return { bytes: orig.slice(0, to), op: `truncate ${orig.length}->${to}`, kind };
  }
  if (kind === 'zero-range') {
    const at = rng.int(orig.length);
    const len = Math.min(orig.length - at, 1 + rng.int(512));
    const bytes = Uint8Array.from(orig);
    bytes.fill(0, at, at + len);
    return { bytes, op: `zero [${at},+${len})`, kind };
  }
  if (kind === 'swap-records') {
    const a = rng.int(entries.length);
    let b = rng.int(entries.length - 1);
    if (b >= a) b++;
    const order = entries.map((_, k) => (k === a ? b : k === b ? a : k));
    const records = order.map((k) =>
      orig.subarray(entries[k]!.offset, entries[k]!.offset + RECORD_HEADER_BYTES + entries[k]!.storedLength),
    );
    const bytes = Uint8Array.from(
      Buffer.concat([orig.subarray(0, PACK_HEADER_BYTES), ...records, orig.subarray(tocOffset)]),
    );
    return { bytes, op: `swap records ${a} and ${b} (${entries[a]!.type}, ${entries[b]!.type})`, kind };
  }
  const at = rng.int(orig.length);
  const bit = rng.int(8);
  const bytes = Uint8Array.from(orig);
  bytes[at] = bytes[at]! ^ (1 << bit);
  return { bytes, op: `flip byte ${at} bit ${bit}`, kind };
}

/**
 * `cases` damaged copies of the fixture store (maxMutations pack mutations each, default 1), each through
 * `ckvc verify --read-data --json` and `ckvc checkout HEAD` under a timeout. Every 4th case also deletes the
 * index, so it is rebuilt from the damaged packs.
 */
export async function fuzzCli(
  fx: Fixture,
  cases: number,
  opts: { target?: string; maxMutations?: number } = {},
): Promise<CliFuzzResult> {
  const target = opts.target ?? 'store-cli';
  const failures: string[] = [];
  let failureCount = 0;
  const fail = (i: number, what: string, detail: string) => {
    failureCount++;
    if (failures.length < 12) failures.push(`[${target} case ${i}, CKVC_FUZZ_SEED=${FUZZ_SEED}] ${what}\n  ${detail}`);
  };
  const counts = new Map<string, number>();
  const count = (k: string) => counts.set(k, (counts.get(k) ?? 0) + 1);
  let undetected = 0;
  let maxRssKiB = 0;
  let slowestMs = 0;
  const expectedFiles = listFiles(fx.expectedDir);
  const expected = new Map(expectedFiles.map((f) => [f, fs.readFileSync(path.join(fx.expectedDir, f))]));
  const t0 = performance.now();

  for (let i = 0; i < cases; i++) {
    const rng = Rng.forCase(target, i);
    const caseDir = path.join(fx.root, `case-${i}`);
    const copy = path.join(caseDir, 'store');
    fs.cpSync(fx.store, copy, { recursive: true });
    const dropIndex = i % 4 === 3;
    if (dropIndex) {
      fs.rmSync(path.join(copy, 'index'), { recursive: true, force: true });
      count('mode:index-deleted');
    }
    const nMut = 1 + rng.int(opts.maxMutations ?? 1);
    const ops: string[] = [];
    let changed = false;
    for (let k = 0; k < nMut; k++) {
      const packName = rng.pick(packsOf(copy));
      const packFile = path.join(copy, 'packs', packName);
      const orig = Uint8Array.from(fs.readFileSync(packFile));
      let m: PackMutation;
      try {
        m = mutatePack(rng, orig);
      } catch {
        // an earlier mutation of this case already broke this pack's TOC: flip a byte instead
        const bytes = Uint8Array.from(orig);
        const at = rng.int(orig.length);
        bytes[at] = bytes[at]! ^ 0x10;
        m = { bytes, op: `flip byte ${at} bit 4`, kind: 'flip' };
      }
      fs.writeFileSync(packFile, m.bytes);
      changed ||= !sameBytes(orig, m.bytes);
      ops.push(`${m.op} in ${packName.slice(0, 12)} (${orig.length} bytes)`);
      count(`mutation:${m.kind}`);
    }
    const what = `${ops.join('; ')}${dropIndex ? '; index deleted' : ''}${changed ? '' : ' [no byte changed]'}`;

    // verify --read-data on this copy, checkout on a second copy of the same damaged store, side by side.
    const copy2 = path.join(caseDir, 'store2');
    fs.cpSync(copy, copy2, { recursive: true });
    const out = path.join(caseDir, 'out');
    const [v, c] = await Promise.all([
      runAsync(caseDir, ['verify', '--read-data', '--json', '--store', copy]),
      runAsync(caseDir, ['checkout', 'HEAD', '--to', out, '--store', copy2]),
    ]);
    slowestMs = Math.max(slowestMs, v.ms, c.ms);
    maxRssKiB = Math.max(maxRssKiB, v.maxRssKiB ?? 0, c.maxRssKiB ?? 0);

    if (v.error || v.signal) fail(i, `verify did not finish: ${v.error?.message ?? v.signal}`, what);
    else if (/\n\s+at /.test(v.stderr) || v.stderr.includes('CKVC_INTERNAL'))
      fail(i, `verify crashed (exit ${v.code})`, `${what}\n${v.stderr}`);
    else if (v.code === 12) {
      count('verify-exit:12');
      let report: { ok: boolean; problems: { code: string; phase: string }[] } | undefined;
      try {
        report = JSON.parse(v.stdout);
      } catch {
        fail(i, 'verify exit 12 without a JSON report', `${what}\n${v.stdout}\n${v.stderr}`);
      }
      if (report) {
        if (report.ok !== false || !Array.isArray(report.problems) || report.problems.length === 0)
          fail(i, 'verify exit 12 but the report lists no problem', what);
        for (const pr of report.problems ?? []) {
          if (!Object.hasOwn(ERROR_CODES, pr.code))
            fail(i, `verify problem without a CKVC_ code: ${JSON.stringify(pr)}`, what);
          else count(`verify:${pr.code}`);
        }
        if (!changed) fail(i, 'verify reports problems although no byte changed', what);
      }
    } else if (v.code === 0) {
      count('verify-exit:0');
      undetected++;
      if (changed) fail(i, 'verify --read-data found nothing although a pack byte changed', what);
    } else fail(i, `verify exited ${v.code}`, `${what}\n${v.stderr}`);

    const written = fs.existsSync(out) ? listFiles(out) : [];
    for (const f of written) {
      const want = expected.get(f);
      if (!want) fail(i, `checkout left ${f} behind (a temp or stray file)`, what);
      else if (!sameBytes(fs.readFileSync(path.join(out, f)), want))
        fail(i, `checkout wrote ${f} with wrong content (exit ${c.code})`, what);
    }
    if (c.error || c.signal) fail(i, `checkout did not finish: ${c.error?.message ?? c.signal}`, what);
    else if (/\n\s+at /.test(c.stderr) || c.stderr.includes('CKVC_INTERNAL'))
      fail(i, `checkout crashed (exit ${c.code})`, `${what}\n${c.stderr}`);
    else if (c.code === 0) {
      count('checkout-exit:0');
      if (written.length !== expectedFiles.length)
        fail(i, `checkout exit 0 but ${written.length} of ${expectedFiles.length} files are there`, what);
    } else if (c.code === 12 || c.code === 14) {
      count(`checkout-exit:${c.code}`);
      const lines = c.stderr.trimEnd().split('\n');
      const m = /\[(CKVC_[A-Z_]+)\]$/.exec(lines[lines.length - 1] ?? '');
      if (lines.length !== 1 || !m)
        fail(i, `checkout exit ${c.code} without exactly one stderr line ending in [CKVC_...]`, `${what}\n${c.stderr}`);
      else count(`checkout:${m[1]}`);
      if (!changed) fail(i, 'checkout failed although no byte changed', `${what}\n${c.stderr}`);
    } else fail(i, `checkout exited ${c.code}`, `${what}\n${c.stderr}`);

    fs.rmSync(caseDir, { recursive: true, force: true });
  }

  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  const summary = [...counts.entries()]
    .sort()
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  console.log(
    `fuzz ${target}: ${cases} damaged stores (${2 * cases} ckvc runs) in ${secs}s (seed ${FUZZ_SEED}): ${summary}; ` +
      `undetected by verify ${undetected}; slowest run ${slowestMs.toFixed(0)} ms; peak child RSS ${(maxRssKiB / 1024).toFixed(0)} MiB; ${failureCount} failure(s)`,
  );
  if (failureCount > failures.length) failures.push(`... and ${failureCount - failures.length} more failure(s)`);
  return { cases, failures, undetected, counts, maxChildRssMiB: maxRssKiB / 1024 };
}
