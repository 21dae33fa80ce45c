// Helpers shared by the prune-aware walk tests (tests/integration/prune-walk.test.ts, hostile-peer.test.ts,
// tests/reliability/prune-walk-fuzz.test.ts): `ckvc serve` on 127.0.0.1 and an HTTP proxy in front of it,
// empty stores copied from one `ckvc init`, remotes written as spec/PROTOCOL.md §1 says, checkouts compared
// byte for byte, chunk IDs computed from content (FORMAT.md §2), and surgery on bundles and packs that keeps
// every checksum right (BUNDLE.md §1, FORMAT.md §4) so each damaged input carries only the defect it is meant to.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import {
  decodeBundleHeader,
  encodeBundleHeader,
  encodeBundlePreamble,
  type BundleHeader,
} from '../../src/core/store-format/bundle-format.js';
import {
  decodeFooter,
  decodeToc,
  encodeFooterPrefix,
  encodePackHeader,
  encodeTocEntry,
  PACK_END_MAGIC,
  PACK_FOOTER_BYTES,
  RECORD_HEADER_BYTES,
  TOC_ENTRY_BYTES,
  type PackEntry,
} from '../../src/core/store-format/pack-format.js';
import { BIN, cliEnv, codesOf, describeRun, expectOk } from './ckvc.js';
import { tempDir } from './temp-dirs.js';
import { newStore, TestStore } from './test-store.js';
import { readTree } from './snapshots.js';

// ---------------------------------------------------------------------------------------------------------
// Stores

/** A fresh empty store (newStore copies one `ckvc init` per test file). */
export function emptyStore(prefix = 'ckvc-walk-'): TestStore {
  return newStore(prefix);
}

/** A copy of a store (`cp -a` of the folder holding .ckvc). */
export function copyOf(s: TestStore, prefix = 'ckvc-walk-copy-'): TestStore {
  const dir = tempDir(prefix);
  fs.cpSync(s.dir, dir, { recursive: true, preserveTimestamps: true });
  return new TestStore(dir);
}

/** Adds remotes by writing remotes.json (PROTOCOL.md §1: a name maps to {"url": URL}). */
export function setRemotes(s: TestStore, remotes: Record<string, string>): void {
  const file = path.join(s.store, 'remotes.json');
  const cur = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, { url: string }>) : {};
  for (const [name, url] of Object.entries(remotes)) cur[name] = { url };
  fs.writeFileSync(file, `${JSON.stringify(cur, null, 2)}\n`);
}

