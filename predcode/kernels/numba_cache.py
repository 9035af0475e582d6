"""Where numba keeps its compiled kernels: a per-user cache, never the installed package.

numba's ``cache=True`` writes ``.nbi``/``.nbc`` files next to the source file when
that folder is writable, i.e. into ``site-packages/predcode/kernels/__pycache__``
of an installed predcode. ``pip uninstall`` does not know those files, and the
folder they leave behind (with no ``__init__.py``) shadows a later editable
install of predcode as a namespace package. So predcode points numba at a
per-user cache folder before any kernel is compiled:

1. ``NUMBA_CACHE_DIR`` when it is set (numba's own variable, honoured as is);
2. otherwise ``$XDG_CACHE_HOME/predcode/numba`` (``~/.cache/predcode/numba``;
   ``%LOCALAPPDATA%\\predcode\\numba`` on Windows, ``~/Library/Caches/predcode/numba``
   on macOS);
3. if that folder cannot be created or written, ``<tmp>/predcode-numba-<user>``.

numba keys every cached kernel by its source file's full path and time stamp, so
several installs or checkouts of predcode share the folder safely.
"""

from __future__ import annotations

import getpass
import os
import sys
import tempfile
from pathlib import Path

__all__ = ["cache_dir", "configure"]


def _user_cache_root() -> Path:
    """The platform's per-user cache folder."""
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA")
        return Path(base) if base else Path.home() / "AppData" / "Local"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    base = os.environ.get("XDG_CACHE_HOME")
    return Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def cache_dir() -> Path:
    """The folder numba caches predcode's kernels in (see the module docstring)."""
    env = os.environ.get("NUMBA_CACHE_DIR")
    if env:
        return Path(env)
    try:
        preferred = _user_cache_root() / "predcode" / "numba"
    except RuntimeError:  # no home directory
        preferred = None
    if preferred is not None and _writable(preferred):
        return preferred
    try:
        user = getpass.getuser()
    except Exception:  # no user name (containers without a passwd entry)
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"predcode-numba-{user}"


def configure() -> Path:
    """Point numba's cache at :func:`cache_dir` (called by every ``*_numba`` module).

    Sets ``numba.config.CACHE_DIR`` in this process only (the environment of
    child processes is left alone). numba chooses a kernel's cache folder when the
    kernel is decorated, so this runs at the top of each kernel module, before its
    ``@njit(cache=True)`` functions are defined. Returns the folder.
    """
    import numba

    path = cache_dir()
    if not os.environ.get("NUMBA_CACHE_DIR"):
        numba.config.CACHE_DIR = str(path)
    return path
