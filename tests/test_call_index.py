from __future__ import annotations

from pathlib import Path

from hch.run.call_index import FIRST_CAPACITY, CallIndex, key_hash

ID = b"0123456789abcdef"


def new_index(path: Path, capacity: int = FIRST_CAPACITY) -> CallIndex:
    index = CallIndex.create(path, ID, capacity)
    index.publish()
    return index


def test_a_key_leads_to_the_rows_it_was_added_with_and_no_other(tmp_path: Path) -> None:
    index = new_index(tmp_path / "i")
    index.add("a", 1)
    index.add("b", 2)
    index.add("a", 3)
    assert list(index.rows("a")) == [1, 3]
    assert list(index.rows("b")) == [2]
    assert list(index.rows("c")) == []


def test_probing_wraps_around_the_end_of_the_table(tmp_path: Path) -> None:
    index = new_index(tmp_path / "i", capacity=4)
    last = next(k for k in (f"k{i}" for i in range(1000)) if key_hash(k) & 3 == 3)  # lands in the last slot
    index.add(last, 1)
    index.add(last, 2)  # the next free slot is the first
    assert list(index.rows(last)) == [1, 2]


def test_an_index_is_reopened_from_its_file_with_its_header(tmp_path: Path) -> None:
    index = new_index(tmp_path / "i")
    index.add("a", 7)
    index.mark_indexed(7)
    index.close()
    again = CallIndex.open(tmp_path / "i", ID)
    assert again is not None and again.indexed_upto == 7 and again.used == 1
    assert list(again.rows("a")) == [7]


def test_a_file_that_is_not_this_caches_index_is_not_opened(tmp_path: Path) -> None:
    new_index(tmp_path / "i").close()
    assert CallIndex.open(tmp_path / "i", b"another cache id") is None
    assert CallIndex.open(tmp_path / "missing", ID) is None
    (tmp_path / "short").write_bytes(b"hchidx01")
    assert CallIndex.open(tmp_path / "short", ID) is None
    data = (tmp_path / "i").read_bytes()
    (tmp_path / "cut").write_bytes(data[:-16])
    assert CallIndex.open(tmp_path / "cut", ID) is None
    (tmp_path / "other").write_bytes(b"x" * len(data))
    assert CallIndex.open(tmp_path / "other", ID) is None


def test_a_grown_index_keeps_every_slot_and_the_old_mapping_says_it_was_superseded(tmp_path: Path) -> None:
    index = new_index(tmp_path / "i", capacity=8)
    reader = CallIndex.open(tmp_path / "i", ID)
    assert reader is not None
    for row in range(4):
        index.add(f"k{row}", row)
    index.mark_indexed(3)
    assert not index.has_room(1)
    bigger = index.grown(100)
    assert bigger.capacity == 256 and bigger.indexed_upto == 3 and bigger.has_room(100)
    assert [list(bigger.rows(f"k{row}")) for row in range(4)] == [[0], [1], [2], [3]]
    assert reader.superseded and not bigger.superseded
    assert not (tmp_path / "i.new").exists()
    reopened = CallIndex.open(tmp_path / "i", ID)
    assert reopened is not None and reopened.capacity == 256
