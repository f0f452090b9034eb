from __future__ import annotations

import anyio
import pytest

from hch.record.trace import Trace
from hch.run.subtree_cache import SubtreeCache
from hch.workspace import SubAnswer

pytestmark = pytest.mark.anyio
KEY = ("policy", "q", 1, "ctx")


async def test_the_first_claim_owns_and_later_claims_wait_for_its_result() -> None:
    cache = SubtreeCache()
    flight, owner = cache.claim(KEY)
    again, second_owner = cache.claim(KEY)
    assert (owner, second_owner) == (True, False)
    assert again is flight
    trace = Trace()
    got: list[SubAnswer | None] = []

    async def waiter() -> None:
        await again.done.wait()
        got.append(again.result)

    async with anyio.create_task_group() as group:
        group.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        assert got == []
        cache.finish(flight, SubAnswer(question="q", answer="a"), node=3, trace=trace)
    assert got == [SubAnswer(question="q", answer="a")]
    assert (again.node, again.trace) == (3, trace)


async def test_an_abandoned_flight_wakes_waiters_and_can_be_claimed_again() -> None:
    cache = SubtreeCache()
    flight, _ = cache.claim(KEY)
    cache.abandon(KEY, flight)
    assert flight.done.is_set() and flight.result is None
    assert KEY not in cache
    _, owner = cache.claim(KEY)
    assert owner


async def test_a_flight_finished_before_anyone_waited_is_done_for_a_late_waiter() -> None:
    cache = SubtreeCache()
    flight, _ = cache.claim(KEY)
    cache.finish(flight, SubAnswer(question="q", answer="a"), node=1, trace=Trace())
    late, owner = cache.claim(KEY)
    assert late is flight and not owner
    with anyio.fail_after(1):  # returns at once: the event is made already set
        await late.done.wait()
    assert late.done.is_set()
