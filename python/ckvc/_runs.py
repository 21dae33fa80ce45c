"""The run API: what a 50-line checkpoint manager does (does run X exist, load the latest checkpoint, save one,
list the saved steps, load one step), over a ckvc store. A run is a branch, created by its first save."""

from typing import Any, List, Mapping, Optional, Sequence, Union

from ._api import CommitResult, cli, commit, log, snapshot
from ._cli import PathLike
from ._errors import CkvcError

__all__ = ["exists", "latest", "save", "steps", "load_step"]


def _run_name(run: Any) -> str:
    if not isinstance(run, str) or not run:
        raise CkvcError("CKVC_BAD_ARGUMENT", "a run is a branch name (a non-empty str), got {!r}".format(run), 15,
                        {"run": repr(run)})
    return run


def exists(run: str, *, store: Optional[PathLike] = None, cwd: Optional[PathLike] = None) -> bool:
    """Whether run ``run`` (a branch) has a checkpoint: ``ckvc branch --json``."""
    name = _run_name(run)
    return any(b.get("name") == name for b in cli(["branch"], store=store, cwd=cwd))


def latest(run: str, to: Optional[PathLike] = None, *, store: Optional[PathLike] = None,
           cwd: Optional[PathLike] = None) -> str:
    """The folder holding the run's newest checkpoint (``to``, else the snapshot cache), byte-identical and
    verified. One request to the helper server, which resolves the run afresh (a commit made by another process
    meanwhile is the one returned) and re-reads no file it verified before that is untouched since
    (spec/HELPER.md §4). Raises ``CkvcError("CKVC_UNKNOWN_REVISION")`` when the run has none (see :func:`exists`)."""
    return snapshot(_run_name(run), local_dir=to, store=store, cwd=cwd)


def save(
    paths: Union[PathLike, Sequence[PathLike]],
    run: str,
    step: Optional[int] = None,
    metrics: Optional[Mapping[str, Any]] = None,
    config: Optional[PathLike] = None,
    message: Optional[str] = None,
    *,
    store: Optional[PathLike] = None,
    cwd: Optional[PathLike] = None,
) -> CommitResult:
    """Saves a checkpoint (files or a folder) as the run's next commit; the first save creates the run.
    ``metrics`` may hold NaN or infinity (a diverged loss is recorded; ``best`` skips it)."""
    return commit(paths, branch=_run_name(run), message=message, config=config, metrics=metrics, step=step,
                  store=store, cwd=cwd)


def _run_commits(run: str, store: Optional[PathLike], cwd: Optional[PathLike]) -> List[Mapping[str, Any]]:
    """The run's own loadable commits, newest first: made on the branch (not a warm-start origin's history) and
    not pruned."""
    return [c for c in log(run, store=store, cwd=cwd) if c.get("branch") == run and not c.get("pruned")]


def steps(run: str, *, store: Optional[PathLike] = None, cwd: Optional[PathLike] = None) -> List[int]:
    """The steps the run has loadable checkpoints for, ascending (commits without a step and pruned ones are left
    out). An unknown run raises ``CkvcError("CKVC_UNKNOWN_REVISION")``."""
    name = _run_name(run)
    return sorted({int(c["step"]) for c in _run_commits(name, store, cwd) if isinstance(c.get("step"), int)})


def load_step(run: str, step: int, to: Optional[PathLike] = None, *, store: Optional[PathLike] = None,
              cwd: Optional[PathLike] = None) -> str:
    """The folder holding the run's checkpoint at ``step`` (the newest if saved twice). Raises
    ``CkvcError("CKVC_NO_STEP")`` (exit 14) when the run has no loadable checkpoint at that step."""
    name = _run_name(run)
    for c in _run_commits(name, store, cwd):
        if c.get("step") == step:
            return snapshot(c["id"], local_dir=to, store=store, cwd=cwd)
    raise CkvcError("CKVC_NO_STEP", "run {!r} has no loadable checkpoint at step {!r}; ckvc.steps({!r}) lists "
                    "them".format(name, step, name), 14, {"run": name, "step": step})
