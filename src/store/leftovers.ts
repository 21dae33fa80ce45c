// What interrupted commands leave in a store (spec/FORMAT.md §1, §15): unfinished packs, quarantine and scratch
// folders in tmp/, temp files of durable writes beside their targets, and lock files a breaker set aside. Each
// name carries the pid of the process that made it: that is how a crashed command's leftovers are told from a
// running command's work, including commands that never register as writers (a fetch receiving objects).
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ioError } from './durable-fs.js';
import { processRunning } from './lock-file.js';
import type { StoreLayout } from './store-layout.js';

export interface Leftover {
  /** '/'-separated, relative to the store. */
  path: string;
  bytes: number;
  /** The newest mtime of the file, or of anything in the folder: a transfer still writing into one is young. */
  mtimeMs: number;
  /** The pid in the name; undefined for a name in tmp/ that no ckvc command makes. */
  pid?: number;
  /** Its pid is a process running on this host (which may be a reuse of a dead owner's pid: it only waits longer). */
  ownerRunning: boolean;
}

export interface LeftoverSummary {
  count: number;
  bytes: number;
  /** Relative to the store. */
  paths: string[];
}

const IN_TMP = [
  /^pack-(\d+)-[0-9a-f]+\.tmp$/,
  /^quarantine-(\d+)-[0-9a-f]+$/,
  /^bundle-(\d+)-[0-9a-f]+$/,
  /^s3-fetch-(\d+)-[0-9a-f]+$/,
  /^s3-upload-[0-9a-f]+-[0-9a-f]+\.bundle\.(\d+)\.partial$/,
];
const ELSEWHERE = [/^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$/, /\.lock\.stale\.(\d+)\.[0-9a-f]{8}$/];
/** Never looked into: packs/ holds only finished packs, index/ is LevelDB's, writer registrations are gc-exclusion's. */
const SKIP = new Set(['packs', 'index', 'tmp', 'locks/writers']);

function pidIn(name: string, patterns: RegExp[]): number | undefined {
  for (const re of patterns) {
    const m = re.exec(name);
    if (m && Number(m[1]) > 0) return Number(m[1]);
  }
  return undefined;
}

async function measure(p: string, isDir: boolean): Promise<{ bytes: number; mtimeMs: number } | undefined> {
  const st = await fs.lstat(p).catch(() => undefined);
  if (!st) return undefined;
  if (!isDir) return { bytes: st.size, mtimeMs: st.mtimeMs };
  let bytes = 0;
  let mtimeMs = st.mtimeMs;
  for (const e of await fs.readdir(p, { withFileTypes: true }).catch(() => [])) {
    const m = await measure(path.join(p, e.name), e.isDirectory());
    if (!m) continue;
    bytes += m.bytes;
    mtimeMs = Math.max(mtimeMs, m.mtimeMs);
  }
  return { bytes, mtimeMs };
}

async function entries(dir: string): Promise<import('node:fs').Dirent[]> {
  try {
    return await fs.readdir(dir, { withFileTypes: true });
  } catch (e) {
    // Gone, or a file now (a reflog folder moved aside and a log made at its name, FORMAT.md §6.3): nothing here.
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw ioError(e, 'list', dir);
  }
}

/** Every leftover in the store, whoever made it and however young; callers decide what to do with each. */
export async function findLeftovers(layout: StoreLayout): Promise<Leftover[]> {
  const out: Leftover[] = [];
  const add = async (rel: string, isDir: boolean, pid: number | undefined) => {
    const m = await measure(path.join(layout.root, rel), isDir);
    if (m) out.push({ path: rel, ...m, pid, ownerRunning: pid !== undefined && processRunning(pid) });
  };
  // Everything in tmp/ is unfinished (§1): a name without a pid has no owner to wait for.
  for (const e of await entries(layout.tmpDir)) await add(`tmp/${e.name}`, e.isDirectory(), pidIn(e.name, IN_TMP));
  const walk = async (rel: string): Promise<void> => {
    for (const e of await entries(path.join(layout.root, rel))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (!SKIP.has(r)) await walk(r);
        continue;
      }
      const pid = pidIn(e.name, ELSEWHERE);
      if (pid !== undefined) await add(r, false, pid);
    }
  };
  await walk('');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** What gc may remove (§15): older than the grace period and not made by a process still running here. */
export function removable(l: Leftover, now: number, graceMs: number): boolean {
  return !l.ownerRunning && now - l.mtimeMs >= graceMs;
}

export interface LeftoverCleanup {
  removed: number;
  bytes: number;
  /** Leftovers kept: younger than the grace period, or their process is running. */
  kept: number;
}

/** Removes what `removable` allows. Only under gc.lock with no live writer registered (§15). */
export async function removeLeftovers(
  layout: StoreLayout,
  now: number,
  graceMs: number,
  dryRun: boolean,
): Promise<LeftoverCleanup> {
  const r: LeftoverCleanup = { removed: 0, bytes: 0, kept: 0 };
  for (const l of await findLeftovers(layout)) {
    if (!removable(l, now, graceMs)) {
      r.kept++;
      continue;
    }
    const p = path.join(layout.root, l.path);
    if (!dryRun)
      await fs.rm(p, { recursive: true, force: true }).catch((e) => {
        throw ioError(e, 'remove the leftover', p);
      });
    r.removed++;
    r.bytes += l.bytes;
  }
  return r;
}
