// What a folder holds, as a comparable map, and the differences between two of them: how tests show that a
// refused command changed nothing, that a checkout is byte-identical, or that an input file was left alone.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** sha256 of a file. */
export function sha256File(p: string): string {
  return sha256(fs.readFileSync(p));
}

/** Every file and folder under `root` (relative '/'-paths), files mapped to sha256, folders to 'dir'. */
export function snapshotTree(root: string, exclude: (rel: string) => boolean = () => false): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string, rel: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (exclude(r)) continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        out.set(r, 'dir');
        walk(p, r);
      } else
        out.set(
          r,
          e.isFile() ? sha256(fs.readFileSync(p)) : `special:${e.isSymbolicLink() ? fs.readlinkSync(p) : '?'}`,
        );
    }
  };
  walk(root, '');
  return out;
}

const under = (rel: string, top: string) => rel === top || rel.startsWith(`${top}/`);

/** A store's files except the index cache: what must not change when a command fails. */
export function snapshotStore(store: string): Map<string, string> {
  return snapshotTree(store, (rel) => under(rel, 'index'));
}

/** A store's files except the index cache and tmp/ (where a refused transfer may leave its quarantine). */
export function snapshotStoreExceptTmp(store: string): Map<string, string> {
  return snapshotTree(store, (rel) => under(rel, 'index') || under(rel, 'tmp'));
}

/** Differences between two snapshots (or any two maps), for readable assertion failures ([] when equal). */
export function diffSnapshots(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of before) {
    if (!after.has(k)) out.push(`removed ${k}`);
    else if (after.get(k) !== v) out.push(`changed ${k}: ${v} -> ${after.get(k)}`);
  }
  for (const k of after.keys()) if (!before.has(k)) out.push(`added ${k}`);
  return out;
}

/** Every regular file under `root` as relative '/'-path -> contents. */
export function readTree(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (dir: string, rel: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p, r);
      else out.set(r, fs.readFileSync(p));
    }
  };
  walk(root, '');
  return out;
}

/** Every regular file under `root` as relative path -> sha256. */
export function hashTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of readTree(root)) out.set(k, sha256(v));
  return out;
}

/** Compares two folders file by file, bytes included; returns the differences ([] when equal). */
export function treeDifferences(expected: string, actual: string): string[] {
  const a = readTree(expected);
  const b = readTree(actual);
  const out: string[] = [];
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w) out.push(`missing ${k}`);
    else if (!v.equals(w)) out.push(`differs ${k} (${v.length} vs ${w.length} bytes)`);
  }
  for (const k of b.keys()) if (!a.has(k)) out.push(`extra ${k}`);
  return out;
}

/** What must not change about a user's input file: content, size, mtime, mode, inode. */
export function fingerprint(paths: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const add = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.isDirectory()) {
      out.set(p, `dir ${st.mode}`);
      for (const n of fs.readdirSync(p).sort()) add(path.join(p, n));
    } else out.set(p, `${st.isFile() ? sha256File(p) : 'special'} ${st.size} ${st.mtimeMs} ${st.mode} ${st.ino}`);
  };
  for (const p of paths) add(p);
  return out;
}

/** Total bytes of the files in `dir` (not recursive). */
export function dirBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true }))
    if (e.isFile()) n += fs.statSync(path.join(dir, e.name)).size;
  return n;
}

/** Bytes of all pack files in a store. */
export function packBytes(store: string): number {
  return dirBytes(path.join(store, 'packs'));
}

export function packFiles(store: string): string[] {
  return fs
    .readdirSync(path.join(store, 'packs'))
    .filter((n) => n.endsWith('.pack'))
    .map((n) => path.join(store, 'packs', n));
}

/** Damages a store file the way a disk might: one byte at `at` XORed with 0x5a. */
export function flipByte(file: string, at: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0x5a;
    fs.writeSync(fd, b, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}
