// Release belongs to a reach, not to an object (spec/FORMAT.md §13.1): the same tree, file or tensor reached by
// two paths keeps its data while one reach is not released. Table-driven over the three kinds of prune record
// (every file whole; a glob without ':'; globs with ':'; file globs), one store per kind, through every consumer of the walk:
// gc's live set, pack, pack --since, verify FILE, pull FILE, push and fetch to a folder remote and over HTTP,
// verify (+ --read-data), checkout and ls --tensors. Everywhere: every unreleased file checks out byte-identical,
// every released one exits 19, the data of every unreleased reach is present and the data only released reaches
// had is neither sent nor kept by gc.
//
// Commit 1 holds the shapes that once went wrong: identical subtrees a/ and b/ (one tree object: the old sender
// walked it once and left out b/'s data when a/ was released), twin files t/x and t/y in one folder (one file
// object), one tensor S in two different files under two names (s/f1 as opt.shared, s/f2 as shared), and a
// tensor W shared with commit 2. Commit 2 (the tip) is never pruned.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ckvcAsync, describeRun, expectOk, type RunResult } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';
import { pool } from '../helpers/async-tasks.js';
import { randomBytes, randomFloat32, safetensorsBytes, safetensorsDataStart } from '../helpers/data.js';
import {
  checkoutPaths,
  chunkId,
  copyOf,
  emptyStore,
  expectReleased,
  holds,
  lsPruned,
  pruneRecords,
  setRemotes,
  startServer,
  stopAll,
} from '../helpers/walk-lib.js';

afterAll(async () => {
  await stopAll();
  cleanupTemp();
});

const T = 60_000 * 6; // generous: the machine is shared and every step spawns the CLI

// ---------------------------------------------------------------------------------------------------------
// The two commits, as the test knows them.

const N = 2048; // F32 elements: 8 KiB per tensor, one chunk each
const data = (seed: number) => randomFloat32(9100 + seed, N);
const D = {
  W: data(1),
  A1: data(2),
  V: data(3),
  U: data(4),
  S: data(5),
  F1: data(6),
  F2: data(7),
  A2: data(8),
  W3: data(9),
  A3: data(10),
  V2: data(11),
  U2: data(12),
  S2: data(13),
  F22: data(14),
};
type Key = keyof typeof D;

interface FileModel {
  bytes: Buffer;
  /** Tensor name -> data key, in file order; empty for an opaque file. */
  tensors: [string, Key][];
}

function st(tensors: [string, Key][]): FileModel {
  const bytes = safetensorsBytes(
    Object.fromEntries(tensors.map(([n, k]) => [n, { dtype: 'F32', shape: [N], bytes: D[k] }])),
  );
  return { bytes, tensors };
}

const OPAQUE = randomBytes(9177, 40_000); // under the 64 KiB CDC minimum: one chunk

const C1: Record<string, FileModel> = {
  'a/m.safetensors': st([
    ['w', 'W'],
    ['opt.m', 'A1'],
  ]),
  'b/m.safetensors': st([
    ['w', 'W'],
    ['opt.m', 'A1'],
  ]),
  't/x.safetensors': st([
    ['v', 'V'],
    ['u', 'U'],
  ]),
  't/y.safetensors': st([
    ['v', 'V'],
    ['u', 'U'],
  ]),
  's/f1.safetensors': st([
    ['opt.shared', 'S'],
    ['f1', 'F1'],
  ]),
  's/f2.safetensors': st([
    ['shared', 'S'],
    ['f2', 'F2'],
  ]),
  'o.bin': { bytes: OPAQUE, tensors: [] },
};
const C2: Record<string, FileModel> = {
  'a/m.safetensors': st([
    ['w', 'W'],
    ['opt.m', 'A2'],
  ]),
  'b/m.safetensors': st([
    ['w', 'W3'],
    ['opt.m', 'A3'],
  ]),
  't/x.safetensors': st([
    ['v', 'V2'],
    ['u', 'U2'],
  ]),
  's/f2.safetensors': st([
    ['shared', 'S2'],
    ['f2', 'F22'],
  ]),
  'o.bin': { bytes: OPAQUE, tensors: [] },
};
const C1_PATHS = Object.keys(C1).sort();
const bytesOf = (c: Record<string, FileModel>) => new Map(Object.entries(c).map(([p, f]) => [p, f.bytes]));

