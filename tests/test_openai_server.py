"""The scripted OpenAI-compatible server, exercised through the real `openai` client over a socket."""

from __future__ import annotations

import json
import threading

import openai
import pytest

from hch.testing.openai_server import (
    OpenAIServer,
    Seen,
    Step,
    hch_responder,
    llama_cpp_python,
    question_of,
    subanswers_of,
)

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Your question: \"hi\""}]


def client(server: OpenAIServer, key: str = "k", timeout: float = 5.0) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=timeout)


def test_completion_with_usage_finish_reason_and_cached_tokens() -> None:
    with OpenAIServer(lambda seen: Step.answer("blue")) as server:
        first = client(server).chat.completions.create(
            model="m", messages=MESSAGES,  # type: ignore[arg-type]
            response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}},
        )
        second = client(server).chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
    assert json.loads(first.choices[0].message.content or "")["answer"] == "blue"
    assert first.choices[0].finish_reason == "stop"
    assert first.usage is not None and second.usage is not None
    assert first.usage.prompt_tokens > 0 and first.usage.completion_tokens > 0
    assert first.usage.prompt_tokens_details is not None and second.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens == 2 + 4  # the same system prompt (2 words) again
    assert server.requests[0].body["response_format"]["type"] == "json_schema"
    assert [seen.status for seen in server.requests] == [200, 200]
    reported = server.reported_usage()
    assert reported["prompt_tokens"] == first.usage.prompt_tokens + second.usage.prompt_tokens
    assert reported["cached_tokens"] == second.usage.prompt_tokens_details.cached_tokens


@pytest.mark.parametrize(
    ("step", "error", "status"),
    [
        (Step.error(429, retry_after=0.25), openai.RateLimitError, 429),
        (Step.error(500), openai.InternalServerError, 500),
        (Step.error(503), openai.InternalServerError, 503),
        (Step.error(401), openai.AuthenticationError, 401),
        (Step.error(404), openai.NotFoundError, 404),
        (Step(drop=True), openai.APIConnectionError, None),
        (Step(hang=True), openai.APITimeoutError, None),
        (Step(malformed=True), json.JSONDecodeError, 200),
    ],
)
def test_each_fault_reaches_the_client_as_the_real_thing(
    step: Step, error: type[Exception], status: int | None
) -> None:
    with OpenAIServer(hang_seconds=10) as server:
        server.inject("hi", step)
        with pytest.raises(error) as caught:
            client(server, timeout=1.0).chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        assert server.requests[0].status == status
        # the fault was used up: the next request gets the responder's reply
        ok = client(server).chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        assert ok.choices[0].finish_reason == "stop"
    if isinstance(caught.value, openai.RateLimitError):
        headers = caught.value.response.headers
        assert headers["retry-after-ms"] == "250" and headers["retry-after"] == "1"


def test_truncated_output_has_finish_reason_length() -> None:
    with OpenAIServer(lambda seen: Step.truncated()) as server:
        reply = client(server).chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
    assert reply.choices[0].finish_reason == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.choices[0].message.content or "")


def test_api_key_and_model_checks_answer_like_openai() -> None:
    with OpenAIServer(api_key="right", models={"m"}) as server:
        with pytest.raises(openai.AuthenticationError):
            client(server, key="wrong").chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        with pytest.raises(openai.NotFoundError, match="does not exist"):
            client(server, key="right").chat.completions.create(model="x", messages=MESSAGES)  # type: ignore[arg-type]
        client(server, key="right").chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
    assert [seen.status for seen in server.requests] == [401, 404, 200]
    assert server.requests[2].headers["authorization"] == "Bearer right"


def test_injected_faults_only_hit_matching_requests_in_order() -> None:
    other = [{"role": "user", "content": "unrelated"}]
    with OpenAIServer() as server:
        server.inject("hi", Step.error(503), Step.error(500))
        client(server).chat.completions.create(model="m", messages=other)  # type: ignore[arg-type]
        statuses = []
        for _ in range(3):
            try:
                client(server).chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
                statuses.append(200)
            except openai.APIStatusError as exc:
                statuses.append(exc.status_code)
    assert statuses == [503, 500, 200]
    assert server.requests[0].status == 200


