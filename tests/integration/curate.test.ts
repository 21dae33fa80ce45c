// Curating checkpoints through the CLI: config snapshots (show, extract, diff, label) and the checkout config
// guard; `best` and `tag --best`; moving aliases followed commit by commit; `log --metric` and `--graph`; and
// `prune` + `gc`: what is released, what is always kept, exit 19 on checkout of released data (before and after
// gc), byte-identical checkouts of everything kept, verify clean throughout, and what gc --dry-run and the
// default grace period leave alone.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { describeRun, errorCodes, expectOk, parseJson, type RunResult } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { copyStore, newStore, readRef, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, packBytes, packFiles, readTree, sha256, snapshotStore } from '../helpers/snapshots.js';
import { Semaphore } from '../helpers/async-tasks.js';
import { randomBytes, safetensorsBytes } from '../helpers/data.js';

afterAll(cleanupTemp);

/** A store whose ok/json/run return promises (the CLI runs as a child process, not blocking the event loop). */
interface AsyncStore {
  dir: string;
  store: string;
  ok(args: string[]): Promise<RunResult>;
  json<T = any>(args: string[]): Promise<T>;
  run(args: string[]): Promise<RunResult>;
}
const asyncOf = (t: TestStore): AsyncStore => ({
  dir: t.dir,
  store: t.store,
  ok: (a) => aok(t, a),
  json: (a) => ajson(t, a),
  run: (a) => arun(t, a),
});

/** The one error code of a failed run (asserts there is exactly one). */
function codeOf(r: { stderr: string }): string | undefined {
  const codes = errorCodes(r.stderr);
  return codes.length === 1 ? codes[0] : `${codes.length} codes: ${codes.join(' ')}`;
}

function hashDir(dir: string, only?: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of readTree(dir)) if (!only || only.includes(k)) m.set(k, sha256(v));
  return m;
}

const stderrLines = (r: { stderr: string }) => r.stderr.trim().split('\n').filter(Boolean);

// Async runners for the setups and the prune tests, which run side by side (at most 3 processes at a time).
const slots = new Semaphore(3);
const arun = (s: TestStore, args: string[]) => slots.use(() => s.runAsync(args));
const aok = async (s: TestStore, args: string[]) => expectOk(await arun(s, args), `ckvc ${args.join(' ')} failed`);
const ajson = async <T = any>(s: TestStore, args: string[]): Promise<T> =>
  parseJson<T>(await arun(s, [...args, '--json']), `ckvc ${args.join(' ')} --json`);

// The stores of the sections below are built side by side before any test runs.
beforeAll(async () => {
  await Promise.all([setupConfig(), setupBest(), setupPrune()]);
}, 120_000);

// Sections run side by side (one concurrent suite, so the 2 cores are used); the tests of a section that build
// on each other run in order (each waits for the one before it), those of an independent section all at once.
// Tests are registered round-robin across sections, so vitest's concurrency limit never fills with waiters.
type StepFn = (ctx: TestContext) => Promise<void> | void;
interface Section {
  name: string;
  ordered: boolean;
  init?: () => void;
  steps: { title: string; fn: StepFn }[];
}
const sections: Section[] = [];

/** Collects a section's tests: `it` and `beforeAll` inside `body` are the section's own. */
function section(
  name: string,
  body: (it: (title: string, fn: StepFn) => void, beforeAll: (fn: () => void) => void) => void,
  opts: { ordered?: boolean } = {},
): void {
  const sec: Section = { name, ordered: opts.ordered ?? true, steps: [] };
  body(
    (title, fn) => sec.steps.push({ title, fn }),
    (fn) => {
      sec.init = fn;
    },
  );
  sections.push(sec);
}

// =============================================================================================================
const cfgState = {} as {
  s: TestStore;
  work: string;
  cfg1: string; // YAML with comments, odd spacing, non-ASCII, CRLF line, no final newline
  cfg1Json: string; // the same values as JSON, keys reordered, 512.0 for 512
  cfg1Yaml2: string; // the same values, reformatted and reordered YAML
  cfg2: string; // different values
  payload: string;
  c1: string;
  c2: string;
  c3: string /* no config */;
  c4: string /* cfg1Json: same hash as c1 */;
  hash1: string;
  hash2: string;
  hash4: string;
};
const CFG1 =
  '# training config — base run (lr → peak)\nlr:   0.001    # peak\nmodel:\n    width: 512\n    layers: [1, 2,   3]\r\nname: "base"\t\n\n# trailing comment, no final newline';

async function setupConfig(): Promise<void> {
  const s = newStore('ckvc-cfg-');
  const work = tempDir('ckvc-cfg-in-');
  const cfg1 = path.join(work, 'train.yaml');
  fs.writeFileSync(cfg1, CFG1);
  const cfg1Json = path.join(work, 'same.json');
  fs.writeFileSync(cfg1Json, '{"name": "base", "model": {"layers": [1, 2, 3], "width": 512.0}, "lr": 1e-3}');
  const cfg1Yaml2 = path.join(work, 'same-reformatted.yaml');
  fs.writeFileSync(cfg1Yaml2, 'name: base\nmodel: {layers: [1, 2, 3], width: 512}\nlr: 1.0e-3\n');
  const cfg2 = path.join(work, 'other.yaml');
  fs.writeFileSync(cfg2, 'lr: 0.002\nmodel:\n  width: 512\n  layers: [1, 2]\nextra: true\n');
  const payload = path.join(work, 'weights.bin');
  fs.writeFileSync(payload, randomBytes(11, 3000));
  const r1 = await ajson(s, ['commit', payload, '-m', 'c1', '--config', cfg1]);
  const r2 = await ajson(s, ['commit', payload, '-m', 'c2', '--config', cfg2]);
  const r3 = await ajson(s, ['commit', payload, '-m', 'c3 without config']);
  const r4 = await ajson(s, ['commit', payload, '-m', 'c4', '--config', cfg1Json]);
  Object.assign(cfgState, {
    s,
    work,
    cfg1,
    cfg1Json,
    cfg1Yaml2,
    cfg2,
    payload,
    c1: r1.id,
    c2: r2.id,
    c3: r3.id,
    c4: r4.id,
    hash1: r1.configHash,
    hash2: r2.configHash,
    hash4: r4.configHash,
  });
}

