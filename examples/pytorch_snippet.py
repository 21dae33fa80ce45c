#!/usr/bin/env python3
"""PyTorch + ckvc: checkpoint every N steps, load the best one later, warm-start a new run from its weights.

Needs PyTorch (``pip install torch``; CPU is enough, it runs in a few seconds) and the ckvc helper
(``pip install ./python`` from the ckvc repository, or run this file from the repository: it then imports
``<repo>/python/ckvc`` and runs ``<repo>/bin/ckvc`` unless ``CKVC_CLI`` names another ckvc command line).
``safetensors`` is used when installed; without it a small writer and reader below do the same job.
It works in a temporary folder, removed at the end (``KEEP=1`` keeps it).

The three patterns, in short::

    # 1. while training: save every N steps, commit with metrics
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step}, "ckpt/train_state.pt")
    save_file({"model." + k: v for k, v in model.state_dict().items()}, "ckpt/weights.safetensors")
    ckvc.commit("ckpt", branch="mlp-adam", step=step, metrics={"loss": loss, "eval/loss": eval_loss},
                config="config.json")

    # 2. later: load the best checkpoint
    top = ckvc.best("eval/loss", mode="min", branch="mlp-adam")
    folder = ckvc.snapshot(top["id"])                      # cached under ~/.cache/ckvc/snapshots/<id>
    state = torch.load(os.path.join(folder, "train_state.pt"), map_location="cpu", weights_only=True)

    # 3. warm start from the weights only (no optimizer state), as with the CLI:
    #    ckvc checkout REV --to warm/ --tensor 'model.*'   ->  warm/weights.safetensors holding model.* only
    ckvc.checkout(top["id"], "warm", tensors="model.*")
    ckvc.commit("ckpt", branch="finetune", parents=top["id"], ...)   # record where the new run started

Why two files per checkpoint: ``train_state.pt`` resumes training exactly (optimizer moments, step); the
safetensors file lets ckvc see each tensor, so an unchanged tensor costs nothing in the next checkpoint,
``ckvc diff`` reports per-tensor changes, and ``--tensor`` can take a subset such as the weights.
"""

import json
import os
import shlex
import shutil
import struct
import sys
import tempfile
from typing import Dict

try:
    import torch
except ImportError:
    raise SystemExit("pytorch_snippet.py needs PyTorch: pip install torch (the CPU build is enough)") from None

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:
    import ckvc
except ImportError:
    sys.path.insert(0, os.path.join(REPO, "python"))
    import ckvc

if not os.environ.get("CKVC_CLI", "").strip() and os.path.exists(os.path.join(REPO, "bin", "ckvc")):
    os.environ["CKVC_CLI"] = "{} {}".format(shlex.quote(shutil.which("node") or "node"),
                                            shlex.quote(os.path.join(REPO, "bin", "ckvc")))

try:  # the reference implementation, when installed
    from safetensors.torch import load_file, save_file
except ImportError:
    _DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
               torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
               torch.bool: "BOOL"}

    def save_file(tensors: Dict[str, "torch.Tensor"], filename: str) -> None:
        """A minimal safetensors writer (little-endian, no numpy needed; fine for small models, use the
        safetensors package for big ones)."""
        header, blobs, offset = {}, [], 0
        for name in sorted(tensors):
            t = tensors[name].detach().cpu().contiguous()
            raw = bytes(t.reshape(-1).view(torch.uint8).tolist())
            header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
            blobs.append(raw)
            offset += len(raw)
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        with open(filename + ".tmp", "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
        os.replace(filename + ".tmp", filename)

    def load_file(filename: str) -> Dict[str, "torch.Tensor"]:
        """Reads what save_file writes back into CPU tensors."""
        by_name = {v: k for k, v in _DTYPES.items()}
        with open(filename, "rb") as f:
            data = f.read()
        (n,) = struct.unpack_from("<Q", data, 0)
        out = {}
        for name, e in json.loads(data[8:8 + n]).items():
            if name == "__metadata__":
                continue
            begin, end = e["data_offsets"]
            dtype = by_name[e["dtype"]]
            raw = bytearray(data[8 + n + begin:8 + n + end])
            flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
            out[name] = flat.reshape(e["shape"]).clone()
        return out


BRANCH = "mlp-adam"
STEPS, EVERY = 200, 40


def make_model() -> "torch.nn.Module":
    return torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))


