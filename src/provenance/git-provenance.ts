// Code provenance for a checkpoint commit: which git commit of the surrounding repository produced it, on
// which branch, and whether the work tree had uncommitted changes to tracked files.
//
// Everything goes through isomorphic-git (no `git` binary). Three things isomorphic-git does not do for us:
//
//  * Discovery. We walk up from cwd looking for `.git` ourselves: a directory, or a file `gitdir: <path>`
//    (linked worktrees, submodules; relative paths are relative to the file's directory). Like git, a
//    `.git` directory that does not look like a repository is skipped, and a cwd inside a git dir (bare
//    repository, or `.git` itself) is "not in a work tree".
//
//  * Linked worktrees. A worktree's gitdir (main/.git/worktrees/<id>) holds only the per-worktree files
//    (HEAD, index, ORIG_HEAD, logs/HEAD, refs/bisect...) plus a `commondir` file naming the shared git dir
//    (objects, refs, packed-refs, config...). We give isomorphic-git an `fs` adapter that redirects paths
//    under the worktree gitdir to the common dir, following git's own list of shared paths (path.c,
//    `common_list`). Submodules (`.git` file -> superproject/.git/modules/<name>, no commondir) need no
//    redirect.
//
//  * Read-only and bounded. The adapter rejects every write (EROFS), so nothing is ever modified (the
//    WORKDIR walker also runs with refresh: false, so it never wants to rewrite the index). Every read
//    first checks a deadline, and the whole operation also races a timer, so a slow or hung file system
//    cannot hang the caller.
//
// Dirty rules (match `git describe --dirty`, i.e. `git diff-index HEAD` after an index refresh):
//  * dirty when a tracked path differs between HEAD and the index (staged change, staged deletion, new
//    file added to the index, intent-to-add, mode change, file <-> symlink <-> submodule), or between the
//    index and the work tree (modified content, deleted, replaced by a directory, executable bit when
//    core.filemode is not false). Content is compared by blob id; a file whose stat still matches its
//    index entry is trusted without reading it (git does the same), otherwise it is hashed.
//  * untracked and ignored paths never count and are never read: the walk prunes every path that is in
//    neither HEAD nor the index before looking inside it, so a large untracked checkpoint directory in the
//    repository costs one readdir (and a file costs one lstat).
//  * submodules: dirty when the gitlink differs between HEAD and the index, when the populated
//    submodule has another commit checked out, or when its own tracked files are dirty (recursively).
//    An unpopulated submodule (empty directory) is clean; a deleted one is dirty. Untracked files inside
//    a submodule do not count.
//
// Time bound and failures: "dirty: false" is a claim that the commit reproduces the code, so we only
// make it when we have checked. If the dirty check cannot finish — it takes longer than `timeoutMs`
// (default 5 s), a pack file is too large to load (isomorphic-git reads whole packs into memory), or
// isomorphic-git cannot read something (index v4, split index, reftable, alternates...) — we still
// report the commit and branch, with `dirty: true` ("not known to be clean"). Finding HEAD has its own
// separate 5 s bound; failing there gives `undefined`, as does a HEAD whose commit object is missing.
// Environment overrides (GIT_DIR, GIT_WORK_TREE, core.worktree, ceiling directories) are not honoured.

import { promises as fsp, type BigIntStats } from 'node:fs';
import * as path from 'node:path';
import type { PromiseFsClient, WalkerEntry } from 'isomorphic-git';

/** Loaded on first use: the heaviest module ckvc has (~0.2 s), and only a commit needs it. */
let gitModule: Promise<typeof import('isomorphic-git')> | undefined;
const loadGit = () => (gitModule ??= import('isomorphic-git'));

export interface CodeProvenance {
  commit: string;
  branch?: string;
  dirty: boolean;
}

export interface GitProvenanceOptions {
  /** Bound on the dirty check in milliseconds (default 5000). When exceeded, `dirty` is reported as true. */
  timeoutMs?: number;
}

