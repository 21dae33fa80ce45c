"""Tests of the ckvc Python helper against the real CLI (no mocks): temp stores, real commits and checkouts.

Run from the repository root with ``python3 -m unittest discover -s python/tests -v``. The CLI is ``$CKVC_CLI``
(tests/integration/python-helper.test.ts sets it to ``node <repo>/bin/ckvc``); when it is unset these tests
use ``node <repo>/bin/ckvc`` themselves (build first: ``npx tsc -p tsconfig.json``).
"""

import json
import os
import pathlib
import pickle
import shlex
import shutil
import struct
import sys
import tempfile
import time
import unittest
from typing import Dict, List, Optional, Sequence
from unittest import mock

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))

import _test_env  # noqa: E402
import ckvc  # noqa: E402
from ckvc import CkvcError  # noqa: E402

_root = ""


def setUpModule() -> None:
    global _root
    _root = _test_env.enter("ckvc-py-")


def tearDownModule() -> None:
    _test_env.leave(_root)


def tmpdir(name: str) -> str:
    return tempfile.mkdtemp(prefix=name + "-", dir=_root)


def write_safetensors(path: str, tensors: Dict[str, Sequence[float]], metadata: Optional[Dict[str, str]] = None) -> None:
    """A safetensors file of 1-D F32 tensors, written with struct and json only."""
    header: Dict[str, object] = {}
    if metadata:
        header["__metadata__"] = metadata
    data = b""
    for name, values in tensors.items():
        raw = struct.pack("<{}f".format(len(values)), *values)
        header[name] = {"dtype": "F32", "shape": [len(values)], "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def read_safetensors_bytes(data: bytes) -> Dict[str, tuple]:
    """{name: (dtype, shape, raw bytes)} of a safetensors file's contents."""
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n])
    return {name: (e["dtype"], e["shape"], data[8 + n + e["data_offsets"][0]:8 + n + e["data_offsets"][1]])
            for name, e in header.items() if name != "__metadata__"}


def read_safetensors(path: str) -> Dict[str, tuple]:
    return read_safetensors_bytes(pathlib.Path(path).read_bytes())


def read_tree(root: str) -> Dict[str, bytes]:
    """Every file under root as '/'-path -> bytes."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            out[os.path.relpath(p, root).replace(os.sep, "/")] = pathlib.Path(p).read_bytes()
    return out


def make_checkpoint(folder: str, step: int) -> Dict[str, bytes]:
    """A checkpoint folder: model and optimizer safetensors plus a text file; returns its files' bytes."""
    os.makedirs(os.path.join(folder, "notes"), exist_ok=True)
    write_safetensors(os.path.join(folder, "model.safetensors"),
                      {"model.w": [0.5 * step + i for i in range(64)], "model.b": [float(step)] * 8},
                      {"format": "pt"})
    write_safetensors(os.path.join(folder, "optimizer.safetensors"), {"optim.m": [0.01 * step] * 32})
    pathlib.Path(folder, "notes", "readme.txt").write_text("checkpoint at step {}\n".format(step))
    return read_tree(folder)


class StoreWithHistory(unittest.TestCase):
    """One store with three checkpoints on branch 'train' (steps 100, 200, 300), shared by the tests."""

    store = ""
    work = ""
    commits: List[ckvc.CommitResult] = []
    trees: List[Dict[str, bytes]] = []
    metrics = [{"loss": 0.9, "acc": 0.5}, {"loss": 0.4, "acc": 0.8}, {"loss": 0.6, "acc": 0.7}]

    _built: Dict[str, object] = {}

    @classmethod
    def setUpClass(cls) -> None:
        # Built once for all test classes (each CLI run costs ~0.3 s); the tests only add other branches.
        b = StoreWithHistory._built
        if not b:
            work = tmpdir("work")
            info = ckvc.init(work)
            assert info["created"] is True and os.path.isdir(info["root"]), info
            config = os.path.join(work, "config.json")
            pathlib.Path(config).write_text(json.dumps({"lr": 0.001, "model": {"dim": 64}}))
            commits, trees = [], []
            for i, step in enumerate((100, 200, 300)):
                ckpt = os.path.join(work, "ckpt")
                trees.append(make_checkpoint(ckpt, step))
                commits.append(ckvc.commit(ckpt, branch="train", config=config, metrics=cls.metrics[i], step=step,
                                           labels={"phase": "g2"}, store=pathlib.Path(info["root"])))
            b.update(work=work, store=info["root"], commits=commits, trees=trees)
        cls.work, cls.store = str(b["work"]), str(b["store"])
        cls.commits, cls.trees = list(b["commits"]), list(b["trees"])  # type: ignore[call-overload]