section('config', (it, beforeAll) => {
  let s: AsyncStore;
  let work: string;
  let cfg1: string;
  let cfg1Json: string;
  let cfg1Yaml2: string;
  let cfg2: string;
  let payload: string;
  let c1 = '';
  let c2 = '';
  let c3 = '';
  let c4 = '';
  let hash1 = '';
  let hash2 = '';
  let hash4 = '';

  beforeAll(() => {
    ({ work, cfg1, cfg1Json, cfg1Yaml2, cfg2, payload, c1, c2, c3, c4, hash1, hash2, hash4 } = cfgState);
    s = asyncOf(cfgState.s);
  });

  it('the config hash is canonical: the same values as reordered JSON (512.0, 1e-3) hash the same', async () => {
    expect(hash1).toMatch(/^[0-9a-f]{64}$/);
    expect(hash4).toBe(hash1);
    expect(hash2).not.toBe(hash1);
  });

  it('config show prints the snapshot byte for byte (comments, spacing, CRLF, non-ASCII, no final newline)', async () => {
    const r = await s.ok(['config', 'show', c1]);
    expect(Buffer.from(r.stdout, 'utf8').equals(fs.readFileSync(cfg1))).toBe(true);
    // Default: HEAD (c4, the JSON one).
    expect((await s.ok(['config', 'show'])).stdout).toBe(fs.readFileSync(cfg1Json, 'utf8'));
    const j = await s.json(['config', 'show', c1]);
    expect(j).toMatchObject({ commit: c1, name: 'train.yaml', hash: hash1, format: 'yaml', text: CFG1 });
    expect(j.value).toEqual({ lr: 0.001, model: { width: 512, layers: [1, 2, 3] }, name: 'base' });
  });

  it('config show of a commit made without --config exits 14', async () => {
    const r = await s.run(['config', 'show', c3]);
    expect(r.code, describeRun(r)).toBe(14);
    expect(codeOf(r)).toBe('CKVC_PATH_NOT_FOUND');
  });

  it('config extract writes the same bytes; refuses to replace a different file without --force (exit 17)', async () => {
    const out = path.join(work, 'extracted.yaml');
    await s.ok(['config', 'extract', c1, '-o', out]);
    expect(fs.readFileSync(out).equals(fs.readFileSync(cfg1))).toBe(true);
    const other = path.join(work, 'occupied.yaml');
    fs.writeFileSync(other, 'mine: 1\n');
    const r = await s.run(['config', 'extract', c1, '-o', other]);
    expect(r.code, describeRun(r)).toBe(17);
    expect(codeOf(r)).toBe('CKVC_WOULD_OVERWRITE');
    expect(fs.readFileSync(other, 'utf8')).toBe('mine: 1\n');
    await s.ok(['config', 'extract', c1, '-o', other, '--force']);
    expect(fs.readFileSync(other).equals(fs.readFileSync(cfg1))).toBe(true);
  });

  it('config diff compares a revision with a file, two revisions, and finds reformatted configs the same', async () => {
    const expected = [
      { path: 'extra', kind: 'added', new: true },
      { path: 'lr', kind: 'changed', old: 0.001, new: 0.002 },
      { path: 'model.layers[2]', kind: 'removed', old: 3 },
      { path: 'name', kind: 'removed', old: 'base' },
    ];
    const sortP = (xs: any[]) => [...xs].sort((a, b) => (a.path < b.path ? -1 : 1));
    const vsFile = await s.json(['config', 'diff', c1, cfg2]);
    expect(vsFile.same).toBe(false);
    expect(vsFile.a).toMatchObject({ commit: c1, hash: hash1 });
    expect(vsFile.b).toMatchObject({ file: cfg2, hash: hash2 });
    expect(sortP(vsFile.changes)).toEqual(expected);
    expect(sortP((await s.json(['config', 'diff', c1, c2])).changes)).toEqual(expected);
    expect(await s.json(['config', 'diff', cfg1Yaml2, c1])).toMatchObject({ same: true, changes: [] });
    const text = (await s.ok(['config', 'diff', c1, cfg2])).stdout;
    expect(text).toMatch(/~ lr: 0\.001 -> 0\.002/);
    expect(text).toMatch(/\+ extra: true/);
    const r = await s.run(['config', 'diff', c1, c3]);
    expect(r.code, describeRun(r)).toBe(14);
  });

  it('config label: by prefix; shows in log --json, show --json, diff and config diff; "" removes it', async () => {
    const r = await s.json(['config', 'label', hash1.slice(0, 10), 'baseline lr']);
    expect(r).toEqual({ hash: hash1, label: 'baseline lr' });
    const log = await s.json(['log']);
    const byId = new Map(log.map((c: any) => [c.id, c]));
    expect((byId.get(c1) as any).configLabel).toBe('baseline lr');
    expect((byId.get(c4) as any).configLabel).toBe('baseline lr'); // same hash, other file
    expect((byId.get(c2) as any).configLabel).toBeUndefined();
    expect((byId.get(c3) as any).configLabel).toBeUndefined();
    expect((await s.json(['show', c1])).configLabel).toBe('baseline lr');
    const d = await s.json(['diff', c1, c2]);
    expect(d.a.configLabel).toBe('baseline lr');
    expect(d.b.configLabel).toBeUndefined();
    await s.json(['config', 'label', hash2, 'wider']);
    await s.json(['config', 'label', hash1, '']);
    const after = new Map((await s.json(['log'])).map((c: any) => [c.id, c.configLabel]));
    expect([c1, c2, c3, c4].map((c) => after.get(c))).toEqual([undefined, 'wider', undefined, undefined]);
  });

  it('config label refuses a non-hex hash (15) and an unknown prefix (14)', async () => {
    const bad = await s.run(['config', 'label', 'not-a-hash', 'x']);
    expect(bad.code, describeRun(bad)).toBe(15);
    expect(codeOf(bad)).toBe('CKVC_BAD_ARGUMENT');
    let prefix = 'abcdef';
    while (hash1.startsWith(prefix) || hash2.startsWith(prefix)) prefix = prefix === 'abcdef' ? 'fedcba' : '012345';
    const unknown = await s.run(['config', 'label', prefix, 'x']);
    expect(unknown.code, describeRun(unknown)).toBe(14);
  });

  it('checkout --config: the same values in reformatted, reordered YAML pass', async () => {
    const out = tempDir('ckvc-cfg-co-');
    await s.ok(['checkout', c1, '--to', out, '--config', cfg1Yaml2]);
    expect(fs.readFileSync(path.join(out, 'weights.bin')).equals(fs.readFileSync(payload))).toBe(true);
  });

  it('checkout --config with other values exits 20 CKVC_CONFIG_MISMATCH listing the keys, writing nothing', async () => {
    const out = path.join(tempDir('ckvc-cfg-co-'), 'target');
    const r = await s.run(['checkout', c1, '--to', out, '--config', cfg2]);
    expect(r.code, describeRun(r)).toBe(20);
    expect(codeOf(r)).toBe('CKVC_CONFIG_MISMATCH');
    expect(stderrLines(r)).toHaveLength(1);
    for (const key of ['lr', 'extra', 'model.layers[2]', 'name']) expect(r.stderr).toContain(key);
    expect(r.stderr).not.toContain('model.width');
    expect(fs.existsSync(out) ? fs.readdirSync(out) : []).toEqual([]);
    // A commit made without a config cannot match any.
    const none = await s.run(['checkout', c3, '--to', out, '--config', cfg1]);
    expect(none.code, describeRun(none)).toBe(20);
    expect(codeOf(none)).toBe('CKVC_CONFIG_MISMATCH');
    expect(fs.existsSync(out) ? fs.readdirSync(out) : []).toEqual([]);
  });

  it('checkout --config --allow-config-mismatch proceeds with a WARNING line naming the keys', async () => {
    const out = tempDir('ckvc-cfg-co-');
    const r = await s.run(['checkout', c1, '--to', out, '--config', cfg2, '--allow-config-mismatch']);
    expect(r.code, describeRun(r)).toBe(0);
    const warning = stderrLines(r).filter((l) => l.includes('WARNING'));
    expect(warning, describeRun(r)).toHaveLength(1);
    expect(warning[0]).toContain('lr');
    expect(fs.readFileSync(path.join(out, 'weights.bin')).equals(fs.readFileSync(payload))).toBe(true);
  });
});

