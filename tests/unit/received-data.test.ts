// Rules that keep received or committed data from escaping (issue 11): tree entry names that some file system
// reads as `.git` or `.ckvc` are refused by the tree encoder and decoder (FORMAT.md §5.4), and an input file
// is refused when its size lies or when it changes while being read.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeCanonical } from '../../src/core/store-format/canonical-cbor.js';
import { isCkvcError } from '../../src/core/errors.js';
import { objectId } from '../../src/core/store-format/object-id.js';
import { decodeTree, encodeTree, entryNameProblem } from '../../src/core/store-format/objects/tree-object.js';
import { reservedEntryName } from '../../src/core/reserved-names.js';
import { InputFile } from '../../src/store/ingest/input-file.js';

const id = objectId('chunk', new Uint8Array([1]));

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isCkvcError(e) ? e.code : `not a CkvcError: ${String(e)}`;
  }
  return undefined;
}

async function codeOfAsync(fn: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await fn();
  } catch (e) {
    return isCkvcError(e) ? e.code : `not a CkvcError: ${String(e)}`;
  }
  return undefined;
}

const treeWith = (name: string, type = 'tree') =>
  encodeCanonical({ entries: [{ name, type, id: Buffer.from(id, 'hex'), size: 0 }] });

// Each spelling with the name it stands for, and why a file system takes it so.
const RESERVED: [string, '.git' | '.ckvc', string][] = [
  ['.git', '.git', 'exact'],
  ['.GIT', '.git', 'case (NTFS, HFS+, APFS)'],
  ['.Git', '.git', 'case'],
  ['.git.', '.git', 'a trailing dot (Win32 drops it)'],
  ['.git ', '.git', 'a trailing space (Win32 drops it)'],
  ['.GiT. . ', '.git', 'trailing dots and spaces'],
  ['git~1', '.git', 'the NTFS 8.3 short name'],
  ['GIT~1', '.git', 'the short name, upper case'],
  ['git~1. ', '.git', 'the short name with trailing dot and space'],
  ['git~4', '.git', 'a later short name'],
  ['.git::$INDEX_ALLOCATION', '.git', 'an NTFS stream of the folder'],
  ['.git:x', '.git', 'an NTFS named stream'],
  ['.g\u200cit', '.git', 'ZERO WIDTH NON-JOINER (HFS+ ignores it)'],
  ['\u200e.git', '.git', 'LEFT-TO-RIGHT MARK first'],
  ['.git\ufeff', '.git', 'ZERO WIDTH NO-BREAK SPACE last'],
  ['.\u202eg\u206ai\u206ft', '.git', 'several ignorables'],
  ['.G\u200dIT.', '.git', 'an ignorable, case and a trailing dot together'],
  ['.g\u0131t', '.git', 'dotless i (NTFS upper-cases it to I)'],
  ['.\uff47\uff49\uff54', '.git', 'full-width letters (NFKC)'],
  ['.ckvc', '.ckvc', 'exact'],
  ['.CKVC', '.ckvc', 'case'],
  ['.ckvc.', '.ckvc', 'a trailing dot'],
  ['.ckvc ', '.ckvc', 'a trailing space'],
  ['ckvc~1', '.ckvc', 'the NTFS 8.3 short name'],
  ['CKVC~2', '.ckvc', 'a later short name'],
  ['.ck\u200cvc', '.ckvc', 'an HFS+ ignorable'],
  ['.c\u212avc', '.ckvc', 'KELVIN SIGN (HFS+ and APFS decompose it to K)'],
];

const FINE = [
  '.gitignore',
  '.gitattributes',
  '.github',
  '.gitkeep',
  '.git2',
  '.git~1',
  'git',
  'x.git',
  '.g it',
  'git~5',
  'git~10',
  'git~',
  'gitx~1',
  '.ckvcrc',
  'ckvc',
  'ckvc.pt',
  'my.ckvc',
  'a:b',
  'model.safetensors',
  '..a',
  '.a.',
  'step 1000 .pt',
];