class CommitLogBest(StoreWithHistory):
    def test_commit_result(self) -> None:
        c1, c2, _ = self.commits
        self.assertRegex(c2.id, r"^[0-9a-f]{64}$")
        self.assertEqual(str(c2), c2.id)
        self.assertEqual(c2.branch, "train")
        self.assertEqual(c2.parents, [c1.id])
        self.assertEqual(c1.parents, [])
        self.assertEqual((c2.files, c2.tensors), (3, 3))
        self.assertEqual(c2.bytes, sum(len(b) for b in self.trees[1].values()))
        self.assertRegex(c2.config_hash or "", r"^[0-9a-f]{64}$")
        self.assertEqual(c2.raw["id"], c2.id)
        listing = ckvc.ls(c2.id[:10], tensors=True, store=self.store)
        self.assertEqual(listing["commit"], c2.id)
        files = {f["path"]: f for f in listing["files"]}
        self.assertEqual(sorted(files), sorted(self.trees[1]))
        self.assertEqual([t["name"] for t in files["model.safetensors"]["tensors"]], ["model.w", "model.b"])
        self.assertEqual(files["model.safetensors"]["format"], "safetensors")

    def test_log(self) -> None:
        entries = ckvc.log("train", store=self.store)
        self.assertEqual([e["id"] for e in entries], [c.id for c in reversed(self.commits)])
        newest = entries[0]
        self.assertEqual(newest["message"], "step 300")  # the default message comes from the step
        self.assertEqual(newest["step"], 300)
        self.assertEqual(newest["metrics"], self.metrics[2])
        self.assertEqual(newest["labels"], {"phase": "g2"})
        self.assertEqual(newest["author"], "test")
        self.assertEqual(newest["config"]["name"], "config.json")
        self.assertIn("train", newest["refs"])
        self.assertEqual([e["id"] for e in ckvc.log("train~1", n=1, store=self.store)], [self.commits[1].id])

    def test_best(self) -> None:
        c1, c2, _ = self.commits
        # No mode: the CLI guesses from the name, so a loss ranks lowest first (0.4 at step 200, not 0.9).
        lowest = ckvc.best("loss", branch="train", store=self.store)
        self.assertEqual((lowest["id"], lowest["value"], lowest["mode"], lowest["modeGuessed"]), (c2.id, 0.4, "min", True))
        top = ckvc.best("acc", store=self.store, branch="train")  # not loss-like: highest first
        self.assertEqual((top["id"], top["value"], top["mode"], top["modeGuessed"], top["step"]), (c2.id, 0.8, "max", True, 200))
        self.assertEqual(top["candidates"], 3)
        # An explicit mode overrides the guess.
        worst = ckvc.best("loss", "max", "train", store=self.store)
        self.assertEqual((worst["id"], worst["value"], worst["mode"], worst["modeGuessed"]), (c1.id, 0.9, "max", False))
        with self.assertRaises(CkvcError) as cm:
            ckvc.best("loss", mode="lowest", branch="train", store=self.store)
        self.assertEqual(cm.exception.code, "CKVC_BAD_ARGUMENT")

    def test_ckvc_dir_is_honoured(self) -> None:
        empty = tmpdir("no-store-here")
        with mock.patch.dict(os.environ, {"CKVC_DIR": self.store}):
            self.assertEqual(len(ckvc.log("train", cwd=empty)), 3)


