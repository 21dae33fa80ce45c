import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isCkvcError } from '../../src/core/errors.js';
import { FAULT_STEPS, parseFaultSpec } from '../../src/store/fault-injection.js';

describe('CKVC_FAULT (spec/FAULTS.md)', () => {
  it('parses steps, counts and actions', () => {
    expect(parseFaultSpec('pack.rename')).toEqual([{ step: 'pack.rename', at: 1, action: 'kill' }]);
    expect(parseFaultSpec('pack.write@3=enospc, ref.tmp=eio')).toEqual([
      { step: 'pack.write', at: 3, action: 'enospc' },
      { step: 'ref.tmp', at: 1, action: 'eio' },
    ]);
  });
  for (const bad of ['pack.renam', 'pack.write@x', 'ref.tmp=explode', 'PACK.WRITE']) {
    it(`refuses ${JSON.stringify(bad)} with CKVC_BAD_ARGUMENT`, () => {
      let err: unknown;
      try {
        parseFaultSpec(bad);
      } catch (e) {
        err = e;
      }
      expect(isCkvcError(err, 'CKVC_BAD_ARGUMENT')).toBe(true);
    });
  }
  it('documents exactly the steps the code has', () => {
    const doc = readFileSync(fileURLToPath(new URL('../../spec/FAULTS.md', import.meta.url)), 'utf8');
    const documented = [...doc.matchAll(/^\| `([a-z.]+)` \|/gm)].map((m) => m[1]);
    expect(documented).toEqual([...FAULT_STEPS]);
  });
});