interface Kind {
  name: string;
  args: string[];
  /** The record prune writes (tensors: null, or the sorted globs). */
  record: string[] | null;
  /** Is tensor `name` of commit 1's file `p` released? Written out by hand, independent of src's globs. */
  released: (p: string, name: string) => boolean;
  /** Is commit 1's file `p` released whole (its header and opaque bytes too: the record's `files`)? */
  wholeFile: (p: string) => boolean;
  /** Data only released reaches use: gc frees it, no transfer sends it. */
  gone: Key[];
}

const KINDS: Kind[] = [
  {
    name: 'every file whole (prune --keep-last 1)',
    args: [],
    record: null,
    released: () => true,
    wholeFile: () => true,
    gone: ['A1', 'V', 'U', 'S', 'F1', 'F2'], // W stays: commit 2 needs it
  },
  {
    name: "a glob without ':' (--tensors 'opt*')",
    args: ['--tensors', 'opt*'],
    record: ['opt*'],
    released: (_p, n) => n.startsWith('opt'),
    wholeFile: () => false,
    gone: ['A1'], // S stays: s/f2 reaches it as 'shared'
  },
  {
    name: "globs with ':' (--tensors 'a/m.safetensors:*' 't/x.safetensors:*' 's/f1.safetensors:*')",
    args: ['--tensors', 'a/m.safetensors:*', '--tensors', 't/x.safetensors:*', '--tensors', 's/f1.safetensors:*'],
    record: ['a/m.safetensors:*', 's/f1.safetensors:*', 't/x.safetensors:*'],
    released: (p) => ['a/m.safetensors', 't/x.safetensors', 's/f1.safetensors'].includes(p),
    wholeFile: () => false,
    gone: ['F1'], // b/m keeps W and A1, t/y keeps V and U, s/f2 keeps S
  },
  {
    // a/ and b/ are one tree object, t/x and t/y one file object: releasing one path whole keeps the other's bytes.
    name: "file globs (--files 'a/*' 't/x.safetensors')",
    args: ['--files', 'a/*', '--files', 't/x.safetensors'],
    record: [],
    released: (p) => p.startsWith('a/') || p === 't/x.safetensors',
    wholeFile: (p) => p.startsWith('a/') || p === 't/x.safetensors',
    gone: [],
  },
];

/** Chunks every store holding both commits must have under this kind: unreleased tensor data, file chunks. */
function neededChunks(k: Kind): Map<string, string> {
  const out = new Map<string, string>();
  const add = (
    c: Record<string, FileModel>,
    label: string,
    rel: (p: string, n: string) => boolean,
    whole: (p: string) => boolean,
  ) => {
    for (const [p, f] of Object.entries(c)) {
      if (whole(p)) continue;
      if (!f.tensors.length) {
        out.set(chunkId(f.bytes), `${label} ${p} (opaque)`);
        continue;
      }
      out.set(chunkId(f.bytes.subarray(0, safetensorsDataStart(f.bytes))), `${label} ${p} header`);
      for (const [n, key] of f.tensors) if (!rel(p, n)) out.set(chunkId(D[key]), `${label} ${p}:${n} (${key})`);
    }
  };
  add(C1, 'commit 1', k.released, k.wholeFile);
  add(
    C2,
    'commit 2',
    () => false,
    () => false,
  );
  return out;
}