def main() -> int:
    torch.manual_seed(0)
    work = tempfile.mkdtemp(prefix="ckvc-torch-")
    os.environ.setdefault("CKVC_CACHE", os.path.join(work, "cache"))  # keep the example out of ~/.cache
    try:
        store = ckvc.init(work)["root"]
        config_path = os.path.join(work, "config.json")
        config = {"model": "mlp-4-32-1", "optim": {"name": "adam", "lr": 0.01}, "batch": 64, "seed": 0}
        with open(config_path, "w") as f:
            json.dump(config, f)

        # A synthetic regression task with a held-out set.
        x, x_eval = torch.randn(512, 4), torch.randn(128, 4)
        coef = torch.tensor([1.5, -2.0, 0.5, 1.0])
        y, y_eval = torch.sin(x @ coef).unsqueeze(1), torch.sin(x_eval @ coef).unsqueeze(1)
        model = make_model()
        opt = torch.optim.Adam(model.parameters(), lr=config["optim"]["lr"])
        loss_fn = torch.nn.MSELoss()
        ckpt = os.path.join(work, "ckpt")
        os.makedirs(ckpt)

        # 1. Train; every EVERY steps save a checkpoint and commit it with its metrics.
        for step in range(1, STEPS + 1):
            idx = torch.randint(0, x.shape[0], (config["batch"],))
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % EVERY:
                continue
            with torch.no_grad():
                eval_loss = loss_fn(model(x_eval), y_eval).item()
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step},
                       os.path.join(ckpt, "train_state.pt"))
            tensors = {"model." + k: v for k, v in model.state_dict().items()}
            for i, s in opt.state_dict()["state"].items():
                tensors.update({"optimizer.state.{}.{}".format(i, k): v.reshape(-1) for k, v in s.items()
                                if torch.is_tensor(v)})
            save_file(tensors, os.path.join(ckpt, "weights.safetensors"))
            c = ckvc.commit(ckpt, branch=BRANCH, step=step, config=config_path, store=store,
                            metrics={"loss": loss.item(), "eval/loss": eval_loss})
            print("step {:4d}  loss={:.4f}  eval/loss={:.4f}  commit {}".format(step, loss.item(), eval_loss, c.id[:12]))

        # 2. Later (another process, another day): fetch the best checkpoint and load it.
        top = ckvc.best("eval/loss", mode="min", branch=BRANCH, store=store)
        folder = ckvc.snapshot(top["id"], store=store)
        path = os.path.join(folder, "train_state.pt")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except TypeError:  # torch < 1.13 has no weights_only
            state = torch.load(path, map_location="cpu")
        best_model = make_model()
        best_model.load_state_dict(state["model"])
        resumed_opt = torch.optim.Adam(best_model.parameters(), lr=config["optim"]["lr"])
        resumed_opt.load_state_dict(state["optimizer"])  # ready to resume exactly where it stopped
        with torch.no_grad():
            reloaded = loss_fn(best_model(x_eval), y_eval).item()
        print("loaded best checkpoint step {} from {}: eval/loss={:.6f} (recorded {:.6f})".format(
            state["step"], folder, reloaded, top["value"]))
        if abs(reloaded - top["value"]) > 1e-6:
            print("the reloaded model does not reproduce the recorded eval/loss", file=sys.stderr)
            return 1

        # 3. Warm start a new run from the best weights only: `ckvc checkout REV --to DIR --tensor 'model.*'`
        #    writes DIR/weights.safetensors holding just the model.* tensors (no optimizer state).
        warm = os.path.join(work, "warm")
        try:
            ckvc.checkout(top["id"], warm, tensors="model.*", store=store)
            weights = load_file(os.path.join(warm, "weights.safetensors"))
        except ckvc.CkvcError as e:
            if e.code != "CKVC_USAGE":
                raise
            print("this ckvc has no `checkout --tensor`; taking the model.* tensors from the whole file")
            snap = ckvc.snapshot(top["id"], allow_patterns="weights.safetensors", store=store)
            weights = {k: v for k, v in load_file(os.path.join(snap, "weights.safetensors")).items()
                       if k.startswith("model.")}
        fresh = make_model()
        fresh.load_state_dict({k[len("model."):]: v for k, v in weights.items()})
        fresh_opt = torch.optim.Adam(fresh.parameters(), lr=config["optim"]["lr"] / 10)  # a new optimizer
        print("warm start: {} model tensors loaded ({}), fresh optimizer".format(len(weights), ", ".join(sorted(weights))))
        for _ in range(EVERY):
            loss = loss_fn(fresh(x), y)
            fresh_opt.zero_grad()
            loss.backward()
            fresh_opt.step()
        torch.save({"model": fresh.state_dict(), "optimizer": fresh_opt.state_dict(), "step": EVERY},
                   os.path.join(ckpt, "train_state.pt"))
        save_file({"model." + k: v for k, v in fresh.state_dict().items()}, os.path.join(ckpt, "weights.safetensors"))
        c = ckvc.commit(ckpt, branch="finetune", parents=top["id"], step=EVERY, config=config_path, store=store,
                        metrics={"loss": loss.item()}, message="finetune from {}".format(top["id"][:12]))
        print("finetune commit {} (warm-started from {})".format(c.id[:12], c.parents[0][:12]))
        return 0
    except ckvc.CkvcError as e:
        print("ckvc failed [{}] (exit {}): {}".format(e.code, e.exit_code, e), file=sys.stderr)
        return 1
    finally:
        if os.environ.get("KEEP") == "1":
            print("kept {}".format(work))
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
