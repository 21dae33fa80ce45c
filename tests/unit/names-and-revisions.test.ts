import { describe, expect, it } from 'vitest';
import { refNameProblem } from '../../src/core/ref-name.js';
import { parseRevision } from '../../src/core/revision-syntax.js';

describe('ref names (spec/FORMAT.md §6.1)', () => {
  for (const ok of ['main', 'phase-g2', 'phase/g2', 'lstm_v1.2', 'best-g2', 'A']) {
    it(`accepts ${ok}`, () => expect(refNameProblem(ok)).toBeUndefined());
  }
  for (const bad of [
    '',
    '..',
    'a/../b',
    '.hidden',
    'a/.b',
    'a b',
    '-x',
    'x.lock',
    'a\tb',
    'a\x01',
    'HEAD',
    'a~1',
    'a^',
    'a:b',
    'a?',
    'a*',
    'a[',
    'a\\b',
    'a@{',
    '/a',
    'a/',
    'a//b',
    'abc.',
    'deadbeef',
    'x'.repeat(201),
  ]) {
    it(`refuses ${JSON.stringify(bad)}`, () => expect(refNameProblem(bad)).toBeTypeOf('string'));
  }
});

describe('revision syntax (spec/FORMAT.md §6.4)', () => {
  it('parses plain names and suffixes', () => {
    expect(parseRevision('main')).toEqual({ base: 'main', steps: [] });
    expect(parseRevision('main~3')).toEqual({ base: 'main', steps: [{ kind: 'ancestor', n: 3 }] });
    expect(parseRevision('HEAD~')).toEqual({ base: 'HEAD', steps: [{ kind: 'ancestor', n: 1 }] });
    expect(parseRevision('best^2~1^')).toEqual({
      base: 'best',
      steps: [
        { kind: 'parent', n: 2 },
        { kind: 'ancestor', n: 1 },
        { kind: 'parent', n: 1 },
      ],
    });
  });
  it('refuses malformed revisions', () => {
    for (const bad of ['', '~1', 'main~x', 'a^b']) expect(() => parseRevision(bad)).toThrow();
  });
});
