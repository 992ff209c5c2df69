"""What code produced a run or a result: the learn2rl version and the git revision.

A checkpoint or a results.json that cannot say which code wrote it cannot be trusted to reproduce,
so both carry ``run_info()`` from the moment they exist (the runner writes an update-0 checkpoint
before the first chunk runs). The git revision is the one of the source tree learn2rl was imported
from, with ``-dirty`` when tracked files differ from it; ``None`` when that tree is not a git
checkout (an installed wheel), when git is missing, or when git does not answer within a second.
Asking never fails a run.

The answer is computed once per process: the code a process runs is the code it imported, so
edits made to the tree while a long run is going do not change what that run is.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import Any

_GIT_TIMEOUT_S = 1.0


def run_info() -> dict[str, Any]:
    """``{"learn2rl_version": str, "git_revision": str | None}`` for this process's learn2rl."""
    return {"learn2rl_version": _version(), "git_revision": _git_revision()}


def _version() -> str:
    from learn2rl.version import __version__

    return __version__


@functools.lru_cache(maxsize=1)
def _git_revision() -> str | None:
    package_dir = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(package_dir), *args],
                capture_output=True,
                text=True,
                timeout=_GIT_TIMEOUT_S,
                # Never take the index lock: another git command may be running in this tree.
                env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    # A wheel installed into a virtualenv that lives inside some git checkout is not that
    # checkout's code: only trust the revision if the package itself is tracked there.
    if git("ls-files", "--error-unmatch", "--", "__init__.py") is None:
        return None
    head = git("rev-parse", "HEAD")
    if not head:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    if status is None:
        return None
    return head.strip() + ("-dirty" if status.strip() else "")