// =============================================================================================================
const bestState = { id: {} as Record<string, string>, n: 0 } as {
  s: TestStore;
  work: string;
  id: Record<string, string>;
  n: number;
};

async function bestCommit(name: string, args: string[]): Promise<string> {
  const { s, work, id } = bestState;
  const f = path.join(work, `${name}.bin`);
  fs.writeFileSync(f, randomBytes(1000 + bestState.n++, 600));
  id[name] = (await ajson(s, ['commit', f, '-m', name, ...args])).id;
  return id[name]!;
}

async function setupBest(): Promise<void> {
  bestState.s = newStore('ckvc-best-');
  bestState.work = tempDir('ckvc-best-in-');
  await bestCommit('m1', ['--metric', 'loss=3', '--metric', 'acc=0.2', '--metric', 'score=4', '--step', '1']);
  await bestCommit('m2', ['--metric', 'loss=2', '--metric', 'acc=0.4', '--metric', 'score=5', '--step', '2']);
  await bestCommit('m3', ['--metric', 'loss=2', '--metric', 'acc=0.9', '--metric', 'score=5', '--step', '3']);
  await bestCommit('m4', ['--metric', 'loss=2.5', '--metric', 'acc=0.4', '--metric', 'score=1', '--step', '4']);
  await aok(bestState.s, ['branch', 'side', bestState.id.m2!]);
  await bestCommit('s1', ['-b', 'side', '--metric', 'loss=2.4', '--metric', 'acc=0.95']);
  await bestCommit('s2', ['-b', 'side', '--metric', 'loss=2.1']);
}