/** The prune records of a store (pruned/<hex>.json, FORMAT.md §13), by commit. */
export function pruneRecords(
  s: TestStore,
): Map<string, { commit: string; time: number; tensors: string[] | null; files?: string[] | null }> {
  const dir = path.join(s.store, 'pruned');
  const out = new Map<string, { commit: string; time: number; tensors: string[] | null; files?: string[] | null }>();
  if (!fs.existsSync(dir)) return out;
  for (const n of fs.readdirSync(dir)) {
    if (!/^[0-9a-f]{64}\.json$/.test(n)) continue;
    const r = JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')) as {
      commit: string;
      time: number;
      tensors: string[] | null;
      files?: string[] | null;
    };
    out.set(r.commit, r);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Checkouts

/**
 * Checks out `paths` of `rev` (one command) and compares every file with `expected` byte for byte: nothing
 * missing, nothing extra. Returns the differences ([] when equal).
 */
export async function checkoutPaths(
  s: TestStore,
  rev: string,
  expected: Map<string, Buffer>,
  paths: string[],
  label: string,
): Promise<string[]> {
  if (!paths.length) return [];
  const out = tempDir('ckvc-walk-co-');
  const r = await s.check(['checkout', rev, '--to', out, ...paths.flatMap((p) => ['--path', p])]);
  if (r.code !== 0) return [`${label}: checkout ${rev.slice(0, 12)} ${paths.join(' ')}: ${describeRun(r)}`];
  const got = readTree(out);
  fs.rmSync(out, { recursive: true, force: true });
  const problems: string[] = [];
  for (const p of paths) {
    const want = expected.get(p);
    const have = got.get(p);
    if (!want) problems.push(`${label}: test error, no expected bytes for ${p}`);
    else if (!have) problems.push(`${label}: ${rev.slice(0, 12)}:${p} was not written`);
    else if (!want.equals(have))
      problems.push(`${label}: ${rev.slice(0, 12)}:${p} differs (${have.length} bytes, expected ${want.length})`);
  }
  for (const k of got.keys())
    if (!paths.includes(k)) problems.push(`${label}: ${rev.slice(0, 12)}: unexpected file ${k}`);
  return problems;
}

/**
 * Checks out released `paths` of `rev`: must exit 19 CKVC_PRUNED naming one of them (the first it meets) and
 * write nothing. With one path per call, each released file is checked on its own.
 */
export async function expectReleased(s: TestStore, rev: string, paths: string[], label: string): Promise<string[]> {
  if (!paths.length) return [];
  const out = tempDir('ckvc-walk-co-');
  const r = await s.check(['checkout', rev, '--to', out, ...paths.flatMap((p) => ['--path', p]), '--json']);
  const problems: string[] = [];
  const written = [...readTree(out).keys()];
  fs.rmSync(out, { recursive: true, force: true });
  if (r.code !== 19 || codesOf(r).join() !== 'CKVC_PRUNED') {
    problems.push(
      `${label}: checkout ${rev.slice(0, 12)} ${paths.join(' ')} should exit 19 CKVC_PRUNED: ${describeRun(r)}`,
    );
  } else {
    let named: string | undefined;
    try {
      named = (JSON.parse(r.stderr.trim().split('\n').pop()!) as { error: { data: { path?: string } } }).error.data
        .path;
    } catch {
      /* checked below */
    }
    if (!named || !paths.includes(named))
      problems.push(`${label}: checkout ${rev.slice(0, 12)} exited 19 naming ${named}, not one of ${paths.join(' ')}`);
  }
  if (written.length) problems.push(`${label}: a refused checkout of ${rev.slice(0, 12)} wrote ${written.join(' ')}`);
  return problems;
}

/** `ls REV --tensors --json`: path -> tensor name -> pruned flag. */
export async function lsPruned(s: TestStore, rev: string): Promise<Map<string, Map<string, boolean>>> {
  const r = await s.check(['ls', rev, '--tensors', '--json']);
  expectOk(r, `ls ${rev} --tensors`);
  const j = JSON.parse(r.stdout) as { files: { path: string; tensors?: { name: string; pruned?: boolean }[] }[] };
  const out = new Map<string, Map<string, boolean>>();
  for (const f of j.files) out.set(f.path, new Map((f.tensors ?? []).map((t) => [t.name, t.pruned === true])));
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// ckvc serve and a proxy in front of it. Everything started here is killed by stopAll().

const children: ChildProcess[] = [];
const proxies: http.Server[] = [];

export interface Server {
  url: string;
  child: ChildProcess;
  stderr: () => string;
}

export async function startServer(s: TestStore, extra: string[]): Promise<Server> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...extra, '--store', s.store], {
    cwd: tempDir('ckvc-serve-cwd-'),
    env: cliEnv({ CKVC_TOKEN: undefined }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let err = '';
  let out = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ckvc serve printed no URL within 30 s: ${out}\n${err}`)), 30_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(out.slice(0, out.indexOf('\n')).trim());
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`ckvc serve exited (${code ?? signal}) before printing its URL: ${err}`));
    });
  });
  if (!/^http:\/\/127\.0\.0\.1:\d+\/$/.test(url))
    throw new Error(`ckvc serve printed ${JSON.stringify(url)}, not a loopback URL`);
  return { url, child, stderr: () => err };
}

/** An HTTP proxy in front of `upstream`; `tamper` may replace the body of a reply to a path. */
export async function startProxy(
  upstream: string,
  tamper: (path: string, body: Buffer) => Buffer | undefined,
): Promise<{ url: string; hits: Map<string, number> }> {
  const hits = new Map<string, number>();
  const srv = http.createServer((req, res) => {
    void (async () => {
      const parts: Buffer[] = [];
      for await (const c of req) parts.push(c as Buffer);
      const headers: Record<string, string> = { 'content-type': req.headers['content-type'] ?? 'application/json' };
      if (req.headers.authorization) headers.authorization = req.headers.authorization;
      const up = await fetch(new URL(req.url!.replace(/^\//, ''), upstream), {
        method: req.method,
        headers,
        body: req.method === 'GET' ? undefined : Buffer.concat(parts),
      });
      const body = Buffer.from(await up.arrayBuffer());
      const p = new URL(req.url!, 'http://x').pathname;
      const t = up.status === 200 ? tamper(p, body) : undefined;
      if (t) hits.set(p, (hits.get(p) ?? 0) + 1);
      res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/octet-stream' });
      res.end(t ?? body);
    })().catch((e) => {
      res.writeHead(599);
      res.end(String(e));
    });
  });
  proxies.push(srv);
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`, hits };
}

export async function stopAll(): Promise<void> {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(
    proxies.map(
      (p) =>
        new Promise<void>((resolve) => {
          p.closeAllConnections();
          p.close(() => resolve());
        }),
    ),
  );
  children.length = 0;
  proxies.length = 0;
}

// ---------------------------------------------------------------------------------------------------------
// IDs, bundles and packs

export function blake3(...parts: Uint8Array[]): Buffer {
  const h = new Blake3Hasher();
  for (const p of parts) h.update(Buffer.from(p.buffer, p.byteOffset, p.byteLength));
  return h.digestBuffer();
}

/** The ID of a chunk with these bytes (FORMAT.md §2: BLAKE3("ckvc1:chunk" 0x00 body)). */
export function chunkId(bytes: Uint8Array): string {
  return blake3(Buffer.from('ckvc1:chunk\0', 'latin1'), bytes).toString('hex');
}

export interface ParsedBundle {
  header: BundleHeader;
  pack: Buffer;
}

export function parseBundle(b: Buffer): ParsedBundle {
  const headerLength = b.readUInt32LE(12);
  const header = decodeBundleHeader(b.subarray(16, 16 + headerLength), 'test');
  const pack = b.subarray(16 + headerLength, 16 + headerLength + header.packLength);
  if (b.length !== 16 + headerLength + header.packLength + 40) throw new Error('unexpected bundle layout');
  return { header, pack: Buffer.from(pack) };
}

/** A bundle of this header and pack with a correct preamble and trailer (BUNDLE.md §1). */
export function buildBundle(header: BundleHeader, pack: Buffer): Buffer {
  const hb = encodeBundleHeader({ ...header, packLength: pack.length });
  const body = Buffer.concat([encodeBundlePreamble(hb.length), hb, pack]);
  return Buffer.concat([body, blake3(body), Buffer.from('CKVCBEND', 'latin1')]);
}

export function bundleHeader(over: Partial<BundleHeader> = {}): BundleHeader {
  return {
    version: 1,
    required: ['hash:blake3-256', 'pack:1'],
    optional: [],
    refs: [],
    prerequisites: [],
    pruned: [],
    packLength: 0,
    objects: 0,
    created: Date.now(),
    ...over,
  };
}

export interface PackRecord {
  entry: PackEntry;
  /** Record header and stored body, verbatim. */
  bytes: Buffer;
}

export function packRecords(pack: Buffer): PackRecord[] {
  const f = decodeFooter(pack.subarray(pack.length - PACK_FOOTER_BYTES), pack.length, 'test');
  const entries = decodeToc(
    pack.subarray(f.tocOffset, f.tocOffset + f.count * TOC_ENTRY_BYTES),
    f.count,
    f.tocOffset,
    'test',
  );
  return entries.map((e) => ({
    entry: e,
    bytes: Buffer.from(pack.subarray(e.offset, e.offset + RECORD_HEADER_BYTES + e.storedLength)),
  }));
}

/** A pack of these records (copied verbatim) with a fresh TOC, footer and checksum (FORMAT.md §4). */
export function buildPack(recs: PackRecord[]): { bytes: Buffer; checksum: string } {
  const parts: Buffer[] = [encodePackHeader()];
  const toc: Buffer[] = [];
  let pos = parts[0]!.length;
  for (const r of recs) {
    toc.push(encodeTocEntry({ ...r.entry, offset: pos }));
    parts.push(r.bytes);
    pos += r.bytes.length;
  }
  const before = Buffer.concat([...parts, ...toc, encodeFooterPrefix(pos, recs.length)]);
  const sum = blake3(before);
  return { bytes: Buffer.concat([before, sum, PACK_END_MAGIC]), checksum: sum.toString('hex') };
}

/**
 * Deletes one object from a store: the pack holding it is rewritten without its record (a new pack named by
 * its new checksum) and the old pack removed. The caller runs `ckvc index rebuild` afterwards. Returns false
 * when no pack holds the object.
 */
export function dropObject(s: TestStore, id: string): boolean {
  const dir = path.join(s.store, 'packs');
  for (const n of fs.readdirSync(dir).filter((x) => x.endsWith('.pack'))) {
    const bytes = fs.readFileSync(path.join(dir, n));
    const recs = packRecords(bytes);
    if (!recs.some((r) => r.entry.id === id)) continue;
    const rest = recs.filter((r) => r.entry.id !== id);
    fs.rmSync(path.join(dir, n));
    if (rest.length) {
      const p = buildPack(rest);
      fs.writeFileSync(path.join(dir, `${p.checksum}.pack`), p.bytes);
    }
    return true;
  }
  return false;
}

/** Does any pack of the store hold this object? */
export function holds(s: TestStore, id: string): boolean {
  const dir = path.join(s.store, 'packs');
  return fs
    .readdirSync(dir)
    .filter((x) => x.endsWith('.pack'))
    .some((n) => packRecords(fs.readFileSync(path.join(dir, n))).some((r) => r.entry.id === id));
}

/** Every object ID held by some pack of the store (read from the packs, not the index). */
export function objectIds(s: TestStore): Set<string> {
  const dir = path.join(s.store, 'packs');
  const out = new Set<string>();
  for (const n of fs.readdirSync(dir).filter((x) => x.endsWith('.pack')))
    for (const r of packRecords(fs.readFileSync(path.join(dir, n)))) out.add(r.entry.id);
  return out;
}

/** The IDs of a store's commits (every commit record of every pack). */
export function commitsInPacks(s: TestStore): Set<string> {
  const dir = path.join(s.store, 'packs');
  const out = new Set<string>();
  for (const n of fs.readdirSync(dir).filter((x) => x.endsWith('.pack'))) {
    for (const r of packRecords(fs.readFileSync(path.join(dir, n)))) if (r.entry.type === 'commit') out.add(r.entry.id);
  }
  return out;
}
