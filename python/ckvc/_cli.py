"""Finding and running the ckvc command line, and turning its ``--json`` answers into Python values."""

import json
import os
import shlex
import shutil
import subprocess
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ._errors import CkvcError, CkvcWarning
from ._server import NotServed, checkout_in_server, run_in_server, server_enabled

__all__ = ["cli_command", "run_json", "served_checkout", "PathLike"]

PathLike = Union[str, "os.PathLike[str]"]

_HOW_TO_FIX = (
    "put ckvc on PATH (`npm install -g ckvc`, or `npm link` in a ckvc checkout) or set CKVC_CLI to the "
    "command line that runs it, e.g. CKVC_CLI='node /path/to/ckvc/bin/ckvc'"
)


def cli_command() -> List[str]:
    """The command line that runs ckvc: ``$CKVC_CLI`` split like a shell would (``shlex``), else ``ckvc`` found
    on ``PATH``. Read at every call, so changing ``os.environ`` takes effect at once.

    Raises:
        CkvcError: ``CKVC_CLI_NOT_FOUND`` when neither gives a command.
    """
    raw = os.environ.get("CKVC_CLI", "")
    if raw.strip():
        try:
            if os.name == "nt":  # backslashes are path separators there, not escapes
                argv = [t[1:-1] if len(t) >= 2 and t[0] == t[-1] == '"' else t for t in shlex.split(raw, posix=False)]
            else:
                argv = shlex.split(raw)
        except ValueError as e:
            raise CkvcError(
                "CKVC_CLI_NOT_FOUND",
                "CKVC_CLI={!r} is not a valid command line ({}); set it to the command that runs ckvc, "
                "e.g. CKVC_CLI='node /path/to/ckvc/bin/ckvc'".format(raw, e),
                None,
                {"CKVC_CLI": raw},
            ) from None
        if argv:
            return argv
    found = shutil.which("ckvc")
    if found is None:
        raise CkvcError(
            "CKVC_CLI_NOT_FOUND",
            "the ckvc command is not on PATH and CKVC_CLI is not set; " + _HOW_TO_FIX,
            None,
            {"PATH": os.environ.get("PATH", "")},
        )
    return [found]


def _missing_parts(prefix: Sequence[str]) -> List[str]:
    """Parts of the CLI prefix that look like file paths but do not exist (e.g. a stale CKVC_CLI)."""
    out = []
    for i, part in enumerate(prefix):
        looks_like_path = ("/" in part or os.sep in part) and not part.startswith("-")
        if looks_like_path and not os.path.exists(part):
            out.append(part)
        elif i == 0 and not looks_like_path and shutil.which(part) is None:
            out.append(part)
    return out


