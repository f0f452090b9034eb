"""Reading the files a user names, and writing every file hch writes, safely.

Reading: only regular files are read (a FIFO would block the reader forever, a device such as
`/dev/zero` never ends), and at most a bounded number of bytes, checked before anything is read;
text must be UTF-8. Each problem is one line naming the file.

Writing: `write_atomic` writes a temporary file beside the target, syncs it and renames it over
the target, so a reader (or a rerun after a crash) sees the old file or the new one, never a part.
The new file gets the permissions an ordinary `open(path, "w")` would (0o666 less the umask).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TextIO

from hch.record import claim

MAX_FILE_BYTES = 1 << 30
"""The largest file hch reads (1 GiB): a trace of 10^5 workspaces is about 100 MB."""
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO must not wait for a writer


def read_bytes(path: Path, what: str, error: Callable[[str], Exception], max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """A user-named regular file's bytes; anything else is one `error` line naming `what`."""
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"no {what} at {path}") from None
    except IsADirectoryError:
        raise error(f"the {what} {path} is a directory, not a file") from None
    except OSError as exc:
        kind = _kind_at(path)  # a socket cannot be opened at all: say what it is
        if kind is not None:
            raise error(f"the {what} {path} is not a regular file ({kind}); give a file") from None
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"the {what} {path} is not a regular file ({_kind(info.st_mode)}); give a file")
        if info.st_size > max_bytes:
            raise error(f"the {what} {path} is {info.st_size:,} bytes; at most {max_bytes:,} are read")
        data = _read_up_to(fd, max_bytes + 1, info.st_size)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # it grew while being read
        raise error(f"the {what} {path} is over {max_bytes:,} bytes; at most {max_bytes:,} are read")
    return data


def _read_up_to(fd: int, count: int, size: int = 0) -> bytes:
    """At most `count` bytes of `fd`; a file of `size` bytes in one read (one copy, not two), then more
    in chunks if it grew."""
    chunks: list[bytes] = []
    left, step = count, min(count, size + 1)
    while left > 0 and (chunk := os.read(fd, min(left, step))):
        chunks.append(chunk)
        left -= len(chunk)
        step = 1 << 24
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_text(path: Path, what: str, error: Callable[[str], Exception], max_bytes: int = MAX_FILE_BYTES) -> str:
    """A user-named file's UTF-8 text (see `read_bytes`); bytes that are not UTF-8 are one error line."""
    return utf8_text(read_bytes(path, what, error, max_bytes), path, what, error)


