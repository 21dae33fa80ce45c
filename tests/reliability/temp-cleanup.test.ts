// What killed commands leave in a store, and gc removing it (spec/FORMAT.md §1, §10, §15).
//
// Commits killed at pack and ref write steps and at random moments of a ~24 MiB commit, and pulls, a fetch and a
// push killed at the receive steps, leave unfinished packs, quarantine folders and ref temp files. verify must
// warn about them (count and bytes, exit 0); a default gc must keep those younger than the grace period (a
// folder counts by its newest file); gc --grace 0 must leave no temp file anywhere in the store; verify then
// warns no more. The temp of a command still running must survive gc --grace 0: a commit stopped mid-pack
// (a registered writer: gc waits for it) and a pull stopped mid-receive (not registered yet: its pid is alive).
// Running commands are paused with SIGSTOP: a live process that makes no progress, like one on a slow source.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeRun, errorCodes, expectOk, parseJson, type Running, type RunResult } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { checkoutDiff, newStore, type TestStore } from '../helpers/test-store.js';
import { hashTree } from '../helpers/snapshots.js';
import { sleep } from '../helpers/async-tasks.js';
import { MiB } from '../helpers/reliability.js';
import { prng, randomBytes, randomFloat32, safetensorsBytes } from '../helpers/data.js';

afterAll(cleanupTemp);

const HOUR = 3600_000;

/** A checkpoint folder of `mib` MiB (half a safetensors of two tensors, half opaque), all new for `seed`. */
function checkpoint(dir: string, seed: number, mib: number): Map<string, string> {
  fs.mkdirSync(dir, { recursive: true });
  const n = ((mib / 4) * MiB) / 4;
  fs.writeFileSync(
    path.join(dir, 'model.safetensors'),
    safetensorsBytes({
      'layer.0.weight': { dtype: 'F32', shape: [n / 1024, 1024], bytes: randomFloat32(seed * 2, n) },
      'layer.1.weight': { dtype: 'F32', shape: [n / 1024, 1024], bytes: randomFloat32(seed * 2 + 1, n) },
    }),
  );
  fs.writeFileSync(path.join(dir, 'optimizer.bin'), randomBytes(seed ^ 0x3c3c3c, (mib / 2) * MiB));
  return hashTree(dir);
}

interface Temp {
  rel: string;
  bytes: number;
}

function sizeOf(p: string): number {
  const st = fs.lstatSync(p);
  return st.isDirectory() ? fs.readdirSync(p).reduce((a, n) => a + sizeOf(path.join(p, n)), 0) : st.size;
}

/**
 * Temp files and folders in a store, found from the outside: everything in tmp/, and elsewhere (but the LevelDB
 * index) any `*.tmp` or set-aside `*.lock.stale.*` file. Sorted by path.
 */
function tempsIn(s: TestStore): Temp[] {
  const out: Temp[] = [];
  for (const n of fs.readdirSync(path.join(s.store, 'tmp')))
    out.push({ rel: `tmp/${n}`, bytes: sizeOf(path.join(s.store, 'tmp', n)) });
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(s.store, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (r !== 'tmp' && r !== 'index') walk(r);
      } else if (e.name.endsWith('.tmp') || e.name.includes('.lock.stale.'))
        out.push({ rel: r, bytes: sizeOf(path.join(s.store, r)) });
    }
  };
  walk('');
  return out.sort((a, b) => (a.rel < b.rel ? -1 : 1));
}

const sum = (ts: Temp[]) => ts.reduce((a, t) => a + t.bytes, 0);

/** Sets the mtime of `p` (and, with `deep`, of everything in it) to `ago` ms in the past. */
function age(p: string, ago: number, deep = true): void {
  const t = new Date(Date.now() - ago);
  if (deep && fs.statSync(p).isDirectory()) for (const n of fs.readdirSync(p)) age(path.join(p, n), ago);
  fs.utimesSync(p, t, t);
}

