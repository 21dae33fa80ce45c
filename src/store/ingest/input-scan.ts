// What a commit will take, decided before a byte of data is read (spec/FORMAT.md §9.1): every name is checked,
// so a refusal leaves nothing behind. A PATH named on the command line is followed if it is a symlink (the user
// chose it); inside a folder nothing is: a link is skipped with a warning, because following it would carry
// whatever it points to (a key, another project) into a commit that may be shared.
import type { Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CkvcError } from '../../core/errors.js';
import { entryNameProblem } from '../../core/store-format/objects/tree-object.js';
import { reservedEntryName } from '../../core/reserved-names.js';
import { ioError } from '../durable-fs.js';
import { STORE_DIR_NAME } from '../store-layout.js';

export type InputNode =
  /** `named`: given on the command line, so a symlink there is followed; otherwise it is opened without following. */
  | { kind: 'file'; name: string; path: string; named: boolean }
  | { kind: 'dir'; name: string; path: string; children: InputNode[] };

export interface InputScan {
  /** The root's entries: a directory given alone becomes the root itself, otherwise each input is an entry. */
  entries: InputNode[];
  warnings: string[];
}

/** Stats a PATH the user typed, following a symlink. */
export async function statInput(p: string): Promise<Stats> {
  try {
    return await fs.stat(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw new CkvcError('CKVC_INPUT_NOT_FOUND', `${p} does not exist (or is a broken symlink); check the path`, {
        path: p,
      });
    throw ioError(e, 'read', p);
  }
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a named pipe';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

class Scanner {
  readonly warnings: string[] = [];

  constructor(private readonly storeRoot: string) {}

  /** Refuses a name no tree may hold, saying how to commit the rest; `named` is set for a PATH the user gave. */
  checkName(p: string, name: string, named?: Stats): void {
    const problem = entryNameProblem(name);
    if (!problem) return;
    const reserved = reservedEntryName(name);
    const data = { path: p, name, ...(reserved ? { reserved } : {}) };
    if (named) {
      const instead = named.isDirectory()
        ? `give ${p} alone (a single folder becomes the commit's root, whose own name is not stored), or copy it under another name`
        : 'copy it under another name and commit the copy';
      throw new CkvcError(
        'CKVC_BAD_ARGUMENT',
        `cannot commit ${p} as an entry named "${name}": the name ${problem}; nothing was committed. To commit it, ${instead}`,
        data,
      );
    }
    const parent = path.dirname(p);
    if (reserved) {
      throw new CkvcError(
        'CKVC_BAD_ARGUMENT',
        `cannot commit ${p}: its name ${problem}, so no commit may hold it; nothing was committed. Commit the other entries of ${parent} instead (e.g. 'ckvc commit ${parent}/*', which leaves out hidden names), or move ${name} out of it`,
        data,
      );
    }
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `cannot commit ${p}: its name ${problem}; nothing was committed. Rename it, or move it out of ${parent}`,
      data,
    );
  }

  async input(p: string, name: string): Promise<InputNode> {
    const st = await statInput(p);
    this.checkName(p, name, st);
    if (st.isDirectory()) return { kind: 'dir', name, path: p, children: await this.directory(p) };
    if (!st.isFile())
      throw new CkvcError(
        'CKVC_BAD_ARGUMENT',
        `cannot commit ${p}: it is ${kindOf(st)}, not a regular file or folder; give files and folders only`,
        { path: p },
      );
    return { kind: 'file', name, path: p, named: true };
  }

  async directory(dir: string): Promise<InputNode[]> {
    let names: string[];
    try {
      names = (await fs.readdir(dir)).sort();
    } catch (e) {
      throw ioError(e, 'list', dir);
    }
    const out: InputNode[] = [];
    for (const n of names) {
      const p = path.join(dir, n);
      if (n === STORE_DIR_NAME && (await fs.realpath(p).catch(() => '')) === this.storeRoot) continue;
      this.checkName(p, n);
      let st: Stats;
      try {
        st = await fs.lstat(p);
      } catch (e) {
        // Removed since the listing: the commit takes the folder as it is now.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw ioError(e, 'read', p);
      }
      if (st.isSymbolicLink()) {
        const to = await fs.readlink(p).catch(() => '?');
        this.warnings.push(
          `skipped symlink ${p} (-> ${to}): links inside a committed folder are not followed, so nothing outside the folder can slip into the commit; to commit what it points to, name the link itself as a PATH or replace it with a copy`,
        );
        continue;
      }
      if (st.isDirectory()) out.push({ kind: 'dir', name: n, path: p, children: await this.directory(p) });
      else if (st.isFile()) out.push({ kind: 'file', name: n, path: p, named: false });
      else
        throw new CkvcError(
          'CKVC_BAD_ARGUMENT',
          `cannot commit ${p}: it is ${kindOf(st)}, not a regular file or folder; nothing was committed. Move it out of ${dir}, or commit the other entries by name`,
          { path: p },
        );
    }
    return out;
  }
}

export async function scanInputs(paths: string[], storeRoot: string): Promise<InputScan> {
  if (paths.length === 0)
    throw new CkvcError('CKVC_BAD_ARGUMENT', 'nothing to commit: give at least one file or directory', {});
  for (const p of paths) await statInput(p); // a missing input is named before anything else is looked at
  if (paths.length === 1 && (await statInput(paths[0]!)).isDirectory()) {
    const s = new Scanner(storeRoot);
    return { entries: await s.directory(paths[0]!), warnings: s.warnings };
  }
  const entries: InputNode[] = [];
  const seen = new Set<string>();
  const warnings: string[] = [];
  for (const p of paths) {
    const name = path.basename(path.resolve(p));
    if (seen.has(name))
      throw new CkvcError(
        'CKVC_BAD_ARGUMENT',
        `two inputs are both named "${name}"; commit their common parent directory instead`,
        { name },
      );
    seen.add(name);
    const s = new Scanner(storeRoot);
    entries.push(await s.input(p, name));
    warnings.push(...s.warnings);
  }
  return { entries, warnings };
}
