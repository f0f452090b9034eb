"""Files a run owns: claimed atomically when it starts, never touched by another run.

A run's journal is its claim on a trace path: the file is opened and locked (`flock`,
exclusive) for as long as the run goes, so a second run given the same path is refused
at once, while a journal left by a run that is gone (killed: the kernel drops its lock)
is taken over by the rerun. Temporary files of an atomic save are locked the same way,
so a save can tell the leftovers of a killed save (unlocked) from one in progress.

New files get the permissions a plain `open()` would give them (0666 less the umask).
POSIX only (`fcntl`), like the rest of hch's terminal handling.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from pathlib import Path
from typing import BinaryIO

from hch.errors import TraceError


class PathInUse(TraceError):
    """Another run that is still going owns this file."""


def claim(path: Path) -> BinaryIO:
    """Open `path` for writing, emptied, and hold it for this run until the file is closed.

    Raises `PathInUse` if a live run holds it; a file no live run holds (a killed run's
    journal) is taken over. Atomic: of two runs claiming one path, exactly one wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PathInUse(
                f"{path} belongs to a run that is still going; give this run another trace path"
            ) from None
        except OSError:  # a file system without locks (some network mounts): the claim is not enforced
            pass
        if _same_file(fd, path):  # not a file its last owner deleted between our open and lock
            os.ftruncate(fd, 0)
            return os.fdopen(fd, "wb")
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (here.st_dev, here.st_ino)


def temp_beside(path: Path) -> tuple[int, Path]:
    """A new locked temporary file `.NAME.XXXXXXXX.tmp` beside `path`, with the permissions `path`
    will have; stale temporary files of killed saves to `path` are removed first."""
    clear_stale_temps(path)
    mode = output_mode(path)
    while True:
        fd, name = _mkstemp(path)
        with contextlib.suppress(OSError):  # without locks, stale files are simply never removed
            fcntl.flock(fd, fcntl.LOCK_EX)
        if _same_file(fd, name):  # a concurrent `clear_stale_temps` did not take it before our lock
            os.fchmod(fd, mode)
            return fd, name
        os.close(fd)


def _mkstemp(path: Path) -> tuple[int, Path]:
    import tempfile

    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    return fd, Path(name)


def clear_stale_temps(path: Path) -> list[Path]:
    """Remove the temporary files that killed saves to `path` left beside it; return them.

    A save in progress holds its temporary file's lock and is left alone.
    """
    pattern = re.compile(re.escape(f".{path.name}.") + r"[A-Za-z0-9_]+\.tmp")
    removed = []
    try:
        names = [entry for entry in os.scandir(path.parent) if pattern.fullmatch(entry.name)]
    except FileNotFoundError:
        return []
    for entry in names:
        try:
            fd = os.open(entry.path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            Path(entry.path).unlink(missing_ok=True)
            removed.append(Path(entry.path))
        except OSError:  # locked by a save in progress (or no locks here): left alone
            pass
        finally:
            os.close(fd)
    return removed


def output_mode(path: Path) -> int:
    """The permissions `open(path, "w")` would leave: an existing file's, else 0666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~umask()


def umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
