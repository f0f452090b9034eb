"""The LLM policy against a real OpenAI-compatible server on 127.0.0.1, through the real `openai` client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import trace_data

from hch.errors import PolicyError, RunAborted
from hch.limits import Limits
from hch.policies import presets
from hch.policies.llm import (
    ACTION_SCHEMA,
    NO_KEY,
    REASK_EXCERPT,
    LLMConfigError,
    LLMPolicy,
    model_listed,
    parse_action,
    safe_url,
)
from hch.policies.presets import Price, Retry
from hch.policies.spec import make_policy
from hch.record.trace import Trace
from hch.review import accounting
from hch.run.call_cache import CallCache
from hch.run.engine import Result, answer
from hch.testing.openai_server import (
    OpenAIServer,
    Seen,
    Step,
    hch_responder,
    llama_cpp_python,
    question_of,
    subanswers_of,
)
from hch.workspace import Answer, Ask, Workspace

KEY = "sk-test-SECRET-must-never-be-written-0123456789"
FAST = Retry(max_attempts=4, max_seconds=30, initial_wait=0.01, max_wait=0.05, jitter=0.01)
PRICE = Price(input=2.0, output=8.0, cached_input=0.5)

# HCH_2: the root splits in two, each half splits in two again; leaves answer.
TREE: dict[str, list[str] | str] = {
    "What is 1+2+3+4?": ["What is 1+2?", "What is 3+4?"],
    "What is 1+2?": "3",
    "What is 3+4?": "7",
}


def combine(question: str, answers: list[str]) -> str:
    return str(sum(int(a) for a in answers)) if all(a.isdigit() for a in answers) else "?"


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(hch_responder(TREE, combine), api_key=KEY, models={"test-model"}, hang_seconds=10) as running:
        yield running


def policy(server: OpenAIServer, **kwargs: Any) -> LLMPolicy:
    options: dict[str, Any] = {
        "model": "test-model", "base_url": server.base_url, "api_key": KEY, "retry": FAST, "price": PRICE,
        "request_timeout": 5.0, **kwargs,
    }
    return LLMPolicy(**options)


async def run(question: str, chosen: LLMPolicy, depth: int = 2, **kwargs: Any) -> Result:
    with anyio.fail_after(60):  # a deadlock fails the test instead of hanging it
        return await answer(question, depth=depth, policy=chosen, **kwargs)


def calls(trace: Trace) -> list[dict[str, Any]]:
    return [data for _, data in trace.calls()]


def assert_no_successful_request_repeated(server: OpenAIServer) -> None:
    """A request body answered with a usable 200 is never sent again (retries repeat only failures)."""
    answered: set[str] = set()
    for seen in server.requests:  # in arrival order
        body = json.dumps(seen.body, sort_keys=True)
        assert body not in answered, seen.body["messages"][-1]
        if seen.status == 200 and seen.step is not None and not seen.step.malformed:
            answered.add(body)
    assert answered


# -- a whole run -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_depth_2_run_follows_the_script(server: OpenAIServer, tmp_path: Path) -> None:
    result = await run("What is 1+2+3+4?", policy(server), trace_path=tmp_path / "t.json")
    assert (result.answer, result.status) == ("10", "ok")
    trace = result.trace
    root = trace.root
    children = [trace.graph.nodes[child]["question"] for child, _ in trace.children(root)]
    assert children == ["What is 1+2?", "What is 3+4?"]
    assert [trace.graph.nodes[c]["answer"] for c, _ in trace.children(root)] == ["3", "7"]
    assert [trace.graph.nodes[c]["depth"] for c, _ in trace.children(root)] == [1, 1]
    # root asks, then answers; each leaf answers at once: 4 requests, each a 200 on the first attempt
    assert len(server.requests) == 4 and all(seen.status == 200 for seen in server.requests)
    assert sorted(question_of(seen) for seen in server.requests) == sorted(
        ["What is 1+2+3+4?", "What is 1+2+3+4?", "What is 1+2?", "What is 3+4?"]
    )
    for call in calls(trace):
        assert call["attempts"][0]["status"] == 200 and call["attempts"][0]["outcome"] == "ok"
        exchange = call["raw"]["exchanges"][0]
        assert exchange["request"]["messages"][0]["role"] == "system"
        schema = exchange["request"]["response_format"]["json_schema"]["schema"]
        assert schema["required"] == ["kind", "questions", "answer"]
        assert exchange["response"]["choices"][0]["finish_reason"] == "stop"
    # the request body the server saw is the one recorded
    recorded = sorted(json.dumps(c["raw"]["exchanges"][0]["request"], sort_keys=True) for c in calls(trace))
    assert recorded == sorted(json.dumps(seen.body, sort_keys=True) for seen in server.requests)
    assert_no_successful_request_repeated(server)


@pytest.mark.anyio
async def test_token_and_cost_totals_equal_the_servers_usage(server: OpenAIServer) -> None:
    result = await run("What is 1+2+3+4?", policy(server))
    reported = server.reported_usage()
    assert reported["cached_tokens"] > 0  # the repeated system prompt was 'cached' by the server
    assert result.summary.tokens == reported["prompt_tokens"] + reported["completion_tokens"]
    total = accounting.run_usage(result.trace)
    assert (total.prompt_tokens, total.completion_tokens, total.cached_tokens) == (
        reported["prompt_tokens"], reported["completion_tokens"], reported["cached_tokens"]
    )
    expected_cost = PRICE.cost(reported["prompt_tokens"], reported["completion_tokens"], reported["cached_tokens"])
    assert total.cost == pytest.approx(expected_cost) and result.summary.cost == pytest.approx(expected_cost)
    assert accounting.subtree_usage(result.trace, result.trace.root) == total
    leaf = result.trace.children(result.trace.root)[0][0]
    leaf_request = next(s for s in server.requests if question_of(s) == "What is 1+2?")
    assert leaf_request.usage is not None
    assert accounting.node_usage(result.trace, leaf).prompt_tokens == leaf_request.usage["prompt_tokens"]


@pytest.mark.anyio
async def test_a_rerun_is_served_wholly_from_the_cache(server: OpenAIServer, tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "cache.sqlite")
    first = await run("What is 1+2+3+4?", policy(server), call_cache=cache)
    cache.close()
    server.requests.clear()
    cache = CallCache(tmp_path / "cache.sqlite")
    second = await run("What is 1+2+3+4?", policy(server), call_cache=cache)
    cache.close()
    assert server.requests == []
    assert second.answer == first.answer == "10"
    assert second.summary.policy_calls == 0 and second.summary.call_cache_hits == 4
    assert second.summary.tokens == 0 and accounting.run_usage(second.trace).cost == 0


@pytest.mark.anyio
async def test_the_token_budget_stops_the_run_cleanly_where_it_is_hit(server: OpenAIServer) -> None:
    limits = Limits(max_total_tokens=1)  # the first call spends more; nothing after it is allowed
    result = await run("What is 1+2+3+4?", policy(server), limits=limits)
    assert len(server.requests) == 1  # the root asked; no call was made after that
    assert "max_total_tokens" in result.summary.limits_hit
    hit = [data for _, data in result.trace.workspaces() if data["limit"] == "max_total_tokens"]
    assert len(hit) == 3 and all(data["status"] == "error" for data in hit)  # both children, then the root
    assert result.status == "error" and "token budget spent" in result.answer  # ended cleanly, recorded


@pytest.mark.anyio
async def test_the_cost_budget_stops_the_run(server: OpenAIServer) -> None:
    result = await run("What is 1+2+3+4?", policy(server), limits=Limits(max_cost=1e-9))
    assert "max_cost" in result.summary.limits_hit
    assert len(server.requests) < 4


# -- faults ----------------------------------------------------------------------------------

RETRIED = [
    ("429", [Step.error(429, retry_after=0.05)], 429),
    ("500", [Step.error(500)], 500),
    ("503", [Step.error(503), Step.error(503)], 503),
    ("408", [Step.error(408)], 408),
    ("409", [Step.error(409)], 409),
    ("hang", [Step(hang=True)], None),
    ("drop", [Step(drop=True)], None),
    ("malformed body", [Step(malformed=True)], 200),
    ("delay", [Step(delay=0.05, content='{"kind": "answer", "questions": [], "answer": "3"}')], 200),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("name", "faults", "status"), RETRIED, ids=[r[0] for r in RETRIED])
async def test_transient_faults_are_retried_and_recorded(
    server: OpenAIServer, name: str, faults: list[Step], status: int | None
) -> None:
    server.inject('"What is 1+2?"', *faults)
    result = await run("What is 1+2+3+4?", policy(server, request_timeout=1.0))
    assert (result.answer, result.status) == ("10", "ok")
    leaf = next(c for c in calls(result.trace) if c["input"]["question"] == "What is 1+2?")
    attempts = leaf["attempts"]
    if name == "delay":  # a slow reply is not a failure
        assert len(attempts) == 1 and attempts[0]["status"] == 200
        return
    assert len(attempts) == len(faults) + 1
    for attempt in attempts[:-1]:
        assert attempt["status"] == status and attempt["error"] and attempt["outcome"] == "retry"
        assert attempt["wait"] is not None and attempt["wait"] >= 0
    assert attempts[-1]["status"] == 200 and attempts[-1]["error"] is None and attempts[-1]["outcome"] == "ok"
    if name == "429":
        assert attempts[0]["wait"] == pytest.approx(0.05)  # Retry-After honoured
    if name == "hang":
        assert "request timeout" in attempts[0]["error"]
    leaf_requests = [s for s in server.requests if question_of(s) == "What is 1+2?"]
    assert len(leaf_requests) == len(faults) + 1
    assert_no_successful_request_repeated(server)


REASKED = [
    ("malformed JSON", Step(content='{"kind": "answer", "answer": "3"'), "not valid JSON"),
    ("schema-violating", Step(content='{"kind": "delegate", "questions": [], "answer": "3"}'), "kind: Input should be"),
    ("ask without questions", Step(content='{"kind": "ask", "questions": [], "answer": ""}'), "no non-empty question"),
    ("cut at max_tokens", Step.truncated(), "cut off at the output token limit"),
    ("empty", Step(content=""), "it is empty"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("name", "bad", "error"), REASKED, ids=[r[0] for r in REASKED])
async def test_invalid_output_is_reasked_with_the_error(server: OpenAIServer, name: str, bad: Step, error: str) -> None:
    server.inject('"What is 1+2?"', bad)
    result = await run("What is 1+2+3+4?", policy(server))
    assert (result.answer, result.status) == ("10", "ok")
    leaf = next(c for c in calls(result.trace) if c["input"]["question"] == "What is 1+2?")
    first, second = leaf["attempts"]
    assert first["status"] == 200 and first["outcome"] == "reask" and error in first["error"]
    assert second["outcome"] == "ok"
    exchanges = leaf["raw"]["exchanges"]
    assert len(exchanges) == 2
    reask = exchanges[1]["request"]["messages"]
    assert reask[-2] == {"role": "assistant", "content": bad.content or ""}
    assert reask[-1]["role"] == "user" and error in reask[-1]["content"]
    # the re-ask's tokens are counted too
    leaf_requests = [s for s in server.requests if question_of(s) == "What is 1+2?"]
    assert leaf["usage"]["prompt_tokens"] == sum((s.usage or {})["prompt_tokens"] for s in leaf_requests)
    assert_no_successful_request_repeated(server)


@pytest.mark.anyio
async def test_output_still_invalid_after_the_reasks_is_that_nodes_error(server: OpenAIServer) -> None:
    server.inject(lambda seen: question_of(seen) == "What is 1+2?", *[Step(content="not json at all")] * 3)
    result = await run("What is 1+2+3+4?", policy(server))
    leaf_node = next(n for n, d in result.trace.workspaces() if d["question"] == "What is 1+2?")
    data = result.trace.graph.nodes[leaf_node]
    assert data["status"] == "error" and "no valid action in 3 tries" in data["error"]
    failed = next(c for c in calls(result.trace) if c["input"]["question"] == "What is 1+2?")
    assert failed["error"] and failed["output"] is None
    assert [a["outcome"] for a in failed["attempts"]] == ["reask", "reask", "failed"]  # no re-ask after the last
    assert failed["usage"]["prompt_tokens"] > 0  # the failed call's tokens are recorded...
    reported = server.reported_usage()  # ...and counted in the run's totals
    assert result.summary.tokens == reported["prompt_tokens"] + reported["completion_tokens"]
    assert result.answer == "?"  # the parent went on with a failed sub-answer, as scripted


@pytest.mark.anyio
async def test_retries_are_bounded_then_the_node_fails(server: OpenAIServer) -> None:
    server.inject('"What is 3+4?"', *[Step.error(503)] * FAST.max_attempts)
    result = await run("What is 1+2+3+4?", policy(server))
    node = next(d for _, d in result.trace.workspaces() if d["question"] == "What is 3+4?")
    assert node["status"] == "error" and "failed 4 time(s)" in node["error"]
    assert "last error: 503: scripted error 503" in node["error"]
    failed = next(c for c in calls(result.trace) if c["input"]["question"] == "What is 3+4?")
    assert [a["status"] for a in failed["attempts"]] == [503] * 4
    assert [a["outcome"] for a in failed["attempts"]] == ["retry", "retry", "retry", "failed"]
    assert result.status == "ok"  # the root went on


@pytest.mark.anyio
async def test_retries_are_reported_to_the_runs_progress(server: OpenAIServer) -> None:
    from hch.run.progress import Progress

    server.inject('"What is 3+4?"', Step.error(503), Step.error(429, retry_after=0.05))
    progress = Progress()
    result = await run("What is 1+2+3+4?", policy(server), progress=progress)
    assert result.answer == "10" and progress.retries == 2  # the live line on stderr shows them


# -- failures that stop the run ------------------------------------------------------------


@pytest.mark.anyio
async def test_a_wrong_key_stops_the_run_at_once(server: OpenAIServer, tmp_path: Path) -> None:
    with pytest.raises(RunAborted) as caught:
        await run("What is 1+2+3+4?", policy(server, api_key="sk-wrong"), trace_path=tmp_path / "t.json")
    message = str(caught.value)
    assert "rejected the API key (401" in message and "OPENAI_API_KEY" in message and "\n" not in message
    assert len(server.requests) == 1
    trace = trace_data(tmp_path / "t.json")
    call = next(n for n in trace["nodes"] if n["kind"] == "call")
    assert call["attempts"][0]["status"] == 401 and call["attempts"][0]["outcome"] == "failed"
    assert trace["graph"]["error"] == message


@pytest.mark.anyio
async def test_a_401_deep_in_the_tree_stops_the_run_and_keeps_the_trace(server: OpenAIServer, tmp_path: Path) -> None:
    server.inject('"What is 3+4?"', Step.error(401, "key revoked"))
    with pytest.raises(RunAborted, match="rejected the API key"):
        await run("What is 1+2+3+4?", policy(server), trace_path=tmp_path / "t.json")
    trace = trace_data(tmp_path / "t.json")
    nodes = {n["question"]: n for n in trace["nodes"] if n["kind"] == "workspace"}
    assert nodes["What is 3+4?"]["status"] == "error" and "401: key revoked" in nodes["What is 3+4?"]["error"]
    assert nodes["What is 1+2+3+4?"]["status"] == "interrupted"
    assert trace["graph"]["status"] == "interrupted" and "401" in trace["graph"]["error"]


@pytest.mark.anyio
async def test_an_unlisted_model_stops_the_run_before_any_request(server: OpenAIServer) -> None:
    expected = r"does not serve model 'gpt-nope': its /models lists 'test-model'; check --model"
    with pytest.raises(RunAborted, match=expected):
        await run("What is 1+2+3+4?", policy(server, model="gpt-nope"))
    assert server.requests == [] and server.model_lookups == 1


@pytest.mark.anyio
async def test_an_unknown_model_on_a_server_without_a_model_list_stops_the_run_at_the_first_404(
    server: OpenAIServer,
) -> None:
    server.list_models = False  # GET /v1/models is a 404: looked up, skipped silently
    with pytest.raises(RunAborted, match=r"no model 'gpt-nope' .*404.*check --model/HCH_MODEL"):
        await run("What is 1+2+3+4?", policy(server, model="gpt-nope"))
    assert len(server.requests) == 1 and server.model_lookups == 0


@pytest.mark.anyio
async def test_a_400_fails_only_that_node_without_retrying(server: OpenAIServer) -> None:
    server.inject('"What is 1+2?"', Step.error(400, "context length exceeded"))
    result = await run("What is 1+2+3+4?", policy(server))
    node = next(d for _, d in result.trace.workspaces() if d["question"] == "What is 1+2?")
    assert node["status"] == "error" and "rejected the request (400: context length exceeded)" in node["error"]
    assert len([s for s in server.requests if question_of(s) == "What is 1+2?"]) == 1


def cli(tmp_path: Path, *args: str, key: str = KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "HCH_MODEL")}
    env["OPENAI_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "hch", "ask", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize(
    ("key", "model", "listed", "expected", "requests"),
    [
        ("sk-wrong", "test-model", True, "rejected the API key (401", 1),
        (KEY, "gpt-nope", True, "does not serve model 'gpt-nope': its /models lists 'test-model'", 0),
        (KEY, "gpt-nope", False, "has no model 'gpt-nope' or no chat completions endpoint (404", 1),
    ],
)
def test_cli_401_and_404_are_one_line_errors_that_say_where_the_trace_went(
    server: OpenAIServer, tmp_path: Path, key: str, model: str, listed: bool, expected: str, requests: int
) -> None:
    server.list_models = listed
    trace = tmp_path / "run.json"
    done = cli(tmp_path, "What is 1+2+3+4?", "--policy", "llm", "--model", model, "--base-url", server.base_url,
               "--trace", str(trace), key=key)
    assert done.returncode == 4  # the policy aborted the run (see the README's exit statuses)
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("hch: error: ") and expected in done.stderr
    assert done.stderr.rstrip().endswith(f"(trace: {trace})")
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert len(server.requests) == requests
    assert trace_data(trace)["graph"]["error"] in done.stderr  # the trace is there, with the error


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "no model given for the llm policy: pass --model NAME, set HCH_MODEL"),
        (("--model", "m", "--price", "cheap"), "price 'cheap' is not INPUT,OUTPUT"),
        (("--model", "m", "--preset", "nope"), "no preset named 'nope'"),
    ],
)
def test_cli_configuration_errors_are_one_line(
    server: OpenAIServer, tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    done = cli(tmp_path, "q", "--policy", "llm", "--base-url", server.base_url, *args)
    assert done.returncode != 0 and done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr
    assert server.requests == []


def test_cli_run_writes_no_api_key_anywhere(server: OpenAIServer, tmp_path: Path) -> None:
    server.inject('"What is 1+2?"', Step.error(500), Step(content="broken"))  # attempts and re-asks recorded too
    seen_mid_run: dict[str, bool] = {}
    scripted = server.responder

    def scan_then_answer(seen: Seen) -> Step | str:
        if question_of(seen) == "What is 1+2+3+4?" and subanswers_of(seen):  # mid-run: the journal exists
            for path in tmp_path.rglob("*"):
                if path.is_file():
                    seen_mid_run[path.name] = KEY.encode() in path.read_bytes()
        return scripted(seen)

    server.responder = scan_then_answer
    done = cli(tmp_path, "What is 1+2+3+4?", "--policy", "llm", "--model", "test-model", "--base-url",
               server.base_url, "--depth", "2", "--price", "2,8,0.5", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["answer"] == "10"
    again = cli(tmp_path, "What is 1+2+3+4?", "--policy", "llm", "--model", "test-model", "--base-url",
                server.base_url, "--depth", "2", "--price", "2,8,0.5", "--json")
    assert json.loads(again.stdout)["summary"]["call_cache_hits"] == 4
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".json" for p in written) and any(p.name == "cache.sqlite" for p in written)
    for path in written:
        data = path.read_bytes()
        if not path.name.endswith("-index"):  # the call cache's index holds hashes and row numbers, no text
            assert b"What is 1+2?" in data, path  # the scan reads the real content (sqlite stores text as is)
        assert KEY.encode() not in data, path
        assert KEY[-20:].encode() not in data, path  # not even a tail of it
    assert all(seen.headers["authorization"] == f"Bearer {KEY}" for seen in server.requests)  # it was used
    assert any(name.endswith(".journal.jsonl") for name in seen_mid_run), seen_mid_run
    assert not any(seen_mid_run.values()), seen_mid_run


# -- what real servers do: failures that cannot heal, dead servers, llama.cpp's output mode ----

LLAMA_FILE = "/models/qwen2.5-0.5b-instruct-q4_k_m.gguf"


def refused_url() -> str:
    """A base URL where nothing listens: every connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def call_of(trace: Trace, question: str) -> dict[str, Any]:
    return next(c for c in calls(trace) if c["input"]["question"] == question)


