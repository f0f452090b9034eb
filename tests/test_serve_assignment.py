from __future__ import annotations

from hch.serve.assignment import ancestors, may_take, pick, related

# tree "t": 0 (root) asks 1 and 2; 1 asks 3; 2 asks 4. Tree "u" is another run.
PARENTS: dict[tuple[str, int], int | None] = {("t", 0): None, ("t", 1): 0, ("t", 2): 0, ("t", 3): 1, ("t", 4): 2,
                                              ("u", 0): None}


def test_ancestors_follow_the_askers_up_to_the_root_and_are_unknown_where_a_link_is_missing() -> None:
    assert ancestors(("t", 3), PARENTS) == {1, 0}
    assert ancestors(("t", 0), PARENTS) == set()
    assert ancestors(("t", 9), PARENTS) is None
    assert ancestors(("x", 1), {("x", 1): 5}) is None  # the asker was not served on the web


def test_the_tree_barrier_keeps_a_person_to_one_node_of_each_tree() -> None:
    assert related(("t", 1), ("t", 2), PARENTS, "tree")
    assert related(("t", 0), ("t", 4), PARENTS, "tree")
    assert not related(("t", 1), ("t", 1), PARENTS, "tree")  # later steps of one node are one workspace
    assert not related(("t", 1), ("u", 0), PARENTS, "tree")


def test_the_path_barrier_allows_siblings_and_cousins_but_no_ancestor_and_descendant() -> None:
    assert related(("t", 0), ("t", 3), PARENTS, "path")
    assert related(("t", 3), ("t", 1), PARENTS, "path")
    assert not related(("t", 1), ("t", 2), PARENTS, "path")
    assert not related(("t", 3), ("t", 4), PARENTS, "path")
    assert related(("t", 3), ("t", 9), PARENTS, "path")  # unknown ancestry: as strict as the tree rule


def test_may_take_checks_every_workspace_the_person_was_shown() -> None:
    assert may_take([("u", 0)], ("t", 3), PARENTS, "tree")
    assert not may_take([("u", 0), ("t", 4)], ("t", 3), PARENTS, "tree")
    assert may_take([("t", 4)], ("t", 3), PARENTS, "path")


def test_pick_prefers_the_persons_own_node_then_the_longest_waiting_and_never_one_they_let_go() -> None:
    candidates = [(("t", 3), 5.0, 30), (("u", 0), 1.0, 31), (("t", 1), 9.0, 32)]
    assert pick(candidates, set(), set(), PARENTS, "tree") == 31
    assert pick(candidates, {("t", 1)}, set(), PARENTS, "tree") == 32  # its next step comes back to them first
    assert pick(candidates, {("t", 1)}, {32}, PARENTS, "tree") == 31  # unless they let it go
    assert pick(candidates, {("t", 2), ("u", 5)}, set(), PARENTS, "tree") is None
    assert pick(candidates, {("t", 2), ("u", 5)}, set(), PARENTS, "path") == 30
