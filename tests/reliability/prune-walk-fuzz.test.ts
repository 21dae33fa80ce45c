// Seeded differential test of the prune-aware walk (spec/FORMAT.md §13.1): random histories (commits on main and
// a side branch) with twin subtrees, twin files, tensors shared across files, names and commits; random prune
// records (all tensors, globs without ':', globs with ':', mixed; --include-tagged) written by the real CLI;
// then pack/pull, push/fetch through a folder remote, and gc (before or after the transfers). The test's own
// model of the release rule (independent of src's glob code) says, per commit, which files are released and
// which chunks a store must hold; every store must hold them, verify clean, check out every unreleased file
// byte-identical and refuse a released one with 19. Finally one such chunk is deleted from a copy of a store
// (its pack rewritten without the record, `ckvc index rebuild`): verify must report it (exit 12,
// CKVC_MISSING_OBJECT naming it). Three seeds in npm test; CKVC_SOAK_SCALE multiplies them. Every failure
// names its seed and what the seed did (CKVC_WALK_FUZZ_LOG=1 prints that for passing seeds too).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeRun, expectOk, type RunResult } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import type { TestStore } from '../helpers/test-store.js';
import { pool } from '../helpers/async-tasks.js';
import { soakScale } from '../helpers/reliability.js';
import { prng, randomBytes, randomFloat32, safetensorsBytes, safetensorsDataStart } from '../helpers/data.js';
import { globReference } from '../helpers/glob-reference.js';
import {
  checkoutPaths,
  chunkId,
  copyOf,
  dropObject,
  emptyStore,
  expectReleased,
  objectIds,
  pruneRecords,
  setRemotes,
} from '../helpers/walk-lib.js';

afterAll(cleanupTemp);

// The first two seeds of npm test each build a file object released where first reached and kept only by a
// later twin (the log line "... kept only by a later twin" counts them): the shape the old walk lost data on.
const SEEDS = Array.from({ length: Math.max(3, Math.round(3 * soakScale())) }, (_, i) => 0x5eed00 + (i + 3) * 7919);
const TENSOR_CHUNK = 262_144; // config.json tensorChunkSize of a fresh store (FORMAT.md §1)

interface FileModel {
  bytes: Buffer;
  /** Tensor parts (name, data); empty for an opaque file. */
  tensors: { name: string; data: Buffer }[];
}

interface CommitModel {
  id: string;
  label: string;
  files: Map<string, FileModel>;
}

type Rec = { tensors: string[] | null; files?: string[] | null };

// The release rule as FORMAT.md §13 states it, written here independently (globs: tests/helpers/glob-reference.ts).
/** Is the file at `file` released whole (the record's `files`: null, or a glob matching its path)? */
function wholeFile(rec: Rec | undefined, file: string): boolean {
  return rec?.files !== undefined && (rec.files === null || rec.files.some((g) => globReference(g).test(file)));
}

function released(rec: Rec | undefined, file: string, name: string): boolean {
  if (!rec) return false;
  if (rec.tensors === null || wholeFile(rec, file)) return true;
  return rec.tensors.some(
    (g) => globReference(g).test(name) || (g.includes(':') && globReference(g).test(`${file}:${name}`)),
  );
}

/** Chunks of a tensor's data (FORMAT.md §5.2: fixed-size, from its first byte). */
function tensorChunks(data: Buffer): string[] {
  const out: string[] = [];
  for (let at = 0; at < data.length; at += TENSOR_CHUNK) out.push(chunkId(data.subarray(at, at + TENSOR_CHUNK)));
  return out;
}

