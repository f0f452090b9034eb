from __future__ import annotations

import pytest

import hch
from hch.policies.callable import CallablePolicy, policy
from hch.workspace import Answer, Ask, Reply, Usage, Workspace


@pytest.mark.anyio
async def test_an_async_function_is_a_policy_and_a_string_is_an_answer() -> None:
    @policy("halver@1")
    async def halver(workspace: Workspace) -> Ask | str:
        if workspace.question == "both" and not workspace.steps:
            return Ask(questions=["left", "right"])
        return "+".join(sub.answer for sub in workspace.answers) or workspace.question

    result = await hch.answer("both", depth=1, policy=halver)
    assert (result.answer, result.status) == ("left+right", "ok")
    assert {d["policy"] for _, d in result.trace.workspaces()} == {"halver@1"}


@pytest.mark.anyio
async def test_plain_functions_and_full_replies_work_too() -> None:
    def sync(workspace: Workspace) -> Reply:
        return Reply(action=Answer(answer="42"), usage=Usage(prompt_tokens=3))

    result = await hch.answer("q", depth=0, policy=CallablePolicy(sync, "sync@1"))
    assert result.answer == "42" and result.summary.tokens == 3


@pytest.mark.anyio
async def test_a_wrong_return_type_fails_only_its_node() -> None:
    async def bad(workspace: Workspace) -> int:
        return 7

    result = await hch.answer("q", depth=0, policy=CallablePolicy(bad, "bad@1"))  # type: ignore[arg-type]
    assert result.status == "error" and "must return an Ask, an Answer, an Expand or a Reply" in result.answer


def test_the_fingerprint_is_required() -> None:
    with pytest.raises(ValueError, match="non-empty fingerprint"):
        CallablePolicy(lambda workspace: "x", " ")


def test_a_function_without_source_and_fingerprint_is_a_clear_error() -> None:
    from hch.policies.callable import from_function

    namespace: dict[str, object] = {}
    exec("async def h(ws):\n    return 'x'\n", namespace)  # as typed into a REPL: no source file
    with pytest.raises(TypeError, match=r"cannot fingerprint the policy function .*h: .* give it a `fingerprint`"):
        from_function(namespace["h"])  # type: ignore[arg-type]


def test_a_functions_fingerprint_changes_with_its_source() -> None:
    import linecache

    from hch.policies.callable import from_function

    fingerprints = []
    for body in ("'x'", "'y'"):
        lines = ["async def h(ws):\n", f"    return {body}\n"]
        linecache.cache["<h>"] = (0, None, lines, "<h>")  # where inspect.getsource finds the source
        namespace: dict[str, object] = {}
        exec(compile("".join(lines), "<h>", "exec"), namespace)
        fingerprints.append(from_function(namespace["h"]).fingerprint)  # type: ignore[arg-type]
    del linecache.cache["<h>"]
    assert all(f.startswith("fn:") for f in fingerprints)
    assert fingerprints[0] != fingerprints[1]


def test_bad_constructor_arguments_fail_at_once() -> None:
    with pytest.raises(TypeError, match="needs a function of the workspace, not str"):
        CallablePolicy("h", "fp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty fingerprint string, not None"):
        CallablePolicy(lambda ws: "x", None)  # type: ignore[arg-type]
