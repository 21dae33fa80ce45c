// npm run demo: a small training loop that checkpoints with ckvc.
//
// It trains a toy model (a frozen embedding table, a trained projection and a bias) by SGD on a synthetic
// regression task, commits a checkpoint every few steps to branch phase-g2 with its config and loss, tags the
// best checkpoint, warm-starts a second branch (phase-g2-lowlr) from it with a lower learning rate under a moving
// "best" alias, then prints the history graph, the branches, tags and aliases, diffs the two best agents, prunes
// the old tensor data of phase-g2, garbage-collects and verifies the store. It uses the Node API (`import { openStore } from
// 'ckvc'`) for the loop and the real CLI for the reports, in a temporary folder it removes at the end
// (KEEP=1 keeps it).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initStore, openStore } from '../dist/api/index.js';
import { saveSafetensors } from './safetensors-writer.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, '..', 'bin', 'ckvc');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-demo-'));
const VOCAB = 2048,
  DIM = 64,
  OUT = 16;

function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296 - 0.5;
  };
}

function initModel(seed) {
  const r = rng(seed);
  return {
    'embed.weight': Float32Array.from({ length: VOCAB * DIM }, () => r() * 0.1),
    'proj.weight': Float32Array.from({ length: DIM * OUT }, () => r() * 0.1),
    'proj.bias': new Float32Array(OUT),
  };
}

/** One SGD step on a fixed synthetic batch; only proj.* are trained (the embedding stays frozen). */
function trainStep(m, lr, target, batch) {
  let loss = 0;
  const gw = new Float32Array(DIM * OUT),
    gb = new Float32Array(OUT);
  for (const tok of batch) {
    const e = m['embed.weight'].subarray(tok * DIM, tok * DIM + DIM);
    for (let o = 0; o < OUT; o++) {
      let y = m['proj.bias'][o];
      for (let d = 0; d < DIM; d++) y += e[d] * m['proj.weight'][d * OUT + o];
      const err = y - target[(tok * OUT + o) % target.length];
      loss += err * err;
      gb[o] += err;
      for (let d = 0; d < DIM; d++) gw[d * OUT + o] += err * e[d];
    }
  }
  for (let i = 0; i < gw.length; i++) m['proj.weight'][i] -= (lr * gw[i]) / batch.length;
  for (let o = 0; o < OUT; o++) m['proj.bias'][o] -= (lr * gb[o]) / batch.length;
  return loss / batch.length / OUT;
}

function run(args) {
  const r = spawnSync(process.execPath, [cli, ...args, '--store', path.join(work, '.ckvc')], { encoding: 'utf8' });
  process.stdout.write(r.stdout);
  process.stdout.write(r.stderr);
  if (r.status !== 0) {
    throw new Error(`ckvc ${args.join(' ')} exited ${r.status}`);
  }
  return r.stdout;
}

async function trainPhase(store, { branch, lr, steps, from, model }) {
  const ckptDir = path.join(work, 'ckpt', branch);
  fs.mkdirSync(ckptDir, { recursive: true });
  const cfg = path.join(work, `${branch}.yaml`);
  fs.writeFileSync(
    cfg,
    `model:\n  vocab: ${VOCAB}\n  dim: ${DIM}\n  out: ${OUT}\noptim:\n  name: sgd\n  lr: ${lr}\nbatch: 256\n`,
  );
  const r = rng(42);
  const target = Float32Array.from({ length: 997 }, () => r());
  const batch = Array.from({ length: 256 }, (_, i) => (i * 7919) % VOCAB);
  let parent = from;
  for (let step = 1; step <= steps; step++) {
    const loss = trainStep(model, lr, target, batch);
    if (step % 25 !== 0) continue;
    saveSafetensors(path.join(ckptDir, 'model.safetensors'), model, {
      'embed.weight': [VOCAB, DIM],
      'proj.weight': [DIM, OUT],
    });
    fs.writeFileSync(path.join(ckptDir, 'trainer_state.json'), JSON.stringify({ step, loss, lr }, null, 2));
    const c = await store.commit({
      paths: [ckptDir],
      branch,
      message: `${branch} step ${step}`,
      config: cfg,
      metrics: { loss: Number(loss.toFixed(6)) },
      step,
      run: `${branch}-demo`,
      parents: parent ? [parent] : [],
    });
    parent = undefined; // a warm-start parent is recorded on the branch's first commit only
    console.log(
      `  ${branch} step ${String(step).padStart(3)}  loss ${loss.toFixed(6)}  -> ${c.id.slice(0, 12)} (${c.newBytes} new bytes of ${c.bytes})`,
    );
  }
}

try {
  console.log(`ckvc demo in ${work}\n`);
  await initStore(work);
  const store = await openStore(path.join(work, '.ckvc'));
  try {
    const model = initModel(1);
    console.log('phase-g2: training from scratch, lr 0.5');
    await trainPhase(store, { branch: 'phase-g2', lr: 0.5, steps: 150, model });

    // Tag the best phase-g2 checkpoint by its loss.
    const best = await store.tagBest('best-g2', {
      metric: 'loss',
      mode: 'min',
      branch: 'phase-g2',
      message: 'lowest loss on phase-g2',
    });
    console.log(`\ntagged best-g2 = ${best.id.slice(0, 12)} (loss ${best.value}, best of ${best.candidates})\n`);
    // A moving alias: every later commit to phase-g2-lowlr with a lower loss moves it.
    await store.createAlias({ name: 'lowlr-best', track: 'loss', mode: 'min', branch: 'phase-g2-lowlr' });

    // Warm-start a second phase from the best agent, byte-identical and hash-verified.
    const resume = path.join(work, 'resume');
    await store.checkout({ rev: 'best-g2', to: resume });
    console.log(`checked out best-g2 to ${resume}; continuing with a lower learning rate`);
    const data = fs.readFileSync(path.join(resume, 'model.safetensors'));
    const headerLen = Number(data.readBigUInt64LE(0));
    const header = JSON.parse(data.subarray(8, 8 + headerLen).toString());
    const resumed = {};
    for (const [name, info] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const [b, e] = info.data_offsets;
      resumed[name] = new Float32Array(
        data.buffer.slice(data.byteOffset + 8 + headerLen + b, data.byteOffset + 8 + headerLen + e),
      );
    }
    await trainPhase(store, { branch: 'phase-g2-lowlr', lr: 0.1, steps: 75, from: 'best-g2', model: resumed });
  } finally {
    await store.close();
  }

  console.log('\n$ ckvc log --all --graph --metric loss');
  run(['log', '--all', '--graph', '--metric', 'loss']);
  console.log('\n$ ckvc branch');
  run(['branch']);
  console.log('\n$ ckvc tag');
  run(['tag']);
  console.log('\n$ ckvc alias');
  run(['alias']);
  console.log('\n$ ckvc diff best-g2 lowlr-best');
  run(['diff', 'best-g2', 'lowlr-best']);
  console.log('\n$ ckvc prune --keep-last 2 -b phase-g2');
  run(['prune', '--keep-last', '2', '-b', 'phase-g2']);
  console.log('\n$ ckvc gc --grace 0');
  run(['gc', '--grace', '0']);
  console.log('\n$ ckvc stats');
  run(['stats']);
  console.log('\n$ ckvc verify --read-data');
  run(['verify', '--read-data']);
  console.log('\ndemo finished: every checkpoint committed, the store verified clean.');
} finally {
  if (!process.env.KEEP) fs.rmSync(work, { recursive: true, force: true });
}