class Checkout(StoreWithHistory):
    def test_round_trip_skip_and_overwrite(self) -> None:
        c1 = self.commits[0]
        out = tmpdir("out")
        r = ckvc.checkout(c1.id, out, store=self.store)
        self.assertEqual(r["commit"], c1.id)
        self.assertEqual(sorted(w["path"] for w in r["written"]), sorted(self.trees[0]))
        self.assertEqual(read_tree(out), self.trees[0])  # byte-identical

        again = ckvc.checkout(c1.id, out, store=self.store)
        self.assertEqual((again["written"], sorted(again["unchanged"])), ([], sorted(self.trees[0])))

        pathlib.Path(out, "notes", "readme.txt").write_text("edited by hand\n")
        with self.assertRaises(CkvcError) as cm:
            ckvc.checkout("train~2", out, store=self.store)
        self.assertEqual((cm.exception.code, cm.exception.exit_code), ("CKVC_WOULD_OVERWRITE", 17))
        self.assertEqual(pathlib.Path(out, "notes", "readme.txt").read_text(), "edited by hand\n")
        self.assertIn("--force", str(cm.exception))

        forced = ckvc.checkout("train~2", out, force=True, store=self.store)
        self.assertEqual([w["path"] for w in forced["written"]], ["notes/readme.txt"])
        self.assertEqual(read_tree(out), self.trees[0])

    def test_config_guard_and_warnings(self) -> None:
        other = os.path.join(tmpdir("cfg"), "config.json")
        pathlib.Path(other).write_text(json.dumps({"lr": 0.1, "model": {"dim": 64}}))
        with self.assertRaises(CkvcError) as cm:
            ckvc.checkout("train", tmpdir("guarded"), config=other, store=self.store)
        self.assertEqual((cm.exception.code, cm.exception.exit_code), ("CKVC_CONFIG_MISMATCH", 20))
        out = tmpdir("allowed")
        with self.assertWarns(ckvc.CkvcWarning) as w:  # what the CLI says on stderr while succeeding
            r = ckvc.checkout("train", out, config=other, allow_config_mismatch=True, store=self.store)
        self.assertIn("config mismatch", str(w.warning))
        self.assertIn("configMismatch", r)
        self.assertEqual(read_tree(out), self.trees[2])

    def test_tensor_subset(self) -> None:
        out = tmpdir("tensors")
        r = ckvc.checkout("train", out, tensors=["model.*", "!model.b"], store=self.store)
        self.assertEqual(sorted(os.listdir(out)), ["model.safetensors"])
        self.assertEqual([(f["path"], f["source"], f["tensors"]) for f in r["tensorFiles"]],
                         [("model.safetensors", "model.safetensors", ["model.w"])])
        self.assertEqual(read_safetensors(os.path.join(out, "model.safetensors")),
                         {"model.w": read_safetensors_bytes(self.trees[2]["model.safetensors"])["model.w"]})

    def test_paths_subset(self) -> None:
        out = tmpdir("subset")
        ckvc.checkout("train", out, paths="model.safetensors", store=self.store)
        self.assertEqual(read_tree(out), {"model.safetensors": self.trees[2]["model.safetensors"]})