def utf8_text(data: bytes, path: Path, what: str, error: Callable[[str], Exception]) -> str:
    """`data` (read from the file `path`) as text; bytes that are not UTF-8 are one `error` line naming `what`."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
            f"the {what} {path} is not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line} ({exc.reason})"
        ) from None


def starts_with(path: Path, count: int) -> bytes:
    """The first `count` bytes of a regular file; b"" for anything else (never blocks on a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return b""
    try:
        return _read_up_to(fd, count) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    except OSError:
        return b""
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    kinds = {stat.S_ISFIFO: "a FIFO", stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device",
             stat.S_ISSOCK: "a socket", stat.S_ISDIR: "a directory", stat.S_ISREG: "a file"}
    return next((name for test, name in kinds.items() if test(mode)), "not a regular file")


def _kind_at(path: Path) -> str | None:
    """What is at `path` when it exists and is not a regular file, else None."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else _kind(mode)


def directory_problem(path: Path) -> str | None:
    """Why `path` cannot be (or become) a directory: it, or the nearest of its parents that exists, is
    something else (a file, a FIFO, a device); None if it can."""
    for place in (path, *path.parents):
        try:
            mode = os.stat(place).st_mode
        except (FileNotFoundError, NotADirectoryError):  # not there (or under a file): look further up
            continue
        except OSError as exc:
            return f"{place} cannot be used: {exc.strerror or exc}"
        if stat.S_ISDIR(mode):
            return None
        return f"{place} is {_kind(mode)}, not a directory"
    return None


def check_writable_target(path: Path, what: str, error: Callable[[str], Exception]) -> None:
    """Refuse to write over something that is not a regular file (a FIFO, a device, a directory), or
    into a folder that is one (or lies under a file)."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        problem = directory_problem(path.parent)
        if problem is not None:
            raise error(f"cannot write {what} {path}: {problem}") from None
        return
    except OSError as exc:
        raise error(f"cannot write {what} {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise error(f"cannot write {what} {path}: it is {_kind(info.st_mode)}, not a regular file")


def _real(path: Path) -> Path:
    """The file a symbolic link points to: it is that file that is replaced, and the link kept."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _special(path: Path) -> bool:
    """Whether `path` is an existing device, FIFO or socket, written in place (a directory is refused)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", str(path))
    return not stat.S_ISREG(mode)


def _open_special(path: Path) -> int:
    """A descriptor writing to the device or FIFO at `path`; a FIFO nothing reads is an `OSError` at
    once (opening it to write would wait for a reader forever), and so is a socket."""
    if stat.S_ISSOCK(os.stat(path).st_mode):
        raise OSError(errno.ENXIO, "a socket cannot be written as a file (give a file)", str(path))
    try:
        fd = os.open(path, os.O_WRONLY | _NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OSError(errno.ENXIO, "nothing is reading this FIFO (start its reader first, or give a file)",
                          str(path)) from None
        raise
    os.set_blocking(fd, True)  # a reader is there: write as to any file
    return fd


def check_output(path: str | Path) -> None:
    """Refuse, before any work, an output that could not be written at the end: a FIFO that nothing
    reads, or a directory (`OSError` naming it, as writing it would raise)."""
    path = Path(path)
    if _special(path):
        os.close(_open_special(path))


@contextmanager
def atomic_file(path: str | Path, sync: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write `path`'s new contents to; on success it replaces `path` at once.

    The contents go to a locked temporary file beside `path` (`hch.record.claim.temp_beside`: leftovers
    of killed writes are cleared, and it has the permissions a plain `open` would leave), flushed
    (and fsync'ed when `sync`), and renamed over `path`: a crash at any moment leaves the old file
    or the new one. On an exception the temporary file is removed and `path` is untouched. A
    device or FIFO (`/dev/null`, `/dev/stdout`) is written in place, never renamed over; through a
    symbolic link, the file it points to is replaced and the link kept.
    """
    path = _real(Path(path))
    if _special(path):  # nothing there to tear, and never to be replaced
        try:
            with os.fdopen(_open_special(path), "wb") as file:
                yield file
        except OSError as exc:
            raise _naming(exc, path) from None
        return
    _make_parent(path)
    fd, tmp = claim.temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            if sync:
                os.fsync(file.fileno())
            os.replace(tmp, path)  # while the temporary file is still locked
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise _naming(exc, path) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _make_parent(path: Path) -> None:
    """Make the folder `path` goes in; one that is, or lies under, a file is an `OSError` saying so."""
    problem = directory_problem(path.parent)
    if problem is not None:
        raise NotADirectoryError(errno.ENOTDIR, f"cannot write there: {problem}", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)


def _naming(exc: OSError, path: Path) -> OSError:
    """`exc`, naming the file it was about when it names none (a full disk: `No space left on device`)."""
    if exc.filename is not None:
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def write_atomic(path: str | Path, data: str | bytes, sync: bool = True) -> Path:
    """Write `data` (text as UTF-8) to `path` atomically; see `atomic_file`."""
    path = Path(path)
    with atomic_file(path, sync=sync) as file:
        file.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def write_with(path: str | Path, writer: Callable[[str], None]) -> Path:
    """Run `writer(temporary_path)` and rename the file it wrote over `path`, atomically.

    For libraries that write a file by name (matplotlib's `savefig`, networkx's `write_graphml`).
    """
    path = _real(Path(path))
    if _special(path):
        fd = _open_special(path)  # held while the writer opens it: a FIFO's reader is there, so no wait
        try:
            writer(str(path))
        finally:
            os.close(fd)
        return path
    _make_parent(path)
    fd, tmp = claim.temp_beside(path)
    try:
        writer(str(tmp))
        os.chmod(tmp, claim.output_mode(path))  # the writer may have made a new file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)
    return path


def open_append(path: str | Path) -> TextIO:
    """`path` opened to append lines of text (a record per line), made if missing.

    A last line a kill cut short (no newline at its end) is cut off first: appended after it, the
    next record would be glued to it into a line no reader can parse, in the middle of the file.
    """
    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | _NONBLOCK | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "cannot append records to it: not a regular file", str(path))
        os.set_blocking(fd, True)
        os.ftruncate(fd, _whole_lines(fd))
        os.lseek(fd, 0, os.SEEK_END)
        return os.fdopen(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


def _whole_lines(fd: int) -> int:
    """The length of the file's text up to and including its last newline."""
    end = os.fstat(fd).st_size
    while end > 0:
        start = max(0, end - (1 << 16))
        chunk = os.pread(fd, end - start, start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0