@pytest.mark.anyio
async def test_a_server_rejecting_json_schema_gets_the_schema_in_json_object_for_the_rest_of_the_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # llama-cpp-python's server: a 500 carrying FastAPI's validation error for response_format json_schema
    responder = llama_cpp_python(hch_responder(TREE, combine))
    with OpenAIServer(responder, models={LLAMA_FILE}, ignore_model=True) as server:
        chosen = policy(server, model="qwen2.5-0.5b-instruct-q4_k_m")
        cache = CallCache(tmp_path / "cache.sqlite")
        result = await run("What is 1+2+3+4?", chosen, call_cache=cache)
        assert (result.answer, result.status) == ("10", "ok")
        kinds = [seen.body["response_format"]["type"] for seen in server.requests]
        assert kinds == ["json_schema", "json_object", "json_object", "json_object", "json_object"]  # one rejection
        assert server.requests[0].status == 500 and all(seen.status == 200 for seen in server.requests[1:])
        assert all(seen.body["response_format"]["schema"] == ACTION_SCHEMA for seen in server.requests[1:])
        root = call_of(result.trace, "What is 1+2+3+4?")  # the first call: rejected once, then sent in the new mode
        assert [(a["status"], a["outcome"]) for a in root["attempts"]] == [(500, "fallback"), (200, "ok")]
        assert "validation error" in root["attempts"][0]["error"] and "json_schema" in root["attempts"][0]["error"]
        assert all(c["raw"]["output"] == "json_object_schema" for c in calls(result.trace))  # the mode used, recorded
        assert all(len(c["attempts"]) == 1 for c in calls(result.trace) if c is not root)  # later calls: at once
        note = capsys.readouterr().err
        assert note.count("\n") == 1 and "rejected a json_schema response_format as unsupported" in note
        assert "`output: json_object_schema`" in note
        server.requests.clear()
        again = await run("What is 1+2+3+4?", chosen, call_cache=cache)  # the cache key is the preset's mode
        cache.close()
        assert again.answer == "10" and server.requests == []


