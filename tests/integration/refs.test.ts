// Branches, tags, HEAD, reflogs and revision syntax through the CLI.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ckvc, describeRun, errorCodes, REPO_ROOT } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, copyStore, newStore, readRef, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, snapshotStore } from '../helpers/snapshots.js';
import { randomBytes } from '../helpers/data.js';
import { pool } from '../helpers/async-tasks.js';

afterAll(cleanupTemp);

describe('branches, tags and revisions', () => {
  let s: TestStore;
  let data: string;
  let c1: string;
  let c2: string;
  let c3: string;

  const file = (name: string, seed: number) => {
    const p = path.join(data, name);
    fs.writeFileSync(p, randomBytes(seed, 4096));
    return p;
  };

  beforeAll(() => {
    s = newStore();
    data = tempDir('ckvc-data-');
    c1 = commitId(s, [file('a.bin', 1), '-m', 'first', '--metric', 'loss=0.9', '--step', '100']);
    c2 = commitId(s, [
      file('a.bin', 2),
      '-m',
      'second',
      '--metric',
      'loss=0.5',
      '--metric',
      'eval/acc=0.7',
      '--step',
      '200',
      '--epoch',
      '1.5',
      '--run',
      'r1',
      '--label',
      'phase=g2',
    ]);
    c3 = commitId(s, [file('a.bin', 3), '-m', 'third\nwith a body', '--metric', 'loss=0.4', '--step', '300']);
  });

  it('the first commit on a fresh store lands on main; log lists newest first with parents', () => {
    const log = s.json(['log']);
    expect(log.map((c: any) => c.id)).toEqual([c3, c2, c1]);
    expect(log.map((c: any) => c.parents)).toEqual([[c2], [c1], []]);
    expect(log[0].refs).toEqual(['main']);
    expect(log[1]).toMatchObject({
      message: 'second',
      metrics: { loss: 0.5, 'eval/acc': 0.7 },
      step: 200,
      epoch: 1.5,
      run: 'r1',
      labels: { phase: 'g2' },
      author: 'test',
      branch: 'main',
    });
    expect(s.json(['log', '-n', '2']).map((c: any) => c.id)).toEqual([c3, c2]);
    expect(readRef(s.store, 'refs/heads/main')).toBe(c3);
    expect(fs.readFileSync(path.join(s.store, 'HEAD'), 'utf8').trim()).toBe('ref: refs/heads/main');
  });

  it('branch --json lists tips with metrics and the current branch', () => {
    const list = s.json(['branch']);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({
      name: 'main',
      commit: c3,
      id: c3,
      current: true,
      step: 300,
      metrics: { loss: 0.4 },
      message: 'third\nwith a body',
    });
    const status = s.json(['status']);
    expect(status.head).toEqual({ branch: 'main' });
    expect(status.tip).toMatchObject({ id: c3, step: 300 });
    expect(status.branches).toBe(1);
  });

  it('resolves revision syntax: HEAD~N, NAME^, ^^, ~0, short prefixes, full IDs', async () => {
    const cases: [string, string][] = [
      ['HEAD', c3],
      ['HEAD~2', c1],
      ['main^', c2],
      ['main^^', c1],
      ['main~1^', c1],
      ['HEAD~0', c3],
      ['HEAD^1', c2],
      [c2.slice(0, 8), c2],
      [c1.slice(0, 6), c1],
      [c1, c1],
      [`${c2.slice(0, 10)}~1`, c1],
    ];
    // Read-only and independent: run side by side.
    const shown = await pool(cases, 3, ([rev]) => s.jsonAsync(['show', rev]));
    expect(cases.map(([rev], i) => [rev, shown[i].id])).toEqual(cases);
    expect(s.json(['log', 'HEAD~1']).map((c: any) => c.id)).toEqual([c2, c1]);
  });

  it('unknown or unresolvable revisions exit 14', async () => {
    const revs = ['nosuch', 'HEAD~3', 'main^2', 'deadbeefdeadbeef', c1.slice(0, 5), '0'.repeat(64), 'main~x'];
    // Read-only commands, independent of each other: run side by side.
    const runs = await pool(revs, 3, (rev) => s.runAsync(['show', rev]));
    for (const [i, rev] of revs.entries()) {
      const r = runs[i]!;
      expect(r.code, `${rev}: ${describeRun(r)}`).toBe(14);
      const codes = errorCodes(r.stderr);
      expect(codes.length, rev).toBe(1);
      expect(['CKVC_UNKNOWN_REVISION', 'CKVC_AMBIGUOUS_REVISION'], rev).toContain(codes[0]);
      expect(r.stderr.trim().split('\n'), rev).toHaveLength(1);
    }
    const co = s.run(['checkout', 'nosuch', '--to', path.join(tempDir(), 'x')]);
    expect(co.code).toBe(14);
    const j = s.run(['log', 'nosuch', '--json']);
    expect(j.code).toBe(14);
    const err = JSON.parse(j.stderr.trim()).error;
    expect(err).toMatchObject({ code: 'CKVC_UNKNOWN_REVISION', exit: 14 });
    expect(typeof err.message).toBe('string');
  });

  it('a tree or file ID is not a commit revision', () => {
    const tree = s.json(['show', c1]).tree as string;
    const r = s.run(['show', tree]);
    expect(r.code, describeRun(r)).toBe(14);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_UNKNOWN_REVISION']);
  });

  it('creates branches at HEAD or at a start revision; an existing name is a conflict (exit 13)', () => {
    expect(s.json(['branch', 'feat'])).toMatchObject({ name: 'feat', id: c3 });
    expect(s.json(['branch', 'old', 'main~2'])).toMatchObject({ name: 'old', id: c1 });
    expect(s.json(['branch', 'team/exp-1.a_b', c2.slice(0, 8)])).toMatchObject({ id: c2 });
    expect(readRef(s.store, 'refs/heads/feat')).toBe(c3);
    expect(readRef(s.store, 'refs/heads/old')).toBe(c1);
    expect(readRef(s.store, 'refs/heads/team/exp-1.a_b')).toBe(c2);
    const list = s.json(['branch']);
    expect(list.map((b: any) => b.name)).toEqual(['feat', 'main', 'old', 'team/exp-1.a_b']);
    expect(list.find((b: any) => b.name === 'old')).toMatchObject({
      commit: c1,
      current: false,
      step: 100,
      metrics: { loss: 0.9 },
    });

    const before = snapshotStore(s.store);
    const dup = s.run(['branch', 'feat', 'main~1']);
    expect(dup.code, describeRun(dup)).toBe(13);
    expect(errorCodes(dup.stderr)).toEqual(['CKVC_REF_CONFLICT']);
    expect(dup.stderr).toContain("branch 'feat' already exists (at ");
    expect(dup.stderr).toContain(
      "choose another name, work on it ('ckvc switch feat'), or move it ('ckvc branch -f feat START')",
    );
    // ~N past the first commit says so.
    const past = s.run(['show', 'main~20']);
    expect(past.code).toBe(14);
    expect(past.stderr).toMatch(/"main~20": it goes back past the first commit, [0-9a-f]{12}, which has no parent/);
    expect(readRef(s.store, 'refs/heads/feat')).toBe(c3);
    expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);

    const bad = s.run(['branch', 'x', 'nosuch']);
    expect(bad.code).toBe(14);
    expect(readRef(s.store, 'refs/heads/x')).toBeUndefined();
  });

  it('branch -f moves a branch, the current one too, and its reflog says so; it puts back a damaged ref file', () => {
    const t = copyStore(s, 'ckvc-branch-force-');
    const moved = t.json(['branch', '-f', 'old', 'main~1']);
    expect(moved).toMatchObject({ name: 'old', id: c2, was: c1 });
    expect(t.json(['reflog', 'old'])[0]).toMatchObject({ old: c1, new: c2, message: 'branch: forced to main~1' });
    expect(t.json(['branch', '-f', 'fresh', c1])).toEqual({ name: 'fresh', id: c1 });
    const both = t.run(['branch', '-f', '-d', 'fresh']);
    expect(both.code).toBe(2);
    expect(readRef(t.store, 'refs/heads/fresh')).toBe(c1);
    fs.writeFileSync(path.join(t.store, 'refs', 'heads', 'fresh'), 'garbage\n');
    const listed = t.run(['branch']);
    expect(listed.stderr).toContain("'ckvc branch -f fresh ID' puts one back");
    expect(t.json(['branch', '-f', 'fresh', c2])).toMatchObject({ id: c2, was: 'damaged' });
    expect(readRef(t.store, 'refs/heads/fresh')).toBe(c2);
    const head = s.json<{ head: { branch: string } }>(['status']).head.branch;
    const tip = readRef(t.store, `refs/heads/${head}`);
    t.ok(['branch', '-f', head, c1]);
    expect(readRef(t.store, `refs/heads/${head}`)).toBe(c1);
    expect(t.json(['reflog', head])[0]).toMatchObject({ old: tip, new: c1 });
  });

  it('plain and annotated tags: listing, peeling, decoration', () => {
    expect(s.json(['tag', 'v1'])).toMatchObject({ name: 'v1', id: c3, commit: c3 });
    const ann = s.json(['tag', 'best', 'HEAD~1', '-m', 'best so far']);
    expect(ann.commit).toBe(c2);
    expect(ann.id).not.toBe(c2);
    expect(readRef(s.store, 'refs/tags/best')).toBe(ann.id);
    const tags = s.json(['tag']);
    expect(tags.map((t: any) => t.name)).toEqual(['best', 'v1']);
    expect(tags[0]).toMatchObject({
      name: 'best',
      commit: c2,
      id: ann.id,
      tagMessage: 'best so far',
      metrics: { loss: 0.5, 'eval/acc': 0.7 },
      step: 200,
    });
    expect(tags[1]).toMatchObject({ name: 'v1', commit: c3, id: c3, metrics: { loss: 0.4 } });
    expect(s.json(['show', 'best']).id).toBe(c2);
    expect(s.json(['show', 'best^']).id).toBe(c1);
    expect(s.json(['show', ann.id]).id).toBe(c2); // the tag object's ID peels too
    expect(s.json(['log', 'best']).map((c: any) => c.id)).toEqual([c2, c1]);
    expect(s.json(['show', c2]).refs).toContain('tag: best');

    const dup = s.run(['tag', 'v1', 'HEAD~2']);
    expect(dup.stderr).toContain("choose another name, or move it: 'ckvc tag -d v1' and tag again");
    expect(dup.code, describeRun(dup)).toBe(13);
    expect(readRef(s.store, 'refs/tags/v1')).toBe(c3);
    expect(s.run(['verify']).code).toBe(0);
  });

  it('switch moves HEAD; commits then go to that branch only', () => {
    expect(s.json(['switch', 'feat'])).toMatchObject({ branch: 'feat' });
    expect(fs.readFileSync(path.join(s.store, 'HEAD'), 'utf8').trim()).toBe('ref: refs/heads/feat');
    expect(s.json(['status']).head).toEqual({ branch: 'feat' });
    const c4 = commitId(s, [file('b.bin', 4), '-m', 'on feat']);
    expect(readRef(s.store, 'refs/heads/feat')).toBe(c4);
    expect(readRef(s.store, 'refs/heads/main')).toBe(c3);
    expect(s.json(['show', 'feat']).parents).toEqual([c3]);
    expect(s.json(['branch']).find((b: any) => b.current).name).toBe('feat');

    const r = s.run(['switch', 'nosuch']);
    expect(r.code, describeRun(r)).toBe(14);
    expect(fs.readFileSync(path.join(s.store, 'HEAD'), 'utf8').trim()).toBe('ref: refs/heads/feat');
  });

  it('deleting the branch HEAD is on is refused; other branches and tags delete, reflog keeps the tip', () => {
    const feat = readRef(s.store, 'refs/heads/feat')!;
    const refused = s.run(['branch', '-d', 'feat']);
    expect(refused.code, describeRun(refused)).not.toBe(0);
    expect(refused.code).toBe(15);
    expect(errorCodes(refused.stderr)).toHaveLength(1);
    expect(readRef(s.store, 'refs/heads/feat')).toBe(feat);

    s.ok(['switch', 'main']);
    expect(s.json(['branch', '-d', 'feat'])).toMatchObject({ name: 'feat', id: feat });
    expect(fs.existsSync(path.join(s.store, 'refs', 'heads', 'feat'))).toBe(false);
    expect(s.json(['branch']).map((b: any) => b.name)).not.toContain('feat');
    const log = s.json(['reflog', 'feat']);
    expect(log[0]).toMatchObject({ old: feat, new: null });
    expect(log.at(-1)).toMatchObject({ old: null, new: c3 });
    // The deleted tip is still in the store and can be checked out by ID.
    expect(s.json(['show', feat]).message).toBe('on feat');

    const gone = s.run(['branch', '-d', 'feat']);
    expect(gone.code, describeRun(gone)).toBe(14);

    expect(s.json(['tag', '-d', 'v1'])).toMatchObject({ name: 'v1', id: c3 });
    expect(readRef(s.store, 'refs/tags/v1')).toBeUndefined();
    expect(s.json(['reflog', 'v1', '--tag'])[0]).toMatchObject({ old: c3, new: null });
    expect(s.run(['tag', '-d', 'v1']).code).toBe(14);
    expect(s.run(['verify']).code).toBe(0);
  });

  it('reflog shows every move of a branch, newest first', () => {
    const log = s.json(['reflog', 'main']);
    expect(log.map((e: any) => [e.old, e.new])).toEqual([
      [c2, c3],
      [c1, c2],
      [null, c1],
    ]);
    for (const e of log) {
      expect(typeof e.time).toBe('number');
      expect(e.who).toBe('test');
    }
    expect(log[0].message).toContain('third');
    expect(log[0].message).not.toContain('\n');
  });

  it('bad branch and tag names exit 15 (CKVC_BAD_REF_NAME) and create no ref or reflog', async () => {
    const required = ['..', 'a b', 'x.lock', 'a\x01b'];
    const extra = ['a\tb', '../escape', 'a/./b', 'x~1', 'a:b', '.hidden', 'trailing/', 'HEAD', 'abcdef12'];
    const a = path.join(data, 'a.bin');
    const attempts: string[][] = [
      // '-x' would be read as an option if passed on its own, so it goes in as an attached option value.
      ['commit', a, '-m', 'x', '--branch=-x'],
      ...required.flatMap((n) => [
        ['branch', n, 'main'],
        ['tag', n],
        ['commit', a, '-m', 'x', '-b', n],
      ]),
      ['tag', '..', 'HEAD', '-m', 'annotated'],
      ...extra.map((n) => ['branch', n]),
      ['tag', '../escape'],
      ['switch', '..'],
      ['branch', '-d', '..'],
      ['tag', '-d', 'a b'],
      ['reflog', '..'],
    ];
    const before = snapshotStore(s.store);
    // Each is refused before it writes anything: run side by side, the store compared once after all of them.
    const runs = await pool(attempts, 3, (args) => s.runAsync(args));
    for (const [i, args] of attempts.entries()) {
      const r = runs[i]!;
      expect(r.code, `${JSON.stringify(args)}: ${describeRun(r)}`).toBe(15);
      expect(errorCodes(r.stderr), JSON.stringify(args)).toEqual(['CKVC_BAD_REF_NAME']);
      expect(r.stderr.trim().split('\n'), JSON.stringify(args)).toHaveLength(1);
    }
    expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
    expect(fs.existsSync(path.join(s.store, 'escape'))).toBe(false);
    expect(fs.existsSync(path.join(s.store, '..', 'escape'))).toBe(false);
  });

  it('a name cannot be both a branch and a folder of branches', () => {
    s.ok(['branch', 'grp']);
    const r = s.run(['branch', 'grp/sub']);
    expect(r.code, describeRun(r)).toBe(15);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_REF_NAME']);
    // and the other way round: 'team/exp-1.a_b' exists, so 'team' cannot be a branch
    const r2 = s.run(['branch', 'team']);
    expect(r2.code, describeRun(r2)).toBe(15);
    expect(readRef(s.store, 'refs/heads/grp/sub')).toBeUndefined();
    s.ok(['branch', '-d', 'grp']);
  });

  it('a commit that starts a branch says so, and names an existing branch its name is close to; unknown names get a guess', () => {
    const t = newStore('ckvc-ref-typo-');
    const first = t.json<{ newBranch: boolean }>(['commit', file('a.bin', 11), '-m', 'one', '-b', 'run1', '--json']);
    expect(first.newBranch).toBe(true);
    const next = t.run(['commit', file('a.bin', 12), '-m', 'two', '-b', 'run1']);
    expect(next.stderr).toMatch(/^\[run1 [0-9a-f]{12}\]/m);
    const typo = t.run(['commit', file('a.bin', 13), '-m', 'three', '-b', 'rn1']);
    expect(typo.code, describeRun(typo)).toBe(0);
    expect(typo.stderr).toMatch(/^\[rn1 \(new branch\) [0-9a-f]{12}\]/m);
    expect(typo.stderr).toContain("branch rn1 did not exist; this commit started it (close to 'run1'");
    const unknown = t.run(['log', 'rnu1']);
    expect(unknown.code).toBe(14);
    expect(unknown.stderr).toContain("(did you mean 'rn1' or 'run1'?)");
    expect(t.run(['log', 'zzzz']).stderr).not.toContain('did you mean');
  });

  it("a deleted branch's reflog does not block a name it stood in the way of; it is moved aside, read and kept for gc", () => {
    const t = newStore('ckvc-ref-aside-');
    const own = commitId(t, [file('a.bin', 7), '-m', 'base']);
    const lost = commitId(t, [file('a.bin', 8), '-m', 'only on phase/a', '-b', 'phase/a']);
    t.ok(['branch', '-d', 'phase/a']);
    // Branch 'phase' needs the file logs/refs/heads/phase, where the folder of phase/a's reflog is.
    expect(t.json(['branch', 'phase'])).toMatchObject({ name: 'phase', id: own });
    const logA = t.json<{ new: string | null; old: string | null }[]>(['reflog', 'phase/a']);
    expect(logA.map((e) => [e.old, e.new])).toEqual([
      [lost, null],
      [null, lost],
    ]);
    expect(t.json<unknown[]>(['reflog', 'phase'])).toHaveLength(1);
    // The other way round: deleted 'phase' stands where phase/b's folder goes.
    t.ok(['branch', '-d', 'phase']);
    expect(t.json(['branch', 'phase/b'])).toMatchObject({ name: 'phase/b', id: own });
    expect(t.json<unknown[]>(['reflog', 'phase'])).toHaveLength(2);
    expect(t.json<unknown[]>(['reflog', 'phase/a'])).toHaveLength(2);
    // A pull's batch of refs does the same: bundle/main where deleted bundle/main/old's reflog is.
    t.ok(['branch', 'bundle/main/old']);
    t.ok(['branch', '-d', 'bundle/main/old']);
    const bundle = path.join(tempDir('ckvc-aside-bundle-'), 'main.bundle');
    t.ok(['pack', 'main', '-o', bundle]);
    t.ok(['pull', bundle]);
    expect(readRef(t.store, 'refs/heads/bundle/main')).toBe(own);
    expect(t.json<unknown[]>(['reflog', 'bundle/main/old'])).toHaveLength(2);
    // gc still reads moved logs: the commit only phase/a's log names is kept until its lines expire.
    t.ok(['gc', '--grace', '0']);
    const out = tempDir('ckvc-aside-co-');
    t.ok(['checkout', lost, '--to', out]);
    expect(fs.readFileSync(path.join(out, 'a.bin'))).toEqual(randomBytes(8, 4096));
    t.ok(['gc', '--grace', '0', '--expire-reflog', '0s']);
    const gone = t.run(['checkout', lost, '--to', tempDir('ckvc-aside-co-')]);
    expect(gone.code, describeRun(gone)).toBe(14);
    expect(t.run(['verify', '--read-data']).code).toBe(0);
  });

  it('warm-start --parent: a new branch starts from the given commit; later warm starts are second parents', () => {
    const w1 = commitId(s, [file('lstm.bin', 10), '-m', 'lstm from best', '-b', 'lstm', '--parent', 'best']);
    const shown = s.json(['show', w1]);
    expect(shown.parents).toEqual([c2]);
    expect(shown.branch).toBe('lstm');
    // HEAD stays on main: main has commits, so the first commit to another branch does not move HEAD.
    expect(s.json(['status']).head).toEqual({ branch: 'main' });

    const w2 = commitId(s, [file('lstm.bin', 11), '-m', 'lstm re-warmed from main', '-b', 'lstm', '--parent', 'main']);
    expect(s.json(['show', w2]).parents).toEqual([w1, c3]);
    expect(s.json(['show', 'lstm^2']).id).toBe(c3);
    expect(s.json(['show', 'lstm^1']).id).toBe(w1);
    expect(s.json(['log', 'lstm', '--first-parent', '-n', '2']).map((c: any) => c.id)).toEqual([w2, w1]);
    // A warm-start parent that is already the branch tip is not listed twice.
    const w3 = commitId(s, [file('lstm.bin', 12), '-m', 'again', '-b', 'lstm', '--parent', 'lstm']);
    expect(s.json(['show', w3]).parents).toEqual([w2]);
    // Unknown --parent: exit 14 and the branch does not move.
    const r = s.run(['commit', file('lstm.bin', 13), '-m', 'x', '-b', 'lstm', '--parent', 'nosuch']);
    expect(r.code, describeRun(r)).toBe(14);
    expect(readRef(s.store, 'refs/heads/lstm')).toBe(w3);
    expect(s.run(['verify']).code).toBe(0);
  });
});