describe('tree entry names a file system reads as .git or .ckvc', () => {
  for (const [name, reserved, why] of RESERVED) {
    it(`${JSON.stringify(name)} (${why}) is ${reserved}: refused by the decoder (CKVC_CORRUPT_OBJECT) and the encoder (CKVC_BAD_ARGUMENT)`, () => {
      expect(reservedEntryName(name)).toBe(reserved);
      expect(entryNameProblem(name)).toContain(`"${reserved}"`);
      for (const type of ['tree', 'file']) {
        let msg = '';
        try {
          decodeTree(treeWith(name, type), 'tree abc');
        } catch (e) {
          expect(isCkvcError(e) && e.code).toBe('CKVC_CORRUPT_OBJECT');
          msg = (e as Error).message;
        }
        expect(msg, 'the decoder must refuse it').toContain(`tree abc`);
        expect(msg).toContain(JSON.stringify(name));
      }
      expect(codeOf(() => encodeTree({ entries: [{ name, type: 'tree', id, size: 0 }] }))).toBe('CKVC_BAD_ARGUMENT');
    });
  }

  it('refuses it at any depth of a tree: each tree object is checked as it is decoded', () => {
    // A subtree is its own object; what matters is that no tree object can carry the name, wherever it hangs.
    expect(
      codeOf(() =>
        decodeTree(
          encodeCanonical({
            entries: [
              { name: '.git', type: 'tree', id: Buffer.from(id, 'hex'), size: 0 },
              { name: 'a', type: 'file', id: Buffer.from(id, 'hex'), size: 0 },
            ],
          }),
        ),
      ),
    ).toBe('CKVC_CORRUPT_OBJECT');
  });

  for (const name of ['...', '. .', ' .', '\u200c', '\u200c..', '.\u200d.', ':', ':x', '.:x']) {
    it(`${JSON.stringify(name)} can open "." or ".." on some file system: refused both ways`, () => {
      expect(entryNameProblem(name)).toBeDefined();
      expect(codeOf(() => decodeTree(treeWith(name)))).toBe('CKVC_CORRUPT_OBJECT');
      expect(codeOf(() => encodeTree({ entries: [{ name, type: 'file', id, size: 0 }] }))).toBe('CKVC_BAD_ARGUMENT');
    });
  }

  it('leaves alone names that merely look alike (.gitignore, .gitattributes of a Hugging Face repo, git~5, ...)', () => {
    for (const name of FINE) {
      expect([name, entryNameProblem(name)]).toEqual([name, undefined]);
      expect(decodeTree(treeWith(name)).entries[0]!.name).toBe(name);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-input-'));
  dirs.push(d);
  return d;
}

async function readAll(f: InputFile): Promise<void> {
  if (f.size) await f.readAt(0, f.size);
}

describe('an input file whose size lies, or that changes while it is read', () => {
  it('unchanged: read to its size and accepted', async () => {
    const p = path.join(scratch(), 'a.bin');
    fs.writeFileSync(p, Buffer.alloc(1000, 7));
    const f = await InputFile.open(p);
    await readAll(f);
    // Its state then, as the files cache records it (FORMAT.md §19): the state it was opened in.
    const now = await f.checkUnchanged();
    expect([now.size, now.ino, now.mtimeNs, now.ctimeNs]).toEqual([
      1000n,
      f.opened.ino,
      f.opened.mtimeNs,
      f.opened.ctimeNs,
    ]);
    await f.close();
  });

  it('appended to after it was opened: CKVC_INPUT_CHANGED (still torn-input, not a lying size)', async () => {
    const p = path.join(scratch(), 'a.bin');
    fs.writeFileSync(p, Buffer.alloc(1000, 7));
    const f = await InputFile.open(p);
    await readAll(f);
    fs.appendFileSync(p, 'more');
    expect(await codeOfAsync(() => f.checkUnchanged())).toBe('CKVC_INPUT_CHANGED');
    await f.close();
  });

  it('truncated while being read: CKVC_INPUT_CHANGED', async () => {
    const p = path.join(scratch(), 'a.bin');
    fs.writeFileSync(p, Buffer.alloc(1000, 7));
    const f = await InputFile.open(p);
    fs.truncateSync(p, 10);
    expect(await codeOfAsync(() => readAll(f))).toBe('CKVC_INPUT_CHANGED');
    await f.close();
  });

  it('read into several buffers at once (tensor chunks): filled back to back, or CKVC_INPUT_CHANGED when cut short', async () => {
    const p = path.join(scratch(), 'a.bin');
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7) & 255));
    fs.writeFileSync(p, bytes);
    const f = await InputFile.open(p);
    const bufs = [Buffer.alloc(300), Buffer.alloc(300), Buffer.alloc(100)];
    await f.readExactlyInto(bufs, 250);
    expect(Buffer.concat(bufs)).toEqual(bytes.subarray(250, 950));
    // Shorter than the buffers by the time they are read: the part past the end is never taken as read.
    fs.truncateSync(p, 600);
    expect(await codeOfAsync(() => f.readExactlyInto([Buffer.alloc(300), Buffer.alloc(300)], 100))).toBe(
      'CKVC_INPUT_CHANGED',
    );
    await f.close();
  });

  it('replaced by rename after it was opened: CKVC_INPUT_CHANGED', async () => {
    const d = scratch();
    const p = path.join(d, 'a.bin');
    fs.writeFileSync(p, Buffer.alloc(1000, 7));
    const f = await InputFile.open(p);
    await readAll(f);
    fs.writeFileSync(path.join(d, 'b.bin'), Buffer.alloc(1000, 7));
    fs.renameSync(path.join(d, 'b.bin'), p);
    expect(await codeOfAsync(() => f.checkUnchanged())).toBe('CKVC_INPUT_CHANGED');
    await f.close();
  });

  it('a /proc file (size 0, content behind it): CKVC_BAD_ARGUMENT saying to copy it first', async () => {
    expect(fs.statSync('/proc/self/status').size, 'this test needs Linux procfs').toBe(0);
    const f = await InputFile.open('/proc/self/status');
    expect(f.size).toBe(0);
    let msg = '';
    try {
      await f.checkUnchanged();
    } catch (e) {
      expect(isCkvcError(e) && e.code).toBe('CKVC_BAD_ARGUMENT');
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/its size says 0 bytes but it holds more .*Copy it to a regular file first/);
    await f.close();
  });

  it('a symlink opened as an entry of a folder (follow: false) is not followed: CKVC_INPUT_CHANGED', async () => {
    const d = scratch();
    fs.writeFileSync(path.join(d, 'secret'), 'key');
    fs.symlinkSync(path.join(d, 'secret'), path.join(d, 'link'));
    expect(await codeOfAsync(() => InputFile.open(path.join(d, 'link'), { follow: false }))).toBe('CKVC_INPUT_CHANGED');
    const named = await InputFile.open(path.join(d, 'link'));
    expect(named.size).toBe(3);
    await named.close();
  });

  it('a named pipe is refused at once (CKVC_BAD_ARGUMENT), not waited on for a writer', async () => {
    const p = path.join(scratch(), 'pipe');
    execFileSync('mkfifo', [p]);
    expect(await codeOfAsync(() => InputFile.open(p))).toBe('CKVC_BAD_ARGUMENT');
  });
});
