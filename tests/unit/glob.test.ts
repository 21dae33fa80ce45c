// Globs compile to a matcher without backtracking (src/core/glob.ts): the same answers as the RegExp translation
// the rule was first written as, and linear time on the patterns that made that RegExp take minutes.
import { describe, expect, it } from 'vitest';
import { compileGlob } from '../../src/core/glob.js';
import { prngUnit } from '../helpers/data.js';
import { globReference as reference } from '../helpers/glob-reference.js';

describe('globs', () => {
  it('match as the RegExp translation does, on 20,000 seeded pattern and name pairs', () => {
    const next = prngUnit(7);
    const pick = (alphabet: string[], n: number) =>
      Array.from({ length: n }, () => alphabet[Math.floor(next() * alphabet.length)]).join('');
    let matched = 0;
    for (let k = 0; k < 20_000; k++) {
      const glob = pick(['a', 'b', '.', '/', '*', '*', '?', '**', '\n', '['], 1 + Math.floor(next() * 7));
      const name = pick(['a', 'b', '.', '/', '\n', '['], Math.floor(next() * 9));
      const got = compileGlob(glob).test(name);
      if (got !== reference(glob).test(name)) throw new Error(`${JSON.stringify(glob)} on ${JSON.stringify(name)}`);
      if (got) matched++;
    }
    expect(matched).toBeGreaterThan(1000); // the sample exercises matches, not only misses
  });

  it('examples: segments, runs across /, one character, literals', () => {
    const m = (g: string, s: string) => compileGlob(g).test(s);
    expect(m('optimizer.*', 'optimizer.state.0')).toBe(true);
    expect(m('optimizer.*', 'optimizer/state')).toBe(false);
    expect(m('weights/**', 'weights/fc1/bias')).toBe(true);
    expect(m('layer?.w', 'layer1.w')).toBe(true);
    expect(m('layer?.w', 'layer/.w')).toBe(false);
    expect(m('a.b', 'axb')).toBe(false);
    expect(m('***', 'a/b')).toBe(true);
    expect(() => compileGlob('')).toThrow(/empty glob/);
  });

  it('a hostile pattern takes linear time: *?*?...X against a 40-character name (minutes as a RegExp)', () => {
    const glob = `${'*?'.repeat(400)}X`;
    const name = 'a'.repeat(40);
    const t = performance.now();
    expect(compileGlob(glob).test(name)).toBe(false);
    expect(compileGlob(`${'*?'.repeat(12)}X`).test(`${'a'.repeat(300)}`)).toBe(false);
    expect(compileGlob(`**${'*a'.repeat(200)}`).test('a/'.repeat(500))).toBe(false);
    expect(performance.now() - t).toBeLessThan(2000);
  });
});
