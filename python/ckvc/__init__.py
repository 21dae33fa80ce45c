"""Python helper for ckvc, "Git for ML training checkpoints".

A thin, standard-library-only wrapper around the ``ckvc`` command line: every function runs ``ckvc ... --json``
and returns what it prints, as Python values. The commands run in one long-lived ``ckvc helper-server`` process
(``CKVC_HELPER_SERVER=0``: a process per call; spec/HELPER.md). The command is ``$CKVC_CLI`` (split like a shell would, e.g.
``CKVC_CLI="node /path/to/ckvc/bin/ckvc"``) or else ``ckvc`` on ``PATH``; the store is ``store=`` (``--store``),
else ``$CKVC_DIR``, else the nearest ``.ckvc`` upward of the current folder (or of ``cwd=``), as for the CLI.

Example::

    import ckvc

    c = ckvc.commit("ckpt/", branch="phase-g2", metrics={"loss": 0.31}, step=1000, config="cfg.yaml")
    print(c.id)
    top = ckvc.best("loss", branch="phase-g2")   # lowest loss: the mode is guessed from the name
    folder = ckvc.snapshot(top["id"], allow_patterns="*.safetensors")

Errors raise :class:`CkvcError` with the CLI's ``code`` (e.g. ``"CKVC_UNKNOWN_REVISION"``), ``exit_code``
and ``data``; ``str(error)`` is the CLI's one-line message.
"""

from ._api import CommitResult, best, checkout, cli, commit, init, log, ls, show, snapshot
from ._cli import cli_command
from ._server import close_servers
from ._snapshot_cache import evict_snapshots, snapshot_dir
from ._runs import exists, latest, load_step, save, steps
from ._errors import CkvcError, CkvcWarning

__version__ = "0.1.0"

__all__ = [
    "CkvcError",
    "CkvcWarning",
    "CommitResult",
    "best",
    "checkout",
    "cli",
    "cli_command",
    "close_servers",
    "commit",
    "evict_snapshots",
    "exists",
    "init",
    "latest",
    "load_step",
    "log",
    "ls",
    "save",
    "show",
    "snapshot",
    "snapshot_dir",
    "steps",
    "__version__",
]