@pytest.mark.anyio
async def test_an_explicit_output_mode_the_server_rejects_stops_the_run_saying_what_to_set(tmp_path: Path) -> None:
    def lm_studio(seen: Seen) -> Step:  # rejects json_object, as LM Studio does
        if seen.body.get("response_format", {}).get("type") == "json_object":
            return Step.error(400, "'response_format.type' must be 'json_schema' or 'text'")
        return Step.answer("3")

    preset = tmp_path / "llama.yaml"
    preset.write_text("system: s\ntemplate: 'Your question: ${question}'\noutput: json_object_schema\n")
    with OpenAIServer(lm_studio) as server, pytest.raises(RunAborted) as caught:
        await run("What is 1+2?", policy(server, preset=str(preset)), depth=0)
    assert len(server.requests) == 1  # not retried, no fallback from a mode chosen in the preset
    message = str(caught.value)
    assert "does not support a json_object response_format with a schema (400: 'response_format.type'" in message
    assert message.endswith("set `output:` in the preset to json_schema or prompt") and "\n" not in message


@pytest.mark.anyio
async def test_a_server_rejecting_both_schema_modes_stops_the_run_at_the_second_request() -> None:
    def no_formats(seen: Seen) -> Step:  # an old llama-server: a 500 for json_schema, and no schema in json_object
        if "response_format" in seen.body:
            got = seen.body["response_format"]["type"]
            return Step.error(500, f'response_format type must be one of "text", but got: {got}')
        return Step.answer("3")

    with OpenAIServer(no_formats) as server, pytest.raises(RunAborted) as caught:
        await run("What is 1+2?", policy(server), depth=0)
    assert [seen.body["response_format"]["type"] for seen in server.requests] == ["json_schema", "json_object"]
    message = str(caught.value)
    assert "does not support a json_schema response_format nor a json_object response_format with a schema" in message
    assert message.endswith("set `output:` in the preset to prompt")


