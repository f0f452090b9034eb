"""The call cache's index: a file of slots that maps a call key to the rows that may hold it.

A B-tree of random keys (SQLite's index of SHA-256 keys) rewrites a page for every insert once it
outgrows memory, so a cache made that way costs more per call the larger it is. This index is an
open-addressing hash table in a memory-mapped file: a lookup reads a few bytes and an insert writes a
few, wherever the key falls, and the kernel writes the touched pages back when it likes.

It is derived data. Every slot holds the first 8 bytes of a hash of the key and a row id; the cache
checks the row's full key before it trusts a slot, so a stale or torn slot is only a miss. An index
that is missing, damaged or made for another cache file is rebuilt from the rows (`CallCache`).
Writers change it only while they hold the cache's SQLite write lock; readers read it without a lock.
A full index is copied into one of twice the size under a temporary name, renamed over the old one,
and the old one marked `superseded`, so that readers in other processes reopen the file.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
from collections.abc import Iterator
from pathlib import Path

MAGIC = b"hchidx01"
_HEADER = struct.Struct("<8s16sQQQQ")  # magic, cache id, capacity, used slots, rows indexed up to, superseded
_SLOT = struct.Struct("<QQ")  # key hash (never 0: 0 marks an empty slot), row id
_HASH = struct.Struct("<Q")
_SUPERSEDED_AT = _HEADER.size - 8
FIRST_CAPACITY = 1024
MAX_LOAD = 0.5  # linear probing stays short below half full


def key_hash(key: str) -> int:
    """A call key's 64-bit slot hash (never 0)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1


def _fits(slots: int, capacity: int) -> bool:
    return slots <= capacity * MAX_LOAD


class CallIndex:
    """One mapping of an index file. Make one with `open` (an existing file) or `create` (a new one)."""

    def __init__(self, path: Path, fd: int, view: mmap.mmap) -> None:
        self.path, self._fd, self._view, self._temporary = path, fd, view, path
        _, cache_id, capacity, used, indexed_upto, _ = _HEADER.unpack_from(view, 0)
        self.cache_id: bytes = cache_id
        self.capacity: int = capacity
        self.used: int = used
        """Slots in use (the load of the table)."""
        self.indexed_upto: int = indexed_upto
        """Every row up to this id has its slot."""

    @classmethod
    def open(cls, path: Path, cache_id: bytes) -> CallIndex | None:
        """The index at `path` if it is a sound index of the cache `cache_id`, else None."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            size = os.fstat(fd).st_size
            if size < _HEADER.size:
                raise ValueError("short")
            view = mmap.mmap(fd, size)
        except (OSError, ValueError):
            os.close(fd)
            return None
        index = cls(path, fd, view)
        magic = bytes(view[:8])
        expected = _HEADER.size + index.capacity * _SLOT.size
        if magic != MAGIC or index.cache_id != cache_id or size != expected or index.superseded:
            index.close()
            return None
        return index

    @classmethod
    def create(cls, path: Path, cache_id: bytes, capacity: int = FIRST_CAPACITY) -> CallIndex:
        """A new empty index of `capacity` slots (a power of two) for `path`, written under a temporary
        name until `publish` puts it in place (a file other processes have mapped is never cut short)."""
        temporary, size = path.with_name(path.name + ".new"), _HEADER.size + capacity * _SLOT.size
        fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.ftruncate(fd, size)
            if hasattr(os, "posix_fallocate"):  # a full disk is an error now, not a SIGBUS at a later write
                os.posix_fallocate(fd, 0, size)
            view = mmap.mmap(fd, size)
        except OSError:
            os.close(fd)
            raise
        _HEADER.pack_into(view, 0, MAGIC, cache_id, capacity, 0, 0, 0)
        index = cls(path, fd, view)
        index._temporary = temporary
        return index

    def publish(self) -> None:
        """Put a new index in place of the file at its path."""
        os.replace(self._temporary, self.path)

    @property
    def superseded(self) -> bool:
        """Whether a writer has replaced this file by a larger one (reopen the path to see it)."""
        return bool(_HASH.unpack_from(self._view, _SUPERSEDED_AT)[0])

    def rows(self, key: str) -> Iterator[int]:
        """The row ids of the slots whose hash matches `key`'s (check each row's key before trusting it)."""
        wanted, mask, view = key_hash(key), self.capacity - 1, self._view
        slot = wanted & mask
        while True:
            stored, row = _SLOT.unpack_from(view, _HEADER.size + slot * _SLOT.size)
            if stored == 0:
                return
            if stored == wanted:
                yield row
            slot = (slot + 1) & mask

    def has_room(self, more: int) -> bool:
        """Whether `more` slots fit without passing the load limit."""
        return _fits(self.used + more, self.capacity)

    def add(self, key: str, row: int) -> None:
        """Point `key` at `row` (the caller holds the write lock and made sure there is room)."""
        self._put(key_hash(key), row)

    def _put(self, stored: int, row: int) -> None:
        mask, view = self.capacity - 1, self._view
        slot = stored & mask
        while _HASH.unpack_from(view, _HEADER.size + slot * _SLOT.size)[0]:
            slot = (slot + 1) & mask
        _SLOT.pack_into(view, _HEADER.size + slot * _SLOT.size, stored, row)
        self.used += 1

    def mark_indexed(self, upto: int) -> None:
        """Record that every row up to `upto` has its slot (and the slots in use), in the file's header."""
        self.indexed_upto = upto
        _HEADER.pack_into(self._view, 0, MAGIC, self.cache_id, self.capacity, self.used, upto, 0)

    def grown(self, more: int) -> CallIndex:
        """An index with room for `more` slots and this one's, put in place of this one, which is marked
        superseded (for readers in other processes) and closed."""
        capacity = self.capacity
        while not _fits(self.used + more, capacity):
            capacity *= 2
        bigger = CallIndex.create(self.path, self.cache_id, capacity)
        for stored, row in _SLOT.iter_unpack(self._view[_HEADER.size:]):
            if stored:
                bigger._put(stored, row)
        bigger.mark_indexed(self.indexed_upto)
        bigger.publish()
        _HASH.pack_into(self._view, _SUPERSEDED_AT, 1)
        self.close()
        return bigger

    def close(self) -> None:
        """Write the mapped pages back and let the file go."""
        if not self._view.closed:
            self._view.flush()
            self._view.close()
            os.close(self._fd)