section('best', (it, beforeAll) => {
  let s: AsyncStore;
  const id = bestState.id;
  const best = (args: string[]) => s.json(['best', ...args]);

  beforeAll(() => {
    s = asyncOf(bestState.s);
  });

  it('guessed min for loss, ties go to the earliest commit', async () => {
    expect(await best(['--metric', 'loss', '-b', 'main'])).toMatchObject({
      id: id.m2,
      branch: 'main',
      metric: 'loss',
      mode: 'min',
      modeGuessed: true,
      value: 2,
      candidates: 4,
      step: 2,
    });
  });

  it('guessed max for other names; --min / --max override; max ties go to the earliest too', async () => {
    // Text mode prints the ID alone on stdout (acc: guessed max).
    const text = await s.ok(['best', '--metric', 'acc', '-b', 'main']);
    expect(text.stdout.trim()).toBe(id.m3);
    expect(text.stderr).toMatch(/highest, guessed from the name/);
    expect(await best(['--metric', 'acc', '--min', '-b', 'main'])).toMatchObject({
      id: id.m1,
      mode: 'min',
      modeGuessed: false,
      value: 0.2,
    });
    expect(await best(['--metric', 'loss', '--max', '-b', 'main'])).toMatchObject({
      id: id.m1,
      mode: 'max',
      modeGuessed: false,
      value: 3,
    });
    // Without -b: the current branch (HEAD stayed on main); score 5 twice: the earlier m2.
    expect(await best(['--metric', 'score'])).toMatchObject({
      id: id.m2,
      branch: 'main',
      mode: 'max',
      value: 5,
      candidates: 4,
    });
  });

  it('-b BRANCH ranks only the commits made on it, not the history it started from', async () => {
    // main's m2 (loss 2) is in side's ancestry, but side's own best is s2 (2.1).
    expect(await best(['--metric', 'loss', '-b', 'side'])).toMatchObject({
      id: id.s2,
      branch: 'side',
      value: 2.1,
      candidates: 2,
    });
    const r = await s.run(['best', '--metric', 'score', '-b', 'side']);
    expect(r.code, `score exists only on main's commits: ${describeRun(r)}`).toBe(14);
    expect(codeOf(r)).toBe('CKVC_NO_METRIC');
  });

  it('an unknown metric exits 14, naming the metrics the branch records and the one a typo meant', async () => {
    const m = await s.run(['best', '--metric', 'nosuch', '-b', 'main']);
    expect(m.code, describeRun(m)).toBe(14);
    expect(codeOf(m)).toBe('CKVC_NO_METRIC');
    expect(m.stderr).toMatch(/; it records .*'loss'/);
    // A branch deleted and made again elsewhere: its old summary entries are not its names.
    const t = newStore('ckvc-best-names-');
    const side = path.join(t.dir, 'side-data');
    fs.mkdirSync(side);
    fs.writeFileSync(path.join(side, 'x.bin'), 'main');
    t.ok(['commit', side, '-m', 'main', '-b', 'main', '--metric', 'loss=1']);
    fs.writeFileSync(path.join(side, 'x.bin'), 'side');
    t.ok(['commit', side, '-m', 'side', '-b', 'names', '--metric', 'perplexity=3']);
    t.ok(['switch', 'main']);
    t.ok(['branch', '-d', 'names']);
    t.ok(['branch', 'names', 'main']);
    const stale = t.run(['best', '--metric', 'perplexit', '-b', 'names']);
    expect(codeOf(stale)).toBe('CKVC_NO_METRIC');
    expect(stale.stderr).not.toContain('perplexity');
    const typo = await s.run(['best', '--metric', 'los', '-b', 'main']);
    expect(codeOf(typo)).toBe('CKVC_NO_METRIC');
    expect(typo.stderr).toContain("the metric 'los' to rank (did you mean 'loss'?)");
  });

  it('tag NAME --best KEY tags the best commit of -b BRANCH; an existing tag name exits 13', async () => {
    await s.ok(['tag', 'best-loss', '--best', 'loss', '-b', 'main']);
    expect((await s.json(['show', 'best-loss'])).id).toBe(id.m2);
    await s.ok(['tag', 'worst-acc', '--best', 'acc', '--min', '-b', 'side']);
    expect(readRef(s.store, 'refs/tags/worst-acc')).toBe(id.s1); // side's only commit with acc
    const r = await s.run(['tag', 'best-loss', '--best', 'acc', '-b', 'main']);
    expect(r.code, describeRun(r)).toBe(13);
    expect(readRef(s.store, 'refs/tags/best-loss')).toBe(id.m2);
  });

  it("a branch just created from another branch's commit has no commit of its own to rank (exit 14)", async () => {
    await s.ok(['branch', 'fresh', id.m2!]);
    const r = await s.run(['best', '--metric', 'loss', '-b', 'fresh']);
    expect(r.code, `m2 was made on main, not on fresh: ${describeRun(r)}`).toBe(14);
  });

  it("best -b BRANCH and an alias tracking the same metric on BRANCH agree after the branch's first commit", async () => {
    await s.json(['alias', 'freshbest', '--track', 'loss', '-b', 'fresh']);
    const f = path.join(bestState.work, 'f1.bin');
    fs.writeFileSync(f, randomBytes(1998, 600));
    const c = await s.json(['commit', f, '-b', 'fresh', '-m', 'f1', '--metric', 'loss=2.4']);
    const b = await best(['--metric', 'loss', '-b', 'fresh']);
    expect(b).toMatchObject({ id: c.id, value: 2.4, candidates: 1 });
    expect(
      readRef(s.store, 'refs/aliases/freshbest'),
      `alias freshbest should name fresh's best (${c.id}), as 'ckvc best -b fresh' does`,
    ).toBe(b.id);
  });

  it('log --metric shows the chosen metrics as columns, "-" where a commit lacks one', async () => {
    const lines = (await s.ok(['log', 'side', '--metric', 'loss', '--metric', 'acc'])).stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/commit\s+loss\s+acc/);
    const line = (name: string) => {
      const l = lines.find(
        (x) =>
          x.startsWith(id[name]!.slice(0, 12)) ||
          x.includes(` ${id[name]!.slice(0, 12)} `) ||
          x.includes(id[name]!.slice(0, 12)),
      );
      if (!l) throw new Error(`no line for ${name} in:\n${lines.join('\n')}`);
      return l;
    };
    expect(line('s2')).toMatch(/\s2\.1\s+-\s/);
    expect(line('s1')).toMatch(/\s2\.4\s+0\.95\s/);
    expect(line('m1')).toMatch(/\s3\s+0\.2\s/);
    expect(lines.filter((l) => /[0-9a-f]{12}/.test(l))).toHaveLength(4); // s2 s1 m2 m1
  });

  it('log --graph draws a warm start (commit -b NEW --parent OTHER) with a merge connector', async () => {
    await s.ok(['branch', 'warm', id.m4!]);
    const f = path.join(bestState.work, 'w1.bin');
    fs.writeFileSync(f, randomBytes(1999, 600));
    const w: string = (
      await s.json(['commit', f, '-b', 'warm', '--parent', 'side', '-m', 'w1', '--metric', 'loss=1.9'])
    ).id;
    expect((await s.json(['show', w])).parents).toEqual([id.m4, id.s2]);
    const lines = (await s.ok(['log', 'warm', '--graph'])).stdout.trimEnd().split('\n');
    const at = lines.findIndex((l) => l.includes(w.slice(0, 12)));
    expect(at, lines.join('\n')).toBeGreaterThanOrEqual(0);
    expect(lines[at]!.trimStart().startsWith('*'), lines.join('\n')).toBe(true);
    expect(lines[at + 1], lines.join('\n')).toMatch(/^\|\\\s*$/);
    // Both lines of history are drawn and join again below the fork point (m2).
    for (const name of ['m4', 's2', 's1', 'm3', 'm2', 'm1'])
      expect(
        lines.some((l) => l.includes(id[name]!.slice(0, 12))),
        name,
      ).toBe(true);
    expect(
      lines.some((l) => /^\|\/\s*$/.test(l)),
      lines.join('\n'),
    ).toBe(true);
  });
});

