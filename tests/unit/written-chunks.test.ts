// Chunks a checkout has written, read back for a later file (src/store/written-chunks.ts): a file written again
// (after the worker thread could not vouch for it) must not leave its chunks unreadable for the files after it.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { objectId } from '../../src/core/store-format/object-id.js';
import { WrittenChunks } from '../../src/store/written-chunks.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';

afterAll(cleanupTemp);

describe('WrittenChunks', () => {
  it('remembers a chunk again when its file is written a second time, for that file and the ones after it', async () => {
    const file = path.join(tempDir('ckvc-wc-'), 'f.bin');
    const fh = await fs.open(file, 'w+');
    const c = Buffer.alloc(1000, 5);
    const id = objectId('chunk', c);
    const w = new WrittenChunks();
    w.writing(fh); // the first attempt
    await fh.write(c, 0, c.length, 0);
    w.wrote(id, 0, c.length);
    w.writing(undefined); // written again (checkout-write.ts writeFile)
    w.writing(fh);
    await fh.truncate(0);
    expect(w.read(id, c.length)).toBeUndefined(); // the first attempt's bytes are gone
    await fh.write(c, 0, c.length, 0);
    w.wrote(id, 0, c.length);
    expect(Buffer.from(w.read(id, c.length)!).equals(c)).toBe(true);
    w.writing(undefined);
    await w.keep(await fs.open(file, 'r'));
    expect(Buffer.from(w.read(id, c.length)!).equals(c)).toBe(true);
    await fh.close();
    await w.close();
  });
});
