"""The run API (exists, latest, save, steps, load_step) against the real CLI, and the README's training loop run
as written (twice: the second run resumes from the first). Run as test_ckvc.py is (see its docstring)."""

import contextlib
import io
import math
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock
from typing import List

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))

import _test_env  # noqa: E402
import ckvc  # noqa: E402
from ckvc import CkvcError  # noqa: E402

_root = ""


def setUpModule() -> None:
    global _root
    _root = _test_env.enter("ckvc-runs-")


def tearDownModule() -> None:
    _test_env.leave(_root)


def _new_store() -> str:
    d = tempfile.mkdtemp(prefix="store-", dir=_root)
    ckvc.init(d)
    return os.path.join(d, ".ckvc")


def _read(folder: str, name: str = "w.bin") -> bytes:
    with open(os.path.join(folder, name), "rb") as f:
        return f.read()


class RunApiTest(unittest.TestCase):
    def setUp(self) -> None:
        self.store = _new_store()
        self.work = tempfile.mkdtemp(prefix="work-", dir=_root)
        self.ckpt = os.path.join(self.work, "ckpt")
        os.makedirs(self.ckpt)

    def _save(self, content: bytes, step: object = None, **kw: object) -> "ckvc.CommitResult":
        with open(os.path.join(self.ckpt, "w.bin"), "wb") as f:
            f.write(content)
        return ckvc.save(self.ckpt, "run-a", step=step, store=self.store, **kw)  # type: ignore[arg-type]

    def test_save_creates_the_run_and_steps_latest_load_step_follow_it(self) -> None:
        self.assertFalse(ckvc.exists("run-a", store=self.store))
        first = self._save(b"ten", 10, metrics={"loss": 0.5})
        self.assertTrue(ckvc.exists("run-a", store=self.store))
        self.assertEqual(first.branch, "run-a")
        self._save(b"twenty", 20, metrics={"loss": float("nan")}, message="diverged")
        self._save(b"no step")  # a commit without a step is not a step
        self._save(b"five", 5)
        self.assertEqual(ckvc.steps("run-a", store=self.store), [5, 10, 20])
        self.assertEqual(_read(ckvc.latest("run-a", store=self.store)), b"five")
        to = os.path.join(self.work, "out")
        self.assertEqual(ckvc.latest("run-a", to=to, store=self.store), to)
        self.assertEqual(_read(to), b"five")
        self.assertEqual(_read(ckvc.load_step("run-a", 20, store=self.store)), b"twenty")
        self.assertEqual(_read(ckvc.load_step("run-a", 10, to=os.path.join(self.work, "s10"), store=self.store)), b"ten")
        shown = ckvc.show("run-a~2", store=self.store)
        self.assertEqual((shown["message"], shown["metrics"]["loss"]), ("diverged", "NaN"))
        self.assertTrue(math.isnan(float(shown["metrics"]["loss"])))
        self.assertEqual(ckvc.best("loss", branch="run-a", store=self.store)["step"], 10)  # NaN skipped

    def test_missing_runs_and_steps_raise_clear_errors(self) -> None:
        self._save(b"one", 1)
        with self.assertRaises(CkvcError) as cm:
            ckvc.load_step("run-a", 2, store=self.store)
        self.assertEqual((cm.exception.code, cm.exception.exit_code), ("CKVC_NO_STEP", 14))
        self.assertIn("ckvc.steps('run-a')", str(cm.exception))
        for call in (lambda: ckvc.latest("nope", store=self.store), lambda: ckvc.steps("nope", store=self.store)):
            with self.assertRaises(CkvcError) as cm:
                call()
            self.assertEqual(cm.exception.code, "CKVC_UNKNOWN_REVISION")
        self.assertFalse(ckvc.exists("nope", store=self.store))
        with self.assertRaises(CkvcError) as cm:
            ckvc.exists("", store=self.store)
        self.assertEqual(cm.exception.code, "CKVC_BAD_ARGUMENT")

    def test_pruned_steps_are_not_listed(self) -> None:
        for i in range(1, 4):
            self._save("step {}".format(i).encode() * 100, i)
        ckvc.cli(["prune", "--keep-last", "1", "-b", "run-a"], store=self.store)
        self.assertEqual(ckvc.steps("run-a", store=self.store), [3])
        with self.assertRaises(CkvcError) as cm:
            ckvc.load_step("run-a", 1, store=self.store)
        self.assertEqual(cm.exception.code, "CKVC_NO_STEP")


