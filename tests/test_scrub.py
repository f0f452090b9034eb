"""Credentials never leave the LLM policy: the scrubber on its own, and a real run against a server on
127.0.0.1 that echoes the request's headers (and other credentials) in answers, errors and bodies."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml
from helpers import trace_data

from hch.cli import main
from hch.policies.scrub import MASK, Scrubber
from hch.testing.openai_server import OpenAIServer, Seen, Step, question_of, subanswers_of

KEY = "sk-echo-SECRET-0123456789abcdef"
ENV_KEY = "sk-env-OTHER-9876543210fedcba"
BASIC = base64.b64encode(b"alice:hunter2").decode()
LEAKS = (
    f"Proxy-Authorization: Basic {BASIC}; retry at /v1/chat?api_key=hunter3&token=tok-SECRET-9 "
    "or http://bob:hunter4@proxy.example/v1; api-key: azure-SECRET-5; x-api-key=goog-SECRET-6"
)
SECRETS = [KEY, base64.b64encode(KEY.encode()).decode().rstrip("="), BASIC, "hunter2", "hunter3", "tok-SECRET-9",
           "hunter4", "azure-SECRET-5", "goog-SECRET-6", ENV_KEY]


# -- the scrubber -------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "kept"), [
    (f"Incorrect API key provided: {KEY}.", "Incorrect API key provided: ***."),
    (f"as base64: {base64.b64encode(KEY.encode()).decode()}", "as base64: ***"),
    (f"url-quoted: {KEY.replace('-', '%2D')}", None),
    ("{'authorization': 'Bearer sk-live-zzzz', 'x': 1}", "{'authorization': 'Bearer ***', 'x': 1}"),
    ('{"Authorization": "Basic dXNlcjpwYXNz"}', '{"Authorization": "Basic ***"}'),
    ("Authorization: token ghp_abcdef123", "Authorization: token ***"),
    ("proxy-authorization=Zm9vOmJhcg==", "proxy-authorization=***"),
    ("api-key: abcdefg123", "api-key: ***"),
    ('"api_key": "abcdefg123"', '"api_key": "***"'),
    ("X-Api-Key=QQQQQQ", "X-Api-Key=***"),
    ("no route /v1?key=topsecret", "no route /v1?key=***"),
    ("GET /x?a=1&api_key=zzz&b=2", "GET /x?a=1&api_key=***&b=2"),
    ("?token=t0k&access_token=a1&signature=s2", "?token=***&access_token=***&signature=***"),
    ("http://alice:hunter2@host/v1 and https://tok@h2/x", "http://***@host/v1 and https://***@h2/x"),
    ("bearer abcd.efgh-ijk", "bearer ***"),
    ("Cookie: session=hunter2; theme=dark", "Cookie: ***"),
    ("set-cookie: sid=tok-SECRET-9; Path=/\nnext", "set-cookie: ***\nnext"),
    ('{"cookie": "sid=hunter3"}', None),
    ('Proxy-Authorization: Digest username="u", response="abc123def456"', None),
    (f"{ENV_KEY} here", "*** here"),
])
def test_every_credential_form_is_replaced(text: str, kept: str | None) -> None:
    scrubbed = Scrubber([KEY, ENV_KEY]).text(text)
    if kept is not None:
        assert scrubbed == kept
    extra = ["topsecret", "zzzz", "ghp_abcdef123", "QQQQQQ", "abc123def456"]
    assert not any(secret in scrubbed for secret in [*SECRETS, *extra])


@pytest.mark.parametrize("text", [
    "the output token limit was reached", "The Bearer of bad news", "key=3 and token=5 in prose",
    "an authorization form", "What is the sum of 3, 1, 4?", "see http://example.com/path?page=2",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert Scrubber([KEY]).text(text) == text


def test_data_is_scrubbed_through_and_credential_fields_are_masked_whatever_their_value() -> None:
    scrubbed = Scrubber([KEY]).data({
        "headers": {"Authorization": "x", "API-Key": "y", "cookie": "z", "other": f"has {KEY}"},
        "list": [f"Bearer {KEY}", 3, None, ("tuple", "?key=v")],
        "logprobs": {"content": [{"token": "Hello", "logprob": -0.1}]},
    })
    assert scrubbed == {
        "headers": {"Authorization": MASK, "API-Key": MASK, "cookie": MASK, "other": "has ***"},
        "list": ["Bearer ***", 3, None, ["tuple", "?key=***"]],
        "logprobs": {"content": [{"token": "Hello", "logprob": -0.1}]},  # a sampled token is no credential
    }


def test_known_only_replaces_the_secrets_and_short_ones_are_not_hunted_everywhere() -> None:
    scrubber = Scrubber([KEY, "abc", None, ""])
    assert scrubber.known(f"Bearer zzzz {KEY} abc") == "Bearer zzzz *** abc"


# -- a run whose server echoes what it was sent -----------------------------------------------

ROOT = "What is 1+2+3+4?"


def echoing(seen: Seen) -> Step:
    """Every reply carries the request's headers (the key among them) and other credentials."""
    sent = json.dumps(seen.headers)
    question = question_of(seen)
    if question == ROOT:
        if not subanswers_of(seen):
            return Step.ask("What is 1+2?", "What is 3+4?", "What is 5+6?", "What is 7+8?")
        return Step.answer(f"done; you sent {sent}")
    if question == "What is 1+2?":  # a 400 fails the node: the error message is written down
        return Step.error(400, f"invalid request; headers {sent}; {LEAKS}")
    if question == "What is 3+4?":  # an answer echoing the key itself
        return Step.answer(f"7 (sent with {seen.headers['authorization']})")
    if question == "What is 5+6?":  # invalid output, re-asked, then the node fails
        return Step(content=f"not JSON {sent} {LEAKS}")
    return Step.error(500, f"overloaded; {sent}; {LEAKS}")  # retried until the budget, then fails


