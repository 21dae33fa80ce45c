// The rules that pair a removed and an added file as one renamed file in `ckvc diff` (core/diff/renamed-files.ts).
import { describe, expect, it } from 'vitest';
import { type DiffedFile, mostlySame, renameCandidates } from '../../src/core/diff/renamed-files.js';

const f = (path: string, tensorNames: string[], format = 'safetensors'): DiffedFile => ({ path, format, tensorNames });

/** Candidates between two sides given as files, the removed being A's files B lacks and the added B's A lacks. */
function candidates(a: DiffedFile[], b: DiffedFile[]): Map<string, string> {
  const inA = new Set(a.map((x) => x.path));
  const inB = new Set(b.map((x) => x.path));
  return renameCandidates(
    a,
    b,
    new Set([...inA].filter((p) => !inB.has(p))),
    new Set([...inB].filter((p) => !inA.has(p))),
  );
}

describe('renameCandidates', () => {
  it('pairs the one removed and the one added file that share tensor names and a format', () => {
    expect(candidates([f('step_1.st', ['w', 'b'])], [f('step_2.st', ['b', 'w', 'extra'])])).toEqual(
      new Map([['step_2.st', 'step_1.st']]),
    );
  });
  it('pairs each format apart: a safetensors file and its .pt twin, renamed together', () => {
    const a = [f('s1.safetensors', ['w']), f('s1.pt', ['w', 'opt'], 'pytorch')];
    const b = [f('s2.pt', ['w', 'opt'], 'pytorch'), f('s2.safetensors', ['w'])];
    expect(candidates(a, b)).toEqual(
      new Map([
        ['s2.pt', 's1.pt'],
        ['s2.safetensors', 's1.safetensors'],
      ]),
    );
  });
  it('does not guess: no shared name, another format, two candidates on either side', () => {
    expect(candidates([f('a', ['w'])], [f('b', ['v'])]).size).toBe(0);
    expect(candidates([f('a', ['w'])], [f('b', ['w'], 'pytorch')]).size).toBe(0);
    expect(candidates([f('a1', ['w']), f('a2', ['w'])], [f('b', ['w'])]).size).toBe(0);
    expect(candidates([f('a', ['w'])], [f('b1', ['w']), f('b2', ['w'])]).size).toBe(0);
    expect(candidates([f('a', [], 'opaque')], [f('b', [], 'opaque')]).size).toBe(0);
  });
  it('a kept file sharing the names competes: a folder that keeps the last two steps is not paired', () => {
    const a = [f('step_1000', ['w']), f('step_2000', ['w'])];
    const b = [f('step_2000', ['w']), f('step_3000', ['w'])];
    expect(candidates(a, b).size).toBe(0);
  });
  it('.npy files, whose one tensor is named after the file, pair by the name without its digits', () => {
    expect(candidates([f('w/step_200.npy', ['step_200'], 'npy')], [f('w/step_300.npy', ['step_300'], 'npy')])).toEqual(
      new Map([['w/step_300.npy', 'w/step_200.npy']]),
    );
    expect(candidates([f('a.npy', ['step_200'], 'npy')], [f('b.npy', ['bias_300'], 'npy')]).size).toBe(0);
    // Digits count only for .npy: safetensors tensors named layer_1 and layer_2 are different tensors.
    expect(candidates([f('a', ['layer_1'])], [f('b', ['layer_2'])]).size).toBe(0);
    expect(
      mostlySame('npy', [{ name: 'step_200', layout: 'F32 [4] C' }], [{ name: 'step_300', layout: 'F32 [4] C' }]),
    ).toBe(true);
  });
  it('one ambiguous pair leaves the clear ones paired', () => {
    const a = [f('keep_1', ['k']), f('x1', ['w']), f('x2', ['w'])];
    const b = [f('keep_2', ['k']), f('y', ['w'])];
    expect(candidates(a, b)).toEqual(new Map([['keep_2', 'keep_1']]));
  });
});

describe('mostlySame', () => {
  const t = (name: string, layout = 'F32 [4] C') => ({ name, layout });
  it('holds when at least half of each side is the same tensor (name, dtype and shape)', () => {
    expect(mostlySame('safetensors', [t('w'), t('b')], [t('w'), t('b')])).toBe(true);
    expect(mostlySame('safetensors', [t('w'), t('b')], [t('w'), t('c')])).toBe(true);
    expect(mostlySame('safetensors', [t('w'), t('b', 'F32 [2] C')], [t('w'), t('b', 'F32 [3] C')])).toBe(true);
  });
  it('fails for one shared name of another dtype (np.savez arr_0), or a small overlap (an adapter and a model)', () => {
    expect(mostlySame('safetensors', [t('arr_0', 'F32 [10,4] C')], [t('arr_0', 'I64 [7] C')])).toBe(false);
    expect(mostlySame('safetensors', [t('lm_head'), t('a'), t('b')], [t('lm_head'), t('lora_a'), t('lora_b')])).toBe(
      false,
    );
    expect(mostlySame('safetensors', [], [])).toBe(false);
  });
});
