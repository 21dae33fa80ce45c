#!/usr/bin/env node
// toy-agent.mjs: a stand-in for a training job, used by examples/phase-workflow.sh. Node only, no dependencies.
//
// It "trains" a small agent of one architecture for some steps and leaves what a real job leaves behind:
//
//   OUT/model.safetensors    the weights, with the tensor names the architecture would have in PyTorch
//   OUT/trainer_state.json   step, seed, learning rate, reward and loss (what a trainer's state file holds)
//   CONFIG                   the run's config as YAML (the same for every checkpoint of a run)
//
// and prints the evaluation on stdout as one line of KEY=VALUE words: `step=3000 reward=96.41 loss=0.5621`.
//
//   node examples/toy-agent.mjs --arch g2|lstm|gru|attention --out DIR --config FILE
//                               [--from DIR] [--steps N] [--seed S] [--lr LR]
//
//   --from DIR   start from the checkpoint in DIR (which may be OUT itself: resume). Every tensor of --arch whose
//                name and shape DIR's model.safetensors also has is loaded from it; the others start from a seeded
//                random init. Resuming loads everything; warm-starting an LSTM from the G2 agent loads the
//                shared embed.weight, policy_head.* and value_head.* and initialises the new encoder.
//   --steps N    train N more steps (default 1000); the step count continues from --from when it is the same
//                architecture and restarts at 0 for a warm start.
//
// What changes between checkpoints, so that ckvc's tensor-level dedup has something to show:
//   - g2 trains everything, but the embedding gets sparse updates (only the rows of the tokens it saw, one
//     256 KiB chunk's worth of rows per checkpoint);
//   - lstm, gru and attention keep the warm-started embedding frozen and train their encoder and the heads.
// Everything is deterministic in (arch, seed, lr, steps, --from): re-running gives the same bytes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { saveSafetensors } from './safetensors-writer.mjs';

const VOCAB = 2048; // embed.weight: 2048 x 128 F32 = 1 MiB, four 256 KiB chunks of 512 rows each
const DIM = 128;
const ACTIONS = 16;

/** Tensor names and shapes per architecture (what a PyTorch state_dict of such an agent holds). */
function architecture(arch) {
  const shared = {
    'embed.weight': [VOCAB, DIM],
  };
  const heads = {
    'policy_head.weight': [ACTIONS, DIM],
    'policy_head.bias': [ACTIONS],
    'value_head.weight': [1, DIM],
    'value_head.bias': [1],
  };
  const rnn = (kind, gates) => ({
    [`encoder.${kind}.weight_ih_l0`]: [gates * DIM, DIM],
    [`encoder.${kind}.weight_hh_l0`]: [gates * DIM, DIM],
    [`encoder.${kind}.bias_ih_l0`]: [gates * DIM],
    [`encoder.${kind}.bias_hh_l0`]: [gates * DIM],
  });
  switch (arch) {
    case 'g2': // the phase-G2 base agent: a two-layer MLP encoder
      return {
        ...shared,
        'encoder.mlp.0.weight': [2 * DIM, DIM],
        'encoder.mlp.0.bias': [2 * DIM],
        'encoder.mlp.2.weight': [DIM, 2 * DIM],
        'encoder.mlp.2.bias': [DIM],
        ...heads,
      };
    case 'lstm':
      return { ...shared, ...rnn('lstm', 4), ...heads };
    case 'gru':
      return { ...shared, ...rnn('gru', 3), ...heads };
    case 'attention': {
      const attn = {};
      for (const p of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
        attn[`attn.${p}.weight`] = [DIM, DIM];
        attn[`attn.${p}.bias`] = [DIM];
      }
      return {
        ...shared,
        'attn.pos_embed': [64, DIM],
        ...attn,
        'attn.norm.weight': [DIM],
        'attn.norm.bias': [DIM],
        ...heads,
      };
    }
    default:
      throw new Error(`unknown --arch ${arch} (g2, lstm, gru or attention)`);
  }
}

/** How well each architecture can do (the reward it approaches) and how fast it learns. */
const CAPACITY = { g2: 110, lstm: 132, gru: 126, attention: 141 };
const TAU = { g2: 1500, lstm: 900, gru: 800, attention: 1000 };

function parseArgs(argv) {
  const o = { steps: 1000, seed: 1, lr: 1e-3 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (v === undefined) throw new Error(`${k} needs a value`);
    i++;
    if (k === '--arch') o.arch = v;
    else if (k === '--out') o.out = v;
    else if (k === '--config') o.config = v;
    else if (k === '--from') o.from = v;
    else if (k === '--steps') o.steps = Number(v);
    else if (k === '--seed') o.seed = Number(v);
    else if (k === '--lr') o.lr = Number(v);
    else throw new Error(`unknown option ${k}`);
  }
  if (!o.arch || !o.out || !o.config)
    throw new Error(
      'usage: toy-agent.mjs --arch A --out DIR --config FILE [--from DIR] [--steps N] [--seed S] [--lr LR]',
    );
  if (!(Number.isInteger(o.steps) && o.steps > 0) || !Number.isFinite(o.seed) || !(o.lr > 0))
    throw new Error('--steps, --seed and --lr must be positive numbers');
  return o;
}

/** A small seeded generator (xorshift32 over a string-hashed seed), returning roughly N(0, 1) values. */
function gaussian(...key) {
  let h = 2166136261;
  for (const ch of key.join('/')) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  let x = h || 1;
  const u = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
  return () => (u() + u() + u() + u() - 2) * 1.7320508; // Irwin-Hall: mean 0, variance 1
}

