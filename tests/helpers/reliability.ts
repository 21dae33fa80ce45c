// Helpers for the reliability tests (tests/reliability, tests/soak): the fault-step table of spec/FAULTS.md,
// checkpoint folders of a chosen size and sharing, and the soak scale. Like tests/helpers/ckvc.ts, nothing here
// imports src/ or dist/.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './ckvc.js';
import { randomBytes, randomFloat32, safetensorsBytes } from './data.js';
import { hashTree } from './snapshots.js';

export const MiB = 1024 * 1024;

/** The step names of the table in spec/FAULTS.md, in table order. */
export function faultSteps(): string[] {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'spec', 'FAULTS.md'), 'utf8');
  const steps = [...text.matchAll(/^\|\s*`([a-z][a-z.]*)`\s*\|/gm)].map((m) => m[1]!);
  if (steps.length < 5) throw new Error(`spec/FAULTS.md: found only ${steps.length} steps in the table`);
  return steps;
}

/** CKVC_SOAK_SCALE (default 1): multiplies round counts of the soak-like tests. */
export function soakScale(): number {
  const v = Number(process.env.CKVC_SOAK_SCALE ?? 1);
  return Number.isFinite(v) && v > 0 ? v : 1;
}

/** Temp files a checkout may leave when killed: `.NAME.ckvc-*.tmp`. */
export const CHECKOUT_TEMP = /^\..+\.ckvc-[0-9a-f]+\.tmp$/;

/**
 * Writes a checkpoint folder: model.safetensors (a `frozen` tensor shared by every checkpoint of a `family`, a
 * `head` tensor new for every seed) and an opaque optimizer.bin of random bytes. Returns path -> sha256.
 */
export function writeCheckpoint(
  dir: string,
  opts: { seed: number; family?: number; tensorBytes?: number; opaqueBytes?: number },
): Map<string, string> {
  fs.mkdirSync(dir, { recursive: true });
  const tb = opts.tensorBytes ?? 256 * 1024;
  const cols = 256;
  const rows = Math.max(1, Math.floor(tb / 4 / cols));
  const st = safetensorsBytes(
    {
      frozen: { dtype: 'F32', shape: [rows, cols], bytes: randomFloat32(1_000_000 + (opts.family ?? 0), rows * cols) },
      head: { dtype: 'F32', shape: [rows, cols], bytes: randomFloat32(opts.seed, rows * cols) },
    },
    { step: String(opts.seed) },
  );
  fs.writeFileSync(path.join(dir, 'model.safetensors'), st);
  fs.writeFileSync(path.join(dir, 'optimizer.bin'), randomBytes(opts.seed ^ 0x5a5a5a, opts.opaqueBytes ?? 128 * 1024));
  return hashTree(dir);
}
