// A tree: a directory's entries sorted by name's UTF-8 bytes, each a file recipe or a subtree (spec/FORMAT.md §5.4).
import { decodeCanonical, encodeCanonical } from '../canonical-cbor.js';
import { CkvcError } from '../../errors.js';
import { idToBytes, type ObjectId } from '../object-id.js';
import { fileSystemSpelling, reservedEntryName } from '../../reserved-names.js';
import { corrupt, FieldReader } from './fields.js';

export interface TreeEntry {
  name: string;
  type: 'file' | 'tree';
  id: ObjectId;
  size: number;
}

export interface TreeObject {
  entries: TreeEntry[];
}

const encoder = new TextEncoder();

/** Why a path component is unsafe to write on checkout, or undefined if it is fine (spec/FORMAT.md §5.4). */
export function entryNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name === '.' || name === '..') return `is "${name}"`;
  if (name.includes('/') || name.includes('\\')) return 'contains a path separator';
  if (name.includes('\0')) return 'contains a NUL byte';
  if (encoder.encode(name).length > 255) return 'is longer than 255 bytes';
  if (fileSystemSpelling(name) === '')
    return 'has nothing left once trailing dots and spaces, characters some file systems ignore and any ":" suffix are dropped, so it can open "." or ".."';
  const reserved = reservedEntryName(name);
  if (reserved)
    return `${name === reserved ? 'is' : 'reads as'} "${reserved}" ${name === reserved ? '' : 'on some file systems '}(${RESERVED_WHY[reserved]})`;
  return undefined;
}

const RESERVED_WHY = {
  '.git': "a checked-out .git folder would be a git repository's control files, which can run commands",
  '.ckvc': "a checked-out .ckvc folder would be a ckvc store's own files, which can release data",
} as const;

export function compareNames(a: string, b: string): number {
  return Buffer.compare(encoder.encode(a), encoder.encode(b));
}

export function encodeTree(t: TreeObject): Uint8Array {
  const entries = [...t.entries].sort((a, b) => compareNames(a.name, b.name));
  for (let i = 0; i < entries.length; i++) {
    const problem = entryNameProblem(entries[i]!.name);
    if (problem) throw new CkvcError('CKVC_BAD_ARGUMENT', `file name "${entries[i]!.name}" ${problem}`);
    if (i > 0 && entries[i - 1]!.name === entries[i]!.name) {
      throw new CkvcError('CKVC_BAD_ARGUMENT', `two entries named "${entries[i]!.name}" in one directory`);
    }
  }
  return encodeCanonical({
    entries: entries.map((e) => ({ name: e.name, type: e.type, id: idToBytes(e.id), size: e.size })),
  });
}

export function decodeTree(bytes: Uint8Array, where = 'tree object'): TreeObject {
  const f = FieldReader.of(decodeCanonical(bytes, where), where);
  const entries = f.array('entries').map((raw, i): TreeEntry => {
    const e = FieldReader.of(raw, `${where} entries[${i}]`);
    const name = e.string('name');
    const problem = entryNameProblem(name);
    if (problem) throw corrupt(where, `entry name ${JSON.stringify(name)} ${problem}`);
    const type = e.string('type');
    if (type !== 'file' && type !== 'tree') throw corrupt(where, `entry "${name}" has unknown type "${type}"`);
    return { name, type, id: e.id('id'), size: e.uint('size') };
  });
  for (let i = 1; i < entries.length; i++) {
    if (compareNames(entries[i - 1]!.name, entries[i]!.name) >= 0) {
      throw corrupt(where, `entries are not sorted and unique at "${entries[i]!.name}"`);
    }
  }
  return { entries };
}
