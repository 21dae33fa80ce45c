"""Milliseconds per ``ckvc.latest(run)`` call after the first, on a small checkpoint and a 100 MB one.

Two ways, measured in alternation so that both see the same machine load:
- ``served``: what ``latest`` does now, one helper-server checkout request (spec/HELPER.md §1.1, §4);
- ``commands``: the way it went before (and still goes without that request): ``ckvc ls RUN`` to resolve the run,
  then ``ckvc checkout ID --to DIR`` through the server's command line, re-hashing every file.

Usage: ``npm run bench:latest`` (builds first), or after ``npm run build``::

    python3 python/bench_latest.py [--calls 100] [--commits 100] [--mb 100]

It runs this checkout's CLI (``node bin/ckvc``) unless ``CKVC_CLI`` names another.

Prints one line per checkpoint and way: median, 90th percentile and minimum ms/call, and the Python process's
own CPU per call. Stores and the snapshot cache live in a temp folder that is removed at the end.
"""

import argparse
import contextlib
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from typing import Dict, List
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
if not os.environ.get("CKVC_CLI", "").strip():
    os.environ["CKVC_CLI"] = "{} {}".format(shlex.quote(shutil.which("node") or "node"),
                                            shlex.quote(os.path.join(os.path.dirname(HERE), "bin", "ckvc")))

import ckvc  # noqa: E402
from ckvc import _api  # noqa: E402


def _store(root: str, name: str, sizes: List[int]) -> str:
    """A store whose run 'run' has one commit per size, each a different random `w.bin` of that many bytes."""
    folder = os.path.join(root, name)
    ckvc.init(folder)
    store = os.path.join(folder, ".ckvc")
    ckpt = os.path.join(folder, "ckpt")
    os.makedirs(ckpt)
    for step, size in enumerate(sizes):
        with open(os.path.join(ckpt, "w.bin"), "wb") as f:
            f.write(os.urandom(size))
        ckvc.save(ckpt, "run", step=step, store=store)
    return store


def _commands_way() -> "mock._patch[None]":
    """``latest`` as it ran before the helper-server checkout request: ls, then checkout by ID."""
    return mock.patch.object(_api, "served_checkout", return_value=None)


def _measure(store: str, calls: int) -> Dict[str, List[float]]:
    """``calls`` timed calls each way, alternating; ms per call and the Python process's CPU ms per call."""
    folder = ckvc.latest("run", store=store)  # the first call writes the snapshot
    time.sleep(0.2)  # its files settle: a file changed this recently is hashed again (spec/HELPER.md §4)
    times: Dict[str, List[float]] = {"served": [], "commands": [], "served_cpu": [], "commands_cpu": []}
    for _ in range(calls):
        for way in ("served", "commands"):
            with _commands_way() if way == "commands" else contextlib.nullcontext():
                cpu, t = time.process_time(), time.perf_counter()
                got = ckvc.latest("run", store=store)
                times[way].append((time.perf_counter() - t) * 1000)
                times[way + "_cpu"].append((time.process_time() - cpu) * 1000)
            assert got == folder, (got, folder)
    return times


def _line(label: str, way: str, ms: List[float], cpu: List[float]) -> str:
    q = statistics.quantiles(ms, n=10)
    return ("{:<26} {:<9} median {:6.1f}  p90 {:6.1f}  min {:5.1f} ms/call   python cpu {:4.2f} ms/call   ({} calls)"
            .format(label, way, statistics.median(ms), q[-1], min(ms), statistics.median(cpu), len(ms)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=100, help="timed calls per way (default 100; at least 50)")
    ap.add_argument("--commits", type=int, default=100, help="commits in the small store's run (default 100)")
    ap.add_argument("--mb", type=int, default=100, help="size of the large checkpoint in MB (default 100)")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="ckvc-bench-latest-")
    os.environ["CKVC_CACHE"] = os.path.join(root, "cache")
    try:
        cases = [("small: {} commits of 4 KB".format(args.commits), [4096] * args.commits),
                 ("large: 1 commit of {} MB".format(args.mb), [args.mb * 1000 * 1000])]
        for label, sizes in cases:
            store = _store(root, label.split(":")[0], sizes)
            t = _measure(store, max(args.calls, 50))
            for way in ("commands", "served"):
                print(_line(label, way, t[way], t[way + "_cpu"]), flush=True)
        load = os.getloadavg() if hasattr(os, "getloadavg") else None
        print("load average: {}".format(" ".join("{:.1f}".format(x) for x in load) if load else "n/a"))
    finally:
        ckvc.close_servers()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