async function verifyJson(s: TestStore): Promise<any> {
  const v = await s.verify(false);
  expect(v.r.code, describeRun(v.r)).toBe(0);
  expect(v.report.ok).toBe(true);
  return v.report;
}

/** The human verify: exit 0 either way; the warning line, if any. */
async function verifyWarning(s: TestStore): Promise<string | undefined> {
  const r = await s.runAsync(['verify']);
  expect(r.code, describeRun(r)).toBe(0);
  expect(r.stderr).toContain('no problems found');
  return r.stderr.split('\n').find((l) => l.startsWith('warning:'));
}

const gcJson = async (s: TestStore, args: string[] = []) =>
  parseJson(await s.runAsync(['gc', ...args, '--json']), `gc ${args.join(' ')}`);

/** Waits until `tmp/` of `s` holds an entry starting with `prefix` (a file of at least `bytes`); undefined if `run` ends first. */
async function waitForTemp(s: TestStore, prefix: string, run: Running, bytes = 0): Promise<string | undefined> {
  let ended = false;
  void run.done.then(() => {
    ended = true;
  });
  while (!ended) {
    const hit = fs.readdirSync(path.join(s.store, 'tmp')).find((n) => n.startsWith(prefix));
    if (hit && (fs.statSync(path.join(s.store, 'tmp', hit), { throwIfNoEntry: false })?.size ?? -1) >= bytes)
      return hit;
    await sleep(2);
  }
  return undefined;
}

function expectKilled(r: RunResult, what: string): void {
  expect(r.signal, `${what}: ${describeRun(r)}`).toBe('SIGKILL');
}

