"""Usage summed per call, node, subtree and run from a trace."""

from __future__ import annotations

from hch.record.trace import Trace
from hch.review import accounting
from hch.workspace import Usage


def usage(prompt: int, completion: int = 0, cached: int = 0, cost: float = 0.0) -> dict[str, float]:
    return Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached, cost=cost).model_dump()


def build() -> tuple[Trace, dict[str, int]]:
    """root delegates to a and b; b reuses a's subtree for a repeated question; one call is a cache hit."""
    trace = Trace()
    ids = {name: trace.add_node("workspace", question=name) for name in ("root", "a", "b", "a1")}
    trace.add_edge(ids["root"], ids["a"], "delegate", step=0, order=0)
    trace.add_edge(ids["root"], ids["b"], "delegate", step=0, order=1)
    trace.add_edge(ids["a"], ids["a1"], "delegate", step=0, order=0)
    trace.add_edge(ids["b"], ids["a1"], "reuse", step=0, order=0)
    for owner, spent, cached in [("root", usage(100, 10, 40, 1.0), False), ("root", usage(120, 12, cost=2.0), False),
                                 ("a", usage(50, 5, cost=0.5), False), ("a1", usage(30, 3, cost=0.25), False),
                                 ("b", usage(999, 99, cost=9.0), True)]:
        call = trace.add_node("call", workspace=ids[owner], usage=spent, cached=cached)
        trace.add_edge(ids[owner], call, "call")
    return trace, ids


def test_node_usage_sums_its_calls_and_skips_cache_hits() -> None:
    trace, ids = build()
    assert accounting.node_usage(trace, ids["root"]) == Usage(
        prompt_tokens=220, completion_tokens=22, cached_tokens=40, cost=3.0
    )
    assert accounting.node_usage(trace, ids["b"]) == Usage()  # its only call was served from the cache
    grafted = trace.add_node("call", workspace=ids["b"], usage=usage(7, 7, cost=7.0), cached=False, grafted=True)
    trace.add_edge(ids["b"], grafted, "call")
    assert accounting.node_usage(trace, ids["b"]) == Usage()  # paid for by the run it was copied from


def test_subtree_usage_counts_a_reused_subtree_once() -> None:
    trace, ids = build()
    assert accounting.subtree_nodes(trace, ids["b"]) == [ids["b"]]  # the reuse edge is not its subtree
    assert accounting.subtree_usage(trace, ids["a"]).prompt_tokens == 80
    root = accounting.subtree_usage(trace, ids["root"])
    assert root == accounting.run_usage(trace)
    assert (root.prompt_tokens, root.completion_tokens, root.cost) == (300, 30, 3.75)
