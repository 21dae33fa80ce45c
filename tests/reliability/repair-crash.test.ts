// `ckvc repair` killed at each of its steps (spec/FAULTS.md repair.*), and failing there as a full disk would: the
// store is never worse than before (what checked out still does, verify names no commit it did not name before),
// and repair run again makes it whole (spec/FORMAT.md §10.1).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAULT_STEPS } from '../../src/store/fault-injection.js';
import { describeRun, errorCodes, type RunResult } from '../helpers/ckvc.js';
import { damageRecord, firstChunkRecord, planesOf } from '../helpers/damage.js';
import { PLANE_XOR } from '../../src/core/store-format/codec/plane-codec.js';
import { checkoutsDiffer, makeRepairTemplate, refFiles, type RepairTemplate } from '../helpers/repair-template.js';
import { diffSnapshots, flipByte } from '../helpers/snapshots.js';
import { cleanupTemp } from '../helpers/temp-dirs.js';
import { checkoutDiff, copyStore, type TestStore } from '../helpers/test-store.js';

afterAll(cleanupTemp);

let t: RepairTemplate;
/** The template with step 1's chunk damaged: step 1 and step 2 (a delta on it) no longer check out. */
let damaged: TestStore;
let damagedBefore: string[];

const run = (s: TestStore, args: string[], env: Record<string, string> = {}): Promise<RunResult> =>
  s.runAsync(args, { env: { CKVC_GC_WAIT_MS: '20000', CKVC_LOCK_TIMEOUT_MS: '20000', ...env } });

beforeAll(async () => {
  t = makeRepairTemplate('ckvc-repair-crash');
  damaged = copyStore(t.template, 'ckvc-repair-crash-damaged-');
  const { file, entry } = await firstChunkRecord(damaged, t.step1, 'model.safetensors');
  damageRecord(file, entry);
  damagedBefore = (await damaged.verify(true)).report.damaged.map((d: { commit: string }) => d.commit).sort();
}, 120_000);

/** What is wrong with `s` compared with the damaged store it was: [] when it is no worse. */
async function noWorse(s: TestStore, what: string): Promise<string[]> {
  const out: string[] = [];
  const v = await s.verify(true);
  const listed = (v.report?.damaged ?? []).map((d: { commit: string }) => d.commit).sort();
  const worse = listed.filter((c: string) => !damagedBefore.includes(c));
  if (worse.length) out.push(`${what}: verify names commits the damage did not cost: ${worse.join(' ')}`);
  out.push(...(await checkoutDiff(s, t.other, t.files.get(t.other)!)).map((d) => `${what}: ${d}`));
  return out;
}

/** What is wrong with `s` after a repair that should have mended it: [] when whole. */
async function whole(s: TestStore, what: string, refs: Map<string, string>): Promise<string[]> {
  const out = (await checkoutsDiffer(s, t.files)).map((d) => `${what}: ${d}`);
  const v = await s.verify(true);
  if (v.r.code !== 0) out.push(`${what}: verify --read-data: ${describeRun(v.r)}`);
  out.push(...diffSnapshots(refs, refFiles(s)).map((d) => `${what}: refs changed: ${d}`));
  return out;
}

describe.concurrent('repair killed at each of its steps', () => {
  // Every repair step of spec/FAULTS.md (crash-points.test.ts leaves them to this file), and the second removal.
  const steps = FAULT_STEPS.filter((s) => s.startsWith('repair.'));
  it('the steps tried are the spec table repair steps', () => {
    expect(steps).toEqual(['repair.locked', 'repair.salvaged', 'repair.aside', 'repair.received']);
  });
  for (const step of [...steps, 'repair.aside@2']) {
    it(`kill at ${step}: no worse than before; repair run again makes the store whole`, {
      timeout: 120_000,
    }, async ({ expect }) => {
      const s = copyStore(damaged, 'ckvc-repair-crash-case-');
      const refs = refFiles(s);
      const killed = await run(s, ['repair', '--from', 'backup'], { CKVC_FAULT: step });
      expect(killed.signal, `CKVC_FAULT=${step}: ${describeRun(killed)}`).toBe('SIGKILL');
      const problems = await noWorse(s, `after the kill at ${step}`);
      const again = await run(s, ['repair', '--from', 'backup', '--json']);
      if (again.code !== 0) problems.push(`repair re-run: ${describeRun(again)}`);
      problems.push(...(await whole(s, 'after the re-run', refs)));
      expect(problems).toEqual([]);
    });
  }
});

