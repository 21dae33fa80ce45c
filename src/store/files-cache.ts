// The files cache (spec/FORMAT.md §19): per store, the input files a commit read, each with its state on disk
// (file-stamp.ts) and the recipe the commit stored for it, so that a later commit takes a file unchanged since then
// as that recipe without reading it (a folder of checkpoints committed after each new one was read whole each
// time). Like borg's files cache, it lives in the user's cache folder, not in the store.
//
// A candidate it gives is only a candidate: the commit uses the recipe only when the store still holds everything
// the recipe needs (recipe-held.ts). The file itself is checked strictly (a hash over its text, every field's
// type), and any fault means an empty cache: every file is then read, as without one.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BigIntStats } from 'node:fs';
import { ContentHasher, type ObjectId } from '../core/store-format/object-id.js';
import { sameStamp, settled, stampOf, type FileStamp } from './file-stamp.js';
import { randomHex } from './random-hex.js';
import { replaceStoreCacheFile, storeCacheFile, tidyStoreCaches } from './store-cache-files.js';
import type { StoreLayout } from './store-layout.js';

const HEADER = 'ckvcfiles 1 ';
const MAX_FILE_BYTES = 64 * 1024 * 1024;
const MAX_ENTRIES = 65_536;
const MAX_PATH_BYTES = 4096;
/** Files caches of this many stores are kept, the most recently written (each is small). */
const STORES_KEPT = 16;
const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;
const HEX_ID = /^[0-9a-f]{64}$/;

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
    if (typeof recipe !== 'string' || !HEX_ID.test(recipe)) return undefined;
    if (typeof used !== 'number' || !Number.isSafeInteger(used) || used < 0) return undefined;
    if (out.has(file)) return undefined;
    const [dev, ino, size, mtimeNs, ctimeNs] = (fields as string[]).map((f) => BigInt(f)) as bigint[];
    out.set(file, { stamp: { dev: dev!, ino: ino!, size: size!, mtimeNs: mtimeNs!, ctimeNs: ctimeNs! }, recipe, used });
  }
  return out;
}

/** The text of a cache file holding `entries` (the most recently used first, at most MAX_ENTRIES of them). */
export function formatFilesCache(entries: Map<string, Entry>, planner: number): string {
  const rows = [...entries].sort((a, b) => b[1].used - a[1].used).slice(0, MAX_ENTRIES);
  const body = JSON.stringify({ planner, entries: rows.map(([p, e]) => rowOf(p, e)) });
  const h = new ContentHasher();
  h.update(Buffer.from(body));
  return `${HEADER}${h.digestHex()}\n${body}`;
}

export class FilesCache {
  private dirty = false;

  private constructor(
    private readonly file: string | undefined,
    private readonly planner: number,
    private readonly entries: Map<string, Entry>,
    private readonly nowMs: () => number,
  ) {}

  /** The store's files cache as it is now; empty when there is none, it cannot be read, or it is not exactly §19. */
  static open(layout: StoreLayout, planner: number, nowMs: () => number = Date.now): FilesCache {
    const file = storeCacheFile('files', layout);
    let entries: Map<string, Entry> | undefined;
    try {
      if (file) {
        const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
        try {
          const st = fs.fstatSync(fd);
          if (st.isFile() && st.size <= MAX_FILE_BYTES) entries = parseFilesCache(fs.readFileSync(fd, 'utf8'), planner);
        } finally {
          fs.closeSync(fd);
        }
      }
    } catch {
      // none yet, or unreadable: an empty cache
    }
    return new FilesCache(file, planner, entries ?? new Map(), nowMs);
  }

  /** The recipe stored for the file at `p` when it was last read, if `st` (its fstat now) shows it unchanged. */
  candidate(p: string, st: BigIntStats): ObjectId | undefined {
    const e = this.entries.get(p);
    return e && sameStamp(e.stamp, stampOf(st)) ? e.recipe : undefined;
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
    const stamp = stampOf(before);
    const known = this.entries.get(p);
    if (!sameStamp(stamp, stampOf(after)) || !settled(stamp, startedMs)) {
      if (known) {
        this.entries.delete(p);
        this.dirty = true;
      }
      return;
    }
    this.entries.set(p, { stamp, recipe, used: this.nowMs() });
    this.dirty = true;
  }

  /** Writes the entries in place of the store's cache file, once the commit has landed. Never throws. */
  save(): void {
    if (!this.dirty || !this.file) return;
    const tmp = `${this.file}.${process.pid}.${randomHex(6)}.tmp`;
    try {
      fs.writeFileSync(tmp, formatFilesCache(this.entries, this.planner), { flag: 'wx', mode: 0o600 });
      replaceStoreCacheFile(tmp, this.file);
      this.dirty = false;
      tidyStoreCaches(path.dirname(this.file), STORES_KEPT);
    } catch {
      try {
        fs.rmSync(tmp, { force: true });
      } catch {
        // a stale temp, which a later tidy removes
      }
    }
  }
}