def test_delay_and_in_flight_counting_with_a_hold() -> None:
    with OpenAIServer(lambda seen: Step(content="x", delay=0.05), hold_until=3, hold_timeout=5) as server:
        threads = [
            threading.Thread(target=lambda: client(server).chat.completions.create(model="m", messages=MESSAGES))  # type: ignore[arg-type]
            for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert server.max_in_flight == 3  # the hold released them only once all three were in flight
    assert server.in_flight == 0


def test_hch_responder_reads_the_default_template() -> None:
    def seen(text: str) -> Seen:
        return Seen(body={"messages": [{"role": "user", "content": text}]}, headers={})

    responder = hch_responder({"q": ["a", "b"], "a": "1"}, combine=lambda q, answers: "|".join(answers))
    fresh = seen('Your question: "q"\n\nYou have asked no subquestions yet.\n')
    later = seen('Your question: "q"\n<subanswers>\nStep 1:\n  Q1: "a"\n  A1: "1"\n  Q2: "b"\n  A2 (failed): "x"\n')
    assert question_of(later) == "q" and subanswers_of(later) == ["1", "x"]
    first, second, leaf = responder(fresh), responder(later), responder(seen('Your question: "a"\n'))
    assert isinstance(first, Step) and isinstance(second, Step) and isinstance(leaf, Step)
    assert json.loads(first.content or "")["questions"] == ["a", "b"]
    assert json.loads(second.content or "")["answer"] == "1|x"
    assert json.loads(leaf.content or "")["answer"] == "1"
    with pytest.raises(ValueError, match="no 'Your question:' line"):
        question_of(seen("hello"))


# -- the ways of real servers ------------------------------------------------------------------


def test_llama_cpp_python_rejects_json_schema_with_its_500_and_takes_a_schema_in_json_object() -> None:
    with OpenAIServer(llama_cpp_python(lambda seen: Step.answer("ok")), models={"m.gguf"}, ignore_model=True) as server:
        schema = {"type": "object"}
        with pytest.raises(openai.InternalServerError) as caught:
            client(server).chat.completions.create(
                model="m", messages=MESSAGES,  # type: ignore[arg-type]
                response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
            )
        ok = client(server).chat.completions.create(
            model="m", messages=MESSAGES, extra_body={"response_format": {"type": "json_object", "schema": schema}},  # type: ignore[arg-type]
        )
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "internal_server_error" and body["code"] is None
    message = body["message"]
    assert message.startswith("1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format',")
    assert "'input': 'json_schema'" in message and "POST /v1/chat/completions" in message
    assert ok.choices[0].finish_reason == "stop"


def test_llama_server_cut_off_is_its_500_body() -> None:
    with OpenAIServer(lambda seen: Step.llama_server_cut_off()) as server, pytest.raises(
        openai.InternalServerError
    ) as caught:
        client(server).chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.body == {
        "code": 500, "message": "The model produced output that does not match the expected peg-native format",
        "type": "server_error",
    }


def test_models_are_listed_ignored_or_absent() -> None:
    with OpenAIServer(models={"b", "a"}) as server:
        assert [model.id for model in client(server).models.list()] == ["a", "b"]
        with pytest.raises(openai.NotFoundError):
            client(server).chat.completions.create(model="x", messages=MESSAGES)  # type: ignore[arg-type]
        server.ignore_model = True  # llama.cpp: any name is served by the model loaded
        assert client(server).chat.completions.create(model="x", messages=MESSAGES).choices  # type: ignore[arg-type]
        server.list_models = False
        with pytest.raises(openai.NotFoundError):
            client(server).models.list()
    assert server.model_lookups == 1
    with OpenAIServer() as server, pytest.raises(openai.NotFoundError):
        client(server).models.list()


def test_a_crash_drops_the_request_and_refuses_what_follows() -> None:
    with OpenAIServer(lambda seen: Step(crash=True) if len(server.requests) == 2 else Step.answer("x")) as server:
        client(server).chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        with pytest.raises(openai.APIConnectionError):
            client(server).chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        assert server.dead.is_set()
        for _ in range(2):  # dropped while it goes down, refused once it is gone
            with pytest.raises(openai.APIConnectionError):
                client(server).chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
    assert [seen.status for seen in server.requests] == [200, None]
