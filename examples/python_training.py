#!/usr/bin/env python3
"""A toy training loop that checkpoints with ckvc from Python (standard library only).

It trains a tiny linear model by minibatch SGD with momentum on a synthetic regression task, writes a
safetensors checkpoint (model + optimizer state) and a trainer-state JSON every 10 steps, and commits each one
with its config, metrics and step through the ``ckvc`` Python helper. At the end it asks ckvc for the best
checkpoint by validation loss, fetches it with ``ckvc.snapshot()`` (into a snapshot cache), reloads the weights
and checks they are the ones that were trained, then fetches only the model file of the latest checkpoint.

Everything happens in a temporary folder that is removed at the end (``KEEP=1`` keeps it).

Run it from anywhere::

    python3 examples/python_training.py

It imports ``ckvc`` if installed (``pip install ./python``), else from ``<repo>/python``; it runs the CLI given by
``CKVC_CLI``, else this checkout's ``bin/ckvc`` (build it first: ``npm install && npm run build``), else ``ckvc``
on PATH.
"""

import array
import json
import os
import random
import shlex
import shutil
import struct
import sys
import tempfile
import time
from typing import Dict, List, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

try:
    import ckvc
except ImportError:
    sys.path.insert(0, os.path.join(REPO, "python"))
    import ckvc

if not os.environ.get("CKVC_CLI", "").strip() and os.path.exists(os.path.join(REPO, "bin", "ckvc")):
    node = shutil.which("node") or "node"
    os.environ["CKVC_CLI"] = "{} {}".format(shlex.quote(node), shlex.quote(os.path.join(REPO, "bin", "ckvc")))

FEATURES = 8
STEPS = 60
EVERY = 10
BRANCH = "linear-sgd"

Tensors = Dict[str, Tuple[List[int], List[float]]]


def save_safetensors(path: str, tensors: Tensors, metadata: Dict[str, str]) -> None:
    """Writes F32 tensors ({name: (shape, values)}) as a .safetensors file, the way safetensors' save_file
    does: an 8-byte little-endian header length, a JSON header padded with spaces, then the raw data.
    Written to a temporary name and renamed, so ckvc never sees half a checkpoint."""
    header: Dict[str, object] = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name, (shape, values) in tensors.items():
        a = array.array("f", values)
        if sys.byteorder == "big":
            a.byteswap()
        raw = a.tobytes()
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)