def _error_object(stderr: str) -> Optional[Dict[str, Any]]:
    """The ``{"error": {...}}`` object the CLI prints on stderr with ``--json`` (the last such line)."""
    for line in reversed(stderr.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        err = obj.get("error") if isinstance(obj, dict) else None
        if isinstance(err, dict) and isinstance(err.get("code"), str):
            return err
    return None


def _tail(text: str, lines: int = 8) -> str:
    kept = [ln for ln in text.strip().splitlines() if ln.strip()][-lines:]
    return " | ".join(kept) if kept else "(nothing on stderr)"


def _execute(prefix: List[str], argv: List[str], cwd: Optional[PathLike]) -> Tuple[int, bytes, str]:
    """Runs ARGV: in the helper server (spec/HELPER.md) unless ``CKVC_HELPER_SERVER=0`` or it cannot serve the
    command, else in a process of its own. Returns ``(exit code, stdout, stderr)``."""
    where = os.fspath(cwd) if cwd is not None else None
    if server_enabled():
        try:
            return run_in_server(prefix, argv[len(prefix):], where)
        except NotServed:
            pass
    try:
        proc = subprocess.run(argv, cwd=where, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except (FileNotFoundError, PermissionError, NotADirectoryError) as e:
        raise CkvcError(
            "CKVC_CLI_NOT_FOUND",
            "cannot run {!r}{} ({}); {}".format(
                prefix[0], " (from CKVC_CLI)" if os.environ.get("CKVC_CLI", "").strip() else "", e.strerror or e,
                _HOW_TO_FIX),
            None,
            {"argv": argv},
            argv=argv,
        ) from None
    return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace")


def _check_cwd(cwd: Optional[PathLike]) -> None:
    if cwd is not None and not os.path.isdir(cwd):
        raise CkvcError("CKVC_BAD_ARGUMENT", "cwd {!r} is not a folder".format(os.fspath(cwd)), 15,
                        {"cwd": os.fspath(cwd)})


def served_checkout(rev: str, *, to: Optional[str] = None, under: Optional[str] = None, force: bool = False,
                    store: Optional[PathLike] = None, cwd: Optional[PathLike] = None) -> Optional[Dict[str, Any]]:
    """``ckvc checkout REV --to DIR [--force] --json`` of a whole commit as one request to the helper server, which
    resolves REV itself and, with ``under``, writes into ``under/<commit ID>`` (spec/HELPER.md §1.1). Returns the
    command's JSON object, or None when the server cannot serve it (off, refused, or older): then run commands.

    Raises:
        CkvcError: the checkout's own errors, as ``checkout`` raises them.
    """
    if not server_enabled():
        return None
    _check_cwd(cwd)
    request: Dict[str, Any] = {"rev": rev, "force": force}
    request.update({"to": to} if to is not None else {"under": under})
    if store is not None:
        request["store"] = os.fspath(store)
    try:
        result, stderr = checkout_in_server(cli_command(), request, os.fspath(cwd) if cwd is not None else None)
    except NotServed:
        return None
    for line in stderr.splitlines():
        if line.strip():
            warnings.warn(line.strip(), CkvcWarning, stacklevel=3)
    return result


def run_json(args: Sequence[str], *, store: Optional[PathLike] = None, cwd: Optional[PathLike] = None) -> Any:
    """Runs ``ckvc ARGS... --json [--store STORE]`` in ``cwd`` and returns its stdout parsed as JSON.

    The environment is passed on unchanged, so ``CKVC_DIR``, ``CKVC_AUTHOR``, ``CKVC_TOKEN`` and the rest work as
    they do for the CLI. Lines the CLI writes on stderr while succeeding are issued as :class:`CkvcWarning`.

    Raises:
        CkvcError: with the CLI's code, exit code, message and data when it exits non-zero; with
            ``CKVC_CLI_NOT_FOUND`` when there is no CLI to run, ``CKVC_CLI_FAILED`` when it fails or answers
            without ckvc's JSON, ``CKVC_BAD_ARGUMENT`` when ``cwd`` is not a folder.
    """
    _check_cwd(cwd)
    prefix = cli_command()
    argv = prefix + [str(a) for a in args] + ["--json"]
    if store is not None:
        argv.append("--store=" + os.fspath(store))
    shown = " ".join(shlex.quote(a) for a in argv)
    returncode, stdout, stderr = _execute(prefix, argv, cwd)
    if returncode != 0:
        err = _error_object(stderr)
        if err is not None:
            exit_code = err.get("exit") if isinstance(err.get("exit"), int) else returncode
            data = err.get("data") if isinstance(err.get("data"), dict) else {}
            raise CkvcError(str(err["code"]), str(err.get("message", "")), exit_code, data, stderr=stderr, argv=argv)
        missing = _missing_parts(prefix)
        if missing:
            raise CkvcError(
                "CKVC_CLI_NOT_FOUND",
                "`{}` failed (exit {}): {} does not exist; {}".format(
                    shown, returncode, ", ".join(missing), _HOW_TO_FIX),
                None,
                {"argv": argv, "missing": missing},
                stderr=stderr,
                argv=argv,
            )
        raise CkvcError(
            "CKVC_CLI_FAILED",
            "`{}` exited with {} without a ckvc error on stderr: {}; check that CKVC_CLI (or ckvc on PATH) runs "
            "a working ckvc (for a checkout: npm install && npm run build)".format(shown, returncode, _tail(stderr)),
            returncode,
            {"argv": argv},
            stderr=stderr,
            argv=argv,
        )
    try:
        result = json.loads(stdout.decode("utf-8"))
    except ValueError:
        raise CkvcError(
            "CKVC_CLI_FAILED",
            "`{}` succeeded but printed no JSON on stdout (got {!r}); check that CKVC_CLI (or ckvc on PATH) is the "
            "ckvc command line".format(shown, stdout[:200].decode("utf-8", "replace")),
            returncode,
            {"argv": argv},
            stderr=stderr,
            argv=argv,
        ) from None
    for line in stderr.splitlines():
        if line.strip():
            warnings.warn(line.strip(), CkvcWarning, stacklevel=3)
    return result
