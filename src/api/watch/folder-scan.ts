// `ckvc watch`: listing the watched folder's checkpoint candidates, each with a signature that changes whenever
// the checkpoint does (files: size and mtime; folders: every file's path, size and mtime). The signature is
// what the settle rule compares between polls and what the commit records, so it must not depend on anything
// a restart changes (inode numbers of a renamed folder do not matter; timestamps are kept to the nanosecond).
import { createHash } from 'node:crypto';
import type { BigIntStats, Dirent } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CkvcError } from '../../core/errors.js';
import { isCandidate, type CandidateRules } from './candidate-names.js';
import { ioError } from '../../store/durable-fs.js';

export interface Candidate {
  /** The entry's name in the watched folder (recorded as the watch.source label). */
  name: string;
  path: string;
  kind: 'file' | 'folder';
  /** This exact state of the checkpoint (recorded as the watch.signature label). */
  signature: string;
  files: number;
  bytes: number;
  newestMtimeMs: number;
}

export interface ScanResult {
  candidates: Candidate[];
  /** Entries that could not be examined (permissions, symlink loops), each with the reason. */
  problems: { name: string; error: CkvcError }[];
}

/** The entry went away or was renamed between listing and stat: a writer at work, not an error. */
function vanished(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Reads the watched folder once. `storeRoot` (the store being written) is never a candidate nor walked into. */
export async function scanFolder(dir: string, rules: CandidateRules, storeRoot: string): Promise<ScanResult> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (vanished(e))
      throw new CkvcError(
        'CKVC_INPUT_NOT_FOUND',
        `the watched folder ${dir} has disappeared; recreate it or watch another folder`,
        { path: dir },
      );
    throw ioError(e, 'list', dir);
  }
  const out: ScanResult = { candidates: [], problems: [] };
  for (const e of entries) {
    if (!isCandidate(e.name, { symlink: e.isSymbolicLink() }, rules)) continue;
    const p = path.join(dir, e.name);
    try {
      const c = await signatureOf(e.name, p, storeRoot);
      if (c) out.candidates.push(c);
    } catch (err) {
      out.problems.push({ name: e.name, error: err instanceof CkvcError ? err : ioError(err, 'read', p) });
    }
  }
  return out;
}

/**
 * The candidate's current state, or undefined when it is not there (any more), is neither file nor folder, is
 * the store itself, or is a folder without files yet (a trainer that has created `checkpoint-500/` but not
 * written into it is not done).
 */
export async function signatureOf(name: string, p: string, storeRoot: string): Promise<Candidate | undefined> {
  let st: BigIntStats;
  try {
    st = await fs.stat(p, { bigint: true });
  } catch (e) {
    if (vanished(e)) return undefined;
    throw ioError(e, 'read', p);
  }
  if (st.isFile()) {
    return {
      name,
      path: p,
      kind: 'file',
      signature: `file:${st.size}:${st.mtimeNs}`,
      files: 1,
      bytes: Number(st.size),
      newestMtimeMs: Number(st.mtimeNs / 1_000_000n),
    };
  }
  if (!st.isDirectory()) return undefined;
  try {
    return await folderSignature(name, p, storeRoot);
  } catch (e) {
    if (vanished(e)) return undefined;
    throw e;
  }
}

async function folderSignature(name: string, root: string, storeRoot: string): Promise<Candidate | undefined> {
  const lines: string[] = [];
  let files = 0;
  let bytes = 0n;
  let newest = 0n;
  const visiting = new Set<string>();
  // Symlinks are followed here although the commit skips links inside folders (spec §9.1): a link's target
  // changing still means "not settled", which only delays a commit; a loop would never end. The store is skipped as the
  // commit skips it: its files change with every commit, so the folder would never look settled.
  const walk = async (dir: string, rel: string): Promise<void> => {
    const real = await fs.realpath(dir);
    if (real === storeRoot) return;
    if (visiting.has(real))
      throw new CkvcError(
        'CKVC_BAD_ARGUMENT',
        `cannot watch ${root}: a symlink loop leads back to ${dir}; remove the link`,
        { path: dir },
      );
    visiting.add(real);
    let names: string[];
    try {
      names = (await fs.readdir(dir)).sort();
    } catch (e) {
      if (vanished(e)) throw e;
      throw ioError(e, 'list', dir);
    }
    for (const n of names) {
      const p = path.join(dir, n);
      const r = rel ? `${rel}/${n}` : n;
      let st: BigIntStats;
      try {
        st = await fs.stat(p, { bigint: true });
      } catch (e) {
        if (vanished(e)) throw e;
        throw ioError(e, 'read', p);
      }
      if (st.isDirectory()) {
        lines.push(`${r}/`);
        await walk(p, r);
      } else {
        files++;
        bytes += st.size;
        if (st.mtimeNs > newest) newest = st.mtimeNs;
        lines.push(`${r}\0${st.size}\0${st.mtimeNs}`);
      }
    }
    visiting.delete(real);
  };
  await walk(root, '');
  if (files === 0) return undefined;
  // The counts make the label readable; the digest of the listing catches a rename inside the folder.
  const digest = createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
  return {
    name,
    path: root,
    kind: 'folder',
    signature: `folder:${files}:${bytes}:${newest}:${digest}`,
    files,
    bytes: Number(bytes),
    newestMtimeMs: Number(newest / 1_000_000n),
  };
}
