// The examples run end to end: examples/phase-workflow.sh (the phase workflow tutorial, real CLI, bash) and
// examples/training-loop.mjs (`npm run demo`, Node API + CLI). Both are started at once from a folder outside
// the repository, with a `ckvc` on PATH that fails and a CKVC_DIR pointing nowhere, so they prove they need
// neither a global install nor the caller's store. The workflow keeps its work folder (KEEP=1, WORK_DIR) so its
// store, bundle and second site can be checked here through the CLI.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun, okJson, REPO_ROOT, type RunResult } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';

const EXAMPLES = path.join(REPO_ROOT, 'examples');
const ARCHS = ['lstm', 'gru', 'attention'] as const;

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<RunResult> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 }));
  });
}

interface Commit {
  id: string;
  parents: string[];
  branch?: string;
  step?: number;
  metrics?: Record<string, number>;
}
interface Tag {
  name: string;
  commit: string;
}

let root: string;
let work: string;
let store: string;
let workflow: RunResult;
let demo: RunResult;
const json = <T = any>(args: string[]) => okJson<T>([...args, '--store', store]);

beforeAll(async () => {
  root = tempDir('ckvc-examples-');
  work = path.join(root, 'work');
  store = path.join(work, '.ckvc');
  // A decoy `ckvc` first on PATH: an example that called a global ckvc would fail loudly.
  const decoy = path.join(root, 'bin');
  fs.mkdirSync(decoy);
  fs.writeFileSync(path.join(decoy, 'ckvc'), '#!/bin/sh\necho "the global ckvc was called" >&2\nexit 97\n', {
    mode: 0o755,
  });
  const cwd = path.join(root, 'elsewhere');
  fs.mkdirSync(cwd);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${decoy}${path.delimiter}${process.env.PATH}`,
    NO_COLOR: '1',
    CKVC_DIR: path.join(root, 'no-such-store'),
  };
  delete env.CKVC;
  delete env.KEEP;
  delete env.WORK_DIR;
  [workflow, demo] = await Promise.all([
    run('bash', [path.join(EXAMPLES, 'phase-workflow.sh')], cwd, { ...env, KEEP: '1', WORK_DIR: work }),
    run(process.execPath, [path.join(EXAMPLES, 'training-loop.mjs')], cwd, env),
  ]);
}, 120_000);

afterAll(() => cleanupTemp());

describe('examples/phase-workflow.sh', () => {
  // What the store says, read once (each CLI call costs a process start).
  let tags: Map<string, string>; // tag name -> commit
  let commits: Commit[]; // every commit, newest first
  const onBranch = (b: string) => commits.filter((c) => c.branch === b); // newest first
  const bestByReward = (cs: Commit[]) => cs.reduce((a, c) => (c.metrics!.reward! > a.metrics!.reward! ? c : a));

  it('runs to the end from another folder, without a global ckvc', () => {
    expect(workflow.code, describeRun(workflow)).toBe(0);
    const out = workflow.stdout + workflow.stderr;
    expect(out).not.toContain('the global ckvc was called');
    for (const heading of [
      'Phase G2:',
      'Tag the best G2 agent',
      'Phase G2+',
      'warm-started from best-g2',
      'Pack the four best agents',
      'Another site',
    ]) {
      expect(out).toContain(heading);
    }
    expect(out).toContain('verified (every object re-hashed)');
    expect(out).toContain('| best-attention |');
    expect(out).toContain('no problems found');
    expect(out).toContain('phase workflow finished');
    expect(out).toContain(`(kept the work folder: ${fs.realpathSync(work)})`);
    tags = new Map(json<Tag[]>(['tag']).map((t) => [t.name, t.commit]));
    commits = json<Commit[]>(['log', '--all']);
  });

  it('tags the best G2 agent by reward, which is not the last G2 checkpoint', () => {
    expect([...tags.keys()].sort()).toEqual(['best-attention', 'best-g2', 'best-gru', 'best-lstm']);
    const g2 = onBranch('phase-g2');
    expect(g2.map((c) => c.step)).toEqual([3000, 2000, 1000]);
    expect(tags.get('best-g2')).toBe(bestByReward(g2).id);
    expect(tags.get('best-g2')).not.toBe(g2[0]!.id);
  });

  it('continues phase-g2plus from best-g2 and warm-starts the three architecture branches from it', () => {
    const bestG2 = tags.get('best-g2')!;
    const plus = onBranch('phase-g2plus');
    expect(plus.map((c) => c.step)).toEqual([4000, 3000]);
    expect(plus[1]!.parents).toEqual([bestG2]);
    for (const arch of ARCHS) {
      const own = onBranch(`arch-${arch}`);
      expect(
        own.map((c) => c.step),
        arch,
      ).toEqual([1000, 500]);
      expect(own[1]!.parents, `arch-${arch}'s first commit`).toEqual([bestG2]);
      expect(own[0]!.parents).toEqual([own[1]!.id]);
      expect(tags.get(`best-${arch}`)).toBe(bestByReward(own).id);
    }
    expect(commits.length).toBe(11);
    // The frozen embedding is best-g2's, the same tensor for the store (not even read by diff).
    const d = json<any>(['diff', 'best-g2', 'best-attention', '--stat', '--tensor', 'embed.weight']);
    expect(d.tensors.unchanged).toBe(1);
    expect(d.tensors.changed.length + d.tensors.added.length + d.tensors.removed.length).toBe(0);
    expect(json<{ dedupRatio: number }>(['stats']).dedupRatio).toBeGreaterThan(2);
  });

  it('packs the four best agents into a bundle that verifies, and a second store pulls it byte for byte', () => {
    const expected = [...tags].map(([name, commit]) => [name, commit]).sort();
    const bundle = okJson<{ ok: boolean; refs: { name: string; commit: string }[] }>([
      'verify',
      path.join(work, 'best-agents.ckvb'),
    ]);
    expect(bundle.ok).toBe(true);
    expect(bundle.refs.map((r) => [r.name.replace('refs/tags/', ''), r.commit]).sort()).toEqual(expected);
    const siteB = path.join(work, 'site-b', '.ckvc');
    const verify = okJson<{ ok: boolean; problems: unknown[]; checked: { commits: number } }>([
      'verify',
      '--read-data',
      '--store',
      siteB,
    ]);
    expect(verify.ok).toBe(true);
    expect(verify.problems).toEqual([]);
    expect(verify.checked.commits).toBe(8); // best-g2's 2 commits + 2 per architecture
    const pulled = okJson<Tag[]>(['tag', '--store', siteB]);
    expect(pulled.map((t) => [t.name.replace('bundle/', ''), t.commit]).sort()).toEqual(expected);
    for (const f of ['model.safetensors', 'trainer_state.json']) {
      const got = fs.readFileSync(path.join(work, 'site-b', 'agent', f));
      expect(got.equals(fs.readFileSync(path.join(work, 'ckpt', 'arch-attention', f))), f).toBe(true);
    }
  });

  it('refuses a WORK_DIR that is not empty, touching nothing', async () => {
    const r = await run('bash', [path.join(EXAMPLES, 'phase-workflow.sh')], root, {
      ...process.env,
      WORK_DIR: work,
      KEEP: '',
    });
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.stderr).toContain('is not empty');
    expect(fs.existsSync(store)).toBe(true);
  });
});

describe('examples/training-loop.mjs (npm run demo)', () => {
  it('runs to the end and verifies its store', () => {
    expect(demo.code, describeRun(demo)).toBe(0);
    expect(demo.stdout).toContain('no problems found');
    expect(demo.stdout).toContain('demo finished');
  });
});
