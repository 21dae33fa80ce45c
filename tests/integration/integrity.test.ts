// Damage is found, never served: a flipped byte in a pack fails verify and checkout (with no partial output);
// the index is a cache that can be deleted or rebuilt; the config hash ignores formatting and key order.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeRun, errorCodes } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, copyStore, newStore, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, flipByte, packFiles, readTree, snapshotStore, treeDifferences } from '../helpers/snapshots.js';
import { randomBytes, writeSafetensors } from '../helpers/data.js';

afterAll(cleanupTemp);

const CORRUPT = ['CKVC_CORRUPT_OBJECT', 'CKVC_CORRUPT_PACK', 'CKVC_FILE_HASH_MISMATCH'];

function verifyJson(s: TestStore, readData: boolean): { code: number | null; report: any; stderr: string } {
  const r = s.run(['verify', ...(readData ? ['--read-data'] : []), '--json']);
  return { code: r.code, report: JSON.parse(r.stdout), stderr: r.stderr };
}

interface OpaqueStore {
  s: TestStore;
  src: string;
  id: string;
  pack: string;
}
let opaqueTemplate: OpaqueStore | undefined;

/**
 * A store with one 2 MiB random opaque file: its single pack is almost all chunk data. Committed once, then each
 * test damages its own copy.
 */
function storeWithOpaque(): OpaqueStore {
  if (!opaqueTemplate) {
    const s = newStore();
    const src = tempDir('ckvc-src-');
    fs.writeFileSync(path.join(src, 'weights.bin'), randomBytes(3, 2 * 1024 * 1024));
    const id = commitId(s, [path.join(src, 'weights.bin'), '-m', 'v1']);
    const packs = packFiles(s.store);
    expect(packs).toHaveLength(1);
    opaqueTemplate = { s, src, id, pack: packs[0]! };
  }
  const { s: template, src, id, pack } = opaqueTemplate;
  const s = copyStore(template);
  return { s, src, id, pack: path.join(s.store, path.relative(template.store, pack)) };
}

