// `ckvc ls` and `ckvc cat`: listing files and tensors, streaming a file or one tensor's raw bytes.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ckvcBytes, cliEnv, errorCodes } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore, type TestStore } from '../helpers/test-store.js';
import { randomBytes, tensorData, writeSafetensors } from '../helpers/data.js';

afterAll(cleanupTemp);

let s: TestStore;
let ck = '';
let model: Buffer;
let embed: Buffer;
let c1 = '';

/** Runs ckvc and keeps stdout as bytes (cat writes binary). */
function catBytes(args: string[]): { code: number | null; out: Buffer; err: string } {
  const r = ckvcBytes([...args, '--store', s.store]);
  return { code: r.code, out: r.stdout, err: r.stderr.toString('utf8') };
}

beforeAll(() => {
  s = newStore();
  ck = tempDir('ckvc-inspect-');
  fs.mkdirSync(path.join(ck, 'sub'));
  embed = tensorData(5, 'F32', [300, 512]); // 600 KiB: three chunks
  model = writeSafetensors(path.join(ck, 'model.safetensors'), {
    'embed.weight': { dtype: 'F32', shape: [300, 512], bytes: embed },
    'head.bias': { dtype: 'BF16', shape: [7] },
    'optimizer.step': { dtype: 'I64', shape: [] },
  });
  fs.writeFileSync(path.join(ck, 'sub', 'state.bin'), randomBytes(3, 70_000));
  c1 = commitId(s, [ck, '-m', 'one']);
});

describe('ls', () => {
  it('lists files with sizes and formats, and under --tensors each tensor with dtype, shape and bytes', () => {
    const r = s.json<{ commit: string; files: any[] }>(['ls', c1, '--tensors']);
    expect(r.commit).toBe(c1);
    expect(r.files.map((f) => [f.path, f.size, f.format, f.tensorCount])).toEqual([
      ['model.safetensors', model.length, 'safetensors', 3],
      ['sub/state.bin', 70_000, 'opaque', 0],
    ]);
    expect(r.files[0].tensors).toEqual([
      { name: 'embed.weight', dtype: 'F32', shape: [300, 512], bytes: 614_400 },
      { name: 'head.bias', dtype: 'BF16', shape: [7], bytes: 14 },
      { name: 'optimizer.step', dtype: 'I64', shape: [], bytes: 8 },
    ]);
    const text = s.ok(['ls', 'HEAD', 'sub']).stdout;
    expect(text.trim().split('\n')).toEqual([expect.stringMatching(/^sub\/state\.bin\s+68\.\d+ KiB\s+opaque$/)]);
  });

  it('an unknown path exits 14 CKVC_PATH_NOT_FOUND', () => {
    const r = s.run(['ls', c1, 'nope']);
    expect([r.code, errorCodes(r.stderr)]).toEqual([14, ['CKVC_PATH_NOT_FOUND']]);
  });
});

describe('cat', () => {
  it("streams a file byte-identical, and one tensor's raw bytes across its chunks", () => {
    const whole = catBytes(['cat', 'HEAD:model.safetensors']);
    expect(whole.code, whole.err).toBe(0);
    expect(whole.out.equals(model)).toBe(true);
    const t = catBytes(['cat', `${c1.slice(0, 10)}:model.safetensors`, '--tensor', 'embed.weight']);
    expect(t.code, t.err).toBe(0);
    expect(t.out.equals(embed)).toBe(true);
    const opaque = catBytes(['cat', 'main:sub/state.bin']);
    expect(opaque.out.equals(fs.readFileSync(path.join(ck, 'sub', 'state.bin')))).toBe(true);
  });

  it.runIf(fs.existsSync('/dev/full'))(
    'into a full disk: the one-line CKVC_IO error (exit 1) every command gives, not a stack trace',
    () => {
      for (const args of [['cat', 'HEAD:model.safetensors'], ['log']]) {
        const full = fs.openSync('/dev/full', 'w');
        const r = spawnSync(process.execPath, [BIN, ...args, '--store', s.store], {
          stdio: ['ignore', full, 'pipe'],
          env: cliEnv(),
          encoding: 'utf8',
          timeout: 60_000,
        });
        fs.closeSync(full);
        expect({ status: r.status, stderr: r.stderr }).toEqual({
          status: 1,
          stderr: 'ckvc: cannot write to the standard output: ENOSPC; free some disk space and retry [CKVC_IO]\n',
        });
      }
    },
  );

  it('refuses a missing file, a missing tensor and a spec without a path', () => {
    expect(errorCodes(catBytes(['cat', 'HEAD:nope.bin']).err)).toEqual(['CKVC_PATH_NOT_FOUND']);
    expect(errorCodes(catBytes(['cat', 'HEAD:model.safetensors', '--tensor', 'nope']).err)).toEqual([
      'CKVC_PATH_NOT_FOUND',
    ]);
    const bad = catBytes(['cat', 'HEAD']);
    expect([bad.code, errorCodes(bad.err)]).toEqual([15, ['CKVC_BAD_ARGUMENT']]);
  });

  it('pruned tensor data is refused with exit 19, and ls marks it', () => {
    fs.writeFileSync(path.join(ck, 'sub', 'state.bin'), randomBytes(4, 70_000));
    commitId(s, [ck, '-m', 'two']);
    // Tensor data only (`--tensors`): a plain prune now releases whole files, opaque ones too (retention.test.ts).
    s.ok(['prune', '--keep-last', '1', '--tensors', '**']);
    const r = catBytes(['cat', `${c1}:model.safetensors`]);
    expect([r.code, errorCodes(r.err)]).toEqual([19, ['CKVC_PRUNED']]);
    const t = catBytes(['cat', `${c1}:model.safetensors`, '--tensor', 'head.bias']);
    expect([t.code, errorCodes(t.err)]).toEqual([19, ['CKVC_PRUNED']]);
    expect(catBytes(['cat', `${c1}:sub/state.bin`]).code).toBe(0); // not a tensor: kept by a --tensors record
    const listed = s.json<{ files: any[] }>(['ls', c1, '--tensors']);
    expect(listed.files[0].tensors.every((x: any) => x.pruned === true)).toBe(true);
  });
});