/** Chunks every store holding these commits (with these records) must have, with what needs each. */
function neededChunks(commits: CommitModel[], records: Map<string, Rec>): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of commits) {
    const rec = records.get(c.id);
    for (const [p, f] of c.files) {
      if (wholeFile(rec, p)) continue; // prune without --tensors releases every byte of the file (FORMAT.md §13)
      if (!f.tensors.length) {
        out.set(chunkId(f.bytes), `${c.label} ${p} (opaque, one chunk)`);
        continue;
      }
      out.set(chunkId(f.bytes.subarray(0, safetensorsDataStart(f.bytes))), `${c.label} ${p} (safetensors header)`);
      for (const t of f.tensors)
        if (!released(rec, p, t.name)) for (const id of tensorChunks(t.data)) out.set(id, `${c.label} ${p}:${t.name}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------

/** Depth-first walk order of two paths (entries sorted by name bytes, folder by folder). */
function walkOrder(a: string, b: string): number {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return Buffer.compare(Buffer.from(x[i]!), Buffer.from(y[i]!));
  }
  return x.length - y.length;
}

/** Paths of a commit holding the same file object as `p` (its twins, p included), in walk order. */
function twinsOf(c: CommitModel, p: string): string[] {
  return [...c.files.keys()].filter((q) => c.files.get(q) === c.files.get(p)).sort(walkOrder);
}

const NAMES = ['w', 'b', 'emb', 'opt.m', 'opt.v'];
const ST_FILES = ['model.safetensors', 'x.safetensors', 'y.safetensors'];
const BIN_FILES = ['data.bin', 'aux.bin'];
const DIRS = ['', 'a', 'b', 'a/deep'];
const BARE_GLOBS = ['opt*', 'w', 'opt.?', 'em?'];

async function runSeed(seed: number, log: string[]): Promise<string[]> {
  const rnd = prng(seed);
  const r = (n: number) => rnd() % n;
  const chance = (p: number) => rnd() / 0x1_0000_0000 < p;
  const pick = <T>(a: T[]): T => a[r(a.length)]!;
  const work = tempDir('ckvc-pwf-work-');
  const problems: string[] = [];
  const note = (m: string) => log.push(`seed ${seed}: ${m}`);

  // Data pools: tensors shared across files, names and commits; opaque blobs (each under 64 KiB: one chunk).
  const tensorPool = Array.from({ length: 7 }, (_, i) => randomFloat32(seed + 100 + i, 256 + r(2816)));
  if (chance(0.5)) tensorPool.push(randomFloat32(seed + 199, 70_000)); // two tensor chunks
  const opaquePool = Array.from({ length: 3 }, (_, i) => randomBytes(seed + 300 + i, 1000 + r(30_000)));

  let counter = 0;
  const stFile = (): FileModel => {
    const names = [...NAMES];
    for (let i = names.length - 1; i > 0; i--) {
      const j = r(i + 1);
      [names[i], names[j]] = [names[j]!, names[i]!];
    }
    names.length = 1 + r(3);
    // Half from the shared pool, half new: data only one file object holds makes its twins matter.
    const tensors = names.map((name) => ({
      name,
      data: chance(0.5) ? pick(tensorPool) : randomFloat32(seed + 5000 + counter++, 256 + r(2048)),
    }));
    const bytes = safetensorsBytes(
      Object.fromEntries(tensors.map((t) => [t.name, { dtype: 'F32', shape: [t.data.length / 4], bytes: t.data }])),
    );
    return { bytes, tensors };
  };
  const binFile = (): FileModel => ({ bytes: pick(opaquePool), tensors: [] });
  const join = (d: string, n: string) => (d ? `${d}/${n}` : n);

  const nextFiles = (parent: Map<string, FileModel> | undefined): Map<string, FileModel> => {
    const files = new Map(parent ?? []);
    for (const p of [...files.keys()]) {
      if (chance(0.6)) files.set(p, p.endsWith('.bin') ? binFile() : stFile());
      else if (chance(0.1) && files.size > 3) files.delete(p);
    }
    for (let i = 1 + r(2); i > 0; i--) {
      if (chance(0.85)) files.set(join(pick(DIRS), pick(ST_FILES)), stFile());
      else files.set(join(pick(DIRS), pick(BIN_FILES)), binFile());
    }
    // Twin subtree: a folder copied whole under another name (one tree object).
    const dirs = ['a', 'b', 'a/deep', 'a-twin', '0a'].filter((d) =>
      [...files.keys()].some((p) => p.startsWith(`${d}/`)),
    );
    if (dirs.length && chance(0.6)) {
      // Named to sort after or before the original, so a released reach is walked before or after the other.
      const d = pick(dirs);
      const i = d.lastIndexOf('/');
      const twin = chance(0.5) ? `${d}-twin` : `${d.slice(0, i + 1)}0${d.slice(i + 1)}`;
      for (const [p, f] of [...files]) if (p.startsWith(`${d}/`)) files.set(`${twin}/${p.slice(d.length + 1)}`, f);
    }
    // Twin file: the same bytes at a second name in the same folder (one file object).
    if (!parent || chance(0.7)) {
      const all = [...files];
      const st = all.filter(([p]) => p.endsWith('.safetensors'));
      const [p, f] = st.length && chance(0.85) ? pick(st) : pick(all);
      const i = p.lastIndexOf('/');
      files.set(`${p.slice(0, i + 1)}${pick(['0-', 'z-'])}${p.slice(i + 1)}`, f);
    }
    // Something new in every commit.
    files.set('step.bin', { bytes: randomBytes(seed + 1000 + counter++, 600), tensors: [] });
    return files;
  };

  const S = emptyStore('ckvc-pwf-source-');
  const commits: CommitModel[] = [];
  const commit = async (files: Map<string, FileModel>, branch: string, label: string): Promise<CommitModel> => {
    const dir = path.join(work, `c${commits.length}`);
    for (const [p, f] of files) {
      fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
      fs.writeFileSync(path.join(dir, p), f.bytes);
    }
    const id = (await S.jsonAsync<{ id: string }>(['commit', dir, '-b', branch, '-m', label])).id;
    const c = { id, label, files };
    commits.push(c);
    return c;
  };

  // History: main with 3-4 commits; maybe a side branch from one of them with 1-2 commits; maybe a tag.
  const main: CommitModel[] = [];
  for (let i = 3 + r(2); i > 0; i--)
    main.push(await commit(nextFiles(main.at(-1)?.files), 'main', `main-${main.length}`));
  const side: CommitModel[] = [];
  let from = -1;
  if (chance(0.6)) {
    from = r(main.length - 1);
    expectOk(await S.runAsync(['branch', 'side', main[from]!.id]), 'branch side');
    for (let i = 1 + r(2); i > 0; i--)
      side.push(
        await commit(nextFiles((side.at(-1) ?? main[from]!).files), 'side', `side-${side.length} (from main-${from})`),
      );
    note(`side branch from main-${from}, ${side.length} commit(s)`);
  }
  if (chance(0.5)) {
    const t = pick(commits);
    expectOk(await S.runAsync(['tag', 'keep', t.id]), 'tag keep');
    note(`tag keep -> ${t.label}`);
  }

  // Prune records, with the real CLI. A glob with ':' mostly names a file that has a twin (the same file object
  // at another path) in a commit this run prunes: it then releases one reach of the object and not the other.
  const colonGlob = (candidates: CommitModel[]): string => {
    const c = pick(candidates.length ? candidates : commits);
    const st = [...c.files.keys()].filter((x) => x.endsWith('.safetensors'));
    // The first of its twins in walk order: the released reach is met before the one that keeps the data.
    const firstTwins = st.filter((x) => twinsOf(c, x).length > 1 && twinsOf(c, x)[0] === x);
    const p = firstTwins.length && chance(0.9) ? pick(firstTwins) : pick(st.concat(['model.safetensors']));
    note(`  ':' glob from ${c.label}: first twins ${firstTwins.join(' ') || 'none'}`);
    const i = p.lastIndexOf('/');
    const names = c.files.get(p)?.tensors.map((t) => t.name) ?? ['w'];
    if (chance(0.7)) return `${p}:*`;
    if (chance(0.5)) return `${p}:${pick(names)}`;
    return pick([`**/${p.slice(i + 1)}:*`, '*:w', `${p}:opt*`, ...(i > 0 ? [`${p.slice(0, i)}/*.safetensors:*`] : [])]);
  };
  const merged = new Map<string, string[] | null>();
  // The first run mostly prunes main down to its tip with a glob naming the first twin of a pruned commit (the
  // shape the old walk got wrong); a second run, in 40% of the seeds, is any kind on either branch.
  for (let n = chance(0.4) ? 2 : 1, run = 0; run < n; run++) {
    const branch = run > 0 && side.length && chance(0.5) ? 'side' : 'main';
    const history = branch === 'main' ? main : side; // a branch's history stops at commits made on another
    const keepLast = run === 0 || chance(0.5) ? 1 : 1 + r(Math.max(1, history.length - 1));
    const candidates = history.slice(0, history.length - keepLast);
    // all tensors, globs without ':', with ':', both
    const kind = run === 0 ? (chance(0.7) ? 2 : pick([0, 1, 3])) : pick([0, 1, 2, 2, 3]);
    const globs =
      kind === 0
        ? []
        : kind === 1
          ? [pick(BARE_GLOBS), ...(chance(0.3) ? [pick(BARE_GLOBS)] : [])]
          : kind === 2
            ? [colonGlob(candidates), ...(chance(0.4) ? [colonGlob(candidates)] : [])]
            : [pick(BARE_GLOBS), colonGlob(candidates)];
    const args = [
      'prune',
      '--keep-last',
      String(keepLast),
      '-b',
      branch,
      ...(chance(0.4) ? ['--include-tagged'] : []),
      ...globs.flatMap((g) => ['--tensors', g]),
    ];
    note(args.join(' '));
    // A glob matching no tensor of the commits to prune is refused (exit 14, nothing marked): the model must
    // agree that it matches none, and the run goes on without it.
    let pr: { pruned: { id: string }[]; tensors: string[] | null } | undefined;
    for (;;) {
      const r = await S.runAsync([...args, '--json']);
      if (r.code === 0) {
        pr = JSON.parse(r.stdout);
        break;
      }
      const err = JSON.parse(r.stderr).error;
      if (r.code !== 14 || err.code !== 'CKVC_PATH_NOT_FOUND') throw new Error(`${args.join(' ')}: ${describeRun(r)}`);
      const dry = await S.jsonAsync<{ pruned: { id: string }[] }>([
        ...args.filter((a, i) => a !== '--tensors' && args[i - 1] !== '--tensors'),
        '--dry-run',
      ]);
      const glob: string = err.data.glob;
      const hit = dry.pruned.some(({ id }) =>
        [...commits.find((c) => c.id === id)!.files].some(([p, f]) =>
          f.tensors.some((t) => released({ tensors: [glob] }, p, t.name)),
        ),
      );
      if (hit) problems.push(`prune refused --tensors ${glob} as matching nothing, the model finds a tensor`);
      note(`  refused: --tensors ${glob} matches no tensor of ${dry.pruned.length} commit(s)`);
      const at = args.findIndex((a, i) => a === glob && args[i - 1] === '--tensors');
      args.splice(at - 1, 2);
      if (!args.includes('--tensors')) break;
    }
    if (!pr) continue;
    // Pruning again merges the records: null wins, lists are united (FORMAT.md §13).
    for (const { id } of pr.pruned) {
      const cur = merged.get(id);
      merged.set(
        id,
        cur === undefined
          ? pr.tensors
          : cur === null || pr.tensors === null
            ? null
            : [...new Set([...cur, ...pr.tensors])].sort(),
      );
    }
  }
  const records = pruneRecords(S) as Map<string, Rec & { commit: string }>;
  const recordsSeen = JSON.stringify([...records.values()].map((x) => [x.commit, x.tensors]).sort());
  const recordsWanted = JSON.stringify([...merged].sort());
  if (recordsSeen !== recordsWanted)
    problems.push(`the source's records are ${recordsSeen}, prune said ${recordsWanted}`);
  note(
    `records: ${[...records.values()].map((x) => `${commits.find((c) => c.id === x.commit)?.label}=${JSON.stringify(x.tensors)}`).join(', ') || 'none'}`,
  );
  const need = neededChunks(commits, records);

  // Transfers, with gc at the source before or after them.
  const gcFirst = chance(0.5);
  note(`gc ${gcFirst ? 'before' : 'after'} the transfers`);
  const gcSource = async () => expectOk(await S.runAsync(['gc', '--grace', '0']), 'gc at the source');
  if (gcFirst) await gcSource();
  const branches = side.length ? ['main', 'side'] : ['main'];
  const bundle = path.join(work, 'all.ckvb');
  const P = emptyStore('ckvc-pwf-pull-');
  const R = emptyStore('ckvc-pwf-pushed-');
  const F = emptyStore('ckvc-pwf-fetched-');
  setRemotes(S, { r: R.dir });
  setRemotes(F, { origin: R.dir });
  const step = async (runs: [string, () => Promise<RunResult>][]) => {
    const rs = await pool(runs, 2, ([, f]) => f());
    rs.forEach((x, i) => {
      expectOk(x, runs[i]![0]);
    });
  };
  await step([
    ['pack', () => S.runAsync(['pack', ...branches, '-o', bundle])],
    ['push', () => S.runAsync(['push', 'r', ...branches])],
  ]);
  await step([
    ['pull FILE', () => P.runAsync(['pull', bundle])],
    ['fetch', () => F.runAsync(['fetch', 'origin'], { env: { CKVC_TOKEN: undefined } })],
  ]);
  await step([
    ...(gcFirst
      ? []
      : [['gc at the source', () => S.runAsync(['gc', '--grace', '0'])] as [string, () => Promise<RunResult>]]),
    ['gc at the puller', () => P.runAsync(['gc', '--grace', '0'])],
  ]);

  // Every store: the records, the chunks, verify, checkouts.
  const stores: [string, TestStore][] = [
    ['source', S],
    ['pull FILE', P],
    ['push target', R],
    ['fetch', F],
  ];
  const recString = (m: Map<string, Rec>) => JSON.stringify([...m].map(([k, v]) => [k, v.tensors]).sort());
  for (const [label, s] of stores) {
    if (s !== S && recString(pruneRecords(s)) !== recString(records))
      problems.push(`${label}: records ${recString(pruneRecords(s))}, the source has ${recString(records)}`);
    const held = objectIds(s);
    for (const [id, what] of need)
      if (!held.has(id)) problems.push(`${label}: chunk ${id.slice(0, 12)} of ${what} is missing`);
  }
  const checks: (() => Promise<string[]>)[] = [];
  let releasedFiles = 0;
  let sharedReaches = 0;
  let twinFirstReleased = 0;
  for (const c of commits) {
    const rec = records.get(c.id);
    const isReleased = (p: string) =>
      wholeFile(rec, p) || c.files.get(p)!.tensors.some((t) => released(rec, p, t.name));
    for (const p of c.files.keys()) if (isReleased(p)) releasedFiles++;
    const rel = new Set<Buffer>();
    const kept = new Set<Buffer>();
    for (const [p, f] of c.files) for (const t of f.tensors) (released(rec, p, t.name) ? rel : kept).add(t.data);
    sharedReaches += [...rel].filter((d) => kept.has(d)).length;
    // One file object whose first reach (walk order) is released and a later one is not, holding data no other
    // unreleased reach needs: what the old walk lost.
    for (const p of c.files.keys()) {
      const tw = twinsOf(c, p);
      if (!(tw[0] === p && isReleased(p) && tw.slice(1).some((q) => !isReleased(q)))) continue;
      const elsewhere = new Set<Buffer>();
      for (const o of commits) {
        const orec = records.get(o.id);
        for (const [q, f] of o.files)
          if (f !== c.files.get(p)) for (const t of f.tensors) if (!released(orec, q, t.name)) elsewhere.add(t.data);
      }
      if (c.files.get(p)!.tensors.some((t) => released(rec, p, t.name) && !elsewhere.has(t.data))) twinFirstReleased++;
    }
  }
  note(
    `${commits.length} commits, ${releasedFiles} released file(s), ${sharedReaches} tensor(s) released at one path and kept at another in the same commit, ${twinFirstReleased} file object(s) released where first reached and kept only by a later twin, ${need.size} chunks needed`,
  );
  for (const [label, s] of stores) {
    checks.push(async () => {
      const v = await s.verify(true);
      return v.r.code === 0 ? [] : [`${label}: verify --read-data: ${describeRun(v.r)}`];
    });
    if (s === R) continue; // R's content is checked out through F, which fetched it
    for (const c of commits) {
      const rec = records.get(c.id);
      const paths = [...c.files.keys()].sort();
      const rel = paths.filter(
        (p) => wholeFile(rec, p) || c.files.get(p)!.tensors.some((t) => released(rec, p, t.name)),
      );
      const unrel = paths.filter((p) => !rel.includes(p));
      const bytes = new Map([...c.files].map(([p, f]) => [p, f.bytes]));
      checks.push(() => checkoutPaths(s, c.id, bytes, unrel, `${label} ${c.label}`));
      if (rel.length) checks.push(() => expectReleased(s, c.id, [pick(rel)], `${label} ${c.label}`));
    }
  }
  problems.push(...(await pool(checks, 2, (f) => f())).flat());

  // One live chunk deleted from a copy of a store: verify must name it.
  const [dl, ds] = pick(stores);
  const victims = [...need.keys()];
  const victim = pick(victims);
  const D = copyOf(ds, 'ckvc-pwf-damaged-');
  if (!dropObject(D, victim))
    problems.push(`${dl}: chunk ${victim.slice(0, 12)} of ${need.get(victim)} was not in any pack to delete`);
  else {
    expectOk(await D.runAsync(['index', 'rebuild']), 'index rebuild');
    const v = await D.verify(false);
    const missing = (v.report?.problems ?? []).filter(
      (p: any) => p.code === 'CKVC_MISSING_OBJECT' && p.data?.id === victim,
    );
    if (v.r.code !== 12 || missing.length === 0)
      problems.push(
        `${dl} without chunk ${victim.slice(0, 12)} (${need.get(victim)}): verify should exit 12 naming it CKVC_MISSING_OBJECT: ${describeRun(v.r)}`,
      );
  }
  note(`deleted ${need.get(victim)} from a copy of the ${dl} store`);
  return problems.map((p) => `seed ${seed}: ${p}`);
}

describe('prune-aware walk, randomized differential', () => {
  it.each(SEEDS)(
    'seed %i: every consumer agrees with the release rule',
    async (seed) => {
      const log: string[] = [];
      let problems: string[];
      try {
        problems = await runSeed(seed, log);
      } catch (e) {
        throw new Error(`seed ${seed}: ${(e as Error).message}\n${log.join('\n')}`);
      }
      if (process.env.CKVC_WALK_FUZZ_LOG) console.log(log.join('\n'));
      expect(problems, log.join('\n')).toEqual([]);
    },
    600_000,
  );
});