// =============================================================================================================
section('aliases', (it, beforeAll) => {
  let s: AsyncStore;
  let work: string;
  let n = 0;
  /** Commits with the given metrics; returns the ID and the aliases it moved (from commit --json). */
  const commit = async (args: string[]): Promise<{ id: string; aliases: string[] }> => {
    const f = path.join(work, `c${n}.bin`);
    fs.writeFileSync(f, randomBytes(5000 + n++, 500));
    const r = await s.json(['commit', f, '-m', `c${n}`, ...args]);
    const aliases: string[] = r.aliases === undefined ? [] : [...r.aliases].sort();
    return { id: r.id, aliases };
  };
  const at = (name: string) => readRef(s.store, `refs/aliases/${name}`);

  beforeAll(() => {
    s = asyncOf(newStore('ckvc-alias-'));
    work = tempDir('ckvc-alias-in-');
  });

  it('an alias follows the best value commit by commit: strictly better moves it, ties and worse do not', async () => {
    const a0 = (await commit(['--metric', 'acc=0.1', '--metric', 'loss=5'])).id;
    const created = await s.json(['alias', 'top', '--track', 'acc', '-b', 'main']);
    expect(created).toMatchObject({ name: 'top', track: 'acc', mode: 'max', branch: 'main', id: a0, value: 0.1 });
    // --min on a name that would be guessed "max"; no commit has `val` yet.
    const low = await s.json(['alias', 'low', '--track', 'val', '--min', '-b', 'main']);
    expect(low).toMatchObject({ name: 'low', track: 'val', mode: 'min', branch: 'main' });
    expect(low.id).toBeUndefined();
    // What the tip records is told beside "no commit has it yet", so that a mistyped metric shows at once.
    expect(low.tipMetrics).toEqual(['acc', 'loss']);
    const typo = await s.ok(['alias', 'typo', '--track', 'los', '-b', 'main']);
    expect(typo.stderr).toContain('no commit has it yet (the tip of main records acc, loss)');
    const none = await s.ok(['alias', 'later', '--track', 'loss', '-b', 'phase2']);
    expect(none.stderr).toContain('no commit has it yet (branch phase2 has no commit yet)');
    await s.ok(['alias', '-d', 'typo']);
    await s.ok(['alias', '-d', 'later']);
    expect(at('top')).toBe(a0);
    expect(at('low')).toBeUndefined();

    await s.ok(['branch', 'side', a0]);
    await s.json(['alias', 'sidetop', '--track', 'acc', '-b', 'side']);
    const sideStart = at('sidetop'); // (whether a fresh branch's start commit counts is tested with `best` above)

    // [acc, val] per commit -> where top and low point afterwards
    const steps: { args: string[]; top: number | 'same'; low: number | 'same' | null }[] = [
      { args: ['--metric', 'acc=0.5', '--metric', 'val=3'], top: 1, low: 1 },
      { args: ['--metric', 'acc=0.7', '--metric', 'val=4'], top: 2, low: 'same' },
      { args: ['--metric', 'acc=0.6', '--metric', 'val=2'], top: 'same', low: 3 },
      { args: ['--metric', 'acc=0.7', '--metric', 'val=2'], top: 'same', low: 'same' }, // ties
      { args: ['--metric', 'acc=0.9', '--metric', 'val=1'], top: 5, low: 5 },
      { args: ['--metric', 'loss=1'], top: 'same', low: 'same' }, // neither tracked metric
    ];
    const ids: string[] = [a0];
    let top = a0;
    let lowAt: string | undefined;
    for (const [i, st] of steps.entries()) {
      const c = await commit(st.args);
      ids.push(c.id);
      const expectMoved: string[] = [];
      if (st.top !== 'same') {
        top = ids[st.top]!;
        expectMoved.push('top');
      }
      if (st.low !== 'same' && st.low !== null) {
        lowAt = ids[st.low]!;
        expectMoved.push('low');
      }
      expect(at('top'), `after commit ${i + 1}`).toBe(top);
      expect(at('low'), `after commit ${i + 1}`).toBe(lowAt);
      expect(c.aliases, `commit ${i + 1} --json aliases`).toEqual(expectMoved.sort());
      expect(at('sidetop'), `after commit ${i + 1} to main`).toBe(sideStart);
    }
    // Aliases resolve as revisions.
    const shown = await s.json(['show', 'top']);
    expect(shown.id).toBe(ids[5]);
    expect(shown.refs).toContain('alias: top');
  });

  it('an alias of another branch moves only with commits to its branch', async () => {
    const mainTop = at('top');
    const s1 = await commit(['-b', 'side', '--metric', 'acc=0.95']);
    expect(s1.aliases).toEqual(['sidetop']);
    expect(at('sidetop')).toBe(s1.id);
    expect(at('top')).toBe(mainTop); // 0.95 beats main's best, but it is not on main
  });

  it('listing shows every alias with what it tracks and where it points', async () => {
    const list = await s.json(['alias']);
    const by = Object.fromEntries(list.map((a: any) => [a.name, a]));
    expect(Object.keys(by).sort()).toEqual(['low', 'sidetop', 'top']);
    expect(by.top).toMatchObject({ track: 'acc', mode: 'max', branch: 'main', id: at('top'), value: 0.9 });
    expect(by.low).toMatchObject({ track: 'val', mode: 'min', branch: 'main', id: at('low'), value: 1 });
    expect(by.sidetop).toMatchObject({ track: 'acc', mode: 'max', branch: 'side', id: at('sidetop'), value: 0.95 });
    const text = (await s.ok(['alias'])).stdout;
    expect(text).toMatch(/top\s+[0-9a-f]{12}\s+max acc=0\.9 on main/);
  });

  it('creating: an existing alias needs --force (13); a branch name is refused (13); --track is required (2)', async () => {
    const again = await s.run(['alias', 'top', '--track', 'loss', '-b', 'main']);
    expect(again.code, describeRun(again)).toBe(13);
    expect(codeOf(again)).toBe('CKVC_REF_CONFLICT');
    const clash = await s.run(['alias', 'side', '--track', 'acc']);
    expect(clash.code, describeRun(clash)).toBe(13);
    const noTrack = await s.run(['alias', 'nothing']);
    expect(noTrack.code, describeRun(noTrack)).toBe(2);
    expect(codeOf(noTrack)).toBe('CKVC_USAGE');
    // --force redefines and recomputes: the lowest loss on main is main's tip (loss 1; the first commit had 5).
    const tip = readRef(s.store, 'refs/heads/main');
    expect(await s.json(['alias', 'top', '--track', 'loss', '-b', 'main', '--force'])).toMatchObject({
      track: 'loss',
      mode: 'min',
      id: tip,
      value: 1,
    });
    expect(at('top')).toBe(tip);
  });

  it('-d deletes it: not listed, no longer a revision, not moved by later commits', async () => {
    await s.ok(['alias', '-d', 'top']);
    expect(at('top')).toBeUndefined();
    expect((await s.json(['alias'])).map((a: any) => a.name).sort()).toEqual(['low', 'sidetop']);
    const r = await s.run(['show', 'top']);
    expect(r.code, describeRun(r)).toBe(14);
    const c = await commit(['--metric', 'loss=0.1', '--metric', 'val=0.5']);
    expect(c.aliases).toEqual(['low']);
    expect(at('top')).toBeUndefined();
    const gone = await s.run(['alias', '-d', 'top']);
    expect(gone.code, describeRun(gone)).toBe(14);
  });
});

// =============================================================================================================
// Prune and gc. Template: main p1..p6 (each a folder: model.safetensors with a `base` tensor shared by every
// commit plus w, opt.m, opt.v of its own; extra.safetensors with `emb`; an opaque notes.txt), loss per commit
// below; branch `old` at p1, alias `bestloss` (min loss, so p2), plain tag v1 at p3. Tensor data is random
// bits (stored raw), so freed byte counts are predictable. Each test works on its own copy, side by side.
const pruneState = { ids: [] as string[], files: [] as Map<string, string>[], dirs: [] as string[] } as {
  T: TestStore;
  ids: string[];
  files: Map<string, string>[];
  dirs: string[];
};
const LOSS = [NaN, 7, 1, 5, 3, 6, 2];
const MODEL_TENSORS = ['base', 'w', 'opt.m', 'opt.v'];

