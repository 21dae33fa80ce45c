// What identifies the state of a file on disk without reading it, and when that identity can be trusted: the rule
// the helper server's memory of verified files (verified-files.ts) and the commit's files cache (files-cache.ts,
// spec/FORMAT.md §19) share. A file is taken as unchanged only when its device, inode, size, modification time
// and change time all equal those seen around its last hash, and that hash began well after the file's last
// change: a write in the same timestamp tick as the one before the hash would otherwise leave the times as they
// were ("racy git"). The change time cannot be set back by a user (unlike the modification time), so a rewrite
// that restores the modification time is still seen.
import type { BigIntStats } from 'node:fs';

/** Hashes begun this soon after the file's last change are not trusted later (they could miss a write in the
 * same tick). Linux's file time tick is at most 10 ms; some file systems keep whole seconds (FAT: two). */
const RACY_NS = 100_000_000n;
const RACY_WHOLE_SECONDS_NS = 3_000_000_000n;
const NS_PER_SECOND = 1_000_000_000n;
const NS_PER_MS = 1_000_000n;

export interface FileStamp {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export function stampOf(st: BigIntStats): FileStamp {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
}

export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

/** Whether a hash begun at `startedMs` (wall clock) is far enough after the file's last change to be trusted. */
export function settled(s: FileStamp, startedMs: number): boolean {
  const startedNs = BigInt(Math.floor(startedMs)) * NS_PER_MS;
  const coarse = s.ctimeNs % NS_PER_SECOND === 0n && s.mtimeNs % NS_PER_SECOND === 0n;
  return startedNs - s.ctimeNs >= (coarse ? RACY_WHOLE_SECONDS_NS : RACY_NS);
}
