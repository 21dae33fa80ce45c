// What a long-lived process (the helper server, spec/HELPER.md §4) remembers of checkout files it has hashed, so
// that checking the same unchanged file again costs an lstat instead of re-reading it (a 100 MB checkpoint takes
// tens of milliseconds to hash). A file is taken as unchanged only when its device, inode, size, modification
// time and change time all equal those seen around its last successful hash, and that hash was taken well after
// the file's last change: a write in the same timestamp tick as the one before our hash would otherwise leave
// the times as they were ("racy git"); the rule is file-stamp.ts's. In any doubt the file is hashed.
import * as fs from 'node:fs/promises';
import { sameStamp, settled, stampOf, type FileStamp as Stamp } from './file-stamp.js';

/** Memory bound: the oldest entries go first (a forgotten file is only hashed again). */
const MAX_ENTRIES = 65_536;

async function lstatOrNone(p: string): Promise<Stamp | undefined> {
  try {
    const st = await fs.lstat(p, { bigint: true });
    return st.isFile() ? stampOf(st) : undefined;
  } catch {
    return undefined; // gone or unreadable: the caller's hash reports it as it would without this memory
  }
}

export class VerifiedFiles {
  private readonly entries = new Map<string, { stamp: Stamp; b3: string }>();

  /** `nowMs`: the wall clock, compared with file change times (tests fix it). */
  constructor(
    private readonly maxEntries = MAX_ENTRIES,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /**
   * Whether the regular file at `p` (an absolute path) holds content whose BLAKE3 is `b3`: answered from memory
   * when the file is provably untouched since it was hashed, else by `hash` (whose result is remembered when the
   * file stayed the same while it ran and had settled before).
   */
  async holds(p: string, b3: string, hash: (p: string) => Promise<string>): Promise<boolean> {
    const before = await lstatOrNone(p);
    const known = this.entries.get(p);
    if (before && known && sameStamp(known.stamp, before)) return known.b3 === b3;
    const startedMs = this.nowMs();
    const digest = await hash(p);
    this.entries.delete(p);
    const after = await lstatOrNone(p);
    if (before && after && sameStamp(before, after) && settled(after, startedMs)) this.remember(p, after, digest);
    return digest === b3;
  }

  private remember(p: string, stamp: Stamp, b3: string): void {
    this.entries.set(p, { stamp, b3 });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }
}