def load_safetensors(path: str) -> Tensors:
    """Reads the F32 tensors of a .safetensors file back as {name: (shape, values)}."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n])
    out: Tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        a = array.array("f")
        a.frombytes(data[8 + n + begin:8 + n + end])
        if sys.byteorder == "big":
            a.byteswap()
        out[name] = (entry["shape"], a.tolist())
    return out


def make_data(rng: random.Random, n: int, w_true: List[float]) -> List[Tuple[List[float], float]]:
    rows = []
    for _ in range(n):
        x = [rng.uniform(-1, 1) for _ in range(FEATURES)]
        rows.append((x, sum(a * b for a, b in zip(x, w_true)) + 0.5 + rng.gauss(0, 0.1)))
    return rows


def mse(w: List[float], b: float, rows: List[Tuple[List[float], float]]) -> float:
    return sum((sum(a * c for a, c in zip(x, w)) + b - y) ** 2 for x, y in rows) / len(rows)


def f32(values: List[float]) -> List[float]:
    """The values as they come back from a float32 file."""
    return array.array("f", values).tolist()


def main() -> int:
    work = tempfile.mkdtemp(prefix="ckvc-py-demo-")
    os.environ.setdefault("CKVC_CACHE", os.path.join(work, "cache"))  # keep the demo out of ~/.cache
    try:
        store = ckvc.init(work)["root"]
        print("store: {}".format(store))
        lr, momentum, batch, seed = 0.3, 0.9, 16, 7
        config = {"model": "linear", "features": FEATURES, "optim": {"name": "sgd", "lr": lr, "momentum": momentum},
                  "batch": batch, "seed": seed}
        config_path = os.path.join(work, "config.json")
        with open(config_path, "w") as f:
            json.dump(config, f, indent=2)

        rng = random.Random(seed)
        w_true = [rng.uniform(-2, 2) for _ in range(FEATURES)]
        train, valid = make_data(rng, 256, w_true), make_data(rng, 64, w_true)
        w, b = [0.0] * FEATURES, 0.0
        mw, mb = [0.0] * FEATURES, 0.0
        ckpt = os.path.join(work, "ckpt")
        os.makedirs(ckpt)
        saved: Dict[str, List[float]] = {}  # commit ID -> the weights written in it, to check the reload

        for step in range(1, STEPS + 1):
            rows = rng.sample(train, batch)
            gw, gb = [0.0] * FEATURES, 0.0
            for x, y in rows:
                err = sum(a * c for a, c in zip(x, w)) + b - y
                gw = [g + 2 * err * a / batch for g, a in zip(gw, x)]
                gb += 2 * err / batch
            mw = [momentum * m + g for m, g in zip(mw, gw)]
            mb = momentum * mb + gb
            w = [p - lr * m for p, m in zip(w, mw)]
            b -= lr * mb
            if step % EVERY:
                continue
            loss, eval_loss = mse(w, b, train), mse(w, b, valid)
            save_safetensors(os.path.join(ckpt, "model.safetensors"),
                             {"linear.weight": ([1, FEATURES], w), "linear.bias": ([1], [b])}, {"format": "pt"})
            save_safetensors(os.path.join(ckpt, "optimizer.safetensors"),
                             {"momentum.linear.weight": ([1, FEATURES], mw), "momentum.linear.bias": ([1], [mb])},
                             {"step": str(step)})
            with open(os.path.join(ckpt, "trainer_state.json"), "w") as f:
                json.dump({"step": step, "lr": lr}, f)
            c = ckvc.commit(ckpt, branch=BRANCH, config=config_path, step=step,
                            metrics={"loss": round(loss, 6), "eval/loss": round(eval_loss, 6)},
                            labels={"model": "linear"}, store=store)
            saved[c.id] = f32(w + [b])
            print("step {:3d}  loss={:.4f}  eval/loss={:.4f}  commit {}  ({} new bytes)".format(
                step, loss, eval_loss, c.id[:12], c.new_bytes))

        history = ckvc.log(BRANCH, store=store)
        print("{} checkpoints on {}".format(len(history), BRANCH))
        top = ckvc.best("eval/loss", mode="min", branch=BRANCH, store=store)
        print("best by eval/loss: step {} eval/loss={} commit {} (among {})".format(
            top["step"], top["value"], top["id"][:12], top["candidates"]))

        t0 = time.monotonic()
        folder = ckvc.snapshot(top["id"], store=store)  # the whole checkpoint, into the snapshot cache
        first = time.monotonic() - t0
        t0 = time.monotonic()
        again = ckvc.snapshot(top["id"], store=store)  # identical files are verified and skipped
        second = time.monotonic() - t0
        assert again == folder, (again, folder)
        print("snapshot: {} ({}; {:.2f} s, again {:.2f} s)".format(folder, ", ".join(sorted(os.listdir(folder))), first, second))

        model = load_safetensors(os.path.join(folder, "model.safetensors"))
        weights = model["linear.weight"][1] + model["linear.bias"][1]
        if weights != saved[top["id"]]:
            print("reloaded weights differ from the ones trained at step {}".format(top["step"]), file=sys.stderr)
            return 1
        reloaded_eval = mse(weights[:-1], weights[-1], valid)
        print("reloaded best checkpoint step {}: eval/loss={:.6f}, weights identical".format(top["step"], reloaded_eval))

        latest = ckvc.snapshot(BRANCH, local_dir=os.path.join(work, "latest-model"), allow_patterns="model.*",
                               store=store)
        print("latest model only: {}".format(", ".join(sorted(os.listdir(latest)))))
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
