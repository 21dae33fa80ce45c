"""Trains the benchmark's models on Debian's own text and writes their checkpoints, one folder per checkpoint.

Usage: python3 generate.py --out DIR --config JSON   (run.mjs calls it; DIR must not exist yet)

Scenarios (each CHECKPOINTS folders DIR/<scenario>/ckpt-NN, a few optimizer steps apart):
  full      a small GPT trained from scratch with AdamW: model.safetensors + full.pt (torch.save of model and
            optimizer state, as a resumable checkpoint)
  bf16      the same run's weights cast to bf16, model.safetensors
  finetune  the full run's last model fine-tuned on other text with half its layers frozen, model.safetensors
  lora      LoRA adapters on the frozen full model, model.safetensors holding base and adapters
  sparse    skip-gram word embeddings trained with SparseAdam, embeddings.safetensors
  json      an MLP policy's weights as nested lists plus metadata, written with json.dump, one file per iteration
DIR/manifest.json lists every checkpoint's files and sizes, the config and the training time.
"""
import argparse
import collections
import hashlib
import json
import os
import re
import sys
import time

import torch

import corpus
from models import GPT, MLPPolicy, SkipGram, add_lora
from safetensors_writer import save_file


def log(msg):
    print(f'generate: {msg}', file=sys.stderr, flush=True)


def ckpt_dir(out, scenario, i):
    d = os.path.join(out, scenario, f'ckpt-{i:02d}')
    os.makedirs(d, exist_ok=True)
    return d


def byte_batches(text, cfg, seed):
    data = torch.frombuffer(bytearray(text), dtype=torch.uint8).long()
    gen = torch.Generator().manual_seed(seed)
    ctx, batch = cfg['ctx'], cfg['batch']

    def next_batch():
        ix = torch.randint(len(data) - ctx - 1, (batch,), generator=gen)
        x = torch.stack([data[i:i + ctx] for i in ix])
        y = torch.stack([data[i + 1:i + ctx + 1] for i in ix])
        return x, y
    return next_batch