function readSafetensors(file) {
  const data = fs.readFileSync(file);
  const headerLen = Number(data.readBigUInt64LE(0));
  const header = JSON.parse(data.subarray(8, 8 + headerLen).toString());
  const out = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__' || info.dtype !== 'F32') continue;
    const [b, e] = info.data_offsets;
    const start = data.byteOffset + 8 + headerLen + b;
    out[name] = {
      shape: info.shape,
      data: new Float32Array(data.buffer.slice(start, data.byteOffset + 8 + headerLen + e)),
    };
  }
  return out;
}

function initTensor(name, shape, seed) {
  const n = shape.reduce((a, b) => a * b, 1);
  if (name.endsWith('norm.weight')) return new Float32Array(n).fill(1);
  if (name.endsWith('.bias')) return new Float32Array(n);
  const fanIn = shape.length > 1 ? shape[shape.length - 1] : n;
  const g = gaussian('init', seed, name);
  const std = name === 'embed.weight' ? 0.02 : 1 / Math.sqrt(fanIn);
  return Float32Array.from({ length: n }, () => g() * std);
}

const o = parseArgs(process.argv.slice(2));
const spec = architecture(o.arch);

// Start from --from (resume or warm start) or from scratch.
let from = {};
let fromState;
if (o.from) {
  from = readSafetensors(path.join(o.from, 'model.safetensors'));
  fromState = JSON.parse(fs.readFileSync(path.join(o.from, 'trainer_state.json'), 'utf8'));
}
const resume = fromState?.arch === o.arch;
const tensors = {};
const loaded = [];
for (const [name, shape] of Object.entries(spec)) {
  const f = from[name];
  if (f && f.shape.join('x') === shape.join('x')) {
    tensors[name] = f.data;
    loaded.push(name);
  } else tensors[name] = initTensor(name, shape, o.seed);
}

// "Train": every trained tensor takes a seeded step proportional to the learning rate.
const startStep = resume ? fromState.step : 0;
const step = startStep + o.steps;
const scale = o.lr * Math.sqrt(o.steps / 1000) * 10;
for (const [name, t] of Object.entries(tensors)) {
  const g = gaussian('update', o.arch, o.seed, step, name);
  if (name === 'embed.weight') {
    if (o.arch !== 'g2') continue; // frozen after the warm start
    // Sparse update: 96 rows of the tokens seen, all inside one 256 KiB chunk (512 rows).
    const chunk = (step / 1000 + o.seed) % (VOCAB / 512);
    const first = Math.floor(chunk) * 512 + ((step * 7) % 400);
    for (let i = first * DIM; i < (first + 96) * DIM; i++) t[i] += g() * scale * 0.05;
    continue;
  }
  const std = name.endsWith('norm.weight') || name.endsWith('.bias') ? 0.1 : Math.sqrt(t.length) ** -0.5;
  for (let i = 0; i < t.length; i++) t[i] += g() * scale * std;
}

// Evaluation: the reward trend approaches the architecture's capacity. A warm start begins from part of the
// origin's reward. Too high a learning rate for too long collapses the policy (what phase G2 runs into).
const cap = CAPACITY[o.arch];
let trend = resume ? fromState.reward_trend : fromState ? 0.55 * fromState.reward_trend : 5;
trend += (cap - trend) * (1 - Math.exp(-o.steps / TAU[o.arch]));
const noise = gaussian('eval', o.arch, o.seed, step)() * Math.min(3, 3000 * o.lr);
let reward = trend + noise;
if (o.lr * step > 2.5) reward *= 0.82; // unstable: the eval reward drops
const loss = 2.4 * Math.exp(-reward / 45) + 0.02;

fs.mkdirSync(o.out, { recursive: true });
saveSafetensors(path.join(o.out, 'model.safetensors'), tensors, spec, { format: 'pt', arch: o.arch });
// A warm start is remembered in the trainer state, so every later checkpoint of the run keeps the same config.
const warmStart = resume
  ? fromState.warm_start
  : fromState
    ? { arch: fromState.arch, step: fromState.step, loaded }
    : undefined;
const state = {
  arch: o.arch,
  step,
  seed: o.seed,
  lr: o.lr,
  reward: Number(reward.toFixed(2)),
  loss: Number(loss.toFixed(4)),
  reward_trend: trend,
  ...(warmStart ? { warm_start: warmStart } : {}),
};
fs.writeFileSync(path.join(o.out, 'trainer_state.json'), `${JSON.stringify(state, null, 2)}\n`);

const encoder = {
  g2: '  encoder: {type: mlp, hidden: [256], activation: relu}',
  lstm: '  encoder: {type: lstm, hidden: 128, layers: 1}',
  gru: '  encoder: {type: gru, hidden: 128, layers: 1}',
  attention: '  encoder: {type: attention, heads: 4, context: 64, norm: layernorm}',
}[o.arch];
fs.mkdirSync(path.dirname(path.resolve(o.config)), { recursive: true });
fs.writeFileSync(
  o.config,
  [
    `# ${o.arch} agent (written by examples/toy-agent.mjs)`,
    'model:',
    `  arch: ${o.arch}`,
    `  vocab: ${VOCAB}`,
    `  embed_dim: ${DIM}`,
    encoder,
    `  actions: ${ACTIONS}`,
    `  freeze_embedding: ${o.arch !== 'g2'}`,
    'optim:',
    '  name: adam',
    `  lr: ${o.lr}`,
    '  betas: [0.9, 0.999]',
    'train:',
    `  seed: ${o.seed}`,
    '  batch_size: 256',
    '  eval_episodes: 32',
    ...(warmStart
      ? [`  warm_start: {arch: ${warmStart.arch}, step: ${warmStart.step}, load: [${warmStart.loaded.join(', ')}]}`]
      : []),
    '',
  ].join('\n'),
);

console.log(`step=${step} reward=${reward.toFixed(2)} loss=${loss.toFixed(4)}`);