describe('leftovers of killed commands', () => {
  it('commits killed at pack and ref steps: verify warns, a default gc keeps young ones, gc --grace 0 removes all', async () => {
    const s = newStore('ckvc-tmpclean-');
    const dir = tempDir('ckvc-tmpclean-in-');
    const files = checkpoint(path.join(dir, 'ck'), 1, 6);
    // pack.write@1 leaves an empty temp pack, @2 one holding the first flush (>= 4 MiB), pack.fsync and
    // pack.rename a whole one; ref.fsync and ref.rename (the pack landed) a ref temp file beside refs/heads/main.
    const left = new Map<string, Temp>();
    for (const fault of ['pack.write', 'pack.write@2', 'pack.fsync', 'pack.rename', 'ref.fsync', 'ref.rename']) {
      const before = tempsIn(s).map((t) => t.rel);
      expectKilled(
        await s.runAsync(['commit', path.join(dir, 'ck'), '-m', 'killed'], { env: { CKVC_FAULT: fault } }),
        fault,
      );
      const added = tempsIn(s).filter((t) => !before.includes(t.rel));
      expect(added, fault).toHaveLength(1);
      left.set(fault, added[0]!);
    }
    const temps = tempsIn(s);
    expect(temps.map((t) => t.rel.replace(/[0-9a-f]+\.tmp$/, 'X').replace(/\d+/g, 'N'))).toEqual([
      'refs/heads/.main.N.X',
      'refs/heads/.main.N.X',
      'tmp/pack-N-X',
      'tmp/pack-N-X',
      'tmp/pack-N-X',
      'tmp/pack-N-X',
    ]);
    const whole = left.get('pack.fsync')!.bytes; // the same data: only the commit's time may differ in width
    expect(Math.abs(left.get('pack.rename')!.bytes - whole)).toBeLessThan(16);
    expect(left.get('pack.write')!.bytes).toBe(0);
    expect(left.get('pack.write@2')!.bytes).toBeGreaterThanOrEqual(4 * MiB);
    expect(left.get('pack.write@2')!.bytes).toBeLessThan(whole);
    expect(fs.readFileSync(path.join(s.store, left.get('ref.rename')!.rel), 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);

    const report = await verifyJson(s);
    expect(report.leftovers).toEqual({ count: 6, bytes: sum(temps), paths: temps.map((t) => t.rel) });
    expect(await verifyWarning(s)).toMatch(
      /^warning: 6 leftover\(s\) of interrupted commands, .*'ckvc gc' removes them.*'ckvc gc --grace 0'/,
    );

    // Past the grace: one temp pack and one ref temp, aged two hours. The default gc (1 h) takes only those.
    const old = [left.get('pack.fsync')!, left.get('ref.fsync')!];
    for (const t of old) age(path.join(s.store, t.rel), 2 * HOUR);
    const dflt = await gcJson(s);
    expect(dflt).toMatchObject({ tempsRemoved: 2, tempBytesRemoved: sum(old), tempsKept: 4 });
    expect(tempsIn(s)).toEqual(temps.filter((t) => !old.some((o) => o.rel === t.rel)));

    const dry = await gcJson(s, ['--grace', '0', '--dry-run']);
    expect(dry).toMatchObject({ tempsRemoved: 4, tempBytesRemoved: sum(temps) - sum(old), tempsKept: 0 });
    expect(tempsIn(s)).toHaveLength(4);
    const gc = await gcJson(s, ['--grace', '0']);
    expect(gc).toMatchObject({ tempsRemoved: 4, tempBytesRemoved: sum(temps) - sum(old), tempsKept: 0 });
    expect(tempsIn(s)).toEqual([]);
    expect(fs.readdirSync(path.join(s.store, 'tmp'))).toEqual([]);
    expect((await verifyJson(s)).leftovers).toEqual({ count: 0, bytes: 0, paths: [] });
    expect(await verifyWarning(s)).toBeUndefined();

    // The commit, run again, lands (breaking the killed one's stale ref lock) and checks out byte-identical.
    expectOk(await s.runAsync(['commit', path.join(dir, 'ck'), '-m', 'again']), 'commit again');
    expect(await checkoutDiff(s, 'main', files)).toEqual([]);
    expect(tempsIn(s)).toEqual([]);
  }, 180_000);

  it('~24 MiB commits SIGKILLed at a random moment while their pack is written: every temp pack is reported, then removed', async () => {
    const s = newStore('ckvc-tmpkill-');
    const rnd = prng(11);
    const killed: number[] = [];
    const acked = new Map<string, Map<string, string>>();
    for (let round = 0; round < 3; round++) {
      const dir = tempDir('ckvc-tmpkill-in-');
      const files = checkpoint(dir, 100 + round, 24);
      // Killed once its temp pack holds a random 0-16 MiB: at a random point of the write, whatever the machine's speed.
      const threshold = rnd() % (16 * MiB);
      const run = s.start(['commit', dir, '-m', `round ${round}`, '--json']);
      const seen = await waitForTemp(s, `pack-${run.pid}-`, run, threshold);
      run.kill('SIGKILL');
      const r = await run.done;
      if (r.signal === 'SIGKILL') {
        expect(seen, 'killed before its temp pack appeared').toBeDefined();
        killed.push(run.pid);
      } else acked.set(parseJson(r, `round ${round}`).id, files);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const temps = tempsIn(s);
    // A commit killed after its pack was renamed into packs/ leaves no temp; one killed while writing leaves one.
    expect(temps.length).toBeGreaterThan(0);
    for (const t of temps)
      expect(
        killed.map((pid) => `pack-${pid}-`).some((p) => t.rel.startsWith(`tmp/${p}`)),
        t.rel,
      ).toBe(true);
    const report = await verifyJson(s);
    expect(report.leftovers).toEqual({ count: temps.length, bytes: sum(temps), paths: temps.map((t) => t.rel) });
    expect(await gcJson(s, ['--grace', '0'])).toMatchObject({
      tempsRemoved: temps.length,
      tempBytesRemoved: sum(temps),
    });
    expect(tempsIn(s)).toEqual([]);
    expect((await verifyJson(s)).leftovers.count).toBe(0);
    for (const [id, files] of acked) expect(await checkoutDiff(s, id, files)).toEqual([]);
    console.log(
      `temp cleanup: 3 commits of ~24 MiB, ${killed.length} killed mid-pack, ${temps.length} temp pack(s) (${(sum(temps) / MiB).toFixed(1)} MiB) reported and removed`,
    );
  }, 180_000);

  it('pulls, a fetch and a push killed at receive steps: quarantine folders reported, a young one kept, gc --grace 0 removes all', async () => {
    const a = newStore('ckvc-tmprecv-a-');
    const dir = tempDir('ckvc-tmprecv-in-');
    const files = checkpoint(dir, 7, 6);
    expectOk(await a.runAsync(['commit', dir, '-m', 'source']), 'commit');
    const bundle = path.join(tempDir('ckvc-tmprecv-b-'), 'main.ckvcb');
    expectOk(await a.runAsync(['pack', 'main', '-o', bundle]), 'pack');
    const b = newStore('ckvc-tmprecv-b-');
    const r = newStore('ckvc-tmprecv-r-');
    expectOk(await b.runAsync(['remote', 'add', 'a', a.store]), 'remote add');
    expectOk(await a.runAsync(['remote', 'add', 'r', r.store]), 'remote add');

    // The fetch first: after a pull got as far as moving its pack, the fetch would have nothing to receive.
    expectKilled(await b.runAsync(['fetch', 'a'], { env: { CKVC_FAULT: 'receive.verified' } }), 'fetch');
    for (const fault of ['receive.verified', 'receive.moved', 'receive.indexed']) {
      expectKilled(await b.runAsync(['pull', bundle], { env: { CKVC_FAULT: fault } }), `pull at ${fault}`);
    }
    expectKilled(await a.runAsync(['push', 'r', 'main'], { env: { CKVC_FAULT: 'receive.verified' } }), 'push');

    const tb = tempsIn(b);
    expect(tb.map((t) => t.rel.replace(/\d+-[0-9a-f]+$/, 'X'))).toEqual(Array(4).fill('tmp/quarantine-X'));
    // The fetch and the pull killed at receive.verified hold the whole pack; the others moved it out already.
    expect(tb.map((t) => t.bytes > MiB).sort()).toEqual([false, false, true, true]);
    expect(tb.filter((t) => t.bytes <= MiB).map((t) => t.bytes)).toEqual([0, 0]);
    expect((await verifyJson(b)).leftovers).toEqual({ count: 4, bytes: sum(tb), paths: tb.map((t) => t.rel) });
    const tr = tempsIn(r);
    expect(tr.map((t) => t.rel.replace(/\d+-[0-9a-f]+$/, 'X'))).toEqual(['tmp/quarantine-X']);
    expect((await verifyJson(r)).leftovers).toMatchObject({ count: 1, bytes: sum(tr) });
    expect(await verifyWarning(r)).toMatch(/^warning: 1 leftover\(s\)/);

    // A folder counts by its newest file: one aged whole is past the default grace, one aged but for its pack is not.
    const full = tb.filter((t) => t.bytes > MiB);
    age(path.join(b.store, full[0]!.rel), 2 * HOUR);
    const quarantine1 = path.join(b.store, full[1]!.rel);
    age(quarantine1, 2 * HOUR);
    const young = fs.readdirSync(path.join(quarantine1, 'packs'))[0]!;
    fs.utimesSync(path.join(quarantine1, 'packs', young), new Date(), new Date());
    expect(await gcJson(b)).toMatchObject({ tempsRemoved: 1, tempBytesRemoved: full[0]!.bytes, tempsKept: 3 });
    expect(fs.existsSync(quarantine1)).toBe(true);

    for (const s of [a, b, r]) {
      expect(await gcJson(s, ['--grace', '0'])).toMatchObject({ tempsKept: 0 });
      expect(tempsIn(s)).toEqual([]);
      expect(fs.readdirSync(path.join(s.store, 'tmp'))).toEqual([]);
      expect((await verifyJson(s)).leftovers.count).toBe(0);
    }
    // Each interrupted transfer, run again, completes.
    expectOk(await b.runAsync(['pull', bundle]), 'pull again');
    expect(await checkoutDiff(b, 'bundle/main', files)).toEqual([]);
    expectOk(await b.runAsync(['fetch', 'a']), 'fetch again');
    expectOk(await a.runAsync(['push', 'r', 'main']), 'push again');
    expect(await checkoutDiff(r, 'main', files)).toEqual([]);
  }, 240_000);
});

describe("a running command's temp survives gc --grace 0", () => {
  it('a commit stopped mid-pack (a registered writer): gc waits for it and gives up (exit 11); the commit then lands', async () => {
    const s = newStore('ckvc-tmplive-');
    const dir = tempDir('ckvc-tmplive-in-');
    const files = checkpoint(dir, 21, 12);
    const run = s.start(['commit', dir, '-m', 'slow', '--json']);
    const name = await waitForTemp(s, `pack-${run.pid}-`, run);
    expect(name, 'the commit ended before its temp pack appeared').toBeDefined();
    process.kill(run.pid, 'SIGSTOP');
    try {
      const temp = path.join(s.store, 'tmp', name!);
      const ino = fs.statSync(temp).ino;
      const gc = await s.runAsync(['gc', '--grace', '0'], { env: { CKVC_GC_WAIT_MS: '1500' } });
      expect(gc.code, describeRun(gc)).toBe(11);
      expect(errorCodes(gc.stderr)).toEqual(['CKVC_LOCKED']);
      expect(gc.stderr).toContain(String(run.pid));
      expect(fs.statSync(temp).ino).toBe(ino);
    } finally {
      process.kill(run.pid, 'SIGCONT');
    }
    const id = parseJson(await run.done, 'the stopped commit').id as string;
    expect(await checkoutDiff(s, id, files)).toEqual([]);
    expect(tempsIn(s)).toEqual([]);
  }, 180_000);

  it("a pull stopped while receiving (not yet a registered writer): gc --grace 0 removes a dead pull's quarantine, keeps the live one", async () => {
    const a = newStore('ckvc-tmplive-a-');
    const dir = tempDir('ckvc-tmplive-in-');
    const files = checkpoint(dir, 31, 12);
    expectOk(await a.runAsync(['commit', dir, '-m', 'source']), 'commit');
    const bundle = path.join(tempDir('ckvc-tmplive-b-'), 'main.ckvcb');
    expectOk(await a.runAsync(['pack', 'main', '-o', bundle]), 'pack');
    // A receive takes a few hundred ms; on a busy machine the pull may finish before it is caught: try again.
    for (let attempt = 1; ; attempt++) {
      const b = newStore('ckvc-tmplive-b-');
      expectKilled(await b.runAsync(['pull', bundle], { env: { CKVC_FAULT: 'receive.verified' } }), 'pull');
      const dead = tempsIn(b);
      expect(dead).toHaveLength(1);
      const run = b.start(['pull', bundle, '--json']);
      const name = await waitForTemp(b, `quarantine-${run.pid}-`, run);
      if (name) process.kill(run.pid, 'SIGSTOP');
      else {
        expectOk(await run.done, 'pull');
        if (attempt < 4) continue;
        throw new Error('the pull always finished before its quarantine could be caught');
      }
      try {
        expect((await verifyJson(b)).leftovers).toMatchObject({ count: 1, paths: [dead[0]!.rel] });
        const gc = await gcJson(b, ['--grace', '0']);
        expect(gc).toMatchObject({ tempsRemoved: 1, tempBytesRemoved: dead[0]!.bytes, tempsKept: 1 });
        expect(tempsIn(b).map((t) => t.rel)).toEqual([`tmp/${name}`]);
      } finally {
        process.kill(run.pid, 'SIGCONT');
      }
      expectOk(await run.done, 'the stopped pull');
      expect(await checkoutDiff(b, 'bundle/main', files)).toEqual([]);
      expect(tempsIn(b)).toEqual([]);
      return;
    }
  }, 180_000);
});