describe('a flipped byte in a pack', () => {
  it('is found by verify --read-data (exit 12, problem with a corruption code)', () => {
    const { s, pack } = storeWithOpaque();
    expect(s.run(['verify', '--read-data']).code).toBe(0);
    flipByte(pack, Math.floor(fs.statSync(pack).size / 3));

    const v = verifyJson(s, true);
    expect(v.code, v.stderr).toBe(12);
    expect(v.report.ok).toBe(false);
    const codes = v.report.problems.map((p: any) => p.code);
    expect(codes.length).toBeGreaterThan(0);
    expect(
      codes.some((c: string) => c === 'CKVC_CORRUPT_OBJECT' || c === 'CKVC_CORRUPT_PACK'),
      JSON.stringify(codes),
    ).toBe(true);
    expect(JSON.parse(v.stderr.trim()).error).toMatchObject({ code: 'CKVC_VERIFY_FAILED', exit: 12 });

    // Text mode: each problem on stdout with its code, exit 12.
    const t = s.run(['verify', '--read-data']);
    expect(t.code, describeRun(t)).toBe(12);
    expect(t.stdout).toMatch(/CKVC_CORRUPT_(OBJECT|PACK)/);
  });

  it('in a pack of 4 MiB or more (hashed whole on a worker thread) is found as both a pack and a record problem, the pack first', () => {
    const s = newStore();
    const src = tempDir('ckvc-src-');
    const bytes = randomBytes(5, 6 * 1024 * 1024);
    fs.writeFileSync(path.join(src, 'big.bin'), bytes);
    commitId(s, [path.join(src, 'big.bin'), '-m', 'big']);
    const [pack] = packFiles(s.store);
    expect(fs.statSync(pack!).size).toBeGreaterThan(4 * 1024 * 1024);
    flipByte(pack!, fs.readFileSync(pack!).indexOf(bytes.subarray(3_000_000, 3_000_064)) + 7);
    // A second, unreadable pack whose name sorts after the first: its problem comes after the first pack's.
    fs.writeFileSync(path.join(path.dirname(pack!), `${'f'.repeat(64)}.pack`), 'not a pack');
    const v = verifyJson(s, true);
    expect(v.code, v.stderr).toBe(12);
    expect(v.report.problems.map((p: any) => `${p.phase} ${p.code}`)).toEqual([
      'data CKVC_CORRUPT_PACK',
      'packs CKVC_CORRUPT_PACK',
      'data CKVC_CORRUPT_OBJECT',
    ]);
    expect(v.report.problems[0].message).toContain('its bytes do not hash to its name (damaged on disk)');
  });

  it('makes checkout fail non-zero with no output file, no temp file, and an existing file left alone', () => {
    const { s, id, pack } = storeWithOpaque();
    flipByte(pack, Math.floor(fs.statSync(pack).size / 3));

    const out = tempDir('ckvc-out-');
    const r = s.run(['checkout', id, '--to', out]);
    // One combined assertion so a failure shows the exit code, the stderr and any leftover file at once.
    expect(
      {
        exit: r.code,
        codes: errorCodes(r.stderr),
        stderrLines: r.stderr.trim().split('\n').length,
        files: [...readTree(out).keys()],
      },
      r.stderr,
    ).toEqual({ exit: 12, codes: [expect.toSatisfy((c: string) => CORRUPT.includes(c))], stderrLines: 1, files: [] });

    // --force over an older file: the older file must survive a failed rebuild untouched.
    const out2 = tempDir('ckvc-out-');
    fs.writeFileSync(path.join(out2, 'weights.bin'), 'previous version');
    const r2 = s.run(['checkout', id, '--to', out2, '--force']);
    expect(
      {
        exit: r2.code,
        files: [...readTree(out2).keys()],
        content: fs.readFileSync(path.join(out2, 'weights.bin'), 'utf8'),
      },
      r2.stderr,
    ).toEqual({ exit: 12, files: ['weights.bin'], content: 'previous version' });
  });

  it('in a tensor chunk of a safetensors file is found too, and log/show still work', () => {
    const s = newStore();
    const src = tempDir('ckvc-src-');
    writeSafetensors(path.join(src, 'm.safetensors'), {
      w: { dtype: 'I32', shape: [512, 1024], bytes: randomBytes(9, 2 * 1024 * 1024) },
    });
    const id = commitId(s, [path.join(src, 'm.safetensors'), '-m', 'st']);
    const pack = packFiles(s.store)[0]!;
    flipByte(pack, Math.floor(fs.statSync(pack).size / 2));
    expect(s.json(['log'])[0].id).toBe(id);
    const v = verifyJson(s, true);
    expect(v.code).toBe(12);
    const out = tempDir('ckvc-out-');
    const co = s.run(['checkout', id, '--to', out]);
    expect({ exit: co.code, codes: errorCodes(co.stderr), files: [...readTree(out).keys()] }, co.stderr).toEqual({
      exit: 12,
      codes: [expect.toSatisfy((c: string) => CORRUPT.includes(c))],
      files: [],
    });
  });

  it('a truncated pack is reported by verify (exit 12)', () => {
    const { s, pack } = storeWithOpaque();
    fs.truncateSync(pack, fs.statSync(pack).size - 10);
    const v = verifyJson(s, false);
    expect(v.code).toBe(12);
    expect(v.report.problems.map((p: any) => p.code)).toContain('CKVC_CORRUPT_PACK');
  });

  it('a checkout that fails after writing some files names them and says the rest are not there', () => {
    const s = newStore();
    const src = tempDir('ckvc-src-');
    fs.writeFileSync(path.join(src, 'a.bin'), randomBytes(41, 50_000));
    const z = randomBytes(42, 300_000);
    fs.writeFileSync(path.join(src, 'z.bin'), z);
    const id = commitId(s, [src, '-m', 'two files']);
    const [pack] = packFiles(s.store);
    const at = fs.readFileSync(pack!).indexOf(z.subarray(150_000, 150_064));
    expect(at, "z.bin's bytes are stored as they are (random bytes do not compress)").toBeGreaterThan(0);
    flipByte(pack!, at + 10);
    const out = tempDir('ckvc-out-');
    const r = s.run(['checkout', id, '--to', out]);
    expect(r.code, describeRun(r)).toBe(12);
    expect(r.stderr).toContain(
      '; 1 of 2 file(s) were written before it, each whole and verified (a.bin), the other 1 not',
    );
    expect([...readTree(out).keys()]).toEqual(['a.bin']);
    expect(fs.readFileSync(path.join(out, 'a.bin')).equals(fs.readFileSync(path.join(src, 'a.bin')))).toBe(true);
  });

  it('a checkout --tensor that fails after writing some files names them too', () => {
    const s = newStore();
    const src = tempDir('ckvc-src-');
    const b = randomBytes(44, 300_000);
    writeSafetensors(path.join(src, 'a.safetensors'), {
      w: { dtype: 'U8', shape: [300_000], bytes: randomBytes(43, 300_000) },
    });
    writeSafetensors(path.join(src, 'b.safetensors'), { w: { dtype: 'U8', shape: [300_000], bytes: b } });
    const id = commitId(s, [src, '-m', 'two tensor files']);
    const [pack] = packFiles(s.store);
    const at = fs.readFileSync(pack!).indexOf(b.subarray(150_000, 150_064));
    expect(at, "b's bytes are stored as they are").toBeGreaterThan(0);
    flipByte(pack!, at + 10);
    const out = tempDir('ckvc-out-');
    const r = s.run(['checkout', id, '--tensor', 'w', '--to', out]);
    expect(r.code, describeRun(r)).toBe(12);
    expect(r.stderr).toContain(
      '; 1 of 2 file(s) were written before it, each whole and verified (a.safetensors), the other 1 not',
    );
    expect([...readTree(out).keys()]).toEqual(['a.safetensors']);
  });

  it('a missing pack is reported by verify and makes checkout fail (exit 12)', () => {
    const { s, id, pack } = storeWithOpaque();
    s.ok(['log']); // index built and holding the commit
    fs.rmSync(pack);
    const v = verifyJson(s, false);
    expect(v.code).toBe(12);
    expect(v.report.problems.length).toBeGreaterThan(0);
    // The branch still names the (now missing) commit: that is damage (exit 12), not an unknown name.
    const out = tempDir('ckvc-out-');
    const co = s.run(['checkout', 'main', '--to', out]);
    expect(co.code, describeRun(co)).toBe(12);
    expect(errorCodes(co.stderr)).toEqual(['CKVC_MISSING_OBJECT']);
    expect([...readTree(out).keys()]).toEqual([]);
    // By full ID the commit is simply not in the store any more.
    expect([12, 14]).toContain(s.run(['checkout', id, '--to', out]).code);
  });

  it('a ref holding garbage is reported by verify as CKVC_CORRUPT_REF, and the other refs are still checked', () => {
    const { s } = storeWithOpaque();
    fs.writeFileSync(path.join(s.store, 'refs', 'heads', 'broken'), 'not an id\n');
    // A branch listed after the damaged one, naming a commit the store does not hold: found only if the check
    // of branches goes on past 'broken'.
    fs.writeFileSync(path.join(s.store, 'refs', 'heads', 'zz-gone'), `${'ab'.repeat(32)}\n`);
    const v = verifyJson(s, false);
    expect(v.code).toBe(12);
    expect(v.report.problems.map((p: any) => p.code).sort()).toEqual(['CKVC_CORRUPT_REF', 'CKVC_MISSING_OBJECT']);
    expect(v.report.checked.refs).toBe(2); // main and zz-gone
    expect(v.report.checked.commits).toBe(1); // main's history was walked
  });

  it('branch and tag listings warn of a damaged ref and list the others', () => {
    const { s, id } = storeWithOpaque();
    s.ok(['tag', 'v1']);
    fs.writeFileSync(path.join(s.store, 'refs', 'heads', 'broken'), 'not an id\n');
    fs.writeFileSync(path.join(s.store, 'refs', 'tags', 'broken-tag'), '');
    const before = snapshotStore(s.store);
    for (const [cmd, name, listed] of [
      ['branch', 'broken', 'main'],
      ['tag', 'broken-tag', 'v1'],
    ] as const) {
      const r = s.run([cmd, '--json']);
      expect(r.code, describeRun(r)).toBe(0);
      expect(JSON.parse(r.stdout).map((t: any) => [t.name, t.commit])).toEqual([[listed, id]]);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_CORRUPT_REF']);
      expect(r.stderr).toContain(`ckvc: warning: ref refs/${cmd === 'branch' ? 'heads' : 'tags'}/${name} `);
      // The way to the earlier values that works for each kind (a tag's log needs --tag).
      expect(r.stderr).toContain(`'ckvc reflog ${cmd === 'tag' ? '--tag ' : ''}${name}' shows its earlier values`);
    }
    expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
    // What the warning advises: -d drops a damaged ref, its reflog saying so; then verify and gc are clean again.
    expect(s.run(['gc', '--dry-run']).code).toBe(12);
    expect(s.json(['branch', '-d', 'broken', '--json'])).toEqual({ name: 'broken', damaged: true });
    expect(s.ok(['tag', '-d', 'broken-tag']).stderr).toContain('deleted damaged tag broken-tag (it held no object ID)');
    expect(fs.existsSync(path.join(s.store, 'refs', 'heads', 'broken'))).toBe(false);
    expect(fs.existsSync(path.join(s.store, 'refs', 'tags', 'broken-tag'))).toBe(false);
    // The line quotes what the file held (its reflog had nothing before: no earlier value to name).
    expect(s.json(['reflog', 'broken', '--json'])[0]).toMatchObject({
      old: null,
      new: null,
      message: 'branch: deleted (damaged); it held "not an id\\n"',
    });
    expect(s.ok(['reflog', 'broken']).stdout).toMatch(
      /^\(deleted\) .* from \(damaged\) +branch: deleted \(damaged\); it held "not an id\\n"$/m,
    );
    expect(s.run(['verify']).code).toBe(0);
    expect(s.run(['gc', '--dry-run']).code).toBe(0);
    expect(s.run(['branch', '-d', 'broken']).code).toBe(14); // gone
  });

  it('a damaged branch dropped with -d keeps its last commit for the reflog expiry, however old its history', () => {
    const { s } = storeWithOpaque();
    const src = tempDir('ckvc-src-');
    fs.writeFileSync(path.join(src, 'only-here.bin'), randomBytes(31, 300_000));
    const tip = commitId(s, [src, '-m', 'on exp', '-b', 'exp']);
    // Its history is 100 days old: those lines expire at the next gc (the default expiry is 90 days).
    const log = path.join(s.store, 'logs', 'refs', 'heads', 'exp');
    const old = Date.now() - 100 * 86_400_000;
    fs.writeFileSync(log, fs.readFileSync(log, 'utf8').replace(/ (\d{13}) /g, ` ${old} `));
    fs.writeFileSync(path.join(s.store, 'refs', 'heads', 'exp'), 'garbage');
    s.ok(['branch', '-d', 'exp']);
    expect(s.json(['reflog', 'exp', '--json'])[0]).toMatchObject({ old: tip, new: null });
    s.ok(['gc', '--grace', '0']);
    // The deletion's line, dated now, names the last tip: it survived gc, and it is whole.
    s.ok(['branch', 'rescued', tip]);
    const out = tempDir('ckvc-out-');
    s.ok(['checkout', 'rescued', '--to', out]);
    expect(treeDifferences(src, out)).toEqual([]);
    expect(s.run(['verify', '--read-data']).code).toBe(0);
  });
});

