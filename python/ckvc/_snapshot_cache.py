"""The snapshot cache: where :func:`ckvc.snapshot` puts a commit's files when no folder is given, its size bound,
and least-recently-used eviction. A snapshot folder's modification time is its last use (``snapshot`` sets it)."""

import os
import re
import shutil
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ._errors import CkvcError

__all__ = ["snapshot_dir", "snapshots_root", "cache_limit", "mark_used", "evict_snapshots", "DEFAULT_CACHE_BYTES"]

COMMIT_ID = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_CACHE_BYTES = 20 * 1024 ** 3
# A folder being evicted is renamed to this first, so a half-deleted folder is never taken for a snapshot.
_EVICTING = ".evicting-"


def snapshots_root() -> str:
    """``$CKVC_CACHE/snapshots``, else ``$XDG_CACHE_HOME/ckvc/snapshots`` when ``XDG_CACHE_HOME`` is an absolute
    path, else ``~/.cache/ckvc/snapshots``; read at every call."""
    root = os.environ.get("CKVC_CACHE", "")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        root = os.path.join(xdg, "ckvc") if xdg and os.path.isabs(xdg) else os.path.join("~", ".cache", "ckvc")
    return os.path.join(os.path.abspath(os.path.expanduser(root)), "snapshots")


def snapshot_dir(commit_id: str) -> str:
    """The folder :func:`snapshot` uses for a commit when no ``local_dir`` is given: ``<snapshots_root()>/<commit
    ID>``. Commit IDs are content hashes, so one cache serves every store."""
    if not COMMIT_ID.match(commit_id):
        raise CkvcError("CKVC_BAD_ARGUMENT", "{!r} is not a full commit ID (64 hex digits)".format(commit_id), 15,
                        {"commit": commit_id})
    return os.path.join(snapshots_root(), commit_id)


def cache_limit() -> int:
    """The cache's size bound in bytes: ``$CKVC_SNAPSHOT_CACHE_BYTES`` (a whole number; ``0`` keeps only the
    snapshot just made), else 20 GiB."""
    raw = os.environ.get("CKVC_SNAPSHOT_CACHE_BYTES", "").strip()
    if not raw:
        return DEFAULT_CACHE_BYTES
    if not raw.isdigit():
        raise CkvcError("CKVC_BAD_ARGUMENT", "CKVC_SNAPSHOT_CACHE_BYTES={!r} is not a whole number of bytes; set it "
                        "to e.g. 21474836480 (20 GiB) or unset it".format(raw), 15, {"CKVC_SNAPSHOT_CACHE_BYTES": raw})
    return int(raw)


def mark_used(folder: str) -> None:
    """Records a snapshot folder's use (its modification time), which orders eviction."""
    try:
        os.utime(folder)
    except OSError:
        pass  # gone or not ours to touch: eviction then sees its older time, which is only less precise


def _folder_bytes(folder: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def _snapshots(root: str) -> Tuple[List[Tuple[float, str, int]], List[str]]:
    """``([(last use, commit ID, bytes)], [leftovers of an interrupted eviction])``."""
    found: List[Tuple[float, str, int]] = []
    leftovers: List[str] = []
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return found, leftovers
    for name in names:
        path = os.path.join(root, name)
        if name.startswith(_EVICTING):
            leftovers.append(path)
        elif COMMIT_ID.match(name) and os.path.isdir(path) and not os.path.islink(path):
            try:
                found.append((os.stat(path).st_mtime, name, _folder_bytes(path)))
            except OSError:
                continue  # evicted by another process meanwhile
    return found, leftovers


def evict_snapshots(max_bytes: Optional[int] = None, *, keep: Iterable[str] = ()) -> Dict[str, Any]:
    """Removes the least recently used snapshot folders until the cache holds at most ``max_bytes`` (default
    :func:`cache_limit`; ``0`` empties it). Folders named in ``keep`` (commit IDs) stay whatever their size.
    Only folders named by a commit ID are touched; ``local_dir`` folders are never the cache's.

    Returns:
        ``{"removed": [commit IDs, least recently used first], "freed_bytes", "kept_bytes", "max_bytes"}``.
    """
    limit = cache_limit() if max_bytes is None else max_bytes
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise CkvcError("CKVC_BAD_ARGUMENT", "max_bytes must be a whole number >= 0, got {!r}".format(max_bytes), 15,
                        {"max_bytes": repr(max_bytes)})
    root = snapshots_root()
    found, leftovers = _snapshots(root)
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
    kept = set(keep)
    total = sum(size for _, _, size in found)
    removed: List[str] = []
    freed = 0
    for _, commit_id, size in sorted(found):
        if total <= limit:
            break
        if commit_id in kept:
            continue
        doomed = os.path.join(root, "{}{}-{}".format(_EVICTING, commit_id, os.getpid()))
        try:
            os.rename(os.path.join(root, commit_id), doomed)
        except OSError:
            continue  # another process evicted or is replacing it
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(commit_id)
        freed += size
        total -= size
    return {"removed": removed, "freed_bytes": freed, "kept_bytes": total, "max_bytes": limit}