describe('HEAD of a fresh store', () => {
  it('is an unborn main; the first commit to another branch takes HEAD along', () => {
    const s = newStore();
    const data = tempDir('ckvc-data-');
    fs.writeFileSync(path.join(data, 'f.bin'), 'x');
    expect(s.json(['status'])).toMatchObject({ head: { branch: 'main' }, branches: 0, tags: 0 });
    expect(s.json(['status']).tip).toBeUndefined();
    expect(s.json(['branch'])).toEqual([]);
    const empty = s.run(['log']);
    expect(empty.code, describeRun(empty)).toBe(14);
    expect(errorCodes(empty.stderr)).toEqual(['CKVC_EMPTY_BRANCH']);
    const id = commitId(s, [path.join(data, 'f.bin'), '-m', 'first', '-b', 'phase-g2']);
    expect(s.json(['status']).head).toEqual({ branch: 'phase-g2' });
    expect(s.json(['show']).id).toBe(id);
    expect(readRef(s.store, 'refs/heads/main')).toBeUndefined();
  });

  it('filled by a pull, its unborn main says which branches have commits', () => {
    const from = newStore();
    const data = tempDir('ckvc-data-');
    fs.writeFileSync(path.join(data, 'f.bin'), 'x');
    commitId(from, [path.join(data, 'f.bin'), '-m', 'first', '-b', 'phase-g2']);
    const bundle = path.join(tempDir('ckvc-bundle-'), 'g2.ckvb');
    from.ok(['pack', 'phase-g2', '-o', bundle]);
    const s = newStore();
    s.ok(['pull', bundle]);
    const r = s.run(['log']);
    expect(r.code, describeRun(r)).toBe(14);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_EMPTY_BRANCH']);
    expect(r.stderr).toContain("'ckvc switch' to a branch with commits ('bundle/phase-g2')");
  });

  it('re-running init is a no-op', () => {
    const s = newStore();
    const before = snapshotStore(s.store);
    const r = ckvc(['init', s.dir]);
    expect(r.code, describeRun(r)).toBe(0);
    expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
  });

  it('init with --store is refused (exit 2 CKVC_USAGE) and creates nothing, neither there nor in the current folder', () => {
    const cwd = tempDir('ckvc-init-cwd-');
    const target = path.join(tempDir('ckvc-init-store-'), 'proj');
    for (const args of [
      ['--store', target, 'init'],
      ['init', '--store', target],
      ['init', '.', '--store', target],
    ]) {
      const r = ckvc(args, { cwd });
      expect(r.code, describeRun(r)).toBe(2);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_USAGE']);
      expect(r.stderr).toContain(`ckvc init ${target}`);
      expect(fs.readdirSync(cwd)).toEqual([]);
      expect(fs.existsSync(target)).toBe(false);
    }
  });
});