@pytest.mark.anyio
async def test_a_500_repeated_identically_is_not_retried_further(server: OpenAIServer) -> None:
    # llama-server at temperature 0: a constrained reply cut off at max_tokens is the same 500 every time
    server.inject(lambda seen: question_of(seen) == "What is 1+2?", *[Step.llama_server_cut_off()] * FAST.max_attempts)
    result = await run("What is 1+2+3+4?", policy(server))
    failed = call_of(result.trace, "What is 1+2?")
    assert [(a["status"], a["outcome"]) for a in failed["attempts"]] == [(500, "retry"), (500, "failed")]  # not 4
    node = next(d for _, d in result.trace.workspaces() if d["question"] == "What is 1+2?")
    assert node["status"] == "error" and "the same 500 2 times, so it is not retried further" in node["error"]
    assert "peg-native format" in node["error"] and "raise max_tokens in the preset's settings" in node["error"]
    assert result.status == "ok" and result.answer == "?"  # only that node failed; the root went on


@pytest.mark.anyio
async def test_different_500s_are_retried_as_before(server: OpenAIServer) -> None:
    server.inject('"What is 1+2?"', Step.error(500, "busy (request 1)"), Step.error(500, "busy (request 2)"))
    result = await run("What is 1+2+3+4?", policy(server))
    assert result.answer == "10"
    assert [a["outcome"] for a in call_of(result.trace, "What is 1+2?")["attempts"]] == ["retry", "retry", "ok"]


@pytest.mark.anyio
async def test_a_request_body_the_server_rejects_as_invalid_stops_the_run() -> None:
    def strict_types(seen: Seen) -> Step:  # llama-cpp-python validates every field; a bad setting is a 500
        error = {"type": "float_parsing", "loc": ("body", "temperature"), "msg": "Input should be a valid number"}
        return Step.error(500, f"1 validation error:\n  {error}")

    expected = r"rejected the request as invalid \(500: 1 validation error: .*settings"
    with OpenAIServer(strict_types) as server, pytest.raises(RunAborted, match=expected):
        await run("What is 1+2?", policy(server, settings={"temperature": "hot"}), depth=0)
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_a_request_that_hangs_times_out_and_is_retried_to_the_budget(server: OpenAIServer) -> None:
    server.inject(lambda seen: question_of(seen) == "What is 1+2?", *[Step(hang=True)] * FAST.max_attempts)
    result = await run("What is 1+2+3+4?", policy(server, request_timeout=0.2))
    attempts = call_of(result.trace, "What is 1+2?")["attempts"]
    assert [a["outcome"] for a in attempts] == ["retry", "retry", "retry", "failed"]  # all 4 of FAST's
    assert all(a["status"] is None and "request timeout" in a["error"] for a in attempts)
    assert result.status == "ok" and result.answer == "?"  # a server that has answered is slow, not dead


@pytest.mark.anyio
async def test_a_server_that_accepts_and_never_answers_is_retried_then_taken_for_dead() -> None:
    with OpenAIServer(lambda seen: Step(hang=True), hang_seconds=10) as server, pytest.raises(RunAborted) as caught:
        await run("What is 1+2?", policy(server, request_timeout=0.2), depth=0)
    attempts = caught.value.attempts
    assert [a["outcome"] for a in attempts] == ["retry", "retry", "failed"]  # timed out, retried, stopped
    assert all(a["status"] is None and "request timeout" in a["error"] for a in attempts)
    assert len(server.requests) == 3 < FAST.max_attempts
    assert "is unreachable: 3 requests in a row got no reply (accepted, but no reply within the request " \
           "timeout of 0.2s; if it is only slow, raise --request-timeout)" in str(caught.value)


def test_the_default_preset_retries_a_request_that_times_out_several_times(capsys: pytest.CaptureFixture[str]) -> None:
    preset = presets.load()
    assert preset.retry.timed_out_attempts(preset.request_timeout) >= 3
    LLMPolicy(model="m", base_url="http://127.0.0.1:9/v1", environ={})
    assert capsys.readouterr().err == ""  # nothing to warn about


def test_a_request_timeout_that_uses_the_whole_retry_budget_is_warned_about(
    capsys: pytest.CaptureFixture[str],
) -> None:
    LLMPolicy(model="m", base_url="http://127.0.0.1:9/v1", request_timeout=240, environ={})
    warning = capsys.readouterr().err
    assert warning.count("\n") == 1 and warning.startswith("hch: warning: a request that times out")
    assert "retry.max_seconds 240s" in warning and "lower --request-timeout" in warning
    LLMPolicy(model="m", base_url="http://127.0.0.1:9/v1", request_timeout=240, environ={},
              retry=Retry(max_attempts=1))  # no retries wanted: nothing to warn about
    assert capsys.readouterr().err == ""


@pytest.mark.anyio
async def test_refused_connections_stop_the_run_through_the_breaker(tmp_path: Path) -> None:
    url = refused_url()
    chosen = LLMPolicy(model="m", base_url=url, retry=FAST, request_timeout=5.0, environ={})
    with pytest.raises(RunAborted) as caught:
        await run("What is 1+2+3+4?", chosen, trace_path=tmp_path / "t.json")
    message = str(caught.value)
    assert message.startswith(f"{url} is unreachable: 3 requests in a row got no reply (connection refused)")
    assert "Start it, or fix --base-url/OPENAI_BASE_URL" in message and "\n" not in message
    trace = trace_data(tmp_path / "t.json")
    (call,) = [n for n in trace["nodes"] if n["kind"] == "call"]
    assert len(call["attempts"]) == FAST.max_connection_failures < FAST.max_attempts  # stopped before its budget
    assert [a["outcome"] for a in call["attempts"]] == ["retry", "retry", "failed"]
    assert trace["graph"]["error"] == message


