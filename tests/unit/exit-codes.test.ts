// spec/EXIT_CODES.md is the documented contract; it must list exactly the codes the code uses.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, EXIT } from '../../src/core/errors.js';

const doc = readFileSync(fileURLToPath(new URL('../../spec/EXIT_CODES.md', import.meta.url)), 'utf8');

describe('spec/EXIT_CODES.md', () => {
  it('documents every error code with its exit code', () => {
    const documented = new Map(
      [...doc.matchAll(/^\| `(CKVC_[A-Z_]+)` \| (\d+) \|/gm)].map((m) => [m[1], Number(m[2])]),
    );
    expect(Object.fromEntries(documented)).toEqual(
      Object.fromEntries(Object.entries(ERROR_CODES).map(([k, v]) => [k, v.exit])),
    );
  });
  it('documents every exit code', () => {
    const documented = [...doc.matchAll(/^\| (\d+) \| [a-z]/gm)].map((m) => Number(m[1]));
    expect(documented.sort((a, b) => a - b)).toEqual(Object.values(EXIT).sort((a, b) => a - b));
  });
});
