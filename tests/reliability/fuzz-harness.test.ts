// The fuzz harness itself: seeded cases replay exactly, the mutator does what it says, and the outcome checks
// flag what they must (a non-CkvcError, a wrong code, a slow case), so a green fuzz run means something.
import { describe, expect, it } from 'vitest';
import { CkvcError } from '../../src/core/errors.js';
import { attempt, FuzzStats, mutate, mutateOnce, Rng, sameBytes } from './fuzz-helpers.js';

describe('fuzz harness', () => {
  it('Rng is deterministic per seed and per case, and roughly uniform', () => {
    const a = new Rng(1);
    const b = new Rng(1);
    const xs = Array.from({ length: 100 }, () => a.u32());
    expect(Array.from({ length: 100 }, () => b.u32())).toEqual(xs);
    expect(Rng.forCase('t', 5).u32()).toBe(Rng.forCase('t', 5).u32());
    expect(Rng.forCase('t', 5).u32()).not.toBe(Rng.forCase('t', 6).u32());
    expect(Rng.forCase('t', 5).u32()).not.toBe(Rng.forCase('u', 5).u32());
    const r = new Rng(7);
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) buckets[r.int(10)]++;
    for (const n of buckets) expect(Math.abs(n - 10_000)).toBeLessThan(600);
  });

  it('mutations replay from the case seed and never alias the input', () => {
    const input = Uint8Array.from({ length: 64 }, (_, i) => i);
    const corpus = [Uint8Array.from([9, 9, 9])];
    for (let i = 0; i < 500; i++) {
      const m1 = mutate(Rng.forCase('harness', i), input, { corpus });
      const m2 = mutate(Rng.forCase('harness', i), input, { corpus });
      expect(m1.ops).toEqual(m2.ops);
      expect(sameBytes(m1.bytes, m2.bytes)).toBe(true);
      expect(m1.bytes).not.toBe(input);
    }
    expect(input).toEqual(Uint8Array.from({ length: 64 }, (_, i) => i));
  });

  it('every operation shows up, and length fields get huge values', () => {
    const seen = new Set<string>();
    const input = new Uint8Array(32);
    let huge = 0;
    for (let i = 0; i < 3000; i++) {
      const m = mutateOnce(Rng.forCase('ops', i), input, {
        corpus: [new Uint8Array(8).fill(1)],
        fields: () => [{ offset: 4, size: 4, endian: 'le' }],
        extra: [(_rng, b) => ({ bytes: b, op: 'extra-op' })],
      });
      seen.add(m.ops[0]!.split(' ')[0]!.replace(/@.*/, '').replace(/=.*/, ''));
      if (m.ops[0]!.startsWith('field@4/4le') && new DataView(m.bytes.buffer).getUint32(4, true) >= 0x7fffffff) huge++;
    }
    expect([...seen].sort()).toEqual(
      ['bit-flip', 'byte', 'dup', 'extend', 'extra-op', 'field', 'remove', 'set', 'splice', 'truncate'].sort(),
    );
    expect(huge).toBeGreaterThan(20);
  });

  it('FuzzStats flags a non-CkvcError, a wrong code and a slow case, and accepts a right refusal', () => {
    const s = new FuzzStats('harness');
    s.check(
      0,
      attempt(() => {
        throw new TypeError('boom');
      }),
      ['CKVC_CORRUPT_OBJECT'],
      ['op'],
    );
    s.check(
      1,
      attempt(() => {
        throw new CkvcError('CKVC_IO', 'io');
      }),
      ['CKVC_CORRUPT_OBJECT'],
      ['op'],
    );
    s.check(2, { kind: 'accepted', value: 1, ms: 5000 }, ['CKVC_CORRUPT_OBJECT'], ['op']);
    s.check(
      3,
      attempt(() => {
        throw new CkvcError('CKVC_CORRUPT_OBJECT', 'bad');
      }),
      ['CKVC_CORRUPT_OBJECT'],
      ['op'],
    );
    expect(s.failureCount).toBe(3);
    expect(s.failures.join('\n')).toMatch(/TypeError: boom/);
    expect(s.failures.join('\n')).toMatch(/CKVC_IO/);
    expect(s.failures.join('\n')).toMatch(/hang/);
    expect(s.refused).toBe(2);
  });
});