describe.concurrent('repair killed while it removes packs, from a source lacking what was lost', () => {
  // A base damaged in a plane its delta does not XOR: salvage rewrites the delta's sound pack (the delta stored
  // decoded) and removes it, then the damaged one. Killed anywhere there and run again from a source that cannot
  // bring the base back, the store must end as one repaired without a kill: the same packs, the same loss.
  let planeDamaged: TestStore;
  let reference: { problems: string[]; damaged: string[] };
  beforeAll(async () => {
    planeDamaged = copyStore(t.template, 'ckvc-repair-crash-plane-');
    const base = await firstChunkRecord(planeDamaged, t.step1, 'model.safetensors');
    const delta = await firstChunkRecord(planeDamaged, t.step2, 'model.safetensors');
    const whole = planesOf(delta).planes.findIndex((p) => !(p.mode & PLANE_XOR));
    const b = planesOf(base);
    flipByte(base.file, b.body + b.planes[whole]!.offset + 5);
    const ref = copyStore(planeDamaged, 'ckvc-repair-crash-plane-ref-');
    const r = await run(ref, ['repair', '--from', 'partial']);
    expect(r.code, describeRun(r)).toBe(12);
    reference = await endState(ref);
    expect(reference.damaged).toEqual([t.step1]);
  }, 120_000);

  /** What verify finds (a pack of duplicates a killed run wrote may stay: it holds nothing wrong). */
  async function endState(s: TestStore): Promise<{ problems: string[]; damaged: string[] }> {
    const v = await s.verify(true);
    return {
      problems: (v.report?.problems ?? [])
        .map((p: { code: string; data: { id?: string } }) => `${p.code} ${p.data.id}`)
        .sort(),
      damaged: (v.report?.damaged ?? []).map((d: { commit: string }) => d.commit).sort(),
    };
  }

  for (const step of ['repair.aside', 'repair.aside@2']) {
    it(`kill at ${step}, run again: the same end as without the kill`, { timeout: 120_000 }, async ({ expect }) => {
      const s = copyStore(planeDamaged, 'ckvc-repair-crash-plane-case-');
      const killed = await run(s, ['repair', '--from', 'partial'], { CKVC_FAULT: step });
      expect(killed.signal, describeRun(killed)).toBe('SIGKILL');
      const again = await run(s, ['repair', '--from', 'partial']);
      expect(again.code, describeRun(again)).toBe(12);
      expect(await endState(s)).toEqual(reference);
      expect(await checkoutDiff(s, t.step2, t.files.get(t.step2)!)).toEqual([]);
    });
  }
});

describe.concurrent('repair failing as a full or failing disk would', () => {
  for (const fault of ['repair.locked=eio', 'repair.salvaged=enospc', 'repair.aside=eio', 'repair.received=enospc']) {
    it(`${fault}: exit 1 CKVC_IO, gc.lock released, no worse; a re-run makes it whole`, {
      timeout: 120_000,
    }, async ({ expect }) => {
      const s = copyStore(damaged, 'ckvc-repair-io-');
      const refs = refFiles(s);
      const r = await run(s, ['repair', '--from', 'backup'], { CKVC_FAULT: fault });
      expect(r.code, describeRun(r)).toBe(1);
      expect(errorCodes(r.stderr), describeRun(r)).toEqual(['CKVC_IO']);
      expect(fs.existsSync(path.join(s.store, 'locks', 'gc.lock')), 'gc.lock released').toBe(false);
      const problems = await noWorse(s, `after ${fault}`);
      const again = await run(s, ['repair', '--from', 'backup']);
      if (again.code !== 0) problems.push(`repair re-run: ${describeRun(again)}`);
      problems.push(...(await whole(s, 'after the re-run', refs)));
      expect(problems).toEqual([]);
    });
  }
});
