// The files cache (spec/FORMAT.md §19): per store, the input files a commit read, each with its state on disk
// (file-stamp.ts) and the recipe the commit stored for it, so that a later commit takes a file unchanged since then
// as that recipe without reading it (a folder of checkpoints committed after each new one was read whole each
// time). Like borg's files cache, it lives in the user's cache folder, not in the store.
//
// A candidate it gives is only a candidate: the commit uses the recipe only when the store still holds everything
// the recipe needs (recipe-held.ts). The file itself is checked strictly (a hash over its text, every field's
// type), and any fault means an empty cache: every file is then read, as without one.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BigIntStats } from 'node:fs';
import { ContentHasher, isObjectId, type ObjectId } from '../core/store-format/object-id.js';
import { sameStamp, settled, stampOf, type FileStamp } from './file-stamp.js';
import {
  replaceStoreCacheFile,
  storeCacheFile,
  storeCacheTempFile,
  tidyStoreCaches,
  withStoreCacheFile,
} from './store-cache-files.js';
import type { StoreConfig, StoreLayout } from './store-layout.js';

const HEADER = 'ckvcfiles 1 ';
const MAX_FILE_BYTES = 64 * 1024 * 1024;
const MAX_ENTRIES = 65_536;
const MAX_PATH_BYTES = 4096;
/** Files caches of this many stores are kept, the most recently written (each is small). */
const STORES_KEPT = 16;
const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;
/** Entries not used for this long are dropped (checkpoints deleted or renamed long ago). */
const UNUSED_MS = 30 * 24 * 3600_000;
/** Local file systems whose kernel keeps the change time itself, on this machine's clock (statfs f_type). */
const LOCAL_FILE_SYSTEMS = new Set([
  0xef53, // ext2, ext3, ext4
  0x58465342, // XFS
  0x9123683e, // Btrfs
  0x01021994, // tmpfs
  0x2fc12fc1, // ZFS
  0xf2f52010, // F2FS
  0x794c7630, // overlayfs (containers), over one of these
]);

interface Entry {
  stamp: FileStamp;
  recipe: ObjectId;
  used: number;
}

type EntryRow = [string, string, string, string, string, string, string, number];

function rowOf(p: string, e: Entry): EntryRow {
  const s = e.stamp;
  return [p, `${s.dev}`, `${s.ino}`, `${s.size}`, `${s.mtimeNs}`, `${s.ctimeNs}`, e.recipe, e.used];
}

/** The entries of a cache file's text, or undefined for anything but exactly the layout of §19. */
export function parseFilesCache(text: string, planner: number): Map<string, Entry> | undefined {
  const nl = text.indexOf('\n');
  if (nl < 0 || !text.startsWith(HEADER) || nl !== HEADER.length + 64) return undefined;
  const body = text.slice(nl + 1);
  const h = new ContentHasher();
  h.update(Buffer.from(body));
  if (h.digestHex() !== text.slice(HEADER.length, nl)) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return undefined;
  const { planner: p, entries } = doc as { planner?: unknown; entries?: unknown };
  if (p !== planner || !Array.isArray(entries) || entries.length > MAX_ENTRIES) return undefined;
  const out = new Map<string, Entry>();
  for (const row of entries) {
    if (!Array.isArray(row) || row.length !== 8) return undefined;
    const [file, ...rest] = row as unknown[];
    const fields = rest.slice(0, 5);
    const [recipe, used] = rest.slice(5);
    if (typeof file !== 'string' || !path.isAbsolute(file) || Buffer.byteLength(file) > MAX_PATH_BYTES)
      return undefined;
    if (!fields.every((f) => typeof f === 'string' && DECIMAL.test(f))) return undefined;
    if (typeof recipe !== 'string' || !isObjectId(recipe)) return undefined;
    if (typeof used !== 'number' || !Number.isSafeInteger(used) || used < 0) return undefined;
    if (out.has(file)) return undefined;
    const [dev, ino, size, mtimeNs, ctimeNs] = (fields as string[]).map((f) => BigInt(f)) as bigint[];
    out.set(file, { stamp: { dev: dev!, ino: ino!, size: size!, mtimeNs: mtimeNs!, ctimeNs: ctimeNs! }, recipe, used });
  }
  return out;
}

/**
 * The text of a cache file holding `entries`: the most recently used first, as many as fit in MAX_ENTRIES and
 * MAX_FILE_BYTES (a reader refuses more).
 */
export function formatFilesCache(entries: Map<string, Entry>, planner: number): string {
  // Each row's JSON is made once: measured against the bound, then joined (as JSON.stringify of the whole would).
  const rows: string[] = [];
  let bytes = 1024; // the header and the JSON around the rows
  for (const [p, e] of [...entries].sort((a, b) => b[1].used - a[1].used)) {
    const row = JSON.stringify(rowOf(p, e));
    bytes += Buffer.byteLength(row) + 1;
    if (rows.length === MAX_ENTRIES || bytes > MAX_FILE_BYTES) break;
    rows.push(row);
  }
  const body = `{"planner":${JSON.stringify(planner)},"entries":[${rows.join(',')}]}`;
  const h = new ContentHasher();
  h.update(Buffer.from(body));
  return `${HEADER}${h.digestHex()}\n${body}`;
}

