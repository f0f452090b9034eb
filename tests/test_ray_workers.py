from __future__ import annotations

import socket

import pytest

from hch.study.ray_workers import RayPool, check_ray_address
from hch.study.workers import WorkersError


@pytest.mark.parametrize("address", ["", "host", "host:", ":80", "host:0", "host:70000", "host:80x", "http://h:1",
                                     "ray://", "a b:1", "h/x:1", "u@h:1"])
def test_a_malformed_ray_address_is_refused_in_one_line(address: str) -> None:
    with pytest.raises(WorkersError, match="is not a Ray address: give HOST:PORT") as caught:
        check_ray_address(address)
    assert "\n" not in str(caught.value)


def test_addresses_ray_takes_pass() -> None:
    for address in ("local", "auto", "10.0.0.1:6379", "head.example:6379", "ray://head:10001", "[::1]:6379"):
        assert check_ray_address(address) == address


def test_a_ray_address_where_nothing_listens_is_refused_at_once() -> None:
    pytest.importorskip("ray")
    with socket.socket() as probe:  # a port nothing listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        pool = RayPool(f"127.0.0.1:{port}", connect_seconds=5)
        with pytest.raises(WorkersError, match=f"no Ray cluster answers at 127.0.0.1:{port}") as caught:
            pool.start()
    assert "\n" not in str(caught.value)
    pool.close()  # nothing to close: never connected