async function setupPrune(): Promise<void> {
  const T = newStore('ckvc-prune-t-');
  pruneState.T = T;
  const work = tempDir('ckvc-prune-in-');
  const base = randomBytes(999, 8192);
  for (let k = 1; k <= 6; k++) {
    const dir = path.join(work, `p${k}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(
      path.join(dir, 'model.safetensors'),
      safetensorsBytes({
        base: { dtype: 'F32', shape: [2048], bytes: base },
        w: { dtype: 'F32', shape: [1024], bytes: randomBytes(k * 10 + 1, 4096) },
        'opt.m': { dtype: 'F32', shape: [1024], bytes: randomBytes(k * 10 + 2, 4096) },
        'opt.v': { dtype: 'F32', shape: [1024], bytes: randomBytes(k * 10 + 3, 4096) },
      }),
    );
    fs.writeFileSync(
      path.join(dir, 'extra.safetensors'),
      safetensorsBytes({ emb: { dtype: 'F32', shape: [512], bytes: randomBytes(k * 10 + 4, 2048) } }),
    );
    fs.writeFileSync(path.join(dir, 'notes.txt'), randomBytes(k * 10 + 5, 1500));
    pruneState.ids[k] = (
      await ajson(T, ['commit', dir, '-m', `p${k}`, '--step', String(k * 100), '--metric', `loss=${LOSS[k]}`])
    ).id;
    pruneState.files[k] = hashDir(dir);
    pruneState.dirs[k] = dir;
    if (k === 1) await ajson(T, ['alias', 'bestloss', '--track', 'loss', '-b', 'main']);
  }
  await aok(T, ['branch', 'old', pruneState.ids[1]!]);
  await aok(T, ['tag', 'v1', pruneState.ids[3]!]);
  expect(readRef(T.store, 'refs/aliases/bestloss')).toBe(pruneState.ids[2]);
}

section(
  'prune',
  (it) => {
    const { ids, files } = pruneState;
    const pick = (m: Map<string, string>, keys: string[]) => new Map([...m].filter(([k]) => keys.includes(k)));
    const prunedIds = (r: any) => r.pruned.map((p: any) => p.id);
    const recordFiles = (s: TestStore) =>
      fs.existsSync(path.join(s.store, 'pruned')) ? fs.readdirSync(path.join(s.store, 'pruned')).sort() : [];
    const record = (s: TestStore, k: number) =>
      JSON.parse(fs.readFileSync(path.join(s.store, 'pruned', `${ids[k]}.json`), 'utf8'));

    /** Problems unless checkout of p<k> exits 19 CKVC_PRUNED in one line naming p<k> and one of `tensors`. */
    async function prunedProblems(
      s: TestStore,
      k: number,
      tensors: string[],
      paths: string[] = [],
    ): Promise<{ problems: string[]; stderr: string }> {
      const out = tempDir('ckvc-prune-co-');
      const r = await arun(s, ['checkout', ids[k]!, '--to', out, ...paths.flatMap((p) => ['--path', p])]);
      const problems: string[] = [];
      if (r.code !== 19 || codeOf(r) !== 'CKVC_PRUNED' || stderrLines(r).length !== 1)
        problems.push(`p${k} ${paths.join(' ')}: expected exit 19 CKVC_PRUNED: ${describeRun(r)}`);
      else if (!tensors.some((t) => r.stderr.includes(`'${t}'`)) || !r.stderr.includes(ids[k]!.slice(0, 12)))
        problems.push(`p${k}: the message names neither the commit nor one of ${tensors.join(', ')}: ${r.stderr}`);
      if (fs.readdirSync(out).length) problems.push(`p${k}: a refused checkout wrote ${fs.readdirSync(out).join(' ')}`);
      return { problems, stderr: r.stderr };
    }

    /** Problems unless p<k> (or some of its files) checks out byte-identical. */
    async function intactProblems(s: TestStore, k: number, only?: string[]): Promise<string[]> {
      const out = tempDir('ckvc-prune-co-');
      const r = await arun(s, ['checkout', ids[k]!, '--to', out, ...(only ?? []).flatMap((p) => ['--path', p])]);
      if (r.code !== 0) return [`checkout p${k} ${(only ?? []).join(' ')}: ${describeRun(r)}`];
      const want = only ? pick(files[k]!, only) : files[k]!;
      const got = hashDir(out);
      const out2: string[] = [];
      for (const [p, h] of want) if (got.get(p) !== h) out2.push(`p${k} ${p}: ${got.has(p) ? 'differs' : 'missing'}`);
      for (const p of got.keys()) if (!want.has(p)) out2.push(`p${k}: extra file ${p}`);
      return out2;
    }

    async function verifyProblems(s: TestStore, when: string): Promise<string[]> {
      const v = await arun(s, ['verify', '--read-data']);
      return v.code === 0 ? [] : [`verify --read-data ${when}: ${describeRun(v)}`];
    }

    const all = async (...ps: Promise<string[]>[]) => (await Promise.all(ps)).flat();

    it('prune --dry-run reports and changes nothing (every store file byte-identical, refs the same)', async ({
      expect,
    }) => {
      const s = copyStore(pruneState.T, 'ckvc-cur-copy-');
      const before = snapshotStore(s.store);
      const names = ['refs/heads/main', 'refs/heads/old', 'refs/tags/v1', 'refs/aliases/bestloss'];
      const refs = names.map((r) => readRef(s.store, r));
      const r = await ajson(s, ['prune', '--keep-last', '1', '--dry-run']);
      expect(r.dryRun).toBe(true);
      expect(prunedIds(r)).toEqual([ids[5], ids[4]]);
      expect(r.kept.find((k: any) => k.id === ids[3]).reasons).toEqual(['tag v1']);
      const human = await aok(s, ['prune', '--keep-last', '1', '--dry-run', '--include-tagged']);
      expect(human.stdout).toMatch(
        new RegExp(`would prune ${ids[3]!.slice(0, 12)}.*tag v1: its bytes stay while named`),
      );
      expect(r.releasedBytes).toBeGreaterThan(0);
      expect((await aok(s, ['prune', '--keep-last', '1', '--dry-run', '--tensors', 'opt*'])).stdout).toMatch(
        /would prune/,
      );
      expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
      expect(names.map((x) => readRef(s.store, x))).toEqual(refs);
      expect(recordFiles(s)).toEqual([]);
    });

    it('commits named by a branch, an alias or a tag are kept; --include-tagged prunes tagged ones; --keep-best keeps what it says', async ({
      expect,
    }) => {
      const s = copyStore(pruneState.T, 'ckvc-cur-copy-');
      const dry = (extra: string[]) => ajson(s, ['prune', '--keep-last', '1', '--dry-run', ...extra]);
      const [plain, tagged, best3, max2] = await Promise.all([
        dry([]),
        dry(['--include-tagged']),
        dry(['--keep-best', '3', '--metric', 'loss']),
        dry(['--keep-best', '2', '--metric', 'loss', '--max']),
      ]);
      const kept = Object.fromEntries(plain.kept.map((k: any) => [k.id, k.reasons.join('; ')]));
      expect(Object.keys(kept).sort()).toEqual([ids[1], ids[2], ids[3], ids[6]].sort());
      expect(kept[ids[1]!]).toMatch(/branch old/);
      expect(kept[ids[2]!]).toMatch(/alias bestloss/);
      expect(kept[ids[3]!]).toMatch(/tag v1/);
      expect(kept[ids[6]!]).toMatch(/last 1/);
      expect(prunedIds(tagged)).toEqual([ids[5], ids[4], ids[3]]);
      expect(tagged.pruned.find((p: any) => p.id === ids[3]).names).toEqual(['tag v1']);
      expect(prunedIds(best3)).toEqual([ids[5]]); // best 3 by (guessed) min loss: p2 p6 p4
      expect(prunedIds(max2)).toEqual([ids[4]]); // best 2 by max loss: p1 p5
      const r = await ajson(s, ['prune', '--keep-last', '1', '--keep-tagged', '--keep-best', '3', '--metric', 'loss']);
      expect(prunedIds(r)).toEqual([ids[5]]);
      expect(recordFiles(s)).toEqual([`${ids[5]}.json`]);
      await ajson(s, ['gc', '--grace', '0']);
      const p5 = await prunedProblems(s, 5, MODEL_TENSORS.concat('emb'));
      expect([
        ...p5.problems,
        ...(await all(intactProblems(s, 3), intactProblems(s, 4), verifyProblems(s, 'after prune and gc'))),
      ]).toEqual([]);
    });

    it("prune releases every file's data: checkout exits 19 naming the tensor, before and after gc; gc frees bytes; everything kept is byte-identical", async ({
      expect,
    }) => {
      const s = copyStore(pruneState.T, 'ckvc-cur-copy-');
      const r = await ajson(s, ['prune', '--keep-last', '1']);
      expect(prunedIds(r)).toEqual([ids[5], ids[4]]);
      expect(recordFiles(s)).toEqual([ids[4], ids[5]].map((id) => `${id}.json`).sort());
      const rec = record(s, 4);
      expect(rec).toMatchObject({ commit: ids[4], tensors: null });
      const [shown, tip] = await Promise.all([ajson(s, ['show', ids[4]!]), ajson(s, ['show', ids[6]!])]);
      expect(shown.pruned).toEqual({ time: rec.time, tensors: null, files: null });
      expect(shown.metrics).toEqual({ loss: 3 });
      expect(tip.pruned).toBeUndefined();

      // Before gc the data is still on disk, but the answer must not depend on gc's timing.
      const before19 = await prunedProblems(s, 4, MODEL_TENSORS.concat('emb'));
      expect([...before19.problems, ...(await verifyProblems(s, 'after prune'))]).toEqual([]);

      const bytesBefore = packBytes(s.store);
      const gc = await ajson(s, ['gc', '--grace', '0']);
      expect(gc.dryRun).toBe(false);
      expect(gc.deadObjects).toBeGreaterThan(0);
      expect(gc.bytesBefore).toBe(bytesBefore);
      expect(gc.bytesAfter).toBe(packBytes(s.store));
      expect(packBytes(s.store)).toBe(bytesBefore - gc.bytesFreed);
      // 2 commits x (w, opt.m, opt.v: 4 KiB, emb: 2 KiB, notes.txt: 1500 B) were released; the shared 8 KiB `base`
      // and the unchanged safetensors headers were not.
      expect(gc.bytesFreed).toBeGreaterThan(2 * (3 * 4096 + 2048 + 1500));
      expect(gc.bytesFreed).toBeLessThan(2 * (3 * 4096 + 2048) + 8192);

      const after19 = await prunedProblems(s, 4, MODEL_TENSORS.concat('emb'));
      expect(after19.stderr).toBe(before19.stderr);
      const p5 = await prunedProblems(s, 5, MODEL_TENSORS, ['model.safetensors']);
      // Opaque files are released whole too (FORMAT.md §13 "files").
      const notes = await arun(s, ['checkout', ids[5]!, '--to', tempDir('ckvc-prune-co-'), '--path', 'notes.txt']);
      expect(notes.code, describeRun(notes)).toBe(19);
      expect(notes.stderr).toContain('notes.txt');
      expect(notes.stderr).toContain('the whole file');
      expect([
        ...after19.problems,
        ...p5.problems,
        ...(await all(
          intactProblems(s, 1),
          intactProblems(s, 2),
          intactProblems(s, 3),
          intactProblems(s, 6),
          verifyProblems(s, 'after gc'),
        )),
      ]).toEqual([]);
      // Commits, metrics and history stay forever; nothing is left to free.
      const [log, again] = await Promise.all([ajson(s, ['log', 'main']), ajson(s, ['gc', '--grace', '0'])]);
      expect(log.map((c: any) => c.id)).toEqual([6, 5, 4, 3, 2, 1].map((k) => ids[k]));
      expect(log.map((c: any) => c.metrics.loss)).toEqual([2, 6, 3, 5, 1, 7]);
      expect(again).toMatchObject({ deadObjects: 0, bytesFreed: 0, packsDeleted: 0 });

      // The same data committed again after gc freed it: the released chunks must be stored anew, not assumed
      // present because the (kept) tensor objects still name them.
      const re = await ajson(s, ['commit', pruneState.dirs[4]!, '-b', 'again', '-m', 'p4 once more']);
      expect(re.newBytes).toBeGreaterThanOrEqual(3 * 4096 + 2048); // w, opt.m, opt.v, emb
      const out = tempDir('ckvc-prune-co-');
      await aok(s, ['checkout', re.id, '--to', out]);
      expect(hashDir(out)).toEqual(files[4]);
      expect(await verifyProblems(s, 'after committing released data again')).toEqual([]);
    });

    it('prune --tensors GLOB releases only the matching tensors: other files check out; records merge (null wins, first time kept)', async ({
      expect,
    }) => {
      const s = copyStore(pruneState.T, 'ckvc-cur-copy-');
      const r = await ajson(s, ['prune', '--keep-last', '1', '--tensors', 'opt*']);
      expect(r.tensors).toEqual(['opt*']);
      expect(prunedIds(r)).toEqual([ids[5], ids[4]]);
      expect((await ajson(s, ['show', ids[4]!])).pruned.tensors).toEqual(['opt*']);
      const gc = await ajson(s, ['gc', '--grace', '0']);
      expect(gc.bytesFreed).toBeGreaterThan(2 * 2 * 4096); // opt.m + opt.v of 2 commits
      expect(gc.bytesFreed).toBeLessThan(2 * 2 * 4096 + 2048); // not w, emb or base
      const p4 = await prunedProblems(s, 4, ['opt.m', 'opt.v']);
      const p5 = await prunedProblems(s, 5, ['opt.m', 'opt.v'], ['model.safetensors']);
      expect([
        ...p4.problems,
        ...p5.problems,
        ...(await all(
          intactProblems(s, 4, ['extra.safetensors', 'notes.txt']),
          intactProblems(s, 6),
          verifyProblems(s, 'after prune --tensors and gc'),
        )),
      ]).toEqual([]);

      const first = record(s, 4);
      await ajson(s, ['prune', '--keep-last', '1', '--tensors', 'emb']);
      expect(record(s, 4)).toEqual({ commit: ids[4], time: first.time, tensors: ['emb', 'opt*'] });
      expect((await prunedProblems(s, 4, ['emb'], ['extra.safetensors'])).problems).toEqual([]);
      await ajson(s, ['prune', '--keep-last', '1']);
      expect(record(s, 4)).toEqual({ commit: ids[4], time: first.time, tensors: null, files: null });
      expect((await prunedProblems(s, 4, ['base', 'w'], ['model.safetensors'])).problems).toEqual([]);
    });

    it('prune --tensors refuses a glob without ":" that reaches tensors only through FILE:NAME (older versions would release them), changing nothing', async ({
      expect,
    }) => {
      const s = copyStore(pruneState.T, 'ckvc-cur-copy-');
      const before = snapshotStore(s.store);
      const r = await s.run(['prune', '--keep-last', '1', '--tensors', 'model*']);
      expect(r.code, describeRun(r)).toBe(15);
      expect(codeOf(r)).toBe('CKVC_BAD_ARGUMENT');
      expect(r.stderr).toMatch(
        /'model\*' reaches across the ':' of 'model\.safetensors:[^']+'.*'model\.safetensors:model\*'/,
      );
      expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
      // Said with the file, it means the same to every version: that file's tensors.
      const ok = await ajson(s, ['prune', '--keep-last', '1', '--tensors', 'model.safetensors:*']);
      expect(ok.tensors).toEqual(['model.safetensors:*']);
    });

    it('prune refuses a --tensors or --files glob that matches nothing it would prune (exit 14), changing nothing', async ({
      expect,
    }) => {
      const s = copyStore(pruneState.T, 'ckvc-cur-copy-');
      const before = snapshotStore(s.store);
      for (const [option, glob, what] of [
        ['--tensors', 'optimiser*', 'tensor'],
        ['--tensors', 'nothere.pt:*', 'tensor'],
        ['--files', '*.pkl', 'file'],
      ] as const) {
        const r = await s.run(['prune', '--keep-last', '1', '--tensors', 'opt*', option, glob]);
        expect(r.code, describeRun(r)).toBe(14);
        expect(codeOf(r)).toBe('CKVC_PATH_NOT_FOUND');
        expect(r.stderr).toContain(`${option} '${glob}' matches no ${what} of the`);
      }
      expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
    });

    it('gc with the default grace (1h) deletes nothing new; gc --dry-run changes nothing and predicts the real run', async ({
      expect,
    }) => {
      const s = copyStore(pruneState.T, 'ckvc-cur-copy-');
      await ajson(s, ['prune', '--keep-last', '1']);
      const before = snapshotStore(s.store);
      const young = await ajson(s, ['gc']);
      expect(young).toMatchObject({
        dryRun: false,
        graceMs: 3_600_000,
        deadObjects: 0,
        bytesFreed: 0,
        packsDeleted: 0,
        packsRewritten: 0,
      });
      expect(young.youngDeadObjects).toBeGreaterThan(0);
      expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
      const dry = await ajson(s, ['gc', '--dry-run', '--grace', '0']);
      expect(dry.dryRun).toBe(true);
      expect(dry.deadObjects).toBeGreaterThan(0);
      expect(dry.bytesFreed).toBeGreaterThan(0);
      expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
      const real = await ajson(s, ['gc', '--grace', '0']);
      expect(real).toMatchObject({
        deadObjects: dry.deadObjects,
        liveObjects: dry.liveObjects,
        packsDeleted: dry.packsDeleted,
        packsRewritten: dry.packsRewritten,
        packsBefore: dry.packsBefore,
        packsAfter: dry.packsAfter,
      });
      expect(real.bytesFreed).toBeGreaterThan(dry.bytesFreed * 0.9);
      expect(real.bytesFreed).toBeLessThan(dry.bytesFreed * 1.1 + 1024);
      expect(packFiles(s.store)).toHaveLength(real.packsAfter);
      const bad = await arun(s, ['gc', '--grace', 'soon']);
      expect(bad.code, describeRun(bad)).toBe(15);
    });
  },
  { ordered: false },
);

// ---------------------------------------------------------------------------------------------------------------
describe.concurrent('curating: config, best, aliases, prune and gc', () => {
  const longest = Math.max(...sections.map((x) => x.steps.length));
  for (let i = 0; i < longest; i++) {
    for (const sec of sections) {
      const step = sec.steps[i];
      if (!step) continue;
      const done = ((step as any).done = deferred());
      const before = i > 0 && sec.ordered ? (sec.steps[i - 1] as any).done.promise : Promise.resolve();
      it(`${sec.name}: ${step.title}`, { timeout: 180_000 }, async (ctx) => {
        try {
          await before;
          if (sec.init) {
            const init = sec.init;
            sec.init = undefined;
            init();
          }
          await step.fn(ctx);
        } finally {
          done.resolve();
        }
      });
    }
  }
});

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