/**
 * Whether the file or folder at `p` is on a local file system whose kernel keeps change times on this machine's
 * clock (LOCAL_FILE_SYSTEMS). On others (NFS, SMB, FUSE such as sshfs, 9p and virtiofs, FAT, exFAT) the change
 * time may follow the modification time, which anyone can set, or come from another machine's clock.
 */
export function onLocalFileSystem(p: string): boolean {
  try {
    return LOCAL_FILE_SYSTEMS.has(Number(fs.statfsSync(p).type));
  } catch {
    return false;
  }
}

/** Whether an entry holds only what a reader accepts (a file dated before 1970 has a negative time: not kept). */
function storable(p: string, e: Entry): boolean {
  const s = e.stamp;
  const fields = [s.dev, s.ino, s.size, s.mtimeNs, s.ctimeNs];
  return path.isAbsolute(p) && Buffer.byteLength(p) <= MAX_PATH_BYTES && fields.every((f) => DECIMAL.test(`${f}`));
}

/**
 * The name's salt: the host (a cache folder shared over NFS by several machines must not mix their device and
 * inode numbers) and the store's chunking (a store whose config.json was edited cuts files otherwise).
 */
function saltOf(config: Pick<StoreConfig, 'tensorChunkSize' | 'cdc'>): string {
  return JSON.stringify([os.hostname(), config.tensorChunkSize, config.cdc]);
}

/** Where the files cache of the store at `layout` with this chunking is (§19); undefined: none to use. */
export function filesCacheFile(
  layout: StoreLayout,
  config: Pick<StoreConfig, 'tensorChunkSize' | 'cdc'>,
  make = true,
): string | undefined {
  return storeCacheFile('files', layout, make, saltOf(config));
}

export class FilesCache {
  private dirty = false;
  /** Per device: whether its file system is one of LOCAL_FILE_SYSTEMS. */
  private readonly localDevices = new Map<bigint, boolean>();

  private constructor(
    private readonly file: string | undefined,
    private readonly planner: number,
    private readonly entries: Map<string, Entry>,
    private readonly nowMs: () => number,
  ) {}

  /** The store's files cache as it is now; empty when there is none, it cannot be read, or it is not exactly §19. */
  static open(
    layout: StoreLayout,
    config: Pick<StoreConfig, 'tensorChunkSize' | 'cdc'>,
    planner: number,
    nowMs: () => number = Date.now,
  ): FilesCache {
    const file = filesCacheFile(layout, config);
    const entries = file
      ? withStoreCacheFile(file, (fd, st) =>
          st.size <= MAX_FILE_BYTES ? parseFilesCache(fs.readFileSync(fd, 'utf8'), planner) : undefined,
        )
      : undefined;
    return new FilesCache(file, planner, entries ?? new Map(), nowMs);
  }

  /** onLocalFileSystem for the file at `p`, asked once per device. */
  private local(p: string, st: BigIntStats): boolean {
    let known = this.localDevices.get(st.dev);
    if (known === undefined) {
      known = onLocalFileSystem(p);
      this.localDevices.set(st.dev, known);
    }
    return known;
  }

  /** The recipe stored for the file at `p` when it was last read, if `st` (its fstat now) shows it unchanged. */
  candidate(p: string, st: BigIntStats): ObjectId | undefined {
    const e = this.entries.get(p);
    return e && sameStamp(e.stamp, stampOf(st)) && this.local(p, st) ? e.recipe : undefined;
  }

  /** The candidate for `p` was used: it stays among the entries kept longest. */
  used(p: string): void {
    const e = this.entries.get(p);
    if (!e) return;
    e.used = this.nowMs();
    this.dirty = true;
  }

  /**
   * The file at `p` was read from `startedMs` on and stored as `recipe`, its state `before` when opened and `after`
   * once read: remembered only when the two agree and the file had settled before the reading began.
   */
  record(p: string, before: BigIntStats, after: BigIntStats, startedMs: number, recipe: ObjectId): void {
    const entry = { stamp: stampOf(before), recipe, used: this.nowMs() };
    const keep =
      sameStamp(entry.stamp, stampOf(after)) &&
      settled(entry.stamp, startedMs) &&
      storable(p, entry) &&
      this.local(p, before);
    if (keep) this.entries.set(p, entry);
    else if (!this.entries.delete(p)) return;
    this.dirty = true;
  }

  /** Writes the entries in place of the store's cache file, once the commit has landed. Never throws. */
  save(): void {
    if (!this.dirty || !this.file) return;
    let tmp: string | undefined;
    try {
      const now = this.nowMs();
      for (const [p, e] of this.entries) if (now - e.used > UNUSED_MS) this.entries.delete(p);
      tmp = storeCacheTempFile(this.file);
      fs.writeFileSync(tmp, formatFilesCache(this.entries, this.planner), { flag: 'wx', mode: 0o600 });
      replaceStoreCacheFile(tmp, this.file);
      this.dirty = false;
      tidyStoreCaches(path.dirname(this.file), STORES_KEPT);
    } catch {
      try {
        if (tmp) fs.rmSync(tmp, { force: true });
      } catch {
        // a stale temp, which a later tidy removes
      }
    }
  }
}