CHAIN: dict[str, list[str] | str] = {"a": ["b"], "b": ["c"], "c": "1"}


@pytest.mark.anyio
async def test_a_server_that_dies_mid_run_stops_the_run_within_the_breakers_count() -> None:
    def crash_at_c(seen: Seen) -> Step | str:
        return Step(crash=True) if question_of(seen) == "c" else hch_responder(CHAIN)(seen)

    expected = "is unreachable: 3 requests in a row got no reply"
    with OpenAIServer(crash_at_c) as server, pytest.raises(RunAborted, match=expected) as caught:
        await run("a", policy(server), depth=3)
    assert [question_of(seen) for seen in server.requests] == ["a", "b", "c"]  # then nothing reached it
    failed = caught.value.attempts
    assert len(failed) == 3 and all(a["status"] is None and "connection error" in a["error"] for a in failed)


@pytest.mark.anyio
async def test_a_server_gone_bad_stops_a_wide_run_with_few_attempts_in_all(tmp_path: Path) -> None:
    # From the first leaf on, every connection is dropped without a reply (a dead backend behind a
    # listening socket, so each attempt still reaches the server and is counted there).
    gone = threading.Event()

    def dead_from_a_leaf(seen: Seen) -> Step | str:
        if question_of(seen) == "part 0.0":
            gone.set()
        return Step(drop=True) if gone.is_set() else hch_responder(WIDE, combine)(seen)

    with OpenAIServer(dead_from_a_leaf) as server, pytest.raises(RunAborted, match="is unreachable: 3 requests"):
        await run("root", policy(server, max_concurrency=3), depth=3, trace_path=tmp_path / "t.json")
    dropped = [seen for seen in server.requests if seen.status is None]
    # 3 failures in a row open the breaker; around them, at most the other 2 requests in flight can
    # fail (or succeed, resetting the count) once each, and no attempt starts after it opens.
    # Without it, each of the 16 leaves would have been tried FAST.max_attempts times.
    assert 3 <= len(dropped) <= 3 + 2 * 2 < 16 * FAST.max_attempts
    trace = trace_data(tmp_path / "t.json")
    assert trace["graph"]["status"] == "interrupted" and "is unreachable" in trace["graph"]["error"]


@pytest.mark.anyio
async def test_after_the_breaker_opened_the_next_run_tries_one_request_first() -> None:
    down = threading.Event()
    down.set()

    def flaky(seen: Seen) -> Step | str:
        return Step(drop=True) if down.is_set() else hch_responder(TREE, combine)(seen)

    with OpenAIServer(flaky) as server:
        chosen = policy(server)
        with pytest.raises(RunAborted, match="3 requests in a row"):
            await run("What is 1+2+3+4?", chosen)
        assert len(server.requests) == 3
        with pytest.raises(RunAborted, match="4 requests in a row"):  # still down: stopped at once
            await run("What is 1+2+3+4?", chosen)
        assert len(server.requests) == 4
        down.clear()  # back up: the first reply closes the breaker
        assert (await run("What is 1+2+3+4?", chosen)).answer == "10"


def test_cli_run_against_a_dead_server_ends_with_one_line_and_exit_status_4(tmp_path: Path) -> None:
    preset = tmp_path / "fast.yaml"
    preset.write_text(
        "system: s\ntemplate: 'Your question: ${question}'\n"
        "retry: {max_attempts: 6, initial_wait: 0.01, max_wait: 0.05, jitter: 0.01}\n"
    )
    url = refused_url()
    done = cli(tmp_path, "What is 1+2?", "--policy", "llm", "--model", "m", "--base-url", url, "--preset", str(preset),
               "--trace", str(tmp_path / "t.json"))
    assert done.returncode == 4 and done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"hch: error: the run failed: {url} is unreachable: 3 requests")
    assert done.stderr.rstrip().endswith(f"(trace: {tmp_path / 't.json'})")
    (call,) = [n for n in trace_data(tmp_path / "t.json")["nodes"] if n["kind"] == "call"]
    assert len(call["attempts"]) == 3  # of the 6 the preset allows


def test_cli_a_run_stopped_by_the_server_exits_4_even_after_a_node_hit_a_limit(tmp_path: Path) -> None:
    def respond(seen: Seen) -> Step:  # a hits the asks-per-step limit and fails; then b's request gets a 401
        question, answers = question_of(seen), subanswers_of(seen)
        if question == "root":
            return Step.ask("b") if answers else Step.ask("a")
        if question == "a":
            return Step.ask(*(f"part {i}" for i in range(9)))  # one more than --max-asks allows, every time
        return Step.error(401, "key revoked")

    with OpenAIServer(respond) as server:
        trace = tmp_path / "t.json"
        done = cli(tmp_path, "root", "--policy", "llm", "--model", "m", "--base-url", server.base_url, "--depth", "2",
                   "--max-asks", "8", "--trace", str(trace))
    nodes = {n["question"]: n for n in trace_data(trace)["nodes"] if n["kind"] == "workspace"}
    assert nodes["a"]["limit"] == "max_asks_per_step" and nodes["a"]["status"] == "error"
    assert done.returncode == 4, done.stderr  # the server stopped the run: not "stopped by a limit" (5)
    assert done.stderr.startswith("hch: error: the run failed: ") and "rejected the API key (401" in done.stderr


@pytest.mark.anyio
async def test_a_wrong_model_name_on_a_server_that_ignores_it_is_caught_by_its_model_list() -> None:
    with OpenAIServer(hch_responder(TREE, combine), models={LLAMA_FILE}, ignore_model=True) as server:
        with pytest.raises(RunAborted, match=rf"does not serve model 'gpt-4o': its /models lists '{LLAMA_FILE}'"):
            await run("What is 1+2+3+4?", policy(server, model="gpt-4o"))
        assert server.requests == []
        for name in (LLAMA_FILE, "qwen2.5-0.5b-instruct-q4_k_m.gguf", "qwen2.5-0.5b-instruct-q4_k_m"):
            assert (await run("What is 1+2+3+4?", policy(server, model=name))).answer == "10"


@pytest.mark.anyio
async def test_the_model_list_is_read_once_per_policy_and_skipped_where_absent_or_unwanted(tmp_path: Path) -> None:
    with OpenAIServer(hch_responder(TREE, combine), models={"m"}) as server:
        chosen = policy(server, model="m")
        await run("What is 1+2+3+4?", chosen)
        await run("What is 3+4?", chosen)
        assert server.model_lookups == 1 and len(server.requests) == 5
    unwanted = tmp_path / "proxy.yaml"
    unwanted.write_text("system: s\ntemplate: 'Your question: ${question}'\ncheck_model: false\n")
    with OpenAIServer(hch_responder(TREE, combine), models={"m"}, ignore_model=True) as server:
        assert (await run("What is 3+4?", policy(server, model="routed", preset=str(unwanted)), depth=0)).answer == "7"
        assert server.model_lookups == 0
    with OpenAIServer(hch_responder(TREE, combine)) as server:  # no /v1/models at all: a 404, skipped silently
        assert (await run("What is 3+4?", policy(server, model="anything"), depth=0)).answer == "7"


