// The concurrency soak, shared by the short CI version (tests/reliability) and the long one (tests/soak).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'vitest';
import { describeRun, type RunResult } from './ckvc.js';
import { pool } from './async-tasks.js';
import { prng } from './data.js';
import { writeCheckpoint } from './reliability.js';
import { diffSnapshots, hashTree } from './snapshots.js';
import { tempDir } from './temp-dirs.js';
import { checkoutDiff, newStore, type TestStore } from './test-store.js';

// Concurrency soak: N committer loops (each commit is its own ckvc process) on B branches, and a reader loop
// running log + checkout beside them. Afterwards every acknowledged commit must be on its branch and check out
// byte-identical, and verify --read-data must be clean.

export interface SoakOptions {
  processes: number;
  commitsEach: number;
  branches: number;
  /** Bytes of the changing tensor per checkpoint (the frozen one is as big and shared). */
  tensorBytes: number;
  opaqueBytes: number;
  seed: number;
  readers: number;
  /** Loops running `ckvc gc --grace 0` beside the committers (each commit's re-parented leftovers are its garbage). */
  gcLoops?: number;
  log?: (msg: string) => void;
}

export interface SoakResult {
  store: TestStore;
  acknowledged: number;
  failedCommits: string[];
  readerRuns: number;
  readerCheckouts: number;
  readerProblems: string[];
  gcRuns: number;
  gcBytesFreed: number;
  gcProblems: string[];
  missing: string[];
  extra: string[];
  mismatches: string[];
  verify: { r: RunResult; report: any };
  seconds: number;
}

interface Ack {
  id: string;
  branch: string;
  files: Map<string, string>;
}

