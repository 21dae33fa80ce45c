#!/usr/bin/env python3
"""Trains a small MLP policy with NumPy (behaviour cloning of a fixed linear expert, Adam, float32 weights as a
PyTorch run keeps them) and writes one json.dump snapshot per iteration: weights as nested lists plus metadata,
the way agent snapshots are saved in practice. Used by tests/bench/json-series.mjs; not a test fixture.

    python3 tests/bench/json-snapshots.py OUT_DIR [--snapshots 10] [--steps 20] [--hidden 256,256] [--seed 0]
"""
import argparse
import hashlib
import json
import os
import time

import numpy as np


def init(rng, sizes):
    params = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        params[f'fc{i + 1}.weight'] = (rng.standard_normal((b, a)) / np.sqrt(a)).astype(np.float32)
        params[f'fc{i + 1}.bias'] = np.zeros(b, np.float32)
    return params


def forward_backward(params, n_layers, obs, target):
    acts, h = [obs], obs
    for i in range(1, n_layers + 1):
        h = h @ params[f'fc{i}.weight'].T + params[f'fc{i}.bias']
        if i < n_layers:
            h = np.maximum(h, 0)
        acts.append(h)
    logits = h - h.max(-1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(-1, keepdims=True)
    loss = -np.log(p[np.arange(len(target)), target] + 1e-12).mean()
    g = p
    g[np.arange(len(target)), target] -= 1
    g /= len(target)
    grads = {}
    for i in range(n_layers, 0, -1):
        grads[f'fc{i}.weight'] = g.T @ acts[i - 1]
        grads[f'fc{i}.bias'] = g.sum(0)
        if i > 1:
            g = (g @ params[f'fc{i}.weight']) * (acts[i - 1] > 0)
    return loss, (h.argmax(-1) == target).mean(), grads


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--snapshots', type=int, default=10)
    ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--hidden', default='256,256')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    config = {'obs_dim': 64, 'hidden': [int(x) for x in a.hidden.split(',')], 'act_dim': 8, 'lr': 1e-3,
              'batch': 256, 'seed': a.seed}
    config_hash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    rng = np.random.default_rng(a.seed)
    sizes = [config['obs_dim'], *config['hidden'], config['act_dim']]
    params = init(rng, sizes)
    n_layers = len(sizes) - 1
    teacher = rng.standard_normal((config['obs_dim'], config['act_dim']))
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(x) for k, x in params.items()}
    os.makedirs(a.out, exist_ok=True)
    step = 0
    for i in range(1, a.snapshots + 1):
        for _ in range(a.steps):
            obs = rng.standard_normal((config['batch'], config['obs_dim'])).astype(np.float32)
            target = (obs @ teacher).argmax(-1)
            loss, acc, grads = forward_backward(params, n_layers, obs, target)
            step += 1
            for k in params:  # Adam, in float32 like the weights
                m[k] = 0.9 * m[k] + 0.1 * grads[k]
                v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
                mh, vh = m[k] / (1 - 0.9 ** step), v[k] / (1 - 0.999 ** step)
                params[k] = (params[k] - config['lr'] * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)
        snapshot = {
            'agent_class': 'MLPPolicy',
            'timestamp': time.time(),
            'config': config,
            'config_hash': config_hash,
            'step': step,
            'metrics': {'loss': float(loss), 'accuracy': float(acc), 'reward': 2 * float(acc) - 1},
            'weights': {k: w.tolist() for k, w in params.items()},
        }
        with open(os.path.join(a.out, f'agent_step_{step:06d}.json'), 'w') as f:
            json.dump(snapshot, f)
        print(f'snapshot {i} step {step} loss {float(loss):.3f} accuracy {float(acc):.3f}', flush=True)


if __name__ == '__main__':
    main()
