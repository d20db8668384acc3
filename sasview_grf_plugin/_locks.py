"""One writer per output folder: a lock file that the operating system releases when its process ends.

Two runs writing one dataset or ensemble build would both compute every chunk and both report the
folder complete. The first run holds ``FOLDER/.lock`` (``filelock``: ``flock`` on POSIX, ``msvcrt`` on
Windows) until it ends; a second run is refused at once. A killed run leaves no stale lock: the lock is
released with the process, so the identical rerun resumes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LOCK_NAME", "writer_lock"]

LOCK_NAME = ".lock"


@contextlib.contextmanager
def writer_lock(folder: str | os.PathLike, option: str = "--out", what: str = "output") -> Iterator[Path]:
    """Hold the writer lock of ``folder`` (created if missing) for the duration of the block.

    Raises
    ------
    ValueError
        If another process holds it, naming the folder and the way out.
    """
    from filelock import FileLock, Timeout

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot write the {what} to {folder}: {exc.strerror or exc}") from None
    lock = FileLock(str(folder / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise ValueError(f"another run is writing to {folder} (it holds {folder / LOCK_NAME}); wait for it to "
                         f"finish, or give another {option}") from None
    except OSError as exc:
        raise ValueError(f"cannot lock {folder}: {exc.strerror or exc}") from None
    try:
        yield folder
    finally:
        lock.release()
