// store/verified-files.ts: a file is vouched for from memory only while its stamp is unchanged and its last hash
// was taken well after its last change; anything else is hashed again.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { hashFile } from '../../src/store/checkout-plan.js';
import { VerifiedFiles } from '../../src/store/verified-files.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-verified-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A hash function that counts its calls. */
function counting(): { hash: (p: string) => Promise<string>; calls: () => number } {
  let n = 0;
  return {
    hash: (p) => {
      n++;
      return hashFile(p);
    },
    calls: () => n,
  };
}

function ctimeMs(p: string): number {
  return Number(fs.statSync(p, { bigint: true }).ctimeNs / 1_000_000n);
}

describe('VerifiedFiles', () => {
  test('a settled, untouched file is answered from memory; a rewrite with its mtime put back is hashed', async () => {
    const p = path.join(dir, 'a.bin');
    fs.writeFileSync(p, 'abcdefgh');
    const b3 = await hashFile(p);
    const memory = new VerifiedFiles(10, () => ctimeMs(p) + 1000);
    const h = counting();
    expect(await memory.holds(p, b3, h.hash)).toBe(true);
    expect(await memory.holds(p, b3, h.hash)).toBe(true);
    expect(await memory.holds(p, 'f'.repeat(64), h.hash)).toBe(false); // other content: known to differ
    expect(h.calls()).toBe(1);
    const { atime, mtime } = fs.statSync(p);
    fs.writeFileSync(p, 'hgfedcba');
    fs.utimesSync(p, atime, mtime);
    expect(await memory.holds(p, b3, h.hash)).toBe(false);
    expect(h.calls()).toBe(2);
  });

  test('a hash taken in the same instant as the last change is not remembered (a write could follow unseen)', async () => {
    const p = path.join(dir, 'b.bin');
    fs.writeFileSync(p, 'racy');
    const b3 = await hashFile(p);
    const memory = new VerifiedFiles(10, () => ctimeMs(p));
    const h = counting();
    expect(await memory.holds(p, b3, h.hash)).toBe(true);
    expect(await memory.holds(p, b3, h.hash)).toBe(true);
    expect(h.calls()).toBe(2);
  });

  test('a replaced file (another inode) and a missing file are hashed; memory is bounded', async () => {
    const p = path.join(dir, 'c.bin');
    fs.writeFileSync(p, 'same');
    const b3 = await hashFile(p);
    const memory = new VerifiedFiles(1, () => Date.now() + 10_000);
    const h = counting();
    await memory.holds(p, b3, h.hash);
    fs.writeFileSync(`${p}.new`, 'same');
    fs.renameSync(`${p}.new`, p);
    expect(await memory.holds(p, b3, h.hash)).toBe(true);
    expect(h.calls()).toBe(2);
    const q = path.join(dir, 'd.bin');
    fs.writeFileSync(q, 'other');
    await memory.holds(q, await hashFile(q), h.hash); // evicts p (bound 1)
    expect(await memory.holds(p, b3, h.hash)).toBe(true);
    expect(h.calls()).toBe(4);
    fs.rmSync(q);
    await expect(memory.holds(q, b3, h.hash)).rejects.toThrow();
  });
});
