// Whether a git work tree has uncommitted changes to tracked files, read through isomorphic-git on the
// read-only file system of read-only-git-fs.ts (the WORKDIR walker runs with refresh: false, so it never
// wants to rewrite the index).
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
// "dirty: false" is a claim that the commit reproduces the code, so it is only made when checked: a walk
// that runs out of time, a pack too large to load, or anything isomorphic-git cannot read gives true.

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { WalkerEntry } from 'isomorphic-git';
import { followGitFile, gitDirLayout, readHead, type Repository } from './git-repository.js';
import { loadGit, makeReadOnlyGitFs } from './read-only-git-fs.js';
import { bounded } from './time-bound.js';

type Git = Awaited<ReturnType<typeof loadGit>>;

/** isomorphic-git loads a whole pack into memory (and hashes it) to read one object from it. */
const MAX_PACK_BYTES = 1024 * 1024 * 1024;
/** Nested submodules deeper than this are not inspected (reported dirty). */
const MAX_SUBMODULE_DEPTH = 8;

class FoundChange extends Error {}

/** true/false: dirty or clean; 'missing-commit': HEAD names no readable commit (broken repository). */
export async function checkDirty(
  repo: Repository,
  commit: string,
  deadline: number,
  depth: number,
): Promise<boolean | 'missing-commit'> {
  const git = await loadGit();
  if (depth > MAX_SUBMODULE_DEPTH) return true;
  const ms = deadline - Date.now();
  if (ms <= 0) return true;
  const result = await bounded(ms, (walkDeadline) => walkForChanges(git, repo, commit, walkDeadline, depth));
  return result.ok ? result.value : true;
}

/** What the walk needs to judge one path. */
interface WalkContext {
  repo: Repository;
  filemode: boolean;
  deadline: number;
  depth: number;
}

async function walkForChanges(
  git: Git,
  repo: Repository,
  commit: string,
  deadline: number,
  depth: number,
): Promise<boolean | 'missing-commit'> {
  const { STAGE, TREE, WORKDIR, getConfig, readCommit, walk } = git;
  if (await hasOversizedPack(repo.commondir ?? repo.gitdir)) return true;
  const { fs, stop } = makeReadOnlyGitFs(repo, deadline);
  const cache = {};
  const { gitdir, root: dir } = repo;
  try {
    await readCommit({ fs, gitdir, oid: commit, cache });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const broken = code === 'NotFoundError' || code === 'ObjectTypeError';
    return broken && Date.now() < deadline ? 'missing-commit' : true;
  }
  const filemodeSetting: unknown = await getConfig({ fs, gitdir, path: 'core.filemode' });
  const filemode = filemodeSetting !== false && filemodeSetting !== 'false';
  const context: WalkContext = { repo, filemode, deadline, depth };
  try {
    await walk({
      fs,
      dir,
      gitdir,
      cache,
      trees: [TREE({ ref: commit }), WORKDIR({ refresh: false }), STAGE()],
      reduce: async () => undefined,
      map: async (filepath: string, [head, work, stage]: Array<WalkerEntry | null>) => {
        const verdict = await judgePath(context, filepath, head ?? null, work ?? null, stage ?? null);
        if (verdict === 'changed') {
          stop();
          throw new FoundChange();
        }
        return verdict === 'descend' ? true : null;
      },
    });
  } catch {
    // FoundChange, or unreadable for isomorphic-git, or stopped by the deadline: not known to be clean
    return true;
  } finally {
    stop();
  }
  // a walk that ran into the deadline may have seen fake "missing" files: do not trust it
  return Date.now() >= deadline;
}

/** 'descend' into a tree both sides have, 'skip' a path that is clean or untracked, or 'changed'. */
async function judgePath(
  context: WalkContext,
  filepath: string,
  head: WalkerEntry | null,
  work: WalkerEntry | null,
  stage: WalkerEntry | null,
): Promise<'descend' | 'skip' | 'changed'> {
  if (filepath === '.') return 'descend';
  // Untracked or ignored: prune before anything below it is listed, stat'ed or read.
  if (!head && !stage) return 'skip';
  const [headType, stageType] = await Promise.all([head?.type(), stage?.type()]);
  if (headType === 'tree' && stageType === 'tree') return 'descend';
  if (headType !== stageType || !head || !stage) return 'changed'; // added, deleted, type change
  const stageOid = await stage.oid();
  if ((await head.oid()) !== stageOid) return 'changed';
  if (headType === 'commit') {
    const { repo, deadline, depth } = context;
    return (await submoduleChanged(repo, filepath, work, stageOid, deadline, depth)) ? 'changed' : 'skip';
  }
  if (headType !== 'blob') return 'changed'; // not expected in a tree or index
  return (await blobChanged(head, work, stage, stageOid, context.filemode)) ? 'changed' : 'skip';
}

/** A tracked file whose HEAD and index blob ids agree: mode in the index, then the work tree copy. */
async function blobChanged(
  head: WalkerEntry,
  work: WalkerEntry | null,
  stage: WalkerEntry,
  stageOid: string,
  filemode: boolean,
): Promise<boolean> {
  const stageMode = await stage.mode();
  if ((await head.mode()) !== stageMode) return true;
  // index vs work tree
  if (!work || (await work.type()) !== 'blob') return true; // deleted, directory, fifo...
  const workMode = await work.mode();
  const isLink = (mode: number): boolean => mode === 0o120000;
  if (isLink(workMode) !== isLink(stageMode)) return true;
  if (filemode && workMode !== stageMode) return true;
  return (await work.oid()) !== stageOid;
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
