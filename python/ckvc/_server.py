"""One long-lived ``ckvc helper-server`` per CLI command line, so that a call costs the command's own work rather
than a Node start-up (spec/HELPER.md). Any trouble with the server falls back to a process per call."""

import atexit
import json
import os
import subprocess
import tempfile
import threading
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ._errors import CkvcError, CkvcWarning

__all__ = ["server_enabled", "run_in_server", "checkout_in_server", "close_servers", "NotServed"]

# Commands the helper may run again in a process after the server died while running them or produced too much
# output: they do not change the store (checkout writes only files it verifies, so a second run is the same).
_RERUNNABLE = {"log", "show", "ls", "best", "checkout", "status", "diff", "reflog", "stats", "verify"}


class NotServed(Exception):
    """The server did not run the command (refused it, or is unavailable): run it in a process instead."""


def server_enabled() -> bool:
    """``CKVC_HELPER_SERVER=0`` (or ``false``/``no``/``off``) turns the server off; read at every call."""
    return os.environ.get("CKVC_HELPER_SERVER", "1").strip().lower() not in ("0", "false", "no", "off")


class _Server:
    def __init__(self, prefix: Sequence[str]) -> None:
        self.prefix = list(prefix)
        self.lock = threading.Lock()
        self.proc: Optional[subprocess.Popen] = None
        self.stderr_file: Any = None
        self.next_id = 0
        self.broken = False

    def _start(self) -> subprocess.Popen:
        """Starts the server and checks that it answers (a ckvc without helper-server exits at once), so that a
        failure here never leaves a command half-run."""
        if self.proc is None:
            self.stderr_file = tempfile.TemporaryFile()
            self.proc = subprocess.Popen(self.prefix + ["helper-server"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self.stderr_file)
            try:
                reply = self._exchange({"id": 0, "argv": ["--version"]})
            except _Died as e:
                raise NotServed(str(e)) from None
            if reply.get("code") != 0:
                raise NotServed(self._give_up("does not answer `--version`: {!r}".format(reply)))
        return self.proc

    def _exchange(self, request: Dict[str, Any]) -> Dict[str, Any]:
        """Sends one request line and reads its reply line; a server that goes away raises :class:`_Died`."""
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(request).encode("utf-8") + b"\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except (OSError, ValueError):
            line = b""
        if not line:
            raise _Died(self._give_up("exited" if proc.poll() is not None else "closed its output"))
        try:
            reply = json.loads(line.decode("utf-8"))
            if not isinstance(reply, dict) or reply.get("id") not in (request["id"], None):
                raise ValueError("reply for another request")
        except ValueError:
            raise _Died(self._give_up("answered outside the protocol ({!r})".format(line[:200]))) from None
        return reply

    def _give_up(self, why: str) -> str:
        """Marks the server broken (calls go to processes from now on) and says why, with its stderr's end."""
        self.broken = True
        tail = ""
        if self.stderr_file is not None:
            try:
                self.stderr_file.seek(0)
                lines = self.stderr_file.read().decode("utf-8", "replace").strip().splitlines()[-5:]
                tail = " | ".join(ln.strip() for ln in lines if ln.strip())
            except (OSError, ValueError):
                pass
        self.close()
        message = "ckvc helper-server ({}) {}{}; running each ckvc command in its own process from now on".format(
            " ".join(self.prefix), why, ": " + tail if tail else "")
        warnings.warn(message, CkvcWarning, stacklevel=5)
        return message

    def call(self, fields: Dict[str, Any], cwd: Optional[str]) -> Dict[str, Any]:
        """Sends one request (``{"argv": [...]}`` or ``{"checkout": {...}}``, spec/HELPER.md §1) and returns its
        reply."""
        with self.lock:
            if self.broken:
                raise NotServed("server unavailable")
            try:
                self._start()
            except OSError:
                # No such command: the process fallback says so with its own error (CKVC_CLI_NOT_FOUND).
                self.broken = True
                self.close()
                raise NotServed("cannot start") from None
            try:
                where = cwd or os.getcwd()
            except OSError:
                raise NotServed("the current folder is gone") from None  # a process reports it as it does
            self.next_id += 1
            try:
                return self._exchange(dict(fields, id=self.next_id, cwd=where, env=dict(os.environ)))
            except NotServed:
                raise
            except BaseException:
                # Interrupted mid-request (Ctrl-C): its late reply would answer the next request, so this server
                # goes (the store is safe from a killed command) and the next call starts another.
                if self.proc is not None:
                    self.proc.kill()
                self.close()
                raise

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self.stderr_file is not None:
            self.stderr_file.close()
            self.stderr_file = None


class _Died(NotServed):
    """The server went away while a command may have been running."""


_servers: Dict[Tuple[str, ...], _Server] = {}
_servers_lock = threading.Lock()
_inherited: List[_Server] = []


def _command_of(argv: Sequence[str]) -> str:
    return next((a for a in argv if not a.startswith("-")), "")


def _rerunnable(argv: Sequence[str]) -> bool:
    """Whether running ARGV twice is the same as once (a listing, a query, or a checkout)."""
    words = [a for a in argv if not a.startswith("-")]
    return bool(words) and (words[0] in _RERUNNABLE or words == ["branch"])


def _server_for(prefix: Sequence[str]) -> _Server:
    with _servers_lock:
        server = _servers.get(tuple(prefix))
        if server is None:
            server = _servers[tuple(prefix)] = _Server(prefix)
    return server


def checkout_in_server(prefix: Sequence[str], request: Dict[str, Any], cwd: Optional[str]) -> Tuple[Any, str]:
    """Runs the structured whole-commit checkout (spec/HELPER.md §1.1) in the server for ``prefix``: ``(the
    ``checkout --json`` object, stderr)``. It only writes files it verifies, so it may always run again.

    Raises:
        NotServed: run it another way (the server is off, refused it, or predates this request).
        CkvcError: the checkout's own error (``CKVC_UNKNOWN_REVISION``, ``CKVC_WOULD_OVERWRITE``, ...).
    """
    reply = _server_for(prefix).call({"checkout": request}, cwd)
    if isinstance(reply.get("refused"), dict):
        raise NotServed(str(reply["refused"].get("message")))
    error = reply.get("error")
    if isinstance(error, dict):
        if reply.get("id") is None:  # a server without this request answers "bad request"
            raise NotServed(str(error.get("message")))
        raise CkvcError(str(error.get("code", "CKVC_CLI_FAILED")), str(error.get("message", "")), error.get("exit"),
                        error.get("data") if isinstance(error.get("data"), dict) else {})
    result, stderr = reply.get("result"), reply.get("stderr", "")
    if reply.get("code") != 0 or not isinstance(result, dict) or not isinstance(stderr, str):
        raise NotServed("malformed reply")
    return result, stderr


def run_in_server(prefix: Sequence[str], argv: List[str], cwd: Optional[str]) -> Tuple[int, bytes, str]:
    """Runs ckvc ARGV (without the prefix) in the server for ``prefix``: ``(exit code, stdout, stderr)``.

    Raises:
        NotServed: run the command in a process instead (nothing ran, or it may safely run again).
        CkvcError: ``CKVC_CLI_FAILED`` when the server died during a command that changes the store (it may or
            may not have happened: look before running it again), or answered with an error.
    """
    server = _server_for(prefix)
    command = _command_of(argv)
    try:
        reply = server.call({"argv": argv}, cwd)
    except _Died as e:
        if _rerunnable(argv):
            raise
        raise CkvcError("CKVC_CLI_FAILED", "{} while running `ckvc {}`; it may or may not have taken effect: check "
                        "(e.g. ckvc log) before running it again".format(e, command), None, {"argv": argv}) from None
    refused = reply.get("refused")
    if isinstance(refused, dict):
        if refused.get("ran") and not _rerunnable(argv):
            raise CkvcError("CKVC_CLI_FAILED", "`ckvc {}` ran in the helper server but {}".format(
                command, refused.get("message")), reply.get("code"), {"argv": argv})
        raise NotServed(str(refused.get("message")))
    error = reply.get("error")
    if isinstance(error, dict):
        raise CkvcError(str(error.get("code", "CKVC_CLI_FAILED")), str(error.get("message", "")), error.get("exit"),
                        error.get("data") if isinstance(error.get("data"), dict) else {}, argv=argv)
    code, stdout, stderr = reply.get("code"), reply.get("stdout"), reply.get("stderr")
    if not isinstance(code, int) or not isinstance(stdout, str) or not isinstance(stderr, str):
        raise NotServed("malformed reply")
    return code, stdout.encode("utf-8"), stderr


def _forget_in_child() -> None:
    """After os.fork (e.g. a DataLoader worker) the child must not talk to the parent's servers over the same
    pipes: it drops its copies of them (without ending the servers) and starts its own when it needs one."""
    global _servers_lock
    _servers_lock = threading.Lock()  # another thread of the parent may have held it at the fork
    for s in _servers.values():
        for f in (s.proc.stdin, s.proc.stdout) if s.proc is not None else ():
            if f is not None:
                f.close()
        if s.stderr_file is not None:
            s.stderr_file.close()
    _inherited.extend(_servers.values())  # the parent's processes: never waited for (or warned about) here
    _servers.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


@atexit.register
def close_servers() -> None:
    """Ends every helper server this interpreter started (also run at exit)."""
    with _servers_lock:
        servers = list(_servers.values())
        _servers.clear()
    for s in servers:
        with s.lock:
            s.close()
