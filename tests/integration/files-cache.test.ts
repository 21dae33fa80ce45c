// The files cache (spec/FORMAT.md §19), through real commands: a commit takes files unchanged since this store
// took them without reading them, and commits exactly what a commit that read them would. It reads a file again
// whenever its state on disk changed (a rewrite that puts the modification time back included), when the store no
// longer holds what the recipe needs (data pruned and collected, a store made anew at the same path), when the
// cache file is damaged, and with --reread.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { filesCacheFile, onLocalFileSystem } from '../../src/store/files-cache.js';
import { readStoreConfig, StoreLayout } from '../../src/store/store-layout.js';
import { sleep } from '../helpers/async-tasks.js';
import { ok } from '../helpers/ckvc.js';
import { randomBytes, safetensorsBytes, trainedFloat32 } from '../helpers/data.js';
import { torchZip } from '../helpers/torch-zip.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';

afterAll(() => cleanupTemp());

/** A checkpoint folder: a safetensors file of two tensors, an opaque file and a JSON document. */
function checkpoint(dir: string, seed: number): Map<string, Buffer> {
  fs.mkdirSync(dir, { recursive: true });
  const files = new Map<string, Buffer>([
    [
      'model.safetensors',
      safetensorsBytes({
        'a.weight': { dtype: 'F32', shape: [70_000], bytes: trainedFloat32(seed, 70_000) },
        'b.weight': { dtype: 'F32', shape: [1000], bytes: trainedFloat32(seed + 1, 1000) },
      }),
    ],
    ['optimizer.bin', randomBytes(seed + 2, 300_000)],
    ['metrics.json', Buffer.from(JSON.stringify({ step: seed, loss: [0.5, 0.25, 0.125] }))],
  ]);
  for (const [name, bytes] of files) fs.writeFileSync(path.join(dir, name), bytes);
  return files;
}

/** The files cache only records files that settled (changed 100 ms or more before they were read). */
const settle = () => sleep(150);

function commit(s: TestStore, dir: string, ...more: string[]) {
  return s.json<{ id: string; tree: string; unreadFiles: number; newBytes: number; files: number }>([
    'commit',
    dir,
    '-m',
    'step',
    ...more,
  ]);
}

/** The store's files cache file (named by the host, the store's chunking and its path). */
async function cacheFileOf(s: TestStore): Promise<string> {
  const layout = new StoreLayout(s.store);
  return filesCacheFile(layout, await readStoreConfig(layout), false)!;
}

function expectCheckout(s: TestStore, rev: string, files: Map<string, Buffer>): void {
  const to = tempDir('ckvc-files-cache-out-');
  ok(['checkout', rev, '--to', to, '--store', s.store]);
  for (const [name, bytes] of files) expect(fs.readFileSync(path.join(to, name)).equals(bytes), name).toBe(true);
}

/**
 * The cache applies only on local file systems (FORMAT.md §19). Where this run's temp folder is not on one, what
 * can be tested is that nothing is taken unread; the rest is reported skipped, saying why.
 */
const local = onLocalFileSystem(tempDir('ckvc-files-cache-fs-'));

describe.skipIf(local)('the files cache, with the temp folder off local file systems', () => {
  it('reads every file every time', async () => {
    const s = newStore('ckvc-files-cache-remote-');
    const dir = path.join(tempDir('ckvc-files-cache-remote-in-'), 'ckpt');
    checkpoint(dir, 61);
    await settle();
    commit(s, dir);
    expect(commit(s, dir).unreadFiles).toBe(0);
  });
});

