// The file system isomorphic-git sees when ckvc reads provenance: read-only, deadline-checked and aware of
// linked worktrees, plus the lazily loaded isomorphic-git module itself.
//
//  * Linked worktrees. A worktree's gitdir (main/.git/worktrees/<id>) holds only the per-worktree files
//    (HEAD, index, ORIG_HEAD, logs/HEAD, refs/bisect...) plus a `commondir` file naming the shared git dir
//    (objects, refs, packed-refs, config...). Paths under the worktree gitdir are redirected to the common
//    dir following git's own list of shared paths (path.c, `common_list`). Submodules (`.git` file ->
//    superproject/.git/modules/<name>, no commondir) need no redirect.
//
//  * Read-only and bounded. Every write is rejected (EROFS), so nothing is ever modified. Every read first
//    checks a deadline, so a slow or hung file system cannot hang the caller.

import { promises as fsp, type BigIntStats } from 'node:fs';
import * as path from 'node:path';
import type { PromiseFsClient } from 'isomorphic-git';

/** Loaded on first use: the heaviest module ckvc has (~0.2 s), and only a commit needs it. */
let gitModule: Promise<typeof import('isomorphic-git')> | undefined;
export const loadGit = () => (gitModule ??= import('isomorphic-git'));

/** Where a repository's git files are. */
export interface GitDirs {
  /** The git dir (for a linked worktree: its private gitdir). */
  gitdir: string;
  /** The shared git dir of a linked worktree, when different from gitdir. */
  commondir?: string;
}

export interface Walkable {
  fs: PromiseFsClient;
  /** Makes every later file system call fail fast (used to abandon a walk once its answer is known). */
  stop(): void;
}

/** Top-level entries of a git dir that live in the common dir of a linked worktree (git's path.c). */
const COMMON_ENTRIES = new Set([
  'branches',
  'common',
  'config',
  'gc.pid',
  'hooks',
  'info',
  'logs',
  'lost-found',
  'objects',
  'packed-refs',
  'refs',
  'remotes',
  'rr-cache',
  'shallow',
  'svn',
  'worktrees',
]);
/** ...except these, which stay per-worktree. */
const PER_WORKTREE_UNDER_COMMON = [
  'info/sparse-checkout',
  'logs/HEAD',
  'refs/bisect',
  'refs/rewritten',
  'refs/worktree',
];

function isSharedPath(rel: string): boolean {
  const top = rel.split('/')[0] ?? '';
  if (!COMMON_ENTRIES.has(top)) return false;
  return !PER_WORKTREE_UNDER_COMMON.some((p) => rel === p || rel.startsWith(`${p}/`));
}

/** The path git would really read for `p`: shared paths under a linked worktree's gitdir are in commondir. */
function redirectToCommonDir(dirs: GitDirs, p: string): string {
  if (dirs.commondir === undefined) return p;
  const rel = path.relative(dirs.gitdir, path.resolve(p));
  if (rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) return p;
  const posixRel = rel.split(path.sep).join('/');
  return isSharedPath(posixRel) ? path.join(dirs.commondir, rel) : p;
}

export function makeReadOnlyGitFs(dirs: GitDirs, deadline: number): Walkable {
  let stopped = false;
  const redirect = (p: string): string => redirectToCommonDir(dirs, p);
  const check = (): void => {
    if (stopped || Date.now() >= deadline) {
      stopped = true;
      // ENOENT so isomorphic-git treats it like any missing file instead of logging it; callers never
      // trust the result of an operation that ran into this (they check `timedOut`/their own flag).
      throw Object.assign(new Error('ckvc: git provenance check stopped (time limit or answer known)'), {
        code: 'ENOENT',
      });
    }
  };
  const readOnly = async (): Promise<never> => {
    throw Object.assign(new Error('ckvc: git provenance is read-only'), { code: 'EROFS' });
  };
  const promises = {
    readFile: async (p: string, options?: unknown) => {
      check();
      return fsp.readFile(redirect(p), options as Parameters<typeof fsp.readFile>[1]);
    },
    stat: async (p: string) => {
      check();
      return exactStats(await fsp.stat(redirect(p), { bigint: true }));
    },
    lstat: async (p: string) => {
      check();
      return exactStats(await fsp.lstat(redirect(p), { bigint: true }));
    },
    readdir: async (p: string) => {
      check();
      return fsp.readdir(redirect(p));
    },
    readlink: async (p: string) => {
      check();
      return fsp.readlink(redirect(p));
    },
    writeFile: readOnly,
    mkdir: readOnly,
    rmdir: readOnly,
    rm: readOnly,
    unlink: readOnly,
    symlink: readOnly,
    chmod: readOnly,
  };
  return {
    fs: { promises },
    stop: () => {
      stopped = true;
    },
  };
}

/**
 * Stats with exact timestamps. git records seconds + nanoseconds in the index; from plain `Stats`
 * isomorphic-git derives nanoseconds from the float `mtimeMs`, which is lossy, so every tracked file would
 * look touched and be re-hashed. It prefers explicit `*Seconds`/`*Nanoseconds` fields, so we provide them.
 * dev/ino/uid/gid are truncated to 32 bits exactly as git stores them.
 */
function exactStats(s: BigIntStats) {
  const low32 = (n: bigint): number => Number(n & 0xffffffffn);
  const seconds = (ns: bigint): number => Number(ns / 1_000_000_000n);
  const nanos = (ns: bigint): number => Number(ns % 1_000_000_000n);
  return {
    isFile: () => s.isFile(),
    isDirectory: () => s.isDirectory(),
    isSymbolicLink: () => s.isSymbolicLink(),
    mode: Number(s.mode),
    size: Number(s.size),
    dev: low32(s.dev),
    ino: low32(s.ino),
    uid: low32(s.uid),
    gid: low32(s.gid),
    ctimeSeconds: seconds(s.ctimeNs),
    ctimeNanoseconds: nanos(s.ctimeNs),
    mtimeSeconds: seconds(s.mtimeNs),
    mtimeNanoseconds: nanos(s.mtimeNs),
    ctimeMs: Number(s.ctimeMs),
    mtimeMs: Number(s.mtimeMs),
    ctime: s.ctime,
    mtime: s.mtime,
  };
}