@pytest.mark.parametrize(
    ("model", "listed", "expected"),
    [
        ("llama3.2", ["llama3.2:latest"], True),  # Ollama's default tag
        ("llama3.2:1b", ["llama3.2:latest"], False),
        ("qwen", ["/models/qwen.gguf"], True),
        ("gpt-4o-mnii", ["gpt-4o-mini", "gpt-4o"], False),
    ],
)
def test_model_listed(model: str, listed: list[str], expected: bool) -> None:
    assert model_listed(model, listed) is expected


@pytest.mark.anyio
async def test_a_reask_quotes_a_bounded_excerpt_of_a_long_invalid_reply(server: OpenAIServer) -> None:
    rambling = '{"kind": "answer", "questions": [], "answer": "' + "and then " * 2000  # cut off at max_tokens
    server.inject(lambda seen: question_of(seen) == "What is 1+2?", Step.truncated(rambling), Step.truncated(rambling))
    result = await run("What is 1+2+3+4?", policy(server))
    assert result.answer == "10"
    exchanges = call_of(result.trace, "What is 1+2?")["raw"]["exchanges"]
    first, last = exchanges[0]["request"]["messages"], exchanges[2]["request"]["messages"]
    quoted = [m["content"] for m in last if m["role"] == "assistant"]
    assert len(quoted) == 2 and all(q.startswith(rambling[:REASK_EXCERPT]) for q in quoted)
    assert all(len(q) < REASK_EXCERPT + 60 and "more characters not shown" in q for q in quoted)
    grown = len(json.dumps(last)) - len(json.dumps(first))
    assert grown < 2 * (REASK_EXCERPT + 600) < len(rambling)  # bounded, not max_tokens per re-ask


# -- concurrency ---------------------------------------------------------------------------

WIDE: dict[str, list[str] | str] = {"root": [f"part {i}" for i in range(4)]}
WIDE.update({f"part {i}": [f"part {i}.{j}" for j in range(4)] for i in range(4)})
WIDE.update({f"part {i}.{j}": "1" for i in range(4) for j in range(4)})


@pytest.mark.anyio
async def test_the_concurrency_limit_holds_on_a_deep_wide_tree_without_deadlock() -> None:
    # 16 leaves pending at once under 4 waiting parents under a waiting root, with 3 slots; the
    # server holds each request until 3 are in flight, so the limit is reached, never exceeded.
    with OpenAIServer(hch_responder(WIDE, combine), hold_until=3, hold_timeout=0.5) as server:
        result = await run("root", policy(server, max_concurrency=3), depth=3)
    assert (result.answer, result.status) == ("16", "ok")
    assert len(server.requests) == 1 + 1 + 4 * 2 + 16
    assert server.max_in_flight == 3


@pytest.mark.anyio
async def test_without_a_tight_limit_more_requests_fly_at_once() -> None:
    # the control for the test above: the measurement does see more than 3 when allowed
    with OpenAIServer(hch_responder(WIDE, combine), hold_until=8, hold_timeout=0.5) as server:
        result = await run("root", policy(server, max_concurrency=50), depth=3)
    assert result.answer == "16"
    assert server.max_in_flight > 3


# -- configuration -------------------------------------------------------------------------


def test_configuration_comes_from_arguments_then_environment_then_preset() -> None:
    env = {"HCH_MODEL": "env-model", "OPENAI_BASE_URL": "https://llm.example.com/v1/", "OPENAI_API_KEY": "sk-env"}
    chosen = LLMPolicy(environ=env)
    assert (chosen.model, chosen.base_url) == ("env-model", "https://llm.example.com/v1")
    chosen = LLMPolicy(model="arg-model", base_url="http://localhost:11434/v1", environ=env)
    assert (chosen.model, chosen.base_url) == ("arg-model", "http://localhost:11434/v1")
    assert LLMPolicy(model="gpt-4o-mini", environ={"OPENAI_API_KEY": "sk"}).price is not None  # preset price table


def test_missing_model_or_key_says_how_to_set_it() -> None:
    with pytest.raises(LLMConfigError, match="pass --model NAME, set HCH_MODEL"):
        LLMPolicy(environ={"OPENAI_API_KEY": "sk"})
    with pytest.raises(LLMConfigError, match=r"no API key for https://api\.openai\.com/v1: set OPENAI_API_KEY"):
        LLMPolicy(model="m", environ={})
    local = LLMPolicy(model="llama3.2", base_url="http://localhost:11434/v1", environ={})
    assert local._api_key == NO_KEY  # Ollama, llama.cpp and vLLM need no key by default
    with pytest.raises(LLMConfigError, match="must look like http"):
        LLMPolicy(model="m", base_url="localhost:8000", environ={})


def test_the_cli_factory_checks_its_options(tmp_path: Path) -> None:
    base = {"model": "m", "base_url": "http://127.0.0.1:9/v1"}
    assert isinstance(make_policy("llm", base), LLMPolicy)
    tuned = make_policy("llm", {**base, "temperature": 0.7, "seed": 3})
    assert tuned.settings["temperature"] == 0.7 and tuned.settings["seed"] == 3  # type: ignore[attr-defined]
    assert tuned.fingerprint != make_policy("llm", {**base, "temperature": 0.7, "seed": 4}).fingerprint
    with pytest.raises(LLMConfigError, match="--max-cost needs a price for model 'm'"):
        make_policy("llm", {**base, "max_cost": 1.0})
    assert make_policy("llm", {**base, "max_cost": 1.0, "price": "1,2"}).price == Price(input=1, output=2)  # type: ignore[attr-defined]
    with pytest.raises(LLMConfigError, match="two presets given"):
        make_policy("llm:llm-default", {**base, "preset": "other"})


def test_fingerprint_has_model_server_and_settings_but_never_the_key() -> None:
    env: dict[str, str] = {}
    one = LLMPolicy(model="m", base_url="http://127.0.0.1:8000/v1?key=pw", api_key=KEY, environ=env)
    assert KEY not in one.fingerprint and "pw" not in one.fingerprint and KEY not in repr(one)  # user:pw@ is refused
    assert one.fingerprint.startswith("llm:m@127.0.0.1#")
    same = LLMPolicy(model="m", base_url="http://127.0.0.1:8000/v1", api_key="other", environ=env)
    assert same.fingerprint == one.fingerprint  # the key changes nothing the model does
    assert LLMPolicy(model="n", base_url="http://127.0.0.1:8000/v1", environ=env).fingerprint != one.fingerprint
    assert LLMPolicy(model="m", base_url="http://127.0.0.1:8001/v1", environ=env).fingerprint != one.fingerprint
    hotter = LLMPolicy(model="m", base_url="http://127.0.0.1:8000/v1", settings={"temperature": 1.0}, environ=env)
    assert hotter.fingerprint != one.fingerprint
    assert safe_url("http://user:pw@127.0.0.1:8000/v1/?key=x#f") == "http://127.0.0.1:8000/v1"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"kind": "answer", "questions": [], "answer": " 42 "}', Answer(answer="42")),
        ('```json\n{"kind": "ask", "questions": ["a", " "], "answer": ""}\n```', Ask(questions=["a"])),
        ('Sure! {"kind": "answer", "answer": "x"} Hope this helps.', Answer(answer="x")),
    ],
)
def test_parse_action_is_tolerant_of_wrapping(content: str, expected: Ask | Answer) -> None:
    assert parse_action(content, "stop") == expected


def test_a_refusal_is_invalid_output() -> None:
    with pytest.raises(ValueError, match="the model refused: no"):
        parse_action(None, "stop", refusal="no")