describe.skipIf(!local)('the files cache', () => {
  it('does not read files unchanged since they were committed, and commits the same tree', async () => {
    const s = newStore('ckvc-files-cache-');
    const dir = path.join(tempDir('ckvc-files-cache-in-'), 'ckpt');
    const files = checkpoint(dir, 1);
    // A modification time that utimes can put back to the nanosecond (below).
    const model = path.join(dir, 'model.safetensors');
    fs.utimesSync(model, 1_700_000_000, 1_700_000_000);
    await settle();
    const first = commit(s, dir);
    expect(first.unreadFiles).toBe(0);
    const again = commit(s, dir);
    expect([again.unreadFiles, again.newBytes, again.tree]).toEqual([3, 0, first.tree]);
    expectCheckout(s, again.id, files);
    // Human output says so too.
    const human = s.ok(['commit', dir, '-m', 'again']);
    expect(human.stderr).toContain('(3 file(s) unchanged since stored, not read)');

    // Other bytes, the same size and inode, the modification time put back: only the change time moved.
    const before = fs.statSync(model, { bigint: true });
    const changed = safetensorsBytes({
      'a.weight': { dtype: 'F32', shape: [70_000], bytes: trainedFloat32(7, 70_000) },
      'b.weight': { dtype: 'F32', shape: [1000], bytes: trainedFloat32(8, 1000) },
    });
    expect(changed.length).toBe(files.get('model.safetensors')!.length);
    fs.writeFileSync(model, changed);
    fs.utimesSync(model, 1_700_000_000, 1_700_000_000);
    const after = fs.statSync(model, { bigint: true });
    expect([after.ino, after.size, after.mtimeNs]).toEqual([before.ino, before.size, before.mtimeNs]);
    expect(after.ctimeNs).not.toBe(before.ctimeNs);
    files.set('model.safetensors', changed);
    const third = commit(s, dir);
    expect(third.unreadFiles).toBe(2);
    expect(third.tree).not.toBe(first.tree);
    expectCheckout(s, third.id, files);

    // --reread reads everything, and finds the same tree.
    await settle();
    const reread = commit(s, dir, '--reread');
    expect([reread.unreadFiles, reread.tree]).toEqual([0, third.tree]);
    expect(commit(s, dir).unreadFiles).toBe(3);
    const { r, report } = await s.verify();
    expect(r.code, r.stderr).toBe(0);
    expect(report.problems ?? []).toEqual([]);
  });

  it('reads a file again when a prune released its data and gc collected it', async () => {
    const s = newStore('ckvc-files-cache-pruned-');
    const root = tempDir('ckvc-files-cache-pruned-in-');
    const a = path.join(root, 'a');
    const files = checkpoint(a, 11);
    await settle();
    const first = commit(s, a, '-b', 'run');
    // A later commit of other files, then the first one's data released and collected.
    checkpoint(path.join(root, 'b'), 12);
    commit(s, path.join(root, 'b'), '-b', 'run');
    s.ok(['prune', '--keep-last', '1', '-b', 'run']);
    s.ok(['gc', '--grace', '0']);
    // The files cache still names the first commit's recipes; the store holds them but not their data.
    const back = commit(s, a, '-b', 'run');
    expect(back.unreadFiles).toBe(0);
    expect(back.newBytes).toBeGreaterThan(300_000);
    expect(back.tree).toBe(first.tree);
    expectCheckout(s, back.id, files);
    const { r, report } = await s.verify();
    expect(r.code, r.stderr).toBe(0);
    expect(report.problems ?? []).toEqual([]);
    // Stored again: the next commit takes them unread.
    expect(commit(s, a, '-b', 'run').unreadFiles).toBe(3);
  });

  it('reads every file when the cache file is damaged, or the store was made anew at the same path', async () => {
    const s = newStore('ckvc-files-cache-damaged-');
    const dir = path.join(tempDir('ckvc-files-cache-damaged-in-'), 'ckpt');
    const files = checkpoint(dir, 21);
    await settle();
    commit(s, dir);
    const cacheFile = await cacheFileOf(s);
    const text = fs.readFileSync(cacheFile);
    text[text.length - 3] = text[text.length - 3]! ^ 0x01;
    fs.writeFileSync(cacheFile, text);
    expect(commit(s, dir).unreadFiles).toBe(0);
    expect(commit(s, dir).unreadFiles).toBe(3);

    // The same folder, a new empty store: the cache names recipes this store never had.
    fs.rmSync(s.store, { recursive: true });
    ok(['init', s.dir]);
    const fresh = commit(s, dir);
    expect(fresh.unreadFiles).toBe(0);
    expectCheckout(s, fresh.id, files);
  });

  it('stays a cache two commits running at once can both write: the last file written wins, nothing else changes', async () => {
    const s = newStore('ckvc-files-cache-racing-');
    const root = tempDir('ckvc-files-cache-racing-in-');
    const dirs = ['a', 'b'].map((n) => path.join(root, n));
    for (let round = 0; round < 3; round++) {
      const files = dirs.map((d, i) => checkpoint(d, 70 + 10 * round + i));
      await settle();
      // Each process loads the cache, reads its folder's three new files and replaces the cache file with what
      // it knows; whichever rename comes last decides what the next commit finds.
      const [a, b] = await Promise.all(
        dirs.map((d, i) =>
          s.jsonAsync<{ id: string; unreadFiles: number }>(['commit', d, '-m', 'race', '-b', `r${i}`]),
        ),
      );
      expect([a!.unreadFiles, b!.unreadFiles]).toEqual([0, 0]);
      const next = dirs.map((d, i) => commit(s, d, '-b', `r${i}`));
      // Both commits landed and both folders commit the same trees again; the last writer's files are unread.
      expect(next.map((c) => c.tree)).toEqual([a!, b!].map((c) => s.json<{ tree: string }>(['show', c.id]).tree));
      expect(next.some((c) => c.unreadFiles === 3)).toBe(true);
      for (const c of next) expect([0, 3]).toContain(c.unreadFiles);
      for (const [i, c] of next.entries()) expectCheckout(s, c.id, files[i]!);
    }
    ok(['verify', '--read-data', '--store', s.store]);
  });

  it('is left as it was by a commit that fails after reading some files', async () => {
    const s = newStore('ckvc-files-cache-failed-');
    const dir = path.join(tempDir('ckvc-files-cache-failed-in-'), 'ckpt');
    const files = checkpoint(dir, 31);
    await settle();
    commit(s, dir);
    const cacheFile = await cacheFileOf(s);
    const before = fs.readFileSync(cacheFile);
    // optimizer.bin changes and is read (and recorded, in memory); z.npy, read after it, is refused.
    const changed = randomBytes(99, 300_000);
    fs.writeFileSync(path.join(dir, 'optimizer.bin'), changed);
    fs.writeFileSync(path.join(dir, 'z.npy'), Buffer.from('not a NumPy file at all'));
    await settle();
    const failed = s.run(['commit', dir, '-m', 'fails']);
    expect(failed.code).not.toBe(0);
    expect(fs.readFileSync(cacheFile).equals(before)).toBe(true);
    fs.rmSync(path.join(dir, 'z.npy'));
    files.set('optimizer.bin', changed);
    const next = commit(s, dir);
    expect(next.unreadFiles).toBe(2);
    expectCheckout(s, next.id, files);
  });

  it('reads again a file whose reading gave a warning, so the warning is given again', async () => {
    const s = newStore('ckvc-files-cache-warned-');
    const dir = path.join(tempDir('ckvc-files-cache-warned-in-'), 'ckpt');
    fs.mkdirSync(dir, { recursive: true });
    // A torch zip whose data.pkl holds an opcode ckvc does not read: committed, with "tensor names not read".
    const odd = torchZip(Buffer.from([0x80, 0x02, 0x7d, 0xff, 0x2e]), [{ key: '0', data: randomBytes(5, 4096) }], {
      prefix: 'u',
    }).bytes;
    fs.writeFileSync(path.join(dir, 'odd.pt'), odd);
    fs.writeFileSync(path.join(dir, 'notes.bin'), randomBytes(6, 5000));
    await settle();
    for (const expected of [0, 1]) {
      const r = s.json<{ unreadFiles: number; warnings?: string[] }>(['commit', dir, '-m', 'odd']);
      expect(r.unreadFiles).toBe(expected);
      expect(r.warnings?.join('\n')).toMatch(/odd\.pt: tensor names not read/);
    }
  });

  it('keys entries by the path as named: a hard link under another extension, a symlink given on the command line', async () => {
    const s = newStore('ckvc-files-cache-links-');
    const root = tempDir('ckvc-files-cache-links-in-');
    const dir = path.join(root, 'ckpt');
    const files = checkpoint(dir, 41);
    // The same inode as a safetensors file (cut into tensors) and as an opaque .bin (content-defined chunks).
    fs.linkSync(path.join(dir, 'model.safetensors'), path.join(dir, 'model-copy.bin'));
    files.set('model-copy.bin', files.get('model.safetensors')!);
    await settle();
    commit(s, dir);
    const again = commit(s, dir);
    expect(again.unreadFiles).toBe(4);
    expectCheckout(s, again.id, files);
    const listed = s.json<{ files: { path: string; format: string }[] }>(['ls', again.id]);
    expect(Object.fromEntries(listed.files.map((f) => [f.path, f.format]))).toMatchObject({
      'model.safetensors': 'safetensors',
      'model-copy.bin': 'opaque',
    });

    // A symlink named on the command line is followed; pointed at another file of the same size, it is read.
    const a = path.join(root, 'a.bin');
    const b = path.join(root, 'b.bin');
    fs.writeFileSync(a, randomBytes(51, 70_000));
    fs.writeFileSync(b, randomBytes(52, 70_000));
    const link = path.join(root, 'latest.bin');
    fs.symlinkSync(a, link);
    await settle();
    commit(s, link, '-b', 'link');
    expect(commit(s, link, '-b', 'link').unreadFiles).toBe(1);
    fs.unlinkSync(link);
    fs.symlinkSync(b, link);
    const moved = commit(s, link, '-b', 'link');
    expect(moved.unreadFiles).toBe(0);
    expectCheckout(s, moved.id, new Map([['latest.bin', fs.readFileSync(b)]]));
  });
});
