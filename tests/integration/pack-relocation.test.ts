// A reader that located objects before another process's gc repacked them still reads them (FORMAT.md §15: gc
// re-indexes before it deletes a pack; readers re-sync and look again). Covers the object's own pack and the
// pack of a delta base, which a read reaches through the chunk that names it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { objectId } from '../../src/core/store-format/object-id.js';
import { CODECS } from '../../src/core/store-format/pack-format.js';
import { ObjectStore } from '../../src/store/object-store.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore } from '../helpers/test-store.js';
import { packFiles } from '../helpers/snapshots.js';
import { optimizerStepFloat32, safetensorsBytes, trainedFloat32 } from '../helpers/data.js';

afterAll(cleanupTemp);

const ELEMENTS = 64 * 1024; // one 256 KiB chunk of F32

/** A new store and a folder holding model.safetensors, rewritten with one F32 tensor by `write`. */
function storeWithModel() {
  const s = newStore('ckvc-reloc-');
  const dir = tempDir('ckvc-reloc-in-');
  const file = path.join(dir, 'model.safetensors');
  const write = (t: Buffer) =>
    fs.writeFileSync(file, safetensorsBytes({ w: { dtype: 'F32', shape: [ELEMENTS], bytes: t } }));
  return { s, dir, file, write };
}

describe('reads racing a gc that repacks', () => {
  it('a location taken before gc rewrote the pack (and a delta whose base moved) still reads, verified', async () => {
    const { s, dir, file, write } = storeWithModel();
    const v1 = trainedFloat32(5, ELEMENTS);
    const v2 = optimizerStepFloat32(v1, 6);
    // v1's chunk lands in the pack of a commit on 'tmp'; main's commits reuse it, so it stays live when tmp dies.
    write(v1);
    commitId(s, [file, '-b', 'tmp', '-m', 'v1 on tmp'], { cwd: dir });
    fs.appendFileSync(path.join(dir, 'notes.txt'), 'main');
    commitId(s, [file, path.join(dir, 'notes.txt'), '-b', 'main', '-m', 'v1 on main'], { cwd: dir });
    write(v2);
    commitId(s, [file, '-b', 'main', '-m', 'v2'], { cwd: dir });
    const base = objectId('chunk', v1);
    const delta = objectId('chunk', v2);

    const reader = await ObjectStore.open(s.store);
    try {
      const [baseLoc, deltaLoc] = await reader.locate([base, delta]);
      expect(deltaLoc!.entry.codec, 'v2 is stored as a delta against v1').toBe(CODECS.xorPlanes);
      expect(baseLoc!.packId).not.toBe(deltaLoc!.packId);

      s.ok(['switch', 'main']);
      s.ok(['branch', '-d', 'tmp']);
      s.ok(['gc', '--grace', '0', '--expire-reflog', '0']);
      const packs = packFiles(s.store).map((f) => path.basename(f, '.pack'));
      expect(packs, 'gc rewrote the pack that held v1').not.toContain(baseLoc!.packId);

      // The delta first: its own pack is intact, only its base's pack is gone (no re-sync has happened yet).
      expect(Buffer.from(await reader.readLocated(deltaLoc!, delta, 'chunk')).equals(v2)).toBe(true);
      expect(Buffer.from(await reader.readLocated(baseLoc!, base, 'chunk')).equals(v1)).toBe(true);
    } finally {
      await reader.close();
    }
    expect(s.json(['verify', '--read-data']).ok).toBe(true);
  });
});

describe('index syncs racing a gc that deletes packs', () => {
  it('a pack listed by a reader and deleted by gc before its table of contents is read is no missing object', async () => {
    const { s, dir, file, write } = storeWithModel();
    const v1 = trainedFloat32(7, ELEMENTS);
    write(v1);
    const id = commitId(s, [file, '-b', 'main', '-m', 'v1'], { cwd: dir });
    // A commit killed after its pack is written, before the index names it: a pack the index's snapshot lacks,
    // which readers' syncs read the table of contents of, and whose (dead) objects gc deletes.
    const before = new Set(packFiles(s.store));
    write(optimizerStepFloat32(v1, 8));
    expect(
      s.run(['commit', file, '-b', 'main', '-m', 'killed'], { cwd: dir, env: { CKVC_FAULT: 'index.update=kill' } })
        .code,
    ).not.toBe(0);
    const unindexed = packFiles(s.store)
      .filter((f) => !before.has(f))
      .map((f) => path.basename(f, '.pack'));
    expect(unindexed).toHaveLength(1);

    const reader = await ObjectStore.open(s.store);
    const readToc = reader.packs.readToc.bind(reader.packs);
    let gcRan = false;
    reader.packs.readToc = async (packId) => {
      if (packId === unindexed[0] && !gcRan) {
        gcRan = true;
        s.ok(['gc', '--grace', '0']); // between the reader's listing of packs/ and its read of this one
      }
      return readToc(packId);
    };
    try {
      const [loc] = await reader.locate([id]);
      expect(gcRan).toBe(true);
      expect(loc?.entry.type).toBe('commit');
      expect((await reader.readCommit(id)).message).toBe('v1');
    } finally {
      await reader.close();
    }
  });
});