class Snapshot(StoreWithHistory):
    def test_default_cache_folder_twice_and_repair(self) -> None:
        c2 = self.commits[1]
        cache = tmpdir("cache")
        with mock.patch.dict(os.environ, {"CKVC_CACHE": cache}):
            folder = ckvc.snapshot("train~1", store=self.store)
            self.assertEqual(folder, os.path.join(cache, "snapshots", c2.id))
            self.assertEqual(read_tree(folder), self.trees[1])
            model = pathlib.Path(folder, "model.safetensors")
            before = model.stat()

            self.assertEqual(ckvc.snapshot(c2.id, store=self.store), folder)  # again: nothing rewritten
            after = model.stat()
            self.assertEqual((after.st_ino, after.st_mtime_ns), (before.st_ino, before.st_mtime_ns))

            model.write_bytes(b"damaged")  # a damaged cache file is replaced by the commit's bytes
            self.assertEqual(ckvc.snapshot(c2.id[:12], store=self.store), folder)
            self.assertEqual(read_tree(folder), self.trees[1])

    def test_annotated_tag_id_lands_in_the_commit_folder(self) -> None:
        c1 = self.commits[0]
        tag = ckvc.cli(["tag", "first", c1.id, "-m", "the first checkpoint"], store=self.store)
        self.assertEqual(tag["commit"], c1.id)
        self.assertRegex(tag["id"], r"^[0-9a-f]{64}$")
        self.assertNotEqual(tag["id"], c1.id)
        cache = tmpdir("cache")
        with mock.patch.dict(os.environ, {"CKVC_CACHE": cache}):
            folder = ckvc.snapshot(tag["id"], store=self.store)  # 64 hex digits, but a tag's, not a commit's
        self.assertEqual(folder, os.path.join(cache, "snapshots", c1.id))
        self.assertEqual(os.listdir(os.path.join(cache, "snapshots")), [c1.id])
        self.assertEqual(read_tree(folder), self.trees[0])

    def test_allow_and_ignore_patterns(self) -> None:
        tree = self.trees[2]
        d1 = ckvc.snapshot("train", local_dir=tmpdir("st"), allow_patterns="*.safetensors", store=self.store)
        self.assertEqual(read_tree(d1), {k: v for k, v in tree.items() if k.endswith(".safetensors")})
        d2 = ckvc.snapshot("train", local_dir=tmpdir("notes"), allow_patterns=["notes/", "opt*"],
                           ignore_patterns="*.safetensors", store=self.store)
        self.assertEqual(read_tree(d2), {"notes/readme.txt": tree["notes/readme.txt"]})
        with self.assertRaises(CkvcError) as cm:
            ckvc.snapshot("train", local_dir=tmpdir("none"), allow_patterns="*.pt", store=self.store)
        self.assertEqual((cm.exception.code, cm.exception.exit_code), ("CKVC_PATH_NOT_FOUND", 14))
        self.assertIn("model.safetensors", str(cm.exception))

    def test_local_dir_with_a_different_file_is_refused_unless_forced(self) -> None:
        base = tmpdir("mine")
        mine = pathlib.Path(base, "snap", "notes", "readme.txt")
        mine.parent.mkdir(parents=True)
        mine.write_text("my own notes\n")
        with self.assertRaises(CkvcError) as cm:  # relative local_dir: taken from cwd
            ckvc.snapshot("train", local_dir="snap", cwd=base, store=self.store)
        self.assertEqual((cm.exception.code, cm.exception.exit_code), ("CKVC_WOULD_OVERWRITE", 17))
        self.assertEqual(mine.read_text(), "my own notes\n")
        folder = ckvc.snapshot("train", local_dir="snap", cwd=base, force=True, store=self.store)
        self.assertEqual(folder, os.path.join(base, "snap"))
        self.assertEqual(read_tree(folder), self.trees[2])

    def test_default_folder_rules(self) -> None:
        cid = "ab" * 32
        env = {k: v for k, v in os.environ.items() if k not in ("CKVC_CACHE", "XDG_CACHE_HOME")}
        with mock.patch.dict(os.environ, env, clear=True):
            with mock.patch.dict(os.environ, {"XDG_CACHE_HOME": "/xdg"}):
                self.assertEqual(ckvc.snapshot_dir(cid), os.path.join("/xdg", "ckvc", "snapshots", cid))
            with mock.patch.dict(os.environ, {"XDG_CACHE_HOME": "relative/ignored", "HOME": "/home/u"}):
                self.assertEqual(ckvc.snapshot_dir(cid), os.path.join("/home/u", ".cache", "ckvc", "snapshots", cid))
            with mock.patch.dict(os.environ, {"CKVC_CACHE": "/c", "XDG_CACHE_HOME": "/xdg"}):
                self.assertEqual(ckvc.snapshot_dir(cid), os.path.join("/c", "snapshots", cid))
        with self.assertRaises(CkvcError) as cm:
            ckvc.snapshot_dir("../../etc")
        self.assertEqual(cm.exception.code, "CKVC_BAD_ARGUMENT")