def _readme_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- run-api-example -->\n```python\n(.*?)```", text, re.S)
    if not m:
        raise AssertionError("README.md has no <!-- run-api-example --> python block")
    return m.group(1)


class ReadmeTrainingLoopTest(unittest.TestCase):
    def test_readme_loop_saves_resumes_and_evaluates(self) -> None:
        code = _readme_example()
        work = tempfile.mkdtemp(prefix="readme-", dir=_root)
        ckvc.init(work)
        outputs: List[str] = []
        old_cwd = os.getcwd()
        os.chdir(work)  # the example uses relative paths and finds the store upward, as a script would
        try:
            for _ in range(2):
                buf = io.StringIO()
                with contextlib.redirect_stdout(buf):
                    exec(compile(code, "README.md run-api-example", "exec"), {"__name__": "__readme__"})
                outputs.append(buf.getvalue())
        finally:
            os.chdir(old_cwd)
        self.assertIn("saved steps: [10, 20, 30]", outputs[0])
        self.assertIn("saved steps: [10, 20, 30, 40, 50, 60]", outputs[1])  # resumed from step 30
        w20 = [line for line in outputs[1].splitlines() if line.startswith("w at step 20:")]
        self.assertEqual(len(w20), 1)
        self.assertAlmostEqual(float(w20[0].split(":")[1]), 3.0 * (1 - 0.9 ** 20))
        store = os.path.join(work, ".ckvc")
        self.assertEqual(ckvc.best("loss", branch="tiny-mlp", store=store)["step"], 60)


class LatestServedTest(unittest.TestCase):
    """``latest`` is one request to the helper server, which remembers files it verified and objects it read
    (spec/HELPER.md §4): what it remembers never hides a new commit or a changed file."""

    def setUp(self) -> None:
        self.store = _new_store()
        self.ckpt = tempfile.mkdtemp(prefix="ckpt-", dir=_root)

    def _write(self, content: bytes) -> None:
        with open(os.path.join(self.ckpt, "w.bin"), "wb") as f:
            f.write(content)

    def test_a_commit_from_another_process_is_the_next_latest(self) -> None:
        self._write(b"one")
        ckvc.save(self.ckpt, "run-a", step=1, store=self.store)
        first = ckvc.latest("run-a", store=self.store)
        self.assertEqual(ckvc.latest("run-a", store=self.store), first)
        self._write(b"two!")
        cli = shlex.split(os.environ["CKVC_CLI"])
        subprocess.run(cli + ["commit", self.ckpt, "-b", "run-a", "-m", "two", "--store", self.store], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        second = ckvc.latest("run-a", store=self.store)
        self.assertNotEqual(second, first)
        self.assertEqual((_read(first), _read(second)), (b"one", b"two!"))

    def test_a_changed_snapshot_file_is_found_and_replaced(self) -> None:
        self._write(b"12345678")
        ckvc.save(self.ckpt, "run-a", store=self.store)
        folder = ckvc.latest("run-a", store=self.store)
        time.sleep(0.25)  # past the racy window: the next call's hash is remembered, the one after vouches
        for _ in range(2):
            self.assertEqual(ckvc.latest("run-a", store=self.store), folder)
        path = os.path.join(folder, "w.bin")
        st = os.stat(path)
        with open(path, "wb") as f:
            f.write(b"87654321")  # same size, and the modification time put back
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        self.assertEqual(ckvc.latest("run-a", store=self.store), folder)
        self.assertEqual(_read(folder), b"12345678")
        to = os.path.join(self.ckpt, "out")
        self.assertEqual(ckvc.latest("run-a", to=to, store=self.store), to)
        with open(os.path.join(to, "w.bin"), "wb") as f:
            f.write(b"mine....")
        with self.assertRaises(CkvcError) as cm:  # a folder of the caller's: refused, never overwritten
            ckvc.latest("run-a", to=to, store=self.store)
        self.assertEqual((cm.exception.code, _read(to)), ("CKVC_WOULD_OVERWRITE", b"mine...."))

    def test_same_folder_without_the_server(self) -> None:
        self._write(b"x")
        ckvc.save(self.ckpt, "run-a", store=self.store)
        served = ckvc.latest("run-a", store=self.store)
        with mock.patch.dict(os.environ, {"CKVC_HELPER_SERVER": "0"}):
            self.assertEqual(ckvc.latest("run-a", store=self.store), served)


if __name__ == "__main__":
    unittest.main()