const DEFAULT_DIRTY_TIMEOUT_MS = 5_000;
/** Bound on discovery + reading HEAD (a handful of small reads). */
const HEAD_TIMEOUT_MS = 5_000;
/** isomorphic-git loads a whole pack into memory (and hashes it) to read one object from it. */
const MAX_PACK_BYTES = 1024 * 1024 * 1024;
/** Nested submodules deeper than this are not inspected (reported dirty). */
const MAX_SUBMODULE_DEPTH = 8;
const SHA1_HEX = /^[0-9a-f]{40}$/;

/**
 * Provenance of the git work tree containing `cwd`, or undefined when cwd is not inside a git work tree or
 * the repository has no commit yet. Never throws for a broken or odd repository: returns undefined (and
 * never modifies anything).
 */
export async function readGitProvenance(cwd: string, options: GitProvenanceOptions = {}): Promise<CodeProvenance | undefined> {
  try {
    const timeoutMs = Math.max(0, options.timeoutMs ?? DEFAULT_DIRTY_TIMEOUT_MS);
    const head = await bounded(HEAD_TIMEOUT_MS, async (deadline) => {
      // like git, discover from the physical directory (symlinks resolved)
      const start = await fsp.realpath(cwd).catch(() => undefined);
      if (start === undefined) return undefined;
      const repo = await locateRepository(start);
      if (repo === undefined) return undefined;
      const found = await readHead(repo, deadline);
      return found === undefined ? undefined : { repo, ...found };
    });
    if (!head.ok || head.value === undefined) return undefined;
    const { repo, commit, branch } = head.value;
    const state = await checkDirty(repo, commit, Date.now() + timeoutMs, 0);
    if (state === 'missing-commit') return undefined;
    return branch === undefined ? { commit, dirty: state } : { commit, branch, dirty: state };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Discovery

interface Repository {
  /** Work tree root. */
  root: string;
  /** The git dir (for a linked worktree: its private gitdir). */
  gitdir: string;
  /** The shared git dir of a linked worktree, when different from gitdir. */
  commondir?: string;
}

async function locateRepository(start: string): Promise<Repository | undefined> {
  let dir = start;
  for (;;) {
    const dotgit = path.join(dir, '.git');
    const st = await fsp.stat(dotgit).catch(() => undefined);
    if (st?.isDirectory()) {
      const dirs = await gitDirLayout(dotgit);
      // git skips a `.git` directory that is not a repository and keeps looking upwards
      if (dirs !== undefined) return { root: dir, ...dirs };
    } else if (st?.isFile()) {
      const dirs = await followGitFile(dotgit);
      // git stops with an error on a bad gitfile: there is no work tree to report
      return dirs === undefined ? undefined : { root: dir, ...dirs };
    }
    // cwd inside a git dir (a bare repository, or `.git` itself) is not inside a work tree
    if ((await gitDirLayout(dir)) !== undefined) return undefined;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** `.git` file: `gitdir: <path>`, relative paths relative to the file's directory. */
async function followGitFile(dotgit: string): Promise<Omit<Repository, 'root'> | undefined> {
  const text = await fsp.readFile(dotgit, 'utf8').catch(() => undefined);
  const match = text === undefined ? null : /^gitdir: *(.+?)\s*$/m.exec(text);
  if (!match?.[1]) return undefined;
  const gitdir = path.resolve(path.dirname(dotgit), match[1]);
  return gitDirLayout(gitdir);
}

/** The layout of `dir` if it looks like a git dir (HEAD, and objects + refs here or in its commondir). */
async function gitDirLayout(dir: string): Promise<Omit<Repository, 'root'> | undefined> {
  if (!(await isFile(path.join(dir, 'HEAD')))) return undefined;
  const common = await fsp.readFile(path.join(dir, 'commondir'), 'utf8').catch(() => undefined);
  const shared = common === undefined || common.trim() === '' ? dir : path.resolve(dir, common.trim());
  const looksLikeRepo =
    (await isDirectory(path.join(shared, 'objects'))) && (await isDirectory(path.join(shared, 'refs')));
  if (!looksLikeRepo) return undefined;
  return shared === dir ? { gitdir: dir } : { gitdir: dir, commondir: shared };
}

async function isFile(p: string): Promise<boolean> {
  return (await fsp.stat(p).catch(() => undefined))?.isFile() ?? false;
}

async function isDirectory(p: string): Promise<boolean> {
  return (await fsp.stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

// ---------------------------------------------------------------------------------------------------------
// File system adapter handed to isomorphic-git: read-only, deadline-checked, worktree-aware.

/** Top-level entries of a git dir that live in the common dir of a linked worktree (git's path.c). */
const COMMON_ENTRIES = new Set([
  'branches', 'common', 'config', 'gc.pid', 'hooks', 'info', 'logs', 'lost-found', 'objects',
  'packed-refs', 'refs', 'remotes', 'rr-cache', 'shallow', 'svn', 'worktrees',
]);
/** ...except these, which stay per-worktree. */
const PER_WORKTREE_UNDER_COMMON = ['info/sparse-checkout', 'logs/HEAD', 'refs/bisect', 'refs/rewritten', 'refs/worktree'];

function isSharedPath(rel: string): boolean {
  const top = rel.split('/')[0] ?? '';
  if (!COMMON_ENTRIES.has(top)) return false;
  return !PER_WORKTREE_UNDER_COMMON.some((p) => rel === p || rel.startsWith(`${p}/`));
}

interface Walkable {
  fs: PromiseFsClient;
  /** Makes every later file system call fail fast (used to abandon a walk once its answer is known). */
  stop(): void;
}

function makeFs(repo: Repository, deadline: number): Walkable {
  let stopped = false;
  const redirect = (p: string): string => {
    if (repo.commondir === undefined) return p;
    const rel = path.relative(repo.gitdir, path.resolve(p));
    if (rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) return p;
    const posixRel = rel.split(path.sep).join('/');
    return isSharedPath(posixRel) ? path.join(repo.commondir, rel) : p;
  };
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

/** Runs `fn` with a deadline; resolves `{ ok: false }` when the deadline passes first (never hangs). */
async function bounded<T>(ms: number, fn: (deadline: number) => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> {
  const deadline = Date.now() + ms;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ ok: false }>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false }), Math.max(0, deadline - Date.now()) + 1);
  });
  const work = fn(deadline).then((value) => ({ ok: true as const, value }));
  work.catch(() => undefined); // a loser that rejects later must not become an unhandled rejection
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------------------
// HEAD

async function readHead(repo: Repository, deadline: number): Promise<{ commit: string; branch?: string } | undefined> {
  const { resolveRef } = await loadGit();
  const { fs } = makeFs(repo, deadline);
  let target: string;
  try {
    // depth 2: HEAD -> 'refs/heads/x' (symbolic) or the oid itself (detached)
    target = (await resolveRef({ fs, gitdir: repo.gitdir, ref: 'HEAD', depth: 2 })).trim();
  } catch {
    return undefined;
  }
  let commit: string;
  try {
    commit = SHA1_HEX.test(target) ? target : await resolveRef({ fs, gitdir: repo.gitdir, ref: target });
  } catch {
    return undefined; // unborn branch (no commit yet) or a dangling symbolic ref
  }
  if (Date.now() >= deadline || !SHA1_HEX.test(commit)) return undefined;
  const branch = target.startsWith('refs/heads/') ? target.slice('refs/heads/'.length) : undefined;
  return branch ? { commit, branch } : { commit };
}

// ---------------------------------------------------------------------------------------------------------
// Dirty check

class FoundChange extends Error {}

/** true/false: dirty or clean; 'missing-commit': HEAD names no readable commit (broken repository). */
async function checkDirty(repo: Repository, commit: string, deadline: number, depth: number): Promise<boolean | 'missing-commit'> {
  const { STAGE, TREE, WORKDIR, getConfig, readCommit, walk } = await loadGit();
  if (depth > MAX_SUBMODULE_DEPTH) return true;
  const ms = deadline - Date.now();
  if (ms <= 0) return true;
  const result = await bounded(ms, async (walkDeadline) => {
    if (await hasOversizedPack(repo.commondir ?? repo.gitdir)) return true;
    const { fs, stop } = makeFs(repo, walkDeadline);
    const cache = {};
    const { gitdir, root: dir } = repo;
    try {
      await readCommit({ fs, gitdir, oid: commit, cache });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const broken = code === 'NotFoundError' || code === 'ObjectTypeError';
      return broken && Date.now() < walkDeadline ? 'missing-commit' : true;
    }
    const filemodeSetting: unknown = await getConfig({ fs, gitdir, path: 'core.filemode' });
    const filemode = filemodeSetting !== false && filemodeSetting !== 'false';
    const changed = (): never => {
      stop();
      throw new FoundChange();
    };
    try {
      await walk({
        fs,
        dir,
        gitdir,
        cache,
        trees: [TREE({ ref: commit }), WORKDIR({ refresh: false }), STAGE()],
        reduce: async () => undefined,
        map: async (filepath: string, [head, work, stage]: Array<WalkerEntry | null>) => {
          if (filepath === '.') return true;
          // Untracked or ignored: prune before anything below it is listed, stat'ed or read.
          if (!head && !stage) return null;
          const [headType, stageType] = await Promise.all([head?.type(), stage?.type()]);
          if (headType === 'tree' && stageType === 'tree') return true; // descend
          if (headType !== stageType || !head || !stage) return changed(); // added, deleted, type change
          const stageOid = await stage.oid();
          if ((await head.oid()) !== stageOid) return changed();
          if (headType === 'commit') {
            if (await submoduleChanged(repo, filepath, work ?? null, stageOid, walkDeadline, depth)) return changed();
            return null;
          }
          if (headType !== 'blob') return changed(); // not expected in a tree or index
          const stageMode = await stage.mode();
          if ((await head.mode()) !== stageMode) return changed();
          // index vs work tree
          if (!work || (await work.type()) !== 'blob') return changed(); // deleted, directory, fifo...
          const workMode = await work.mode();
          const isLink = (mode: number): boolean => mode === 0o120000;
          if (isLink(workMode) !== isLink(stageMode)) return changed();
          if (filemode && workMode !== stageMode) return changed();
          if ((await work.oid()) !== stageOid) return changed();
          return null;
        },
      });
    } catch {
      // FoundChange, or unreadable for isomorphic-git, or stopped by the deadline: not known to be clean
      return true;
    } finally {
      stop();
    }
    // a walk that ran into the deadline may have seen fake "missing" files: do not trust it
    return Date.now() >= walkDeadline;
  });
  return result.ok ? result.value : true;
}

async function submoduleChanged(
  repo: Repository,
  filepath: string,
  work: WalkerEntry | null,
  recorded: string,
  deadline: number,
  depth: number,
): Promise<boolean> {
  if (!work) return true; // submodule directory deleted
  if ((await work.type()) !== 'tree') return true;
  const root = path.join(repo.root, filepath);
  const dotgit = path.join(root, '.git');
  const st = await fsp.stat(dotgit).catch(() => undefined);
  if (st === undefined) return false; // not populated (git treats it as unmodified)
  const layout = st.isFile() ? await followGitFile(dotgit) : st.isDirectory() ? await gitDirLayout(dotgit) : undefined;
  if (layout === undefined) return true;
  const sub: Repository = { root, ...layout };
  const remaining = deadline - Date.now();
  if (remaining <= 0) return true;
  const head = await readHead(sub, deadline);
  if (head === undefined || head.commit !== recorded) return true;
  return (await checkDirty(sub, head.commit, deadline, depth + 1)) !== false;
}

async function hasOversizedPack(commondir: string): Promise<boolean> {
  const packDir = path.join(commondir, 'objects', 'pack');
  const names = await fsp.readdir(packDir).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.endsWith('.pack')) continue;
    const st = await fsp.stat(path.join(packDir, name)).catch(() => undefined);
    if (st !== undefined && st.size > MAX_PACK_BYTES) return true;
  }
  return false;
}
