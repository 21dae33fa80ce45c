"""The environment every test module of the helper runs in: the CLI of this checkout (unless CKVC_CLI names
another), no store or helper settings inherited from the caller's shell, a temp folder of the module's own for
stores and the snapshot cache (never the user's ~/.cache). One place, so the three test modules cannot drift."""

import os
import pathlib
import shlex
import shutil
import tempfile
from typing import Dict

REPO = pathlib.Path(__file__).resolve().parent.parent.parent

_saved: Dict[str, str] = {}


def enter(prefix: str) -> str:
    """Sets the test environment up; returns the module's temp folder."""
    _saved.clear()
    _saved.update(os.environ)
    if not os.environ.get("CKVC_CLI", "").strip():
        node = shutil.which("node") or "node"
        os.environ["CKVC_CLI"] = "{} {}".format(shlex.quote(node), shlex.quote(str(REPO / "bin" / "ckvc")))
    for name in ("CKVC_DIR", "CKVC_HELPER_SERVER", "CKVC_SNAPSHOT_CACHE_BYTES"):
        os.environ.pop(name, None)
    os.environ["CKVC_AUTHOR"] = "test"
    root = tempfile.mkdtemp(prefix=prefix)
    os.environ["CKVC_CACHE"] = os.path.join(root, "cache")
    return root


def leave(root: str) -> None:
    """Puts the caller's environment back and removes the module's temp folder."""
    os.environ.clear()
    os.environ.update(_saved)
    shutil.rmtree(root, ignore_errors=True)
