from __future__ import annotations

from hch.serve.tokens import find, new_token


def test_tokens_are_long_random_and_url_safe() -> None:
    made = {new_token() for _ in range(50)}
    assert len(made) == 50
    assert all(len(token) >= 32 and token.replace("-", "").replace("_", "").isalnum() for token in made)


def test_find_names_the_owner_of_a_token_and_nobody_for_anything_else() -> None:
    known = {"p1": new_token(), "p2": new_token()}
    assert find(known["p2"], known) == "p2"
    assert find(known["p1"], known) == "p1"
    for wrong in ("", "x", known["p1"][:-1], known["p1"] + "a", known["p1"].upper(), "../" + known["p1"],
                  known["p1"] + "\x00", "é" * 32):
        assert find(wrong, known) is None
    assert find(known["p1"], {}) is None
