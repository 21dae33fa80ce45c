// Test hook for crash and storage-fault testing (spec/FAULTS.md). CKVC_FAULT names write steps and what to do
// when one is reached: `STEP[@N][=ACTION]`, comma-separated; N counts hits of that step in this process
// (default 1); ACTION is `kill` (SIGKILL this process: a crash), `enospc` or `eio` (the step fails with that
// errno, as a full or failing disk would). Without CKVC_FAULT this is one property read per step.
// CKVC_FAULT is honoured only when CKVC_TEST_FAULTS=1 is set as well: a stray CKVC_FAULT left in a user's shell
// must never SIGKILL their commit mid-write, so the test run switches the mechanism on explicitly.
import { CkvcError } from '../core/errors.js';

/** Every step a fault can be injected at, in the order a commit reaches them. */
export const FAULT_STEPS = [
  'pack.create',
  'pack.write',
  'pack.fsync',
  'pack.rename',
  'pack.dirsync',
  'pack.done',
  'index.update',
  'index.updated',
  'ref.lock',
  'reflog.append',
  'ref.tmp',
  'ref.fsync',
  'ref.rename',
  'ref.dirsync',
  'ref.done',
  'head.write',
  'checkout.write',
  'checkout.rename',
  'prune.record',
  'gc.locked',
  'gc.packed',
  'gc.indexed',
  'gc.delete',
  'consolidate.locked',
  'consolidate.packed',
  'consolidate.indexed',
  'consolidate.delete',
  'repair.locked',
  'repair.salvaged',
  'repair.aside',
  'repair.received',
  'receive.verified',
  'receive.moved',
  'receive.indexed',
  'reindex.cleared',
  'reindex.pack',
] as const;
export type FaultStep = (typeof FAULT_STEPS)[number];

export interface Rule {
  step: string;
  at: number;
  action: 'kill' | 'enospc' | 'eio';
}

let rules: Rule[] | undefined;
const hits = new Map<string, number>();

/** Parses a CKVC_FAULT value; a typo is an error rather than a test that silently injects nothing. */
export function parseFaultSpec(spec: string): Rule[] {
  return spec
    .split(',')
    .filter(Boolean)
    .map((part) => {
      const m = /^([a-z.]+)(?:@(\d+))?(?:=(kill|enospc|eio))?$/.exec(part.trim());
      if (!m || !(FAULT_STEPS as readonly string[]).includes(m[1]!)) {
        throw new CkvcError(
          'CKVC_BAD_ARGUMENT',
          `CKVC_FAULT entry ${JSON.stringify(part)} is not STEP[@N][=kill|enospc|eio] with STEP one of ${FAULT_STEPS.join(', ')}`,
          { fault: part },
        );
      }
      return { step: m[1]!, at: Number(m[2] ?? 1), action: (m[3] ?? 'kill') as Rule['action'] };
    });
}

export function faultPoint(step: FaultStep): void {
  const spec = process.env.CKVC_FAULT;
  if (!spec || process.env.CKVC_TEST_FAULTS !== '1') return;
  rules ??= parseFaultSpec(spec);
  const n = (hits.get(step) ?? 0) + 1;
  hits.set(step, n);
  for (const r of rules) {
    if (r.step !== step || r.at !== n) continue;
    if (r.action === 'kill') process.kill(process.pid, 'SIGKILL');
    const err = new Error(`${r.action.toUpperCase()}: injected at ${step}`) as NodeJS.ErrnoException;
    err.code = r.action.toUpperCase();
    throw err;
  }
}
