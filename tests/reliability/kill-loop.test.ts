// Kill loop: commit a ~24 MiB checkpoint folder (new random data every round, so there is real work) and
// SIGKILL the process after a random, seeded delay. After every round the store must verify clean with
// --read-data, every acknowledged commit must still be on the branch, a commit that landed before the kill must
// hold exactly its input, and the input must be untouched. At the end every commit checks out byte-identical.
// Rounds: 8 x CKVC_SOAK_SCALE (default 1). Also: index rebuild and checkout killed at random moments.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeRun } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { checkoutDiff, newStore } from '../helpers/test-store.js';
import { diffSnapshots, fingerprint, hashTree } from '../helpers/snapshots.js';
import { sleep } from '../helpers/async-tasks.js';
import { CHECKOUT_TEMP, MiB, soakScale } from '../helpers/reliability.js';
import { randomBytes, randomFloat32, safetensorsBytes, prng } from '../helpers/data.js';

afterAll(cleanupTemp);

// Seed 23 gives delays 343 651 77 732 124 349 78 362 ms: three rounds are always cut short (a commit cannot finish
// within ~130 ms: process start alone takes ~250 ms), two usually finish, the rest race.
const SEED = Number(process.env.CKVC_KILL_SEED ?? 23);
const ROUNDS = Math.round(8 * soakScale());

/** ~24 MiB: a 12 MiB safetensors (two float tensors) and a 12 MiB opaque file, all new for `seed`. */
function checkpoint(dir: string, seed: number): Map<string, string> {
  fs.mkdirSync(dir, { recursive: true });
  const n = (6 * MiB) / 4;
  fs.writeFileSync(
    path.join(dir, 'model.safetensors'),
    safetensorsBytes({
      'layer.0.weight': { dtype: 'F32', shape: [n / 1024, 1024], bytes: randomFloat32(seed * 2, n) },
      'layer.1.weight': { dtype: 'F32', shape: [n / 1024, 1024], bytes: randomFloat32(seed * 2 + 1, n) },
    }),
  );
  fs.writeFileSync(path.join(dir, 'optimizer.bin'), randomBytes(seed ^ 0x3c3c3c, 12 * MiB));
  return hashTree(dir);
}

