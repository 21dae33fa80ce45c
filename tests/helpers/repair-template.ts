// A store to damage and repair (repair.test.ts, repair-crash.test.ts): three commits, the second's chunk a delta
// on the first's, a tag and a second branch; a backup remote holding all of it and one holding the branch alone.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { optimizerStepFloat32, randomBytes, safetensorsFromHeader, trainedFloat32 } from './data.js';
import { hashTree } from './snapshots.js';
import { checkoutDiff, commitId, newStore, type TestStore } from './test-store.js';

const ELEMENTS = 64 * 1024; // 256 KiB of F32: one chunk

function checkpoint(w: Buffer): Buffer {
  const header = { w: { dtype: 'F32', shape: [ELEMENTS], data_offsets: [0, w.length] } };
  return safetensorsFromHeader(header, w);
}

export interface RepairTemplate {
  template: TestStore;
  /** Remote `backup` of the template: every branch and tag. */
  backup: TestStore;
  /** Remote `partial` of the template: branch `other` alone. */
  partial: TestStore;
  /** Each commit's checkpoint folder, path -> sha256. */
  files: Map<string, Map<string, string>>;
  /** Tagged `first`; `step2` (main) stores its chunk as a delta on it; `other` is branch other. */
  step1: string;
  step2: string;
  other: string;
}

export function makeRepairTemplate(prefix: string): RepairTemplate {
  const template = newStore(`${prefix}-`);
  const ckpt = path.join(template.dir, 'ckpt');
  fs.mkdirSync(ckpt);
  const files = new Map<string, Map<string, string>>();
  const w1 = trainedFloat32(1, ELEMENTS);
  fs.writeFileSync(path.join(ckpt, 'model.safetensors'), checkpoint(w1));
  fs.writeFileSync(path.join(ckpt, 'notes.bin'), randomBytes(2, 10_000));
  const step1 = commitId(template, [ckpt, '-m', 'step 1']);
  files.set(step1, hashTree(ckpt));
  template.ok(['tag', 'first', step1]);
  // An optimizer step: its chunk is stored as a delta against step 1's.
  fs.writeFileSync(path.join(ckpt, 'model.safetensors'), checkpoint(optimizerStepFloat32(w1, 3)));
  const step2 = commitId(template, [ckpt, '-m', 'step 2']);
  files.set(step2, hashTree(ckpt));
  fs.writeFileSync(path.join(ckpt, 'model.safetensors'), checkpoint(trainedFloat32(4, ELEMENTS)));
  fs.writeFileSync(path.join(ckpt, 'notes.bin'), randomBytes(5, 10_000));
  const other = commitId(template, [ckpt, '-m', 'other', '-b', 'other']);
  files.set(other, hashTree(ckpt));
  const backup = newStore(`${prefix}-backup-`);
  const partial = newStore(`${prefix}-partial-`);
  template.ok(['remote', 'add', 'backup', backup.dir]);
  template.ok(['remote', 'add', 'partial', partial.dir]);
  template.ok(['push', 'backup', 'main', 'other', 'first']);
  template.ok(['push', 'partial', 'other']);
  return { template, backup, partial, files, step1, step2, other };
}

/** What differs from the template's checkpoints when each commit is checked out; [] when all are byte-identical. */
export async function checkoutsDiffer(s: TestStore, files: Map<string, Map<string, string>>): Promise<string[]> {
  const out: string[] = [];
  for (const [id, want] of files) out.push(...(await checkoutDiff(s, id, want)));
  return out;
}

/** Every ref file of the store (refs/ and HEAD), path -> content. */
export function refFiles(s: TestStore): Map<string, string> {
  const out = new Map<string, string>([['HEAD', fs.readFileSync(path.join(s.store, 'HEAD'), 'utf8')]]);
  for (const f of fs.readdirSync(path.join(s.store, 'refs'), { recursive: true }) as string[]) {
    const p = path.join(s.store, 'refs', f);
    if (fs.statSync(p).isFile()) out.set(f, fs.readFileSync(p, 'utf8'));
  }
  return out;
}