def train_steps(model, opt, next_batch, n):
    model.train()
    for _ in range(n):
        x, y = next_batch()
        loss = model.loss(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
    return float(loss)


def new_gpt(cfg):
    return GPT(cfg['layers'], cfg['dim'], cfg['heads'], cfg['ctx'])


def gen_full_and_bf16(out, cfg, text):
    model = new_gpt(cfg)
    log(f'full: GPT with {sum(p.numel() for p in model.parameters()):,} parameters')
    opt = torch.optim.AdamW(model.parameters(), lr=cfg['lr'], betas=(0.9, 0.95), weight_decay=0.1)
    next_batch = byte_batches(text, cfg, cfg['seed'] + 1)
    step = 0
    for i in range(1, cfg['checkpoints'] + 1):
        loss = train_steps(model, opt, next_batch, cfg['steps'])
        step += cfg['steps']
        sd = model.state_dict()
        d = ckpt_dir(out, 'full', i)
        save_file(sd, os.path.join(d, 'model.safetensors'), {'format': 'pt', 'step': step})
        torch.save({'model': sd, 'optimizer': opt.state_dict(), 'step': step, 'loss': loss}, os.path.join(d, 'full.pt'))
        save_file({k: v.to(torch.bfloat16) for k, v in sd.items()},
                  os.path.join(ckpt_dir(out, 'bf16', i), 'model.safetensors'), {'format': 'pt', 'step': step})
        log(f'full: checkpoint {i} step {step} loss {loss:.3f}')
    return {k: v.clone() for k, v in model.state_dict().items()}


def gen_finetune(out, cfg, base, text):
    model = new_gpt(cfg)
    model.load_state_dict(base)
    frozen = [model.wte, model.wpe] + list(model.h[:cfg['layers'] // 2])
    for m in frozen:
        for p in m.parameters():
            p.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg['lr'] / 3,
                            betas=(0.9, 0.95), weight_decay=0.1)
    next_batch = byte_batches(text, cfg, cfg['seed'] + 2)
    step = 0
    for i in range(1, cfg['checkpoints'] + 1):
        loss = train_steps(model, opt, next_batch, cfg['steps'])
        step += cfg['steps']
        save_file(model.state_dict(), os.path.join(ckpt_dir(out, 'finetune', i), 'model.safetensors'),
                  {'format': 'pt', 'step': step})
        log(f'finetune: checkpoint {i} step {step} loss {loss:.3f}')


def gen_lora(out, cfg, base, text):
    model = new_gpt(cfg)
    model.load_state_dict(base)
    add_lora(model, r=cfg['lora_rank'], alpha=2 * cfg['lora_rank'])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg['lr'], weight_decay=0.0)
    next_batch = byte_batches(text, cfg, cfg['seed'] + 3)
    step = 0
    for i in range(1, cfg['checkpoints'] + 1):
        loss = train_steps(model, opt, next_batch, cfg['steps'])
        step += cfg['steps']
        save_file(model.state_dict(), os.path.join(ckpt_dir(out, 'lora', i), 'model.safetensors'),
                  {'format': 'pt', 'step': step})
        log(f'lora: checkpoint {i} step {step} loss {loss:.3f}')


def gen_sparse(out, cfg, text):
    words = re.findall(rb'[a-z]+', text.lower())
    counts = collections.Counter(words)
    vocab = [w for w, _ in counts.most_common(cfg['sg_vocab'])]
    index = {w: i for i, w in enumerate(vocab)}
    ids = torch.tensor([index[w] for w in words if w in index], dtype=torch.long)
    freq = torch.tensor([counts[w] for w in vocab], dtype=torch.float) ** 0.75
    log(f'sparse: {len(ids):,} words, vocabulary {len(vocab):,}, dim {cfg["sg_dim"]}')
    model = SkipGram(len(vocab), cfg['sg_dim'])
    opt = torch.optim.SparseAdam(list(model.parameters()), lr=0.01)
    gen = torch.Generator().manual_seed(cfg['seed'] + 4)
    window, batch, negs = 5, cfg['sg_batch'], 5
    step = 0
    for i in range(1, cfg['checkpoints'] + 1):
        for _ in range(cfg['steps']):
            pos = torch.randint(window, len(ids) - window, (batch,), generator=gen)
            off = torch.randint(1, window + 1, (batch,), generator=gen) * (torch.randint(0, 2, (batch,), generator=gen) * 2 - 1)
            neg = torch.multinomial(freq, batch * negs, replacement=True, generator=gen).view(batch, negs)
            loss = model.loss(ids[pos], ids[pos + off], neg)
            opt.zero_grad()
            loss.backward()
            opt.step()
        step += cfg['steps']
        save_file({'emb_in.weight': model.emb_in.weight, 'emb_out.weight': model.emb_out.weight},
                  os.path.join(ckpt_dir(out, 'sparse', i), 'embeddings.safetensors'), {'step': step})
        log(f'sparse: checkpoint {i} step {step} loss {float(loss):.3f}')


def gen_json(out, cfg):
    config = {'obs_dim': 32, 'hidden': cfg['mlp_hidden'], 'act_dim': 8, 'lr': 1e-3, 'batch': 256, 'seed': cfg['seed']}
    config_hash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    gen = torch.Generator().manual_seed(cfg['seed'] + 5)
    policy = MLPPolicy(config['obs_dim'], config['hidden'], config['act_dim'])
    teacher = torch.randn(config['obs_dim'], config['act_dim'], generator=gen)
    opt = torch.optim.Adam(policy.parameters(), lr=config['lr'])
    step = 0
    for i in range(1, cfg['checkpoints'] + 1):
        for _ in range(cfg['steps']):
            obs = torch.randn(config['batch'], config['obs_dim'], generator=gen)
            target = (obs @ teacher).argmax(-1)  # imitate a fixed expert: behaviour cloning
            logits = policy(obs)
            loss = torch.nn.functional.cross_entropy(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        step += cfg['steps']
        accuracy = float((logits.argmax(-1) == target).float().mean())
        snapshot = {
            'agent_class': 'MLPPolicy',
            'timestamp': time.time(),
            'config': config,
            'config_hash': config_hash,
            'step': step,
            'metrics': {'loss': float(loss), 'accuracy': accuracy, 'reward': 2 * accuracy - 1},
            'weights': {k: v.tolist() for k, v in policy.state_dict().items()},
        }
        path = os.path.join(ckpt_dir(out, 'json', i), f'agent_step_{step:06d}.json')
        with open(path + '.tmp', 'w') as f:
            json.dump(snapshot, f)
        os.replace(path + '.tmp', path)
    log(f'json: {cfg["checkpoints"]} snapshots, last loss {float(loss):.3f}')


def manifest_of(out):
    scenarios = {}
    for scenario in sorted(os.listdir(out)):
        sdir = os.path.join(out, scenario)
        if not os.path.isdir(sdir):
            continue
        ckpts = []
        for name in sorted(os.listdir(sdir)):
            files = {f: os.path.getsize(os.path.join(sdir, name, f)) for f in sorted(os.listdir(os.path.join(sdir, name)))}
            ckpts.append({'dir': f'{scenario}/{name}', 'files': files, 'bytes': sum(files.values())})
        scenarios[scenario] = ckpts
    return scenarios


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    ap.add_argument('--config', required=True)
    args = ap.parse_args()
    cfg = json.loads(args.config)
    torch.set_num_threads(cfg['threads'])
    torch.manual_seed(cfg['seed'])
    os.makedirs(args.out)
    t0 = time.time()
    timings = {}
    pre = corpus.pretraining_text()
    fine = corpus.finetuning_text()
    log(f'corpus: {len(pre):,} bytes of licence/copyright text, {len(fine):,} bytes of Python sources')
    t = time.time()
    base = gen_full_and_bf16(args.out, cfg, pre)
    timings['full+bf16'] = time.time() - t
    for name, fn in [('finetune', lambda: gen_finetune(args.out, cfg, base, fine)),
                     ('lora', lambda: gen_lora(args.out, cfg, base, fine)),
                     ('sparse', lambda: gen_sparse(args.out, cfg, pre)),
                     ('json', lambda: gen_json(args.out, cfg))]:
        t = time.time()
        fn()
        timings[name] = time.time() - t
    manifest = {'config': cfg, 'torch': torch.__version__, 'seconds': time.time() - t0, 'timings': timings,
                'corpus_bytes': {'pretraining': len(pre), 'finetuning': len(fine)}, 'scenarios': manifest_of(args.out)}
    with open(os.path.join(args.out, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    log(f'done in {manifest["seconds"]:.0f} s')


if __name__ == '__main__':
    main()
