"""The one exception type of the ckvc helper, and the warning category for what the CLI says on success."""

from typing import Any, Dict, List, Optional

__all__ = ["CkvcError", "CkvcWarning", "LOCAL_EXIT_CODES"]

#: Exit codes given to errors the helper raises itself, before or instead of running the CLI. Codes the CLI
#: also uses keep the CLI's exit code (spec/EXIT_CODES.md); the helper's own codes have none (``None``), except
#: ``CKVC_CLI_FAILED``, which carries the exit status of the process that failed.
LOCAL_EXIT_CODES: Dict[str, Optional[int]] = {
    "CKVC_BAD_ARGUMENT": 15,
    "CKVC_PATH_NOT_FOUND": 14,
    "CKVC_CLI_NOT_FOUND": None,
    "CKVC_CLI_FAILED": None,
}


class CkvcError(Exception):
    """A ckvc command failed.

    Attributes:
        code: the stable error code, e.g. ``"CKVC_UNKNOWN_REVISION"`` (the CLI's codes are listed in
            spec/EXIT_CODES.md). The helper adds two of its own: ``"CKVC_CLI_NOT_FOUND"`` (no ckvc command to
            run: set ``CKVC_CLI`` or put ``ckvc`` on ``PATH``) and ``"CKVC_CLI_FAILED"`` (the command ran but
            did not answer with ckvc's JSON: a crash, or ``CKVC_CLI`` names something else).
        exit_code: the CLI's exit code (e.g. 14 for "not found"); for the helper's own checks the exit code the
            CLI gives the same code; ``None`` when no ckvc process ran.
        data: the structured facts the CLI attached (``error.data``: path, revision, metric...), else ``{}``.
        message: the one-line message; ``str(error)`` is this message.
        stderr: what the process wrote on stderr, when one ran.
        argv: the command line that was run, when one ran.
    """

    def __init__(
        self,
        code: str,
        message: str,
        exit_code: Optional[int] = None,
        data: Optional[Dict[str, Any]] = None,
        *,
        stderr: Optional[str] = None,
        argv: Optional[List[str]] = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.exit_code = exit_code
        self.data: Dict[str, Any] = dict(data) if data else {}
        self.stderr = stderr
        self.argv = list(argv) if argv is not None else None

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return "CkvcError({!r}, {!r}, exit_code={!r})".format(self.code, self.message, self.exit_code)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # Keeps the error intact through pickle (multiprocessing, concurrent.futures).
        return (_rebuild, (self.code, self.message, self.exit_code, self.data, self.stderr, self.argv))


def _rebuild(
    code: str,
    message: str,
    exit_code: Optional[int],
    data: Dict[str, Any],
    stderr: Optional[str],
    argv: Optional[List[str]],
) -> CkvcError:
    return CkvcError(code, message, exit_code, data, stderr=stderr, argv=argv)


class CkvcWarning(UserWarning):
    """A warning the CLI printed on stderr while the command succeeded (e.g. a commit that landed but whose
    HEAD update failed). Issued with :func:`warnings.warn`, so the usual warning filters apply."""