@pytest.mark.anyio
async def test_prompt_and_json_object_modes_send_no_schema(server: OpenAIServer, tmp_path: Path) -> None:
    for output, expected in (("prompt", None), ("json_object", {"type": "json_object"})):
        preset = tmp_path / f"{output}.yaml"
        preset.write_text(f"system: s\ntemplate: 'Your question: ${{question}}'\noutput: {output}\n")
        server.requests.clear()
        result = await run("What is 1+2?", policy(server, preset=str(preset)), depth=0)
        assert result.answer == "3"
        assert server.requests[0].body.get("response_format") == expected


def test_policy_errors_carry_what_was_spent() -> None:
    error = PolicyError("x")
    assert error.usage is None and error.attempts == [] and error.raw is None


# -- copies: a vote's copies and independent copies sample with different seeds ----------------

TWICE: dict[str, list[str] | str] = {"What is 1+2, twice?": ["What is 1+2?", "What is 1+2?"], "What is 1+2?": "3"}


@pytest.mark.anyio
async def test_a_votes_copies_send_different_seeds_and_share_one_concurrency_limit() -> None:
    from hch.policies.vote import VotePolicy

    with OpenAIServer(hch_responder(TREE, combine), api_key=KEY, models={"test-model"}) as running:
        base = policy(running, settings={"temperature": 0.8, "seed": 7}, max_concurrency=2)
        voted = VotePolicy(3, base)
        result = await run("What is 1+2?", voted, depth=0)  # type: ignore[arg-type]
        seeds = [seen.body["seed"] for seen in running.requests]
    assert result.answer == "3" and len(seeds) == 3 and len(set(seeds)) == 3 and 7 not in seeds
    assert all(copy._home is base for copy in voted.copies)  # type: ignore[attr-defined]
    assert result.summary.invocations == 3 and [d["invocations"] for d in calls(result.trace)] == [3]
    again = VotePolicy(3, policy(running, settings={"temperature": 0.8, "seed": 7}))
    assert [c.sampling_seed(WS0) for c in again.copies] == [c.sampling_seed(WS0) for c in voted.copies]  # type: ignore[attr-defined]
    assert policy(running, settings={"seed": 7}).sampling_seed(WS0) is None  # alone and merged: the preset's seed


WS0 = Workspace(question="What is 1+2?", depth=0)


@pytest.mark.anyio
async def test_independent_copies_send_different_seeds_for_the_same_subquestion() -> None:
    def seeds_of(copies: str) -> list[object]:
        return [seen.body.get("seed") for seen in requests[copies] if question_of(seen) == "What is 1+2?"]

    requests: dict[str, list[Seen]] = {}
    for copies in ("independent", "merged"):
        with OpenAIServer(hch_responder(TWICE, combine), api_key=KEY, models={"test-model"}) as running:
            result = await run("What is 1+2, twice?", policy(running, settings={"temperature": 1.0}), depth=1,
                               copies=copies)
            requests[copies] = list(running.requests)
        assert result.answer == "6"
    independent, merged = seeds_of("independent"), seeds_of("merged")
    assert len(independent) == 2 and len(set(independent)) == 2 and None not in independent
    assert merged == [None]  # merged: one copy, one request, the preset's settings as they were


@pytest.mark.anyio
async def test_a_vote_over_a_dead_server_stops_the_run_through_the_breaker_its_copies_share(tmp_path: Path) -> None:
    from hch.policies.vote import VotePolicy

    chosen = LLMPolicy(model="m", base_url=refused_url(), retry=FAST, request_timeout=5.0, environ={})
    voted = VotePolicy(3, chosen)
    assert all(copy._server is chosen._server for copy in voted.copies)  # type: ignore[attr-defined]
    with pytest.raises(RunAborted, match="is unreachable: 3 requests in a row got no reply"):  # not a node's error
        await run("What is 1+2+3+4?", voted, trace_path=tmp_path / "t.json")  # type: ignore[arg-type]
    trace = trace_data(tmp_path / "t.json")
    assert trace["graph"]["status"] == "interrupted" and "is unreachable" in trace["graph"]["error"]
    assert len([n for n in trace["nodes"] if n["kind"] == "workspace"]) == 1  # the root's vote: nothing after it


def test_copies_of_copies_of_an_llm_have_seeds_of_their_own() -> None:
    from hch.policies.vote import VotePolicy

    base = LLMPolicy(model="m", base_url="http://127.0.0.1:9/v1", settings={"seed": 1})
    nested = VotePolicy(2, VotePolicy(3, base))
    seeds = [leaf.sampling_seed(WS0) for inner in nested.copies for leaf in inner.copies]  # type: ignore[attr-defined]
    assert len(set(seeds)) == 6
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"price": (0.15, 0.6)}, r"price must be a Price\(input=\.\.\., output=\.\.\.\) or the text 'INPUT,OUTPUT"),
        ({"price": "0.15"}, "is not INPUT,OUTPUT"),
        ({"max_concurrency": "8"}, "max concurrency must be an integer of at least 1, not '8'"),
        ({"max_concurrency": 0}, "at least 1, not 0"),
        ({"retry": {"max_attempts": 2}}, "retry must be a hch.policies.presets.Retry"),
        ({"request_timeout": -1}, "request timeout must be a number of seconds above 0, not -1"),
        ({"model": 3}, "model must be a str, not 3"),
        ({"base_url": 5}, "base_url must be a str, not 5"),
        ({"api_key": 3}, "api_key must be a str, not 3"),
        ({"preset": 3}, "preset must be a str or Preset, not 3"),
        ({"settings": "temperature=0"}, "settings must be a Mapping, not 'temperature=0'"),
    ],
)
def test_constructor_arguments_are_checked_at_construction(arguments: dict[str, object], message: str) -> None:
    from hch.errors import HchError  # LLMConfigError, or PresetError for unparseable price text

    with pytest.raises(HchError, match=message):
        LLMPolicy(**{"model": "m", "base_url": "http://127.0.0.1:9/v1", **arguments})  # type: ignore[arg-type]


# -- credentials never ride in a base URL (issue 14, class 6) ---------------------------------------

CREDENTIAL_URLS = [
    "http://user:secret@127.0.0.1:8000/v1", "https://user:secret@api.example.com/v1", "http://:secret@localhost/v1",
    "http://user@localhost:8000/v1", "http://us%65r:s%40cret@127.0.0.1/v1",
]