def test_no_credential_a_server_echoes_reaches_a_file_stderr_or_an_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    (tmp_path / "policies").mkdir()
    default = yaml.safe_load((Path(__file__).parents[1] / "policies" / "llm-default.yaml").read_text())
    retry = {"max_attempts": 2, "max_seconds": 10, "initial_wait": 0.01, "max_wait": 0.02, "jitter": 0}
    (tmp_path / "policies" / "echo.yaml").write_text(yaml.safe_dump({**default, "max_reasks": 1, "retry": retry}))
    with OpenAIServer(echoing, api_key=KEY, models={"m"}) as server:
        with pytest.raises(SystemExit):
            main(["ask", ROOT, "--policy", "llm:echo", "--model", "m", "--base-url", server.base_url, "--depth",
                  "1", "--trace", "t.json", "--json"])
        assert any(seen.headers.get("authorization") == f"Bearer {KEY}" for seen in server.requests)
    out, err = capsys.readouterr()
    assert json.loads(out)["answer"].startswith("done")
    for fmt in ("json", "graphml", "gexf", "dot", "jsonl"):
        with pytest.raises(SystemExit) as done:
            main(["export", "t.json", "--format", fmt])
        assert done.value.code == 0
    with pytest.raises(SystemExit):
        main(["view", "t.json"])
    for node in range(12):
        with pytest.raises(SystemExit):
            main(["show", "t.json", "--node", str(node)])
    shown, shown_err = capsys.readouterr()
    trace = trace_data(tmp_path / "t.json")
    errors = [n.get("error") for n in trace["nodes"] if n.get("error")]
    assert len(errors) >= 3 and MASK in json.dumps(errors)  # the echoes were there, and were scrubbed
    written = [path for path in tmp_path.rglob("*") if path.is_file() and path.suffix != ".yaml"]
    assert {p.suffix for p in written} >= {".json", ".sqlite", ".graphml", ".gexf", ".dot", ".jsonl", ".html"}
    for where, data in [*((str(p), p.read_bytes()) for p in written), ("stdout", (out + shown).encode()),
                        ("stderr", (err + shown_err).encode())]:
        for secret in SECRETS:
            assert secret.encode() not in data, (where, secret)


@pytest.mark.anyio
async def test_the_key_from_the_variable_the_preset_names_is_scrubbed_as_well() -> None:
    from hch.policies import presets
    from hch.policies.llm import LLMPolicy
    from hch.run.engine import answer

    preset = presets.load(presets.DEFAULT_PRESET).model_copy(update={"api_key_env": "MY_KEY", "max_reasks": 0})
    with OpenAIServer(lambda seen: Step.answer(f"the header was {seen.headers['authorization']}")) as server:
        policy = LLMPolicy(model="m", base_url=server.base_url, preset=preset,
                           environ={"MY_KEY": ENV_KEY, "OPENAI_API_KEY": KEY})
        result = await answer("What is 1+1?", depth=0, policy=policy)
    assert result.answer == "the header was Bearer ***"
    dumped = json.dumps([data for _, data in result.trace.calls()])
    assert ENV_KEY not in dumped and "Bearer ***" in dumped


def test_a_token_in_the_base_urls_query_is_not_echoed_back_from_the_servers_404(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with OpenAIServer(echoing, api_key=KEY, models={"m"}) as server, pytest.raises(SystemExit) as done:
        main(["ask", ROOT, "--policy", "llm", "--model", "m", "--base-url", f"{server.base_url}?api_key=hunter3",
              "--trace", "t.json"])
    out, err = capsys.readouterr()
    assert done.value.code == 4 and "no route" in err and "api_key=***" in err and err.count("\n") == 1
    for data in (out, err, (tmp_path / "t.json").read_text()):
        assert "hunter3" not in data and KEY not in data