class Errors(StoreWithHistory):
    def test_unknown_revision(self) -> None:
        for call in (lambda: ckvc.snapshot("no-such-branch", store=self.store),
                     lambda: ckvc.checkout("0123456789ab", tmpdir("x"), store=self.store)):
            with self.assertRaises(CkvcError) as cm:
                call()
            e = cm.exception
            self.assertEqual((e.code, e.exit_code), ("CKVC_UNKNOWN_REVISION", 14))
            self.assertIn("unknown revision", str(e))
            self.assertIn(e.data["revision"], ("no-such-branch", "0123456789ab"))

    def test_missing_store(self) -> None:
        with self.assertRaises(CkvcError) as cm:
            ckvc.log(store=os.path.join(_root, "does-not-exist"))
        self.assertEqual((cm.exception.code, cm.exception.exit_code), ("CKVC_NO_STORE", 10))
        with self.assertRaises(CkvcError) as cm:
            ckvc.best("loss", cwd=tmpdir("empty"))  # no --store, no CKVC_DIR, no .ckvc upward of a temp folder
        self.assertEqual((cm.exception.code, cm.exception.exit_code), ("CKVC_NO_STORE", 10))
        self.assertIn("ckvc init", str(cm.exception))

    def test_bad_metric_values_are_refused_before_running_anything(self) -> None:
        ckpt = os.path.join(self.work, "ckpt")
        # A CLI that cannot run proves the check happens first: running it would raise CKVC_CLI_NOT_FOUND.
        with mock.patch.dict(os.environ, {"CKVC_CLI": os.path.join(_root, "no-such-ckvc")}):
            for bad in ("abc", "0.5", True, None, [1.0], {"a": 1}):
                with self.assertRaises(CkvcError, msg=repr(bad)) as cm:
                    ckvc.commit(ckpt, branch="train", metrics={"loss": bad}, store=self.store)
                e = cm.exception
                self.assertEqual((e.code, e.exit_code, e.data["metric"]), ("CKVC_BAD_ARGUMENT", 15, "loss"))
                self.assertIn("not a number", str(e))
            for bad_args in ({"metrics": {"a=b": 1}}, {"step": -1}, {"step": 1.5}, {"labels": {"k": None}}):
                with self.assertRaises(CkvcError, msg=repr(bad_args)) as cm:
                    ckvc.commit(ckpt, store=self.store, **bad_args)  # type: ignore[arg-type]
                self.assertEqual(cm.exception.code, "CKVC_BAD_ARGUMENT")

    def test_metric_name_the_cli_refuses(self) -> None:
        with self.assertRaises(CkvcError) as cm:
            ckvc.commit(os.path.join(self.work, "ckpt"), branch="train", metrics={"bad name!": 1}, store=self.store)
        self.assertEqual((cm.exception.code, cm.exception.exit_code), ("CKVC_BAD_METRIC", 15))
        self.assertEqual(cm.exception.data.get("metric"), "bad name!")
        self.assertEqual(len(ckvc.log("train", store=self.store)), 3)  # bad input changed nothing

    def test_cli_not_found(self) -> None:
        empty_path = tmpdir("empty-path")
        node = shutil.which("node") or "node"
        cases = [
            {"CKVC_CLI": os.path.join(_root, "no-such-ckvc")},
            {"CKVC_CLI": "", "PATH": empty_path},
            {"CKVC_CLI": "{} {}".format(shlex.quote(node), os.path.join(_root, "missing", "bin", "ckvc"))},
        ]
        for env in cases:
            with mock.patch.dict(os.environ, env), self.assertRaises(CkvcError, msg=repr(env)) as cm:
                ckvc.log(store=self.store)
            e = cm.exception
            self.assertEqual((e.code, e.exit_code), ("CKVC_CLI_NOT_FOUND", None))
            self.assertIn("CKVC_CLI", str(e))
            self.assertIn("PATH", str(e))

    def test_cli_that_does_not_answer_json(self) -> None:
        py = shlex.quote(sys.executable)
        crash = py + " -c " + shlex.quote("import sys; sys.stderr.write('Segmentation fault\\n'); sys.exit(3)")
        with mock.patch.dict(os.environ, {"CKVC_CLI": crash}), self.assertRaises(CkvcError) as cm:
            ckvc.log(store=self.store)
        self.assertEqual((cm.exception.code, cm.exception.exit_code), ("CKVC_CLI_FAILED", 3))
        self.assertIn("Segmentation fault", str(cm.exception))
        chatty = py + " -c " + shlex.quote("print('hello')")
        with mock.patch.dict(os.environ, {"CKVC_CLI": chatty}), self.assertRaises(CkvcError) as cm:
            ckvc.log(store=self.store)
        self.assertEqual(cm.exception.code, "CKVC_CLI_FAILED")
        self.assertIn("no JSON", str(cm.exception))

    def test_usage_error_passes_through(self) -> None:
        with self.assertRaises(CkvcError) as cm:
            ckvc.cli(["frobnicate"], store=self.store)
        self.assertEqual((cm.exception.code, cm.exception.exit_code), ("CKVC_USAGE", 2))

    def test_error_type(self) -> None:
        e = CkvcError("CKVC_UNKNOWN_REVISION", "unknown revision \"x\"", 14, {"revision": "x"})
        self.assertIsInstance(e, Exception)
        self.assertEqual(str(e), "unknown revision \"x\"")
        back = pickle.loads(pickle.dumps(e))
        self.assertEqual((back.code, back.exit_code, back.data, str(back)), (e.code, 14, {"revision": "x"}, str(e)))


