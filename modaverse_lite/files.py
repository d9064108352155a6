"""Where things live on disk, and how they get there safely.

* **The cache** — generated checkpoints, datasets, features and runs live in ``$MODAVERSE_CACHE`` (default
  ``~/.cache/modaverse_lite``); ``default_dataset_dir`` and ``default_run_dir`` name the folders the notebooks share.
* **Atomic writes** — a file is written under a temporary name in its folder and renamed into place
  (``atomic_path``); a folder is filled under a temporary name and swapped in (``atomic_dir``). A rename within one
  folder is atomic, so a reader (or a rerun after Ctrl-C) sees the old version or the new one, never half of one.
* **Locks** — one writer at a time per folder (``locked``): a real file lock (the ``filelock`` package), held by
  the process, released when it ends however it ends.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import BusyError
from .instructions import RECIPE_VERSION, demo_digest
from .profiles import Profile, get_profile


# ---- the cache -------------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """Where generated checkpoints, features and datasets live: ``$MODAVERSE_CACHE`` or ``~/.cache/modaverse_lite``."""
    return Path(os.environ.get("MODAVERSE_CACHE", Path.home() / ".cache" / "modaverse_lite")).expanduser()


def default_dataset_dir(profile: str | Profile = "auto", seed: int = 0, records: int | None = None) -> Path:
    """Where the default world dataset of a profile lives (built or not): ``<cache>/datasets/world-...``."""
    p = get_profile(profile)
    n = p.dataset_records if records is None else int(records)
    # RECIPE_VERSION seeds the default dataset's draws, so the demo phrasings get their own digest in the name
    demos = "" if p.pairs == "default" else f"-{demo_digest()}"
    return cache_dir() / "datasets" / f"world-{p.name}-seed{seed}-n{n}-v{RECIPE_VERSION}{demos}"


def default_run_dir(profile: str | Profile = "auto", seed: int = 0) -> Path:
    """Where notebooks keep (and find) a profile's aligned checkpoint: ``<cache>/runs/align-<profile>-seed<seed>``."""
    return cache_dir() / "runs" / f"align-{get_profile(profile).name}-seed{seed}"


# ---- atomic writes ---------------------------------------------------------------------------------------------
@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same extension, so writers pick the format); rename on success,
    delete on any error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, "\\n" line ends) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")
    return Path(path)


def old_dir(path: str | os.PathLike) -> Path:
    """Where ``atomic_dir`` keeps the previous version of ``path`` while it swaps the new one in."""
    path = Path(path)
    return path.with_name(f".{path.name}.old")


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``path`` (its name unique to this call); fill it, and on success it
    replaces ``path``.

    The swap is two renames: the old folder to ``old_dir(path)``, the new one to ``path``; the old one is deleted
    last. Whenever it stops, the last complete version is at ``path`` or, between the two renames, at
    ``old_dir(path)``. On an error the temporary folder is deleted and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = old_dir(path)
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not path.exists():
            os.replace(old, path)  # put the last good version back
        raise
    shutil.rmtree(old, ignore_errors=True)


# ---- locks -----------------------------------------------------------------------------------------------------
def lock_path(folder: str | os.PathLike) -> Path:
    """The lock file of ``folder``: ``.NAME.lock`` beside it, so that swapping the folder never removes it. The
    folder is made absolute first: ``.`` and ``runs/..`` name a folder too, and get that folder's lock."""
    folder = Path(os.path.abspath(folder))
    return folder.with_name(f".{folder.name}.lock")


@contextmanager
def locked(folder: str | os.PathLike, wait: float = 0, what: str = "folder") -> Iterator[Path]:
    """Hold the write lock of ``folder`` for the ``with`` block; yields the folder.

    A second writer waits up to ``wait`` seconds (``-1``: as long as it takes), then gets a ``BusyError`` that
    names the lock file. The lock is an OS file lock: a killed process lets go of it at once.
    """
    from filelock import FileLock, Timeout

    folder = Path(folder)
    lock = lock_path(folder)
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(lock, timeout=wait):
            yield folder
    except Timeout:
        raise BusyError(f"another process is writing the {what} {folder} (it holds the lock {lock}); wait for it "
                        f"to finish, or write somewhere else") from None