describe('the index is a cache', () => {
  type TwoCommits = { s: TestStore; v1: string; v2: string; srcs: string[] };
  let template: TwoCommits | undefined;
  /** Two commits and an annotated tag, made once; each test gets its own copy of the store. */
  function twoCommits(): TwoCommits {
    template ??= makeTwoCommits();
    return { ...template, s: copyStore(template.s) };
  }
  function makeTwoCommits(): TwoCommits {
    const s = newStore();
    const a = tempDir('ckvc-src-');
    writeSafetensors(path.join(a, 'model.safetensors'), {
      w: { dtype: 'F32', shape: [256, 300] },
      b: { dtype: 'F16', shape: [300] },
    });
    fs.writeFileSync(path.join(a, 'opt.bin'), randomBytes(4, 700_000));
    const v1 = commitId(s, [a, '-m', 'v1', '--metric', 'loss=1', '--step', '1']);
    const b = tempDir('ckvc-src-');
    writeSafetensors(
      path.join(b, 'model.safetensors'),
      { w: { dtype: 'F32', shape: [256, 300] }, b: { dtype: 'F16', shape: [300] } },
      undefined,
      2,
    );
    fs.writeFileSync(path.join(b, 'opt.bin'), randomBytes(5, 700_000));
    const v2 = commitId(s, [b, '-m', 'v2', '--metric', 'loss=0.5', '--step', '2']);
    s.ok(['tag', 'best', v1, '-m', 'the best']);
    return { s, v1, v2, srcs: [a, b] };
  }

  it('deleting .ckvc/index loses nothing: log, show by prefix, checkout and verify work', () => {
    const { s, v1, v2, srcs } = twoCommits();
    const logBefore = s.json(['log']);
    fs.rmSync(path.join(s.store, 'index'), { recursive: true, force: true });
    expect(s.json(['log'])).toEqual(logBefore);

    fs.rmSync(path.join(s.store, 'index'), { recursive: true, force: true });
    expect(s.json(['show', v1.slice(0, 8)]).id).toBe(v1);

    fs.rmSync(path.join(s.store, 'index'), { recursive: true, force: true });
    const out = tempDir('ckvc-out-');
    s.ok(['checkout', 'best', '--to', out]);
    expect(treeDifferences(srcs[0]!, out)).toEqual([]);

    fs.rmSync(path.join(s.store, 'index'), { recursive: true, force: true });
    const out2 = tempDir('ckvc-out-');
    s.ok(['checkout', v2, '--to', out2]);
    expect(treeDifferences(srcs[1]!, out2)).toEqual([]);

    fs.rmSync(path.join(s.store, 'index'), { recursive: true, force: true });
    const v = s.run(['verify', '--read-data']);
    expect(v.code, describeRun(v)).toBe(0);
    fs.rmSync(path.join(s.store, 'index'), { recursive: true, force: true });
    const stats = s.json(['stats']);
    expect(stats.commits).toBe(2);
    expect(stats.objects.commit).toBe(2);
    expect(stats.objects.tag).toBe(1);
  });

  it('a commit after deleting the index still dedups against existing packs', () => {
    const { s, srcs } = twoCommits();
    fs.rmSync(path.join(s.store, 'index'), { recursive: true, force: true });
    const before = packFiles(s.store).reduce((a, p) => a + fs.statSync(p).size, 0);
    commitId(s, [srcs[0]!, '-m', 'v1 again']);
    const after = packFiles(s.store).reduce((a, p) => a + fs.statSync(p).size, 0);
    expect(after - before).toBeLessThan(4096);
  });

  it('index rebuild works and leaves a clean store', () => {
    const { s, v2 } = twoCommits();
    const r = s.json(['index', 'rebuild']);
    expect(r.packs).toBe(packFiles(s.store).length);
    expect(r.objects).toBeGreaterThan(5);
    expect(s.run(['verify', '--read-data']).code).toBe(0);
    expect(s.json(['log'])[0].id).toBe(v2);
    // and rebuild from nothing
    fs.rmSync(path.join(s.store, 'index'), { recursive: true, force: true });
    expect(s.json(['index', 'rebuild']).objects).toBe(r.objects);
  });

  it('a damaged index (garbage in its files) is rebuilt rather than trusted', () => {
    const { s, v1, v2, srcs } = twoCommits();
    const idx = path.join(s.store, 'index');
    for (const f of fs.readdirSync(idx)) {
      const p = path.join(idx, f);
      if (fs.statSync(p).isFile() && f !== 'LOCK') fs.writeFileSync(p, randomBytes(11, 300));
    }
    const log = s.run(['log', '--json']);
    expect(log.code, describeRun(log)).toBe(0);
    expect(JSON.parse(log.stdout).map((c: any) => c.id)).toEqual([v2, v1]);
    const out = tempDir('ckvc-out-');
    s.ok(['checkout', v1, '--to', out]);
    expect(treeDifferences(srcs[0]!, out)).toEqual([]);
    expect(s.run(['verify']).code).toBe(0);
  });
});