describe('ambiguous short prefixes', () => {
  // Two commits whose IDs share their first 6 hex digits cannot be made cheaply through the CLI (their times
  // differ), so they are written through the library in-process with a fixed time, brute-forcing messages
  // until the prefixes collide (~5,000 tries). If the internal modules used here move, the test is skipped.
  it('a prefix matching two commits exits 14 with CKVC_AMBIGUOUS_REVISION; a longer prefix resolves', async () => {
    const dist = (p: string) => pathToFileURL(path.join(REPO_ROOT, 'dist', p)).href;
    let api: any;
    let commitMod: any;
    let idMod: any;
    try {
      api = await import(dist('api/index.js'));
      commitMod = await import(dist('core/store-format/objects/commit-object.js'));
      idMod = await import(dist('core/store-format/object-id.js'));
    } catch {
      return; // internal layout changed: nothing to test here
    }
    if (typeof commitMod.encodeCommit !== 'function' || typeof idMod.objectId !== 'function') return;
    const s = newStore();
    const data = tempDir('ckvc-data-');
    fs.writeFileSync(path.join(data, 'f.bin'), 'x');
    const base = commitId(s, [path.join(data, 'f.bin'), '-m', 'base']);
    const tree = s.json(['show', base]).tree;
    const body = (i: number) =>
      commitMod.encodeCommit({
        tree,
        parents: [base],
        message: `probe ${i}`,
        author: 'test',
        time: 1_700_000_000_000,
        branch: 'main',
        metrics: {},
        labels: {},
      });
    const seen = new Map<string, number>();
    let pair: [number, number] | undefined;
    for (let i = 0; i < 200_000 && !pair; i++) {
      const p = (idMod.objectId('commit', body(i)) as string).slice(0, 6);
      const j = seen.get(p);
      if (j !== undefined) pair = [j, i];
      else seen.set(p, i);
    }
    expect(pair).toBeDefined();
    const store = await api.openStore(s.store);
    let ids: string[];
    try {
      const w = store.objects.writer();
      ids = [await w.put('commit', body(pair![0])), await w.put('commit', body(pair![1]))];
      await w.commit();
    } finally {
      await store.close();
    }
    const prefix = ids[0]!.slice(0, 6);
    expect(ids[1]!.slice(0, 6)).toBe(prefix);
    const r = s.run(['show', prefix]);
    expect(r.code, describeRun(r)).toBe(14);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_AMBIGUOUS_REVISION']);
    let k = 7;
    while (ids[0]!.slice(0, k) === ids[1]!.slice(0, k)) k++;
    expect(s.json(['show', ids[0]!.slice(0, k)]).id).toBe(ids[0]);
    expect(s.json(['show', ids[1]!.slice(0, k)]).id).toBe(ids[1]);
  });
});