export async function concurrencySoak(o: SoakOptions): Promise<SoakResult> {
  const t0 = Date.now();
  const s = newStore('ckvc-soak-');
  const work = tempDir('ckvc-soak-in-');
  const acks = new Map<string, Ack>();
  const failedCommits: string[] = [];
  const readerProblems: string[] = [];
  const seenByReaders: { id: string; files: Map<string, string> }[] = [];
  let readerRuns = 0;
  let readerCheckouts = 0;
  let running = o.processes;
  const branchName = (b: number) => `soak-${b}`;

  const committer = async (p: number) => {
    const branch = branchName(p % o.branches);
    for (let c = 0; c < o.commitsEach; c++) {
      const seed = o.seed * 100_000 + p * 1000 + c;
      const dir = path.join(work, `p${p}-c${c}`);
      const files = writeCheckpoint(dir, {
        seed,
        family: p % o.branches,
        tensorBytes: o.tensorBytes,
        opaqueBytes: o.opaqueBytes,
      });
      const r = await s.runAsync([
        'commit',
        dir,
        '-b',
        branch,
        '-m',
        `p${p} c${c}`,
        '--metric',
        `loss=${(1 / (c + 1)).toFixed(4)}`,
        '--step',
        String(c),
        '--json',
      ]);
      if (r.code !== 0) failedCommits.push(`p${p} c${c} on ${branch}: ${describeRun(r)}`);
      else {
        const id = (JSON.parse(r.stdout) as { id: string }).id;
        acks.set(id, { id, branch, files });
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
    running--;
  };

  const reader = async (k: number) => {
    const rnd = prng(o.seed * 7 + k);
    while (running > 0) {
      const branch = branchName(rnd() % o.branches);
      const acked = [...acks.values()].some((a) => a.branch === branch);
      const r = await s.runAsync(['log', branch, '-n', '5', '--json']);
      readerRuns++;
      if (r.code !== 0) {
        // Before a branch's first commit lands, it does not exist: exit 14. After that, log must work.
        if (!(r.code === 14 && !acked)) readerProblems.push(`log ${branch}: ${describeRun(r)}`);
        continue;
      }
      const log = JSON.parse(r.stdout) as { id: string }[];
      if (log.length === 0) continue;
      const pick = log[rnd() % log.length]!.id;
      const out = path.join(work, `reader-${k}-${readerRuns}`);
      const co = await s.runAsync(['checkout', pick, '--to', out]);
      readerCheckouts++;
      if (co.code !== 0) readerProblems.push(`checkout ${pick} (seen in log ${branch}): ${describeRun(co)}`);
      else seenByReaders.push({ id: pick, files: hashTree(out) });
      fs.rmSync(out, { recursive: true, force: true });
    }
  };

  let gcRuns = 0;
  let gcBytesFreed = 0;
  const gcProblems: string[] = [];
  const collector = async () => {
    while (running > 0) {
      const r = await s.runAsync(['gc', '--grace', '0', '--json']);
      gcRuns++;
      if (r.code !== 0) gcProblems.push(`gc: ${describeRun(r)}`);
      else gcBytesFreed += (JSON.parse(r.stdout) as { bytesFreed: number }).bytesFreed;
      await new Promise((res) => setTimeout(res, 200));
    }
  };

  await Promise.all([
    ...Array.from({ length: o.processes }, (_, p) => committer(p)),
    ...Array.from({ length: o.readers }, (_, k) => reader(k)),
    ...Array.from({ length: o.gcLoops ?? 0 }, () => collector()),
  ]);
  o.log?.(
    `soak: ${acks.size} commits acknowledged, ${failedCommits.length} failed, ${readerRuns} reader logs, ${readerCheckouts} reader checkouts, ${gcRuns} gc runs (${gcBytesFreed} bytes freed) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );

  // What readers checked out mid-run must be what the committer gave (every commit a reader saw was acknowledged).
  for (const seen of seenByReaders) {
    const a = acks.get(seen.id);
    if (!a) readerProblems.push(`reader saw ${seen.id}, which no committer acknowledged`);
    else for (const d of diffSnapshots(a.files, seen.files)) readerProblems.push(`reader checkout of ${seen.id}: ${d}`);
  }

  const missing: string[] = [];
  const extra: string[] = [];
  for (let b = 0; b < o.branches; b++) {
    const branch = branchName(b);
    const want = [...acks.values()].filter((a) => a.branch === branch).map((a) => a.id);
    const r = await s.runAsync(['log', branch, '--json']);
    if (r.code !== 0) {
      if (want.length) missing.push(`log ${branch} failed: ${describeRun(r)}`);
      continue;
    }
    const got = new Set((JSON.parse(r.stdout) as { id: string }[]).map((c) => c.id));
    for (const id of want) if (!got.has(id)) missing.push(`${branch}: acknowledged commit ${id} is not in its log`);
    for (const id of got) if (!acks.has(id)) extra.push(`${branch}: ${id} in the log was never acknowledged`);
  }
  const mismatches = (await pool([...acks.values()], 2, (a) => checkoutDiff(s, a.id, a.files))).flat();
  const verify = await s.verify(true);
  o.log?.(
    `soak: checked ${acks.size} commits, verify exit ${verify.r.code}, ${((Date.now() - t0) / 1000).toFixed(1)} s in all`,
  );
  return {
    store: s,
    acknowledged: acks.size,
    failedCommits,
    readerRuns,
    readerCheckouts,
    readerProblems,
    gcRuns,
    gcBytesFreed,
    gcProblems,
    missing,
    extra,
    mismatches,
    verify,
    seconds: (Date.now() - t0) / 1000,
  };
}

/** Everything a concurrency soak must end with: all acknowledged, nothing lost, nothing extra, verify clean. */
export function expectSoakClean(r: SoakResult, acknowledged: number): void {
  expect(r.failedCommits).toEqual([]);
  expect(r.acknowledged).toBe(acknowledged);
  expect(r.missing).toEqual([]);
  expect(r.extra).toEqual([]);
  expect(r.mismatches).toEqual([]);
  expect(r.readerProblems).toEqual([]);
  expect(r.gcProblems).toEqual([]);
  expect(r.gcRuns).toBeGreaterThan(0);
  expect(r.verify.r.code, describeRun(r.verify.r)).toBe(0);
}
