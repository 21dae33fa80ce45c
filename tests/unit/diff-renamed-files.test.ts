// The rule that pairs a removed and an added file as one renamed file in `ckvc diff` (core/diff/renamed-files.ts).
import { describe, expect, it } from 'vitest';
import { type DiffedFile, pairRenamedFiles } from '../../src/core/diff/renamed-files.js';

const f = (path: string, tensorNames: string[], format = 'safetensors'): DiffedFile => ({ path, format, tensorNames });

describe('pairRenamedFiles', () => {
  it('pairs the one removed and the one added file that share tensor names and a format', () => {
    expect(pairRenamedFiles([f('step_1.st', ['w', 'b'])], [f('step_2.st', ['b', 'w', 'extra'])])).toEqual(
      new Map([['step_2.st', 'step_1.st']]),
    );
  });
  it('pairs each format apart: a safetensors and a .pt twin, renamed together', () => {
    const removed = [f('s1.safetensors', ['w']), f('s1.pt', ['w', 'opt'], 'pytorch')];
    const added = [f('s2.pt', ['w', 'opt'], 'pytorch'), f('s2.safetensors', ['w'])];
    expect(pairRenamedFiles(removed, added)).toEqual(
      new Map([
        ['s2.pt', 's1.pt'],
        ['s2.safetensors', 's1.safetensors'],
      ]),
    );
  });
  it('does not guess: no shared name, another format, two candidates on either side, files without tensors', () => {
    expect(pairRenamedFiles([f('a', ['w'])], [f('b', ['v'])]).size).toBe(0);
    expect(pairRenamedFiles([f('a', ['w'])], [f('b', ['w'], 'pytorch')]).size).toBe(0);
    expect(pairRenamedFiles([f('a1', ['w']), f('a2', ['w'])], [f('b', ['w'])]).size).toBe(0);
    expect(pairRenamedFiles([f('a', ['w'])], [f('b1', ['w']), f('b2', ['w'])]).size).toBe(0);
    expect(pairRenamedFiles([f('a', [], 'opaque')], [f('b', [], 'opaque')]).size).toBe(0);
  });
  it('one ambiguous pair leaves the clear ones paired', () => {
    const removed = [f('keep_1', ['k']), f('x1', ['w']), f('x2', ['w'])];
    const added = [f('keep_2', ['k']), f('y', ['w'])];
    expect(pairRenamedFiles(removed, added)).toEqual(new Map([['keep_2', 'keep_1']]));
  });
});