@pytest.mark.parametrize("url", CREDENTIAL_URLS)
def test_a_base_url_with_credentials_is_refused_and_never_echoed(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from hch.policies.llm import LLMConfigError, LLMPolicy

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    for source in ("argument", "environment"):
        if source == "environment":
            monkeypatch.setenv("OPENAI_BASE_URL", url)
        with pytest.raises(LLMConfigError, match="holds credentials") as info:
            LLMPolicy(model="m", base_url=url if source == "argument" else None)
        assert "secret" not in str(info.value) and "user" not in str(info.value).split("(")[0]
        assert "\n" not in str(info.value)


def test_the_cli_refuses_a_base_url_with_credentials_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hch", "ask", "What is 1+1?", "--policy", "llm", "--model", "m",
         "--base-url", "http://alice:hunter2@127.0.0.1:9/v1", "--trace", str(tmp_path / "t.json")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert done.returncode != 0 and done.stderr.count("\n") == 1 and "holds credentials" in done.stderr
    assert "hunter2" not in done.stderr and "alice" not in done.stderr and not (tmp_path / "t.json").exists()


@pytest.mark.parametrize("url", ["http://localhost:port/v1", "http://localhost:99999/v1", "ftp://localhost/v1",
                                 "localhost"])
def test_a_base_url_that_is_not_http_is_one_line(url: str) -> None:
    from hch.policies.llm import LLMConfigError, LLMPolicy

    with pytest.raises(LLMConfigError, match="must look like"):
        LLMPolicy(model="m", base_url=url)


# -- sizes are bounded where they enter (issue 14, class 1) ------------------------------------------

HUNDRED_MB = 100 << 20


@pytest.mark.anyio
@pytest.mark.parametrize("reply", [
    Step(huge=HUNDRED_MB), Step(huge=HUNDRED_MB, announce=False), Step(huge=HUNDRED_MB, gzip=True),
    Step(huge=HUNDRED_MB, status=500, announce=False), Step(huge=HUNDRED_MB, status=400),
], ids=["announced", "chunked", "gzip bomb", "a 500's body", "a 400's body"])
async def test_a_reply_too_large_fails_its_node_unread_and_unretried(server: OpenAIServer, reply: Step) -> None:
    from hch.policies.llm import MAX_REPLY_BYTES

    server.inject('"What is 1+2?"', reply)
    result = await run("What is 1+2+3+4?", policy(server))
    leaf = call_of(result.trace, "What is 1+2?")
    assert leaf["error"] is not None and "the server's reply is too large" in leaf["error"]
    assert len(leaf["attempts"]) == 1 and leaf["attempts"][0]["outcome"] == "failed"  # the same again: no retry
    assert call_of(result.trace, "What is 3+4?")["output"]["answer"] == "7"  # the rest of the run went on
    huge = next(seen for seen in server.requests if seen.step is reply)
    if not reply.gzip:
        assert huge.sent < HUNDRED_MB // 2  # the client stopped reading: a 100 MB body was never held
    assert MAX_REPLY_BYTES < HUNDRED_MB // 4


@pytest.mark.anyio
@pytest.mark.parametrize(("content", "error"), [
    (json.dumps({"kind": "ask", "questions": ["q?"] * 5000, "answer": ""}), "the ask holds 5,000 subquestions"),
    (json.dumps({"kind": "ask", "questions": ["x" * 30_000], "answer": ""}), "subquestion 1 is 30,000 characters"),
    (json.dumps({"kind": "answer", "questions": [], "answer": "y" * 1_000_001}), "the answer is 1,000,001 characters"),
    ("[" * 100_000 + "]" * 100_000, "nests JSON too deeply"),
], ids=["5000 questions", "a 30,000-character question", "a 1 MB answer", "deep nesting"])
async def test_an_action_too_large_to_use_is_reasked_then_fails_its_node(
    server: OpenAIServer, content: str, error: str
) -> None:
    server.inject(lambda seen: question_of(seen) == "What is 1+2?", *[Step(content=content)] * 3)
    result = await run("What is 1+2+3+4?", policy(server))
    leaf = call_of(result.trace, "What is 1+2?")
    assert [a["outcome"] for a in leaf["attempts"]] == ["reask", "reask", "failed"]
    assert error in leaf["error"] and leaf["output"] is None
    reask = leaf["raw"]["exchanges"][1]["request"]["messages"]
    assert len(reask[-2]["content"]) < 1000  # only an excerpt of the reply goes back into the prompt


# -- Retry-After of any value: bounded by the retry budget, never a hang (issue 14) --------------------

@pytest.mark.anyio
@pytest.mark.parametrize(("headers", "retried"), [
    ({"retry-after": "nan"}, True), ({"retry-after": "-5"}, True), ({"retry-after": "garbage"}, True),
    ({"retry-after": "Mon, 99 Foo 2020 99:99:99 GMT"}, True), ({"retry-after-ms": "-1"}, True),
    ({"retry-after-ms": "NaN"}, True), ({"retry-after": "0.01"}, True),
    ({"retry-after": "inf"}, False), ({"retry-after": "Infinity"}, False), ({"retry-after": "1e308"}, False),
    ({"retry-after": "9" * 400}, False), ({"retry-after-ms": "inf"}, False), ({"retry-after": "3600"}, False),
    ({"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}, False),
])
async def test_any_retry_after_is_bounded_by_the_retry_budget(
    server: OpenAIServer, tmp_path: Path, headers: dict[str, str], retried: bool
) -> None:
    server.inject('"What is 1+2?"', Step(status=429, message="slow down", headers=headers))
    result = await run("What is 1+2+3+4?", policy(server), trace_path=tmp_path / "t.json")
    leaf = call_of(result.trace, "What is 1+2?")
    waits = [a["wait"] for a in leaf["attempts"] if a["wait"] is not None]
    assert all(0 <= wait <= FAST.max_seconds for wait in waits), waits
    if retried:
        assert leaf["output"] == {"kind": "answer", "answer": "3", "guess": False}
    else:  # never slept: the node fails at once, saying why
        assert waits == [] and len(leaf["attempts"]) == 1
        assert "the server asked to wait" in leaf["error"] and "beyond the retry budget" in leaf["error"]
    assert hch_load(tmp_path / "t.json")  # the trace is strict JSON: no inf or nan in it


def hch_load(path: Path) -> bool:
    for line in path.read_text().splitlines():  # schema 2: one record per line
        json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in the trace"))
    return True

# -- budgeted HCH ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_budgeted_run_shows_the_calls_left_and_the_model_gives_shares() -> None:
    def respond(seen: Seen) -> Step:
        question, answers = question_of(seen), subanswers_of(seen)
        if question != "What is 1+2+3+4?":
            return Step.answer({"What is 1+2?": "3", "What is 3+4?": "7"}[question])
        if answers:
            return Step.answer(str(sum(map(int, answers))))
        action = {"kind": "ask", "questions": ["What is 1+2?", "", "What is 3+4?"], "answer": "",
                  "budgets": [3, 9, 1]}  # the empty question is dropped, and its budget with it
        return Step(content=json.dumps(action))

    with OpenAIServer(respond, api_key=KEY, models={"test-model"}) as budgeted:
        result = await run("What is 1+2+3+4?", policy(budgeted), budget=10)
        first = budgeted.requests[0]
        schema = first.body["response_format"]["json_schema"]["schema"]
        assert schema["properties"]["budgets"]["type"] == ["array", "null"] and "budgets" in schema["required"]
        prompt = first.users[0]
        assert "Call budget: 9 more actions" in prompt and "adding up to at most 8" in prompt
        leaf = next(s for s in budgeted.requests if question_of(s) == "What is 3+4?")
        assert "Call budget: 0. This is your last action" in leaf.users[0]
        assert "You may not ask subquestions: your call budget is spent" in leaf.users[0]
    assert (result.answer, result.status) == ("10", "ok")
    trace = result.trace
    assert [(e["budget"], e["returned"]) for _, e in trace.children(trace.root)] == [(3, 2), (1, 0)]
    assert trace.graph.nodes[trace.root]["spent"] == 4

    with OpenAIServer(respond, api_key=KEY, models={"test-model"}) as plain_server:  # no budget: as before
        await run("What is 1+2+3+4?", policy(plain_server))
        body = plain_server.requests[0].body
        assert "budgets" not in body["response_format"]["json_schema"]["schema"]["properties"]
        assert "Call budget" not in plain_server.requests[0].users[0]


@pytest.mark.anyio
async def test_shares_that_are_not_whole_calls_are_reasked() -> None:
    def respond(seen: Seen) -> Step:
        if question_of(seen) == "What is 1+2+3+4?" and not subanswers_of(seen) and len(seen.users) == 1:
            return Step(content=json.dumps({"kind": "ask", "questions": ["What is 1+2?"], "answer": "",
                                            "budgets": [0]}))
        return Step.answer("3")

    with OpenAIServer(respond, api_key=KEY, models={"test-model"}) as budgeted:
        result = await run("What is 1+2+3+4?", policy(budgeted), budget=5)
        assert "whole numbers of calls" in budgeted.requests[1].users[-1]
    assert result.answer == "3"
