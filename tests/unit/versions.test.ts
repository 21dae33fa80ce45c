// One version and one table of exit codes: package.json is the CLI's version source (the bundle inlines it),
// the Python helper's is ckvc.__version__ (pyproject.toml reads it), and the helper's own exit codes are copies of
// spec/EXIT_CODES.md. These tests make the copies fail loudly when one side moves without the other.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ckvc } from '../helpers/ckvc.js';

const read = (rel: string) => readFileSync(fileURLToPath(new URL(`../../${rel}`, import.meta.url)), 'utf8');

describe('one version', () => {
  const npmVersion = (JSON.parse(read('package.json')) as { version: string }).version;

  it("ckvc --version prints package.json's version", () => {
    const r = ckvc(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(npmVersion);
  });

  it("the Python helper's __version__ is the same, and pyproject.toml takes it from there", () => {
    const py = /^__version__ = "([^"]+)"$/m.exec(read('python/ckvc/__init__.py'));
    expect(py?.[1]).toBe(npmVersion);
    const pyproject = read('python/pyproject.toml');
    expect(pyproject).toMatch(/^dynamic = \["version"\]$/m);
    expect(pyproject).toMatch(/^version = \{ attr = "ckvc\.__version__" \}$/m);
    expect(pyproject).not.toMatch(/^version = "/m);
  });
});

describe("the Python helper's exit codes are spec/EXIT_CODES.md's", () => {
  const spec = new Map(
    [...read('spec/EXIT_CODES.md').matchAll(/^\| `(CKVC_[A-Z_]+)` \| (\d+) \|/gm)].map((m) => [m[1]!, Number(m[2])]),
  );
  const block = /LOCAL_EXIT_CODES[^{]*\{([^}]*)\}/.exec(read('python/ckvc/_errors.py'))?.[1] ?? '';
  const local = [...block.matchAll(/"(CKVC_[A-Z_]+)": (\d+|None)/g)].map((m) => [m[1]!, m[2]!] as const);

  it('the table and the dict were both found', () => {
    expect(spec.size).toBeGreaterThan(20);
    expect(local.length).toBeGreaterThan(0);
  });
  it("every code the helper shares with the CLI has the CLI's exit code; its own codes are not in the spec", () => {
    for (const [code, exit] of local) {
      if (exit === 'None' || code === 'CKVC_CLI_FAILED') expect(spec.has(code), code).toBe(false);
      else expect(Number(exit), code).toBe(spec.get(code));
    }
  });
});
