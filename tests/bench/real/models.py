"""The benchmark's models: a small byte-level GPT, LoRA adapters for it, skip-gram embeddings and an MLP policy.

Written against torch 1.13 (Debian bookworm's python3-torch): no scaled_dot_product_attention, so attention
is spelled out.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, dim, heads, ctx):
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(dim, 3 * dim)
        self.c_proj = nn.Linear(dim, dim)
        self.register_buffer('mask', torch.tril(torch.ones(ctx, ctx, dtype=torch.bool)), persistent=False)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        att = att.masked_fill(~self.mask[:t, :t], float('-inf')).softmax(dim=-1)
        return self.c_proj((att @ v).transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.c_fc = nn.Linear(dim, 4 * dim)
        self.c_proj = nn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, ctx):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, ctx)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Byte-level (vocabulary 256), untied head: every state-dict entry owns its storage."""

    def __init__(self, layers, dim, heads, ctx):
        super().__init__()
        self.wte = nn.Embedding(256, dim)
        self.wpe = nn.Embedding(ctx, dim)
        self.h = nn.ModuleList(Block(dim, heads, ctx) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, 256, bias=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith('c_proj.weight') else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    def loss(self, idx, targets):
        logits = self(idx)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


class LoRALinear(nn.Module):
    """y = base(x) + (x A^T B^T) * alpha / r, with the base frozen and B starting at zero."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        self.lora_A = nn.Parameter(torch.randn(r, base.in_features) / math.sqrt(base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.t() @ self.lora_B.t()) * self.scale


def add_lora(model, r=8, alpha=16):
    """Freezes every parameter of MODEL and wraps each block's four projections with adapters."""
    for p in model.parameters():
        p.requires_grad_(False)
    for block in model.h:
        block.attn.c_attn = LoRALinear(block.attn.c_attn, r, alpha)
        block.attn.c_proj = LoRALinear(block.attn.c_proj, r, alpha)
        block.mlp.c_fc = LoRALinear(block.mlp.c_fc, r, alpha)
        block.mlp.c_proj = LoRALinear(block.mlp.c_proj, r, alpha)
    return model


class SkipGram(nn.Module):
    """Word2vec skip-gram with negative sampling; sparse embeddings, as SparseAdam requires."""

    def __init__(self, vocab, dim):
        super().__init__()
        self.emb_in = nn.Embedding(vocab, dim, sparse=True)
        self.emb_out = nn.Embedding(vocab, dim, sparse=True)
        nn.init.uniform_(self.emb_in.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.emb_out.weight)

    def loss(self, centers, contexts, negatives):
        c = self.emb_in(centers)                        # (B, D)
        pos = (c * self.emb_out(contexts)).sum(-1)      # (B,)
        neg = torch.bmm(self.emb_out(negatives), c.unsqueeze(-1)).squeeze(-1)  # (B, K)
        return -(F.logsigmoid(pos).mean() + F.logsigmoid(-neg).sum(-1).mean())


class MLPPolicy(nn.Module):
    """A small agent's policy: observation -> action logits."""

    def __init__(self, obs_dim, hidden, act_dim):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                 nn.Linear(hidden, act_dim))

    def forward(self, obs):
        return self.net(obs)
