"""The helper's functions: each runs one or two ``ckvc ... --json`` commands and returns what they print."""

import fnmatch
import math
import numbers
import operator
import os
import shutil
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from ._cli import PathLike, run_json, served_checkout
from ._snapshot_cache import COMMIT_ID as _COMMIT_ID, evict_snapshots, mark_used, snapshot_dir, snapshots_root
from ._errors import CkvcError

__all__ = [
    "CommitResult",
    "commit",
    "checkout",
    "snapshot",
    "snapshot_dir",
    "best",
    "log",
    "show",
    "ls",
    "init",
    "cli",
]

Patterns = Union[str, Iterable[str]]

# Command lines longer than this are split into several checkouts (Windows allows 32,767 characters).
_MAX_PATH_ARGS_CHARS = 24000


def _bad(message: str, **data: Any) -> CkvcError:
    return CkvcError("CKVC_BAD_ARGUMENT", message, 15, data)


def _json_dict(value: Any, command: str) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise CkvcError("CKVC_CLI_FAILED", "ckvc {} --json printed {!r}, not a JSON object".format(command, value), None,
                        {"output": value})
    return value


def _json_list(value: Any, command: str) -> List[Dict[str, Any]]:
    if not isinstance(value, list):
        raise CkvcError("CKVC_CLI_FAILED", "ckvc {} --json printed {!r}, not a JSON array".format(command, value), None,
                        {"output": value})
    return value


def _opt(name: str, value: Any) -> str:
    # --name=value: a value starting with '-' can never be taken for an option.
    return "--{}={}".format(name, value)


def _rev(value: Any, what: str = "revision") -> str:
    s = str(value)
    if not s:
        raise _bad("{} must not be empty".format(what), **{what: s})
    if s.startswith("-"):
        raise _bad("{} {!r} starts with '-'; no branch, tag or commit ID does".format(what, s), **{what: s})
    return s


def _input_path(p: Any) -> str:
    s = os.fspath(p)
    if not isinstance(s, str) or not s:
        raise _bad("a path to commit must be a non-empty str or os.PathLike, got {!r}".format(p), path=repr(p))
    # A relative path starting with '-' would be read as an option.
    return os.path.join(".", s) if s.startswith("-") else s


