"""Reading user-named files (special files refused, sizes bounded, UTF-8 checked) and atomic writes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hch import files
from hch.errors import HchError
from hch.files import atomic_file, check_writable_target, read_bytes, read_text, starts_with, write_atomic, write_with

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
needs_dev = pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this system")


def fifo(tmp_path: Path, name: str = "pipe.json") -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


@needs_fifo
@needs_dev
@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "/dev/null", "/dev/urandom", "directory"])
def test_special_files_are_refused_without_blocking_or_reading(tmp_path: Path, special: str) -> None:
    path = fifo(tmp_path) if special == "fifo" else tmp_path if special == "directory" else Path(special)
    with pytest.raises(HchError) as info:  # a FIFO without a writer would block an ordinary open forever
        read_text(path, "trace file", HchError)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert "directory" in message if special == "directory" else "not a regular file" in message
    assert starts_with(path, 64) == b""


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("wb") as file:  # sparse: 2 GiB that take no disk space
        file.truncate(2 << 30)
    read = []
    monkeypatch.setattr(os, "read", lambda *args: read.append(args) or b"")
    with pytest.raises(HchError, match=r"is 2,147,483,648 bytes; at most 1,073,741,824 are read"):
        read_bytes(path, "question file", HchError)
    assert not read
    small = tmp_path / "small.txt"
    small.write_bytes(b"x" * 11)
    with pytest.raises(HchError, match="at most 10 are read"):
        read_bytes(small, "context file", HchError, max_bytes=10)


@pytest.mark.parametrize(("data", "where"), [
    (b"\xff\xfe", "byte 0xff on line 1"),
    (b'{"question": "ok"}\n{"question": "caf\xe9"}\n', "byte 0xe9 on line 2"),
    (b"a\nb\nc\xc3", "on line 3"),  # cut inside a character
    (b"\xed\xa0\x80", "byte 0xed on line 1"),  # an encoded surrogate is not UTF-8 either
])
def test_bytes_that_are_not_utf8_are_one_line_naming_the_line(tmp_path: Path, data: bytes, where: str) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(data)
    with pytest.raises(HchError, match="is not UTF-8 text") as info:
        read_text(path, "question file", HchError)
    assert where in str(info.value) and "\n" not in str(info.value)


def test_missing_and_unreadable_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(HchError, match="no journal at"):
        read_text(tmp_path / "missing", "journal", HchError)
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked"
        locked.write_text("x")
        locked.chmod(0)
        with pytest.raises(HchError, match="cannot read journal"):
            read_text(locked, "journal", HchError)


@needs_fifo
def test_writing_over_a_special_file_is_refused(tmp_path: Path) -> None:
    for path in (fifo(tmp_path), Path("/dev/null"), tmp_path):
        with pytest.raises(HchError, match="not a regular file"):
            check_writable_target(path, "journal", HchError)
    check_writable_target(tmp_path / "new", "journal", HchError)  # missing is fine


WRITERS: dict[str, Callable[[Path, bytes], object]] = {
    "write_atomic": lambda path, data: write_atomic(path, data),
    "atomic_file": lambda path, data: _with_atomic_file(path, data),
    "write_with": lambda path, data: write_with(path, lambda tmp: Path(tmp).write_bytes(data)),
}


def _with_atomic_file(path: Path, data: bytes) -> None:
    with atomic_file(path, sync=False) as file:
        file.write(data)


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_replace_whole_files_with_umask_permissions(tmp_path: Path, writer: str, umask: int) -> None:
    path = tmp_path / "sub" / "out.json"
    old = os.umask(umask)
    try:
        WRITERS[writer](path, b"first")
        WRITERS[writer](path, b"second")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"second"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]  # no temporary file left


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, writer: str) -> None:
    path = tmp_path / "out.json"
    path.write_bytes(b"old")

    class Boom(Exception):
        pass

    def failing(target: Path, data: bytes) -> None:
        if writer == "write_with":
            def half(tmp: str) -> None:
                Path(tmp).write_bytes(data[:2])
                raise Boom
            write_with(target, half)
        else:
            with atomic_file(target) as file:
                file.write(data[:2])
                raise Boom

    with pytest.raises(Boom):
        failing(path, b"new contents")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_killed_writer_never_leaves_a_torn_file(tmp_path: Path) -> None:
    """SIGKILL while a large file is being rewritten: the target holds the old or the new bytes."""
    path = tmp_path / "out.txt"
    write_atomic(path, b"old")
    script = (
        "import os, signal, sys\n"
        "from hch import files\n"
        "with files.atomic_file(sys.argv[1]) as f:\n"
        "    f.write(b'n' * 1000000)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], check=False)
    assert done.returncode != 0
    assert path.read_bytes() == b"old"


def test_the_read_limit_is_one_gibibyte() -> None:
    assert files.MAX_FILE_BYTES == 1 << 30


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_device_is_written_in_place_never_replaced(writer: str) -> None:
    """`hch export -o /dev/stdout` or `/dev/null`: even as root, the device node is not renamed over."""
    before = os.stat("/dev/null")
    WRITERS[writer](Path("/dev/null"), b"discarded")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_symbolic_link_is_kept_and_its_target_replaced(tmp_path: Path, writer: str) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "out.json"
    target.write_bytes(b"old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    WRITERS[writer](link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["out.json"]


def test_writing_over_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path, b"x")


def _socket(tmp_path: Path) -> Path:
    import socket

    path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()  # the socket file stays
    return path


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no UNIX sockets on this system")
@pytest.mark.parametrize("kind", ["socket", "symlink to /dev/urandom"])
def test_other_special_files_are_named_for_what_they_are(tmp_path: Path, kind: str) -> None:
    if kind == "socket":
        path, named = _socket(tmp_path), "a socket"
    else:
        path, named = tmp_path / "random.json", "a character device"
        path.symlink_to("/dev/urandom")
    with pytest.raises(HchError, match=f"not a regular file \\({named}\\)"):
        read_text(path, "trace file", HchError)
    with pytest.raises(HchError, match=f"it is {named}"):
        check_writable_target(path, "journal", HchError)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no UNIX sockets on this system")
@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_socket_as_output_is_refused_as_a_socket(tmp_path: Path, writer: str) -> None:
    path = _socket(tmp_path)
    with pytest.raises(OSError, match="a socket cannot be written"):
        WRITERS[writer](path, b"x")
    with pytest.raises(OSError, match="a socket cannot be written"):
        files.check_output(path)


@pytest.mark.parametrize("writer", list(WRITERS))
def test_writing_under_a_file_says_the_file_is_no_directory(tmp_path: Path, writer: str) -> None:
    (tmp_path / "plain").write_text("x")
    with pytest.raises(NotADirectoryError, match="plain is a file, not a directory") as info:
        WRITERS[writer](tmp_path / "plain" / "deeper" / "out.json", b"x")
    assert info.value.filename == str(tmp_path / "plain" / "deeper" / "out.json")
    with pytest.raises(HchError, match="plain is a file, not a directory"):
        check_writable_target(tmp_path / "plain" / "cache.sqlite", "the call cache", HchError)


@needs_dev
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
@pytest.mark.parametrize("writer", ["write_atomic", "atomic_file"])
def test_a_failed_write_names_its_file(writer: str) -> None:
    with pytest.raises(OSError) as info:  # a full disk: the error itself names no file
        WRITERS[writer](Path("/dev/full"), b"x" * 100_000)
    assert info.value.filename == "/dev/full" and "No space left" in str(info.value.strerror)


@pytest.mark.parametrize(("before", "after"), [
    ("", ""), ('{"a": 1}\n', '{"a": 1}\n'), ('{"a": 1}\n{"b": 2', '{"a": 1}\n'), ('{"b"', ""),
    ('{"a": 1}\n' + "x" * 100_000, '{"a": 1}\n'),  # a torn line longer than one look back
])
def test_appending_cuts_off_a_torn_last_line_first(tmp_path: Path, before: str, after: str) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_text(before)
    with files.open_append(path) as records:
        records.write('{"c": 3}\n')
    assert path.read_text() == after + '{"c": 3}\n'


@needs_fifo
def test_appending_to_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="not a regular file"):
        files.open_append(fifo(tmp_path, "runs.jsonl"))