class CommitOptions(StoreWithHistory):
    def test_warm_start_and_provenance_options(self) -> None:
        # A folder whose name starts with '-', given relative to cwd, must not be read as an option.
        dash = os.path.join(self.work, "-ckpt")
        tree = make_checkpoint(dash, 7)
        r = ckvc.commit("-ckpt", branch="warm", parents=self.commits[1].id, epoch=1.5, run="run-7",
                        labels={"seed": 3, "note": "a=b"}, author="alice", message="--warm start--", cwd=self.work,
                        store=self.store)
        self.assertEqual(r.parents, [self.commits[1].id])  # first commit of a new branch: only the warm start
        shown = ckvc.show(r.id, store=self.store)
        self.assertEqual((shown["message"], shown["epoch"], shown["run"], shown["author"], shown["branch"]),
                         ("--warm start--", 1.5, "run-7", "alice", "warm"))
        self.assertEqual(shown["labels"], {"seed": "3", "note": "a=b"})
        self.assertEqual(sorted(f["path"] for f in shown["files"]), sorted(tree))
        self.assertEqual(shown["metrics"], {})

        single = ckvc.commit([os.path.join(dash, "model.safetensors")], branch="warm", store=self.store,
                             metrics={"loss": 1, "eval/score": 2.5e-7})
        entry = ckvc.log("warm", n=1, store=self.store)[0]
        self.assertEqual((entry["id"], entry["message"]), (single.id, "checkpoint"))
        self.assertEqual(entry["metrics"], {"loss": 1, "eval/score": 2.5e-7})
        self.assertEqual((single.files, single.tensors), (1, 2))

    def test_unchanged_files_are_taken_unread_unless_reread(self) -> None:
        folder = os.path.join(self.work, "unchanged-ckpt")
        tree = make_checkpoint(folder, 9)
        time.sleep(0.15)  # the files cache records only files that changed 100 ms or more before they were read
        first = ckvc.commit(folder, branch="files-cache", store=self.store)
        again = ckvc.commit(folder, branch="files-cache", store=self.store)
        reread = ckvc.commit(folder, branch="files-cache", store=self.store, reread=True)
        self.assertEqual((first.unread_files, again.unread_files, reread.unread_files), (0, len(tree), 0))
        self.assertEqual({again.tree, reread.tree}, {first.tree})

    def test_an_empty_folder_is_refused_unless_allow_empty(self) -> None:
        folder = os.path.join(self.work, "failed-save")
        os.makedirs(folder)
        with self.assertRaises(CkvcError) as cm:
            ckvc.commit(folder, branch="empty", store=self.store, metrics={"loss": 0.1})
        self.assertEqual((cm.exception.code, cm.exception.exit_code), ("CKVC_INPUT_NOT_FOUND", 15))
        made = ckvc.commit(folder, branch="empty", store=self.store, allow_empty=True)
        self.assertEqual(made.files, 0)


if __name__ == "__main__":
    unittest.main()