describe('kill loop', () => {
  it(
    `${ROUNDS} commits of ~24 MiB killed after a random 20-800 ms: nothing acknowledged is lost`,
    async () => {
      const s = newStore('ckvc-kill-');
      const rnd = prng(SEED);
      const expected = new Map<string, Map<string, string>>(); // every commit on main -> its files
      const chain: string[] = []; // main's history, oldest first
      let killedMidway = 0;
      let finished = 0;
      let landedThenKilled = 0;
      let tmpLeft = 0;
      const problems: string[] = [];
      for (let round = 0; round < ROUNDS && problems.length === 0; round++) {
        const dir = tempDir('ckvc-kill-in-');
        const files = checkpoint(dir, SEED + round);
        const input = fingerprint([dir]);
        const delay = 20 + (rnd() % 781);
        const run = s.start(['commit', dir, '-m', `round ${round}`, '--metric', `loss=${1 / (round + 1)}`, '--json']);
        await sleep(delay);
        run.kill('SIGKILL');
        const r = await run.done;
        const tip = s.ref('refs/heads/main');
        const prev = chain.at(-1);
        if (r.signal === 'SIGKILL') {
          if (tip !== prev) {
            // Killed after the branch moved: the commit is visible, so it must be complete and hold this input.
            landedThenKilled++;
            chain.push(tip!);
            expected.set(tip!, files);
          } else killedMidway++;
        } else if (r.code === 0) {
          finished++;
          const id = JSON.parse(r.stdout).id as string;
          if (tip !== id) problems.push(`round ${round}: exit 0 with ${id}, but main is ${tip}`);
          chain.push(id);
          expected.set(id, files);
        } else problems.push(`round ${round}: neither killed nor successful: ${describeRun(r)}`);

        // Every byte re-hashed each round for the first 8 rounds, then every 4th (the store grows ~24 MiB a round);
        // the structural verify (refs, history, packs) every round.
        const readData = round < 8 || round % 4 === 0 || round === ROUNDS - 1;
        const v = await s.verify(readData);
        if (v.r.code !== 0)
          problems.push(
            `round ${round} (killed after ${delay} ms): verify${readData ? ' --read-data' : ''}: ${describeRun(v.r)}`,
          );
        if (chain.length) {
          const log = await s.runAsync(['log', 'main', '--first-parent', '--json']);
          const ids = log.code === 0 ? (JSON.parse(log.stdout) as { id: string }[]).map((c) => c.id).reverse() : [];
          if (JSON.stringify(ids) !== JSON.stringify(chain))
            problems.push(
              `round ${round}: main's history is ${ids.length} commits, expected ${chain.length}: ${describeRun(log)}`,
            );
        }
        if (tip !== prev && tip)
          problems.push(...(await checkoutDiff(s, tip, files)).map((d) => `round ${round}: ${d}`));
        problems.push(...diffSnapshots(input, fingerprint([dir])).map((d) => `round ${round}: input ${d}`));
        fs.rmSync(dir, { recursive: true, force: true });
      }
      expect(problems).toEqual([]);
      const tmpFiles = fs.readdirSync(path.join(s.store, 'tmp'));
      tmpLeft = tmpFiles.length;
      const tmpBytes = tmpFiles.reduce((n, f) => n + fs.statSync(path.join(s.store, 'tmp', f)).size, 0);

      // The interrupted operation, re-run without a kill, succeeds on top of whatever landed.
      const dir = tempDir('ckvc-kill-in-');
      const files = checkpoint(dir, SEED + 999);
      const last = await s.runAsync(['commit', dir, '-m', 'after the kills', '--json']);
      expect(last.code, describeRun(last)).toBe(0);
      const id = JSON.parse(last.stdout).id as string;
      expect(JSON.parse(last.stdout).parents).toEqual(chain.length ? [chain.at(-1)] : []);
      expected.set(id, files);
      const diffs: string[] = [];
      for (const [c, f] of expected) diffs.push(...(await checkoutDiff(s, c, f)));
      expect(diffs).toEqual([]);
      const v = await s.verify(true);
      expect(v.r.code, describeRun(v.r)).toBe(0);
      console.log(
        `kill loop: ${ROUNDS} rounds: ${killedMidway} killed mid-way, ${landedThenKilled} killed after the branch moved, ${finished} finished before the kill; ${tmpLeft} partial pack(s) left in tmp/ (${(tmpBytes / MiB).toFixed(1)} MiB, unreferenced); ${expected.size} commits checked byte-identical`,
      );
      // Not vacuous: with 20-800 ms against ~1 s commits most rounds are cut short.
      if (ROUNDS >= 8) expect(killedMidway).toBeGreaterThanOrEqual(2);
    },
    180_000 * soakScale(),
  );

  it(
    'index rebuild and checkout killed at random moments: the index is only a cache, targets are never partial',
    async () => {
      const s = newStore('ckvc-kill-idx-');
      const files: Map<string, string>[] = [];
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const dir = tempDir('ckvc-kill-in-');
        files.push(checkpoint(dir, SEED + 500 + i));
        ids.push(s.json<{ id: string }>(['commit', dir, '-m', `c${i}`]).id);
        fs.rmSync(dir, { recursive: true, force: true });
      }
      const rnd = prng(SEED + 1);
      const rounds = Math.round(3 * soakScale());
      let killedRebuild = 0;
      let killedCheckout = 0;
      let temps = 0;
      const target = tempDir('ckvc-kill-co-');
      for (let round = 0; round < rounds; round++) {
        const rb = s.start(['index', 'rebuild']);
        await sleep(rnd() % 400);
        rb.kill('SIGKILL');
        if ((await rb.done).signal === 'SIGKILL') killedRebuild++;
        // Whatever the index holds now, reads work and find everything.
        const log = await s.runAsync(['log', '--json']);
        expect(log.code, describeRun(log)).toBe(0);
        expect((JSON.parse(log.stdout) as { id: string }[]).map((c) => c.id)).toEqual([...ids].reverse());

        // Alternate the target between the two commits: files there are the old version or the complete new one.
        const want = round % 2;
        const co = s.start(['checkout', ids[want]!, '--to', target, '--force']);
        await sleep(150 + (rnd() % 600));
        co.kill('SIGKILL');
        if ((await co.done).signal === 'SIGKILL') killedCheckout++;
        for (const [rel, h] of hashTree(target)) {
          if (CHECKOUT_TEMP.test(path.basename(rel))) {
            temps++;
            continue;
          }
          expect([files[0]!.get(rel), files[1]!.get(rel)], `${rel} is partial`).toContain(h);
        }
      }
      expect(await checkoutDiff(s, ids[1]!, files[1]!)).toEqual([]);
      const v = await s.verify(true);
      expect(v.r.code, describeRun(v.r)).toBe(0);
      console.log(
        `kill loop (index rebuild / checkout): ${rounds} rounds, ${killedRebuild} rebuilds and ${killedCheckout} checkouts killed, ${temps} checkout temp file(s) left`,
      );
    },
    120_000 * soakScale(),
  );
});