def _as_list(value: Any) -> List[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or hasattr(value, "__fspath__"):
        return [value]
    return list(value)


def _metric_arg(key: Any, value: Any) -> str:
    """``KEY=VALUE`` for ``--metric``; only real numbers pass (int, float, numpy scalars, 1-element tensors; NaN
    and infinity included), so that nothing reaches the store that the CLI would refuse or misread."""
    if not isinstance(key, str) or not key or "=" in key:
        raise _bad("metric name {!r} must be a non-empty str without '='".format(key), metric=repr(key))
    text: Optional[str] = None
    if not isinstance(value, (bool, str, bytes)) and value is not None:
        try:
            if isinstance(value, numbers.Integral):
                n = int(value)
                text = str(n) if abs(n) <= 2 ** 53 else repr(float(n))
            elif isinstance(value, numbers.Real) or hasattr(value, "__float__"):
                x = float(value)
                # A diverged loss is recorded as such (the CLI reads nan, inf, -inf; best skips them).
                text = repr(x) if math.isfinite(x) else "nan" if math.isnan(x) else "inf" if x > 0 else "-inf"
        except (TypeError, ValueError, OverflowError, RuntimeError):
            text = None
    if text is None:
        raise _bad(
            "metric {!r} has value {!r} ({}), which is not a number; metrics must be int or float".format(
                key, value, type(value).__name__),
            metric=key, value=repr(value),
        )
    return "{}={}".format(key, text)


def _label_arg(key: Any, value: Any) -> str:
    if not isinstance(key, str) or not key or "=" in key:
        raise _bad("label name {!r} must be a non-empty str without '='".format(key), label=repr(key))
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _bad("label {!r} has value {!r}; labels are text (str, or an int or float to be written as text)".format(
            key, value), label=key, value=repr(value))
    return "{}={}".format(key, value)


def _whole_number(value: Any, what: str) -> int:
    if not isinstance(value, bool):
        try:
            n = operator.index(value)
        except TypeError:
            n = int(value) if isinstance(value, float) and value.is_integer() else -1
        if n >= 0:
            return n
    raise _bad("{} must be a whole number >= 0, got {!r}".format(what, value), **{what: repr(value)})


def _number(value: Any, what: str) -> str:
    if not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(float(value)):
        return str(value) if isinstance(value, numbers.Integral) else repr(float(value))
    raise _bad("{} must be a finite number, got {!r}".format(what, value), **{what: repr(value)})


@dataclass(frozen=True)
class CommitResult:
    """What :func:`commit` returns: the fields of ``ckvc commit --json``, in snake_case.

    Attributes:
        id: the new commit's full ID (64 hex digits); ``str(result)`` is this ID.
        branch: the branch the commit landed on.
        parents: parent commit IDs (the branch's previous commit, then warm-start parents).
        tree: the ID of the commit's file tree.
        files: number of files committed.
        tensors: number of tensors found in them (safetensors files).
        bytes: logical size of the committed files.
        new_bytes: bytes this commit added to the store (after dedup and compression).
        unread_files: files taken unread, unchanged since this store took them (the files cache).
        config_hash: canonical hash of the config file, when one was given.
        code: the git provenance recorded (``{"commit", "branch", "dirty"}``), when the command ran in a git
            repository.
        aliases: moving aliases this commit became the new best of.
        warnings: things that went wrong after the commit landed (it counts regardless).
        raw: the CLI's JSON object as printed.
    """

    id: str
    branch: str
    parents: List[str]
    tree: str
    files: int
    tensors: int
    bytes: int
    new_bytes: int
    unread_files: int = 0
    config_hash: Optional[str] = None
    code: Optional[Dict[str, Any]] = None
    aliases: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __str__(self) -> str:
        return self.id

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "CommitResult":
        """Builds the result from the CLI's ``commit --json`` object."""
        if not isinstance(obj, Mapping) or not isinstance(obj.get("id"), str):
            raise CkvcError("CKVC_CLI_FAILED", "ckvc commit --json printed no commit ID: {!r}".format(obj), None,
                            {"output": obj})
        return cls(
            id=obj["id"],
            branch=obj.get("branch", ""),
            parents=list(obj.get("parents") or []),
            tree=obj.get("tree", ""),
            files=int(obj.get("files", 0)),
            tensors=int(obj.get("tensors", 0)),
            bytes=int(obj.get("bytes", 0)),
            new_bytes=int(obj.get("newBytes", 0)),
            unread_files=int(obj.get("unreadFiles", 0)),
            config_hash=obj.get("configHash"),
            code=obj.get("code"),
            aliases=list(obj.get("aliases") or []),
            warnings=list(obj.get("warnings") or []),
            raw=dict(obj),
        )


def commit(
    paths: Union[PathLike, Sequence[PathLike]],
    branch: Optional[str] = None,
    message: Optional[str] = None,
    config: Optional[PathLike] = None,
    metrics: Optional[Mapping[str, Any]] = None,
    step: Optional[int] = None,
    *,
    epoch: Optional[float] = None,
    run: Optional[str] = None,
    labels: Optional[Mapping[str, Any]] = None,
    parents: Optional[Union[str, Sequence[str]]] = None,
    author: Optional[str] = None,
    store: Optional[PathLike] = None,
    cwd: Optional[PathLike] = None,
    reread: bool = False,
    allow_empty: bool = False,
) -> CommitResult:
    """Commits checkpoint files or folders: ``ckvc commit PATH... -m MESSAGE [-b BRANCH] [--config FILE]
    [--metric K=V]... [--step N] [--epoch E] [--run ID] [--label K=V]... [--parent REV]... [--author A] [--reread]
    [--allow-empty] --json``.

    Args:
        paths: a file or folder, or a list of them. A single folder becomes the commit's root (its files are
            stored under their paths inside it).
        branch: the branch to commit to (created if new); default: the current branch.
        message: the commit message; default ``"step N"`` when ``step`` is given, else ``"checkpoint"``.
        config: a YAML or JSON config file to snapshot and hash.
        metrics: ``{"loss": 0.31, "eval/score": 12}``; values must be int or float (numpy scalars and
            one-element tensors work too; NaN and infinity are recorded, and ``best`` skips them). Anything else raises ``CkvcError("CKVC_BAD_ARGUMENT")`` before any
            command runs.
        step: the training step, a whole number >= 0.
        epoch: the training epoch (a number).
        run: a run ID.
        labels: ``{"KEY": "text"}``, stored with the commit.
        parents: warm-start parent revision(s) (``--parent``), e.g. the best commit of another branch.
        author: the author; default ``$CKVC_AUTHOR``, else user@host.
        store: the store folder (``--store``); default ``$CKVC_DIR``, else the nearest ``.ckvc`` upward of ``cwd``.
        cwd: the folder to run in; relative paths are taken from there (default: the current folder).
        reread: read every file, also those unchanged since this store took them (``--reread``): the files cache
            takes such files unread, trusting their size, inode and times (a file rewritten through a writable
            memory map without the kernel updating its times needs this).
        allow_empty: commit even when the paths hold no file (``--allow-empty``); without it that is refused with
            ``CKVC_INPUT_NOT_FOUND``, since a save that failed leaves an empty folder.

    Returns:
        A :class:`CommitResult` (``.id`` is the new commit ID).

    Raises:
        CkvcError: e.g. ``CKVC_INPUT_NOT_FOUND``, ``CKVC_BAD_METRIC``, ``CKVC_BAD_CONFIG``,
            ``CKVC_BAD_SAFETENSORS``, ``CKVC_BAD_TENSOR_FILE``, ``CKVC_INPUT_CHANGED``, ``CKVC_NO_STORE``.
    """
    path_args = [_input_path(p) for p in _as_list(paths)]
    if not path_args:
        raise _bad("commit needs at least one file or folder", paths=[])
    step_n = _whole_number(step, "step") if step is not None else None
    if message is None:
        message = "step {}".format(step_n) if step_n is not None else "checkpoint"
    if not isinstance(message, str):
        raise _bad("message must be a str, got {!r}".format(message), message=repr(message))
    args: List[str] = ["commit", *path_args, _opt("message", message)]
    if branch is not None:
        args.append(_opt("branch", branch))
    if config is not None:
        args.append(_opt("config", os.fspath(config)))
    if metrics is not None:
        if not isinstance(metrics, Mapping):
            raise _bad("metrics must be a dict of name -> number, got {!r}".format(metrics), metrics=repr(metrics))
        args += [_opt("metric", _metric_arg(k, v)) for k, v in metrics.items()]
    if step_n is not None:
        args.append(_opt("step", step_n))
    if epoch is not None:
        args.append(_opt("epoch", _number(epoch, "epoch")))
    if run is not None:
        args.append(_opt("run", run))
    if labels is not None:
        if not isinstance(labels, Mapping):
            raise _bad("labels must be a dict of name -> text, got {!r}".format(labels), labels=repr(labels))
        args += [_opt("label", _label_arg(k, v)) for k, v in labels.items()]
    args += [_opt("parent", _rev(p, "parent")) for p in _as_list(parents)]
    if author is not None:
        args.append(_opt("author", author))
    if reread:
        args.append("--reread")
    if allow_empty:
        args.append("--allow-empty")
    return CommitResult.from_json(run_json(args, store=store, cwd=cwd))


def checkout(
    rev: str,
    to: PathLike,
    paths: Optional[Union[str, Sequence[str]]] = None,
    force: bool = False,
    *,
    tensors: Optional[Union[str, Sequence[str]]] = None,
    config: Optional[PathLike] = None,
    allow_config_mismatch: bool = False,
    store: Optional[PathLike] = None,
    cwd: Optional[PathLike] = None,
) -> Dict[str, Any]:
    """Writes a commit's files into folder ``to``, byte-identical and hash-verified: ``ckvc checkout REV --to DIR
    [--path P]... [--tensor GLOB]... [--force] [--config FILE [--allow-config-mismatch]] --json``.

    Files already identical are skipped; a different existing file is refused (``CKVC_WOULD_OVERWRITE``, exit
    17, ``data["paths"]`` lists them) unless ``force=True``. Files in ``to`` that the commit does not have are
    left alone.

    Args:
        rev: a revision: branch, tag, alias, commit ID or unique prefix, ``HEAD``, ``REV~N``, ``REV^``.
        to: the folder to write into (created if missing).
        paths: only these files or folders of the commit (paths inside the commit, as :func:`ls` shows them).
        force: replace existing files that differ.
        tensors: instead of the files, write only the tensors whose names match these globs (``--tensor``, e.g.
            ``"model.*"``; a leading ``!`` excludes): each file with a match (safetensors, .pt, .npy, .npz) becomes
            ``to/<path without extension>.safetensors`` holding just those tensors (the result then has
            ``tensorFiles``: ``[{"path", "source", "bytes", "tensors", "written"}]``). Needs a CLI with
            ``checkout --tensor``.
        config: refuse (``CKVC_CONFIG_MISMATCH``, exit 20) unless this config file is the commit's.
        allow_config_mismatch: with ``config``: check out anyway (the result then has ``configMismatch``).
        store, cwd: as for :func:`commit`.

    Returns:
        The CLI's JSON: ``{"commit": ID, "to": absolute folder, "written": [{"path", "bytes"}...] (with
        ``"replaced": True`` where ``force`` replaced a different file),
        "unchanged": [path...], "bytes": bytes written}``, plus ``configMismatch`` when allowed through.
    """
    args = ["checkout", _rev(rev), _opt("to", os.fspath(to))]
    args += [_opt("path", str(p)) for p in _as_list(paths)]
    args += [_opt("tensor", str(t)) for t in _as_list(tensors)]
    if force:
        args.append("--force")
    if config is not None:
        args.append(_opt("config", os.fspath(config)))
    if allow_config_mismatch:
        args.append("--allow-config-mismatch")
    return _json_dict(run_json(args, store=store, cwd=cwd), "checkout")


def _patterns(value: Optional[Patterns], what: str) -> Optional[List[str]]:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    for p in items:
        if not isinstance(p, str):
            raise _bad("{} must be a str or a list of str, got {!r}".format(what, value), **{what: repr(value)})
    # As in huggingface_hub: "folder/" means everything under it.
    return [p + "*" if p.endswith("/") else p for p in items]


def _matches(path: str, patterns: List[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


def snapshot(
    rev: str = "HEAD",
    local_dir: Optional[PathLike] = None,
    allow_patterns: Optional[Patterns] = None,
    ignore_patterns: Optional[Patterns] = None,
    *,
    force: Optional[bool] = None,
    store: Optional[PathLike] = None,
    cwd: Optional[PathLike] = None,
) -> str:
    """Makes a folder hold a commit's files (or those matching ``allow_patterns``) and returns its path, like
    ``huggingface_hub.snapshot_download``.

    How it runs: the whole commit is one request to the helper server, which resolves ``rev`` and checks that
    commit out into ``local_dir`` or its cache folder, skipping files it hashed before and that are untouched
    since (spec/HELPER.md §1.1, §4). Without the server, the whole commit into ``local_dir``, or into the cache
    when ``rev`` is a full commit ID, is one ``ckvc checkout REV --to DIR``. Otherwise ``ckvc ls REV --json``
    first resolves ``rev`` to a commit ID (which names the cache folder) and lists its files for the patterns,
    and then that commit, not the moving name, is checked out (``ckvc checkout ID --to DIR [--path P]...``), so
    a branch that moves meanwhile cannot mix two commits in one folder. Calling it again is cheap and correct:
    files already identical are verified and skipped, missing ones written (a snapshot interrupted half-way is
    completed by the next call; a partial file never appears). Nothing is ever deleted from the folder.

    Args:
        rev: a revision (branch, tag, alias, ID, ``HEAD~1``...).
        local_dir: the folder to fill; default :func:`snapshot_dir` of the commit ID (a cache shared by all
            stores, keyed by commit ID).
        allow_patterns: a glob or list of globs (:mod:`fnmatch`, case-sensitive) over the commit's file paths
            (``/``-separated, as :func:`ls` shows them); only matching files are checked out. ``*`` also matches
            ``/`` (``"*.safetensors"`` matches ``sub/a.safetensors``); ``"folder/"`` means ``"folder/*"``.
        ignore_patterns: globs of files to leave out (applied after ``allow_patterns``).
        force: what to do with an existing file that differs from the commit's. ``None`` (default): replace it
            in the cache folder (it belongs to ckvc: a different file there is damaged or was edited, and the
            commit's bytes are what the folder promises), but refuse in a ``local_dir`` you chose, raising
            ``CkvcError("CKVC_WOULD_OVERWRITE")`` (exit 17, ``data["paths"]`` names the files) so that none of
            your files is lost. ``True``: always replace; ``False``: always refuse.
        store, cwd: as for :func:`commit`; a relative ``local_dir`` is taken from ``cwd``.

    Returns:
        The folder's absolute path, as a str.

    Raises:
        CkvcError: ``CKVC_UNKNOWN_REVISION`` (exit 14) for a revision that names nothing;
            ``CKVC_PATH_NOT_FOUND`` (exit 14) when the patterns select no file of the commit;
            ``CKVC_WOULD_OVERWRITE`` (exit 17) as described for ``force``; ``CKVC_PRUNED`` (exit 19) when the
            data of a selected file was released by ``ckvc prune`` (select other files with the patterns).
    """
    allow = _patterns(allow_patterns, "allow_patterns")
    ignore = _patterns(ignore_patterns, "ignore_patterns")
    rev = _rev(rev)
    if local_dir is not None:
        target = os.path.expanduser(os.fspath(local_dir))
        if not os.path.isabs(target):
            target = os.path.join(os.fspath(cwd), target) if cwd is not None else target
        target = os.path.abspath(target)
        replace = bool(force)
    else:
        replace = True if force is None else force
    if allow is None and ignore is None:
        # The whole commit as one request to the helper server, which resolves REV and skips files it verified
        # before and that are untouched since (spec/HELPER.md §1.1, §4).
        served = served_checkout(rev, to=target if local_dir is not None else None,
                                 under=None if local_dir is not None else snapshots_root(), force=replace, store=store,
                                 cwd=cwd)
        if served is not None:
            if local_dir is not None:
                return target
            commit_id = served.get("commit")
            if not isinstance(commit_id, str) or not _COMMIT_ID.match(commit_id):
                raise CkvcError("CKVC_CLI_FAILED", "the helper server's checkout named no commit: {!r}".format(served),
                                None, {"output": served})
            return _cached(commit_id, snapshot_dir(commit_id), bool(served.get("written")))
    if allow is None and ignore is None and (local_dir is not None or _COMMIT_ID.match(rev)):
        # The whole commit into a known folder: one command (it resolves REV once itself).
        folder = target if local_dir is not None else snapshot_dir(rev)
        existed = os.path.exists(folder)
        done = checkout(rev, folder, force=replace, store=store, cwd=cwd)
        if local_dir is not None:
            return folder
        if done.get("commit") == rev:
            return _cached(rev, folder, bool(done.get("written")))
        # 64 hex digits that named an annotated tag's object (or a branch): the cache folder must be named by
        # the commit, so drop the one just made and go the long way with the commit ID.
        if not existed:
            shutil.rmtree(folder, ignore_errors=True)
        rev = str(done.get("commit"))
    listing = run_json(["ls", rev], store=store, cwd=cwd)
    commit_id = listing.get("commit") if isinstance(listing, dict) else None
    files = listing.get("files") if isinstance(listing, dict) else None
    if not isinstance(commit_id, str) or not _COMMIT_ID.match(commit_id) or not isinstance(files, list):
        raise CkvcError("CKVC_CLI_FAILED", "ckvc ls {} --json did not print a commit ID and files: {!r}".format(
            rev, listing), None, {"output": listing})
    all_paths = [f["path"] for f in files]
    selected = [p for p in all_paths if (allow is None or _matches(p, allow)) and not (ignore and _matches(p, ignore))]
    if not selected:
        raise CkvcError(
            "CKVC_PATH_NOT_FOUND",
            "no file of commit {} matches allow_patterns={!r} ignore_patterns={!r}; its files: {}".format(
                commit_id[:12], allow_patterns, ignore_patterns,
                ", ".join(all_paths[:10]) + (" ..." if len(all_paths) > 10 else "")),
            14,
            {"commit": commit_id, "allow_patterns": allow, "ignore_patterns": ignore, "files": all_paths},
        )
    if local_dir is None:
        target = snapshot_dir(commit_id)
    # The whole commit in one call; a selection in batches that keep each command line short.
    batches: List[List[str]] = [[]]
    if len(selected) < len(all_paths):
        size = 0
        for p in selected:
            if batches[-1] and size + len(p) + 8 > _MAX_PATH_ARGS_CHARS:
                batches.append([])
                size = 0
            batches[-1].append(p)
            size += len(p) + 8
    wrote = False
    for batch in batches:
        wrote = bool(checkout(commit_id, target, paths=batch or None, force=replace, store=store, cwd=cwd)
                     .get("written")) or wrote
    return target if local_dir is not None else _cached(commit_id, target, wrote)


def _cached(commit_id: str, folder: str, wrote: bool) -> str:
    """Marks a cache folder used and, when the cache grew, evicts least recently used snapshots down to the bound
    (``CKVC_SNAPSHOT_CACHE_BYTES``), never this one. A cache that did not grow is not walked (calls stay quick)."""
    mark_used(folder)
    if wrote:
        evict_snapshots(keep=[commit_id])
    return folder


def best(
    metric: str,
    mode: Optional[str] = None,
    branch: Optional[str] = None,
    *,
    store: Optional[PathLike] = None,
    cwd: Optional[PathLike] = None,
) -> Dict[str, Any]:
    """The best commit of a branch by a metric: ``ckvc best --metric KEY [--max|--min] [-b BRANCH] --json``.

    Args:
        metric: the metric name, e.g. ``"eval/loss"``.
        mode: ``None`` (default; ``"auto"`` is the same) passes neither flag, so the CLI decides from the name
            as ``ckvc best`` does: lowest wins for loss, error, perplexity, mse..., highest for everything else
            (the result's ``"mode"`` says which and ``"modeGuessed"`` is true). ``"max"`` (highest wins) or
            ``"min"`` (lowest wins) overrides the guess, e.g. ``"max"`` for a metric named ``"neg_loss"``.
        branch: the branch (default: the current one). Only commits made on the branch count; ties go to the
            earliest.

    Returns:
        The CLI's JSON: ``{"id", "branch", "metric", "mode", "modeGuessed", "value", "step" (when recorded),
        "time" (ms since the epoch), "message", "metrics", "candidates" (commits that carry the metric)}``.

    Raises:
        CkvcError: ``CKVC_NO_METRIC`` (exit 14) when no commit of the branch has the metric,
            ``CKVC_UNKNOWN_REVISION`` for an unknown branch, ``CKVC_EMPTY_BRANCH``, ``CKVC_NO_STORE``.
    """
    if mode not in ("max", "min", None, "auto"):
        raise _bad("mode must be 'max', 'min' or None, got {!r}".format(mode), mode=repr(mode))
    if not isinstance(metric, str) or not metric:
        raise _bad("metric must be a non-empty str, got {!r}".format(metric), metric=repr(metric))
    args = ["best", _opt("metric", metric)]
    if mode in ("max", "min"):
        args.append("--" + mode)
    if branch is not None:
        args.append(_opt("branch", branch))
    return _json_dict(run_json(args, store=store, cwd=cwd), "best")


def log(
    rev: Optional[str] = None,
    n: Optional[int] = None,
    *,
    first_parent: bool = False,
    store: Optional[PathLike] = None,
    cwd: Optional[PathLike] = None,
) -> List[Dict[str, Any]]:
    """History, newest first: ``ckvc log [REV] [-n N] [--first-parent] --json``.

    Returns:
        A list of commit dicts as the CLI prints them: ``id``, ``parents``, ``tree``, ``message``, ``author``,
        ``time`` (ms since the epoch), ``branch``, ``metrics`` (dict), ``labels`` (dict), ``refs`` (names
        pointing here: branches, ``"tag: NAME"``, ``"alias: NAME"``), and when recorded ``step``, ``epoch``,
        ``run``, ``config`` (``{"hash", "snapshot", "name", "format", "size"}``), ``configLabel``, ``code``
        (``{"commit", "branch", "dirty"}``), ``pruned``.
    """
    args = ["log"]
    if rev is not None:
        args.append(_rev(rev))
    if n is not None:
        args.append(_opt("max-count", _whole_number(n, "n")))
    if first_parent:
        args.append("--first-parent")
    return _json_list(run_json(args, store=store, cwd=cwd), "log")


def show(rev: str = "HEAD", *, store: Optional[PathLike] = None, cwd: Optional[PathLike] = None) -> Dict[str, Any]:
    """One commit: ``ckvc show REV --json``: the fields of a :func:`log` entry plus ``files``
    (``[{"path", "size", "format", "tensors"}]``), ``totalBytes`` and ``tensorCount``."""
    return _json_dict(run_json(["show", _rev(rev)], store=store, cwd=cwd), "show")


def ls(
    rev: str = "HEAD",
    path: Optional[str] = None,
    tensors: bool = False,
    *,
    store: Optional[PathLike] = None,
    cwd: Optional[PathLike] = None,
) -> Dict[str, Any]:
    """A commit's files: ``ckvc ls REV [PATH] [--tensors] --json`` → ``{"commit": ID, "files": [{"path",
    "size", "format", "tensorCount"}, ...]}``; with ``tensors=True`` each file also has ``tensors``
    (``[{"name", "dtype", "shape", "bytes", "pruned"?}]``)."""
    args = ["ls", _rev(rev)]
    if path is not None:
        args.append(_rev(path, "path"))
    if tensors:
        args.append("--tensors")
    return _json_dict(run_json(args, store=store, cwd=cwd), "ls")


def init(path: Optional[PathLike] = None, *, cwd: Optional[PathLike] = None) -> Dict[str, Any]:
    """Creates ``PATH/.ckvc`` (a no-op if one exists): ``ckvc init [PATH] --json`` → ``{"root": the .ckvc
    folder, "created": bool}``."""
    args = ["init"]
    if path is not None:
        args.append(_input_path(path))
    return _json_dict(run_json(args, cwd=cwd), "init")


def cli(args: Sequence[Any], *, store: Optional[PathLike] = None, cwd: Optional[PathLike] = None) -> Any:
    """Runs any ckvc command with ``--json`` and returns its parsed output, e.g.
    ``ckvc.cli(["tag", "best-g2", "phase-g2", "-m", "best eval"])``; errors raise :class:`CkvcError` as
    everywhere else."""
    if isinstance(args, (str, bytes)):
        raise _bad("args must be a list of arguments, not one string", args=repr(args))
    return run_json([os.fspath(a) if hasattr(a, "__fspath__") else str(a) for a in args], store=store, cwd=cwd)