/** What a store holding both commits must have and must not have, read from its packs directly. */
function chunkProblems(s: TestStore, k: Kind, label: string): string[] {
  const need = neededChunks(k);
  const problems: string[] = [];
  for (const [id, what] of need) if (!holds(s, id)) problems.push(`${label}: the data of ${what} is missing`);
  for (const key of k.gone) {
    const id = chunkId(D[key]);
    if (need.has(id)) throw new Error(`test error: ${key} is both needed and gone under ${k.name}`);
    if (holds(s, id)) problems.push(`${label}: ${key}, reached only where released, is still stored`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------
// One template store: commit 1, a bundle of it (for the --since receiver), commit 2.

let template: TestStore;
let c1 = '';
let c2 = '';
let c1Bundle = '';
let work = '';

function writeCommitDir(files: Record<string, FileModel>, name: string): string {
  const dir = path.join(work, name);
  for (const [p, f] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), f.bytes);
  }
  return dir;
}

beforeAll(async () => {
  work = tempDir('ckvc-pw-work-');
  template = newStore('ckvc-pw-template-');
  c1 = (await template.jsonAsync<{ id: string }>(['commit', writeCommitDir(C1, 'c1'), '-m', 'commit 1'])).id;
  c1Bundle = path.join(work, 'c1.ckvb');
  expectOk(await template.runAsync(['pack', 'main', '-o', c1Bundle]), 'pack commit 1');
  c2 = (await template.jsonAsync<{ id: string }>(['commit', writeCommitDir(C2, 'c2'), '-m', 'commit 2'])).id;
  // The shapes are what the test says: one tree for a/ and b/, one file for t/x and t/y.
  const ls = await lsPruned(template, c1);
  expect([...ls.keys()].sort()).toEqual(C1_PATHS);
}, T);

/** `ckvc verify FILE` with no store: an empty cwd, CKVC_DIR unset, a private TMPDIR. */
function verifyFile(file: string): Promise<RunResult> {
  return ckvcAsync(['verify', file, '--json'], {
    cwd: tempDir('ckvc-pw-nostore-'),
    env: { TMPDIR: tempDir('ckvc-pw-vtmp-'), CKVC_DIR: undefined },
  });
}

describe.each(KINDS)('prune record: $name', (k) => {
  const unreleased1 = C1_PATHS.filter((p) => !k.wholeFile(p) && !C1[p]!.tensors.some(([n]) => k.released(p, n)));
  const released1 = C1_PATHS.filter((p) => !unreleased1.includes(p));
  let S: TestStore; // the source
  const token = `pw-token-${Math.random().toString(36).slice(2)}`;
  let full = '';
  let inc = '';
  const receivers: { label: string; s: TestStore }[] = [];

  /** Every check a store holding both commits must pass, with few spawns. */
  async function storeProblems(s: TestStore, label: string): Promise<string[]> {
    const recs = pruneRecords(s);
    const problems = chunkProblems(s, k, label);
    const rec = recs.get(c1);
    if (!rec || JSON.stringify(rec.tensors) !== JSON.stringify(k.record))
      problems.push(
        `${label}: the record of commit 1 is ${JSON.stringify(rec)}, expected tensors ${JSON.stringify(k.record)}`,
      );
    if (recs.has(c2)) problems.push(`${label}: commit 2 has a prune record`);
    const results = await pool(
      [
        async () => {
          const v = await s.verify(true);
          return v.r.code === 0 ? [] : [`${label}: verify --read-data: ${describeRun(v.r)}`];
        },
        () => checkoutPaths(s, c1, bytesOf(C1), unreleased1, label),
        () => expectReleased(s, c1, released1, label),
        () => checkoutPaths(s, c2, bytesOf(C2), Object.keys(C2).sort(), label),
      ],
      2,
      (f) => f(),
    );
    return [...problems, ...results.flat()];
  }

  it(
    'prune writes one record, for commit 1; ls --tensors flags exactly the released reaches per path; verify is clean',
    async () => {
      S = copyOf(template, 'ckvc-pw-source-');
      const pr = await S.jsonAsync<{ pruned: { id: string }[]; kept: { id: string }[]; tensors: string[] | null }>([
        'prune',
        '--keep-last',
        '1',
        ...k.args,
      ]);
      expect(pr.pruned.map((p) => p.id)).toEqual([c1]);
      expect(pr.tensors).toEqual(k.record);
      expect([...pruneRecords(S).values()].map((r) => ({ commit: r.commit, tensors: r.tensors }))).toEqual([
        { commit: c1, tensors: k.record },
      ]);
      const [ls, v] = await Promise.all([lsPruned(S, c1), S.runAsync(['verify', '--json'])]);
      const flags = Object.fromEntries([...ls].map(([p, m]) => [p, Object.fromEntries(m)]));
      const want = Object.fromEntries(
        C1_PATHS.map((p) => [p, Object.fromEntries(C1[p]!.tensors.map(([n]) => [n, k.released(p, n)]))]),
      );
      expect(flags).toEqual(want);
      expect(v.code, describeRun(v)).toBe(0);
    },
    T,
  );

  it(
    'pack and pack --since: verify FILE says self-contained and is right; the record travels only with its commit',
    async () => {
      full = path.join(work, `full-${KINDS.indexOf(k)}.ckvb`);
      inc = path.join(work, `inc-${KINDS.indexOf(k)}.ckvb`);
      const [pf, pi] = await Promise.all([
        S.runAsync(['pack', 'main', '-o', full, '--json']),
        S.runAsync(['pack', 'main', '-o', inc, '--since', c1, '--json']),
      ]);
      expect(pf.code, describeRun(pf)).toBe(0);
      expect(pi.code, describeRun(pi)).toBe(0);
      const [vf, vi] = await Promise.all([verifyFile(full), verifyFile(inc)]);
      expect(vf.code, describeRun(vf)).toBe(0);
      expect(vi.code, describeRun(vi)).toBe(0);
      const rf = JSON.parse(vf.stdout);
      const ri = JSON.parse(vi.stdout);
      expect(rf.commits.map((c: any) => c.id).sort()).toEqual([c1, c2].sort());
      expect(rf.prerequisites).toEqual([]);
      expect(rf.pruned.map((r: any) => ({ commit: r.commit, tensors: r.tensors }))).toEqual([
        { commit: c1, tensors: k.record },
      ]);
      expect(ri.commits.map((c: any) => c.id)).toEqual([c2]);
      expect(ri.prerequisites).toEqual([c1]);
      expect(ri.pruned).toEqual([]);
    },
    T,
  );

  it(
    'pull FILE, pull of the --since bundle, push and fetch (folder remote and HTTP): receivers verify clean, hold the record, unreleased files are byte-identical, released ones exit 19',
    async () => {
      const Pf = emptyStore('ckvc-pw-pull-'); // pull full
      const Pi = emptyStore('ckvc-pw-pullinc-'); // pull commit 1 (unpruned), then the --since bundle
      const Tf = emptyStore('ckvc-pw-pushdir-'); // pushed to as a folder
      const Th = emptyStore('ckvc-pw-pushhttp-'); // pushed to over HTTP
      const Ff = emptyStore('ckvc-pw-fetchdir-'); // fetches from S as a folder
      const Fh = emptyStore('ckvc-pw-fetchhttp-'); // fetches from Th over HTTP
      const tokenFile = path.join(work, `token-${KINDS.indexOf(k)}`);
      fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
      const server = await startServer(Th, ['--token-file', tokenFile]);
      setRemotes(S, { tf: Tf.dir, th: server.url });
      setRemotes(Ff, { origin: S.dir });
      setRemotes(Fh, { origin: server.url });
      const step = async (runs: [string, () => Promise<RunResult>][]) => {
        const rs = await pool(runs, 3, ([, f]) => f());
        rs.forEach((r, i) => {
          expect(r.code, `${runs[i]![0]}: ${describeRun(r)}`).toBe(0);
        });
      };
      await step([
        ['pull FILE', () => Pf.runAsync(['pull', full])],
        ['pull commit 1', () => Pi.runAsync(['pull', c1Bundle])],
        ['push folder', () => S.runAsync(['push', 'tf', 'main'])],
        ['push HTTP', () => S.runAsync(['push', 'th', 'main'], { env: { CKVC_TOKEN: token } })],
      ]);
      await step([
        ['pull --since bundle', () => Pi.runAsync(['pull', inc])],
        ['fetch folder', () => Ff.runAsync(['fetch', 'origin'], { env: { CKVC_TOKEN: undefined } })],
        ['fetch HTTP', () => Fh.runAsync(['fetch', 'origin'], { env: { CKVC_TOKEN: undefined } })],
      ]);
      expect(Th.ref('refs/heads/main')).toBe(c2);
      expect(Fh.ref('refs/remotes/origin/main')).toBe(c2);
      // Pi got commit 1 whole from the first bundle: it keeps it unpruned (no record arrived for it).
      expect(pruneRecords(Pi).size).toBe(0);
      // Receivers that gc before they are checked: the received record feeds their live set.
      await step([
        ['gc pull FILE', () => Pf.runAsync(['gc', '--grace', '0'])],
        ['gc push HTTP', () => Th.runAsync(['gc', '--grace', '0'])],
        ['gc fetch folder', () => Ff.runAsync(['gc', '--grace', '0'])],
      ]);
      receivers.push(
        { label: 'pull FILE', s: Pf },
        { label: 'push folder', s: Tf },
        { label: 'push HTTP', s: Th },
        { label: 'fetch folder', s: Ff },
        { label: 'fetch HTTP', s: Fh },
      );
      const problems: string[] = [];
      for (const r of receivers) problems.push(...(await storeProblems(r.s, r.label)));
      // The --since receiver has commit 1 whole and commit 2: everything checks out.
      const inc1 = await pool(
        [
          () => checkoutPaths(Pi, c1, bytesOf(C1), C1_PATHS, 'pull --since'),
          () => checkoutPaths(Pi, c2, bytesOf(C2), Object.keys(C2).sort(), 'pull --since'),
          async () => {
            const v = await Pi.verify(true);
            return v.r.code === 0 ? [] : [`pull --since: verify --read-data: ${describeRun(v.r)}`];
          },
        ],
        2,
        (f) => f(),
      );
      problems.push(...inc1.flat());
      // The receivers' ls flags the same reaches as the source's (the record arrived whole).
      for (const s of [Pf, Fh]) {
        const ls = await lsPruned(s, c1);
        for (const p of C1_PATHS)
          for (const [n] of C1[p]!.tensors)
            if (ls.get(p)?.get(n) !== k.released(p, n))
              problems.push(`ls at ${s.dir}: ${p}:${n} pruned=${ls.get(p)?.get(n)}`);
      }
      expect(problems).toEqual([]);
    },
    T,
  );

  it(
    'gc --grace 0 at the source frees only data no unreleased reach needs: every unreleased file byte-identical, each released file exits 19, verify --read-data clean',
    async () => {
      const g = await S.jsonAsync<{ bytesFreed: number }>(['gc', '--grace', '0']);
      // Under file globs every released path has an unreleased twin (a/ = b/, t/x = t/y): nothing may be freed.
      if (k.gone.length) expect(g.bytesFreed).toBeGreaterThan(0);
      else expect(g.bytesFreed).toBe(0);
      const problems = await storeProblems(S, 'source after gc');
      // Each released file on its own.
      problems.push(...(await pool(released1, 2, (p) => expectReleased(S, c1, [p], 'source after gc'))).flat());
      expect(problems).toEqual([]);
    },
    T,
  );
});