describe('config snapshots', () => {
  const original = [
    'model:',
    '  hidden: 256',
    '  layers: 4',
    'optimizer:',
    '  name: adamw',
    '  lr: 0.001',
    'tags: [a, b]',
    'seed: 7',
    '',
  ].join('\n');
  const reformatted = [
    '# same settings, other order and style',
    'seed: 7',
    'tags:',
    '  - a',
    '  - b',
    'optimizer: {lr: 1.0e-3, name: "adamw"}',
    'model:',
    '    layers: 4',
    '    hidden: 256',
    '',
  ].join('\n');

  it('same config reformatted and reordered -> same hash; a changed value -> a different hash; raw bytes kept', () => {
    const s = newStore();
    const dir = tempDir('ckvc-cfg-');
    fs.writeFileSync(path.join(dir, 'w.bin'), randomBytes(1, 1000));
    const hashOf = (name: string, text: string): { hash: string; config: any; id: string } => {
      const p = path.join(dir, name);
      fs.writeFileSync(p, text);
      const id = commitId(s, [path.join(dir, 'w.bin'), '-m', name, '--config', p]);
      const c = s.json(['show', id]).config;
      expect(c, name).toBeDefined();
      expect(c.hash, name).toMatch(/^[0-9a-f]{64}$/);
      return { hash: c.hash, config: c, id };
    };
    const a = hashOf('cfg.yaml', original);
    expect(a.config).toMatchObject({ name: 'cfg.yaml', format: 'yaml', size: Buffer.byteLength(original) });
    const b = hashOf('cfg2.yaml', reformatted);
    expect(b.hash).toBe(a.hash);
    const asJson = hashOf(
      'cfg.json',
      JSON.stringify(
        { tags: ['a', 'b'], seed: 7, optimizer: { lr: 0.001, name: 'adamw' }, model: { layers: 4, hidden: 256 } },
        null,
        1,
      ),
    );
    expect(asJson.hash).toBe(a.hash);
    expect(asJson.config.format).toBe('json');

    const changed = hashOf('cfg3.yaml', original.replace('lr: 0.001', 'lr: 0.002'));
    expect(changed.hash).not.toBe(a.hash);
    const changedType = hashOf('cfg4.yaml', original.replace('seed: 7', 'seed: "7"'));
    expect(changedType.hash).not.toBe(a.hash);
    const reordered = hashOf('cfg5.yaml', original.replace('tags: [a, b]', 'tags: [b, a]'));
    expect(reordered.hash).not.toBe(a.hash); // list order is data, unlike key order

    // The log entry carries the same hash; the commit without --config has none.
    expect(s.json(['log', '-n', '1'])[0].config.hash).toBe(reordered.hash);
    const none = commitId(s, [path.join(dir, 'w.bin'), '-m', 'no config']);
    expect(s.json(['show', none]).config).toBeUndefined();
    expect(s.run(['verify', '--read-data']).code).toBe(0);
  });
});
