"""A language model as H, over any OpenAI-compatible chat-completions server.

One call = one workspace shown to the model (system prompt + the preset's rendering) and one
validated action back. Transient failures (429, 408, 409, 5xx, connection errors, timeouts,
garbled bodies) are retried by tenacity with the SDK's own retries off, so every attempt is
visible in the trace; invalid or truncated output is re-asked with the error (quoting a bounded
excerpt of the reply). What cannot heal is not retried: a 500 repeated identically, a request the
server rejects as unsupported (a `json_schema` response format falls back once, for the rest of
the run, to the schema inside `json_object`, as llama.cpp's servers take it), and 401/403/404 or a
model the server does not list, which stop the run at once. Requests with no reply at all in a row
(refused, dropped, or timed out before the server ever replied), counted across all nodes, open a
circuit breaker that stops the run: the server is taken for dead.
A capacity limiter bounds simultaneous requests and is held only around the
HTTP request itself, never while a node waits for its children, so no tree shape can deadlock.
"""

from __future__ import annotations

import contextlib
import copy
import email.utils
import hashlib
import json
import math
import os
import re
import sys
import time
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.lowlevel
import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ValidationError, model_validator
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
    wait_random,
)

from hch.errors import HchError, PolicyError, RunAborted
from hch.policies import presets
from hch.policies.presets import Preset, Price, Retry
from hch.policies.scrub import Scrubber
from hch.run.progress import retrying
from hch.validate import action_problem
from hch.workspace import Answer, Ask, Expand, Reply, Usage, Workspace

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_CONCURRENCY = 8
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "host.docker.internal"})
NO_KEY = "no-key"  # sent to local servers that need no key (Ollama, llama.cpp, vLLM without --api-key)

ACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "kind": {"type": "string", "enum": ["ask", "answer"]},
        "questions": {"type": "array", "items": {"type": "string"}},
        "answer": {"type": "string"},
    },
    "required": ["kind", "questions", "answer"],
    "additionalProperties": False,
}
"""One flat object (no unions), the shape every structured-output implementation accepts."""
POINTER_SCHEMA: dict[str, Any] = {
    **ACTION_SCHEMA,
    "properties": {
        **ACTION_SCHEMA["properties"], "kind": {"type": "string", "enum": ["ask", "answer", "expand"]},
        "pointer": {"type": "string"},
    },
    "required": ["kind", "questions", "answer", "pointer"],
}
"""The schema in pointer mode (`Workspace.pointers`): `expand` shows the content of `pointer`."""

BUDGETED_ACTION_SCHEMA: dict[str, Any] = {
    **ACTION_SCHEMA,
    "properties": {
        **ACTION_SCHEMA["properties"],
        "budgets": {"type": ["array", "null"], "items": {"type": "integer", "minimum": 1}},
    },
    "required": [*ACTION_SCHEMA["required"], "budgets"],
}
"""The schema sent for a workspace of a budgeted run: `budgets` (null: the default share) gives each
subquestion its calls; required but nullable, as strict structured output wants optional keys. Runs
without a budget send `ACTION_SCHEMA`, so their requests (and traces) are as before."""



def schema_for(pointers: bool, budgeted: bool) -> dict[str, Any]:
    """The action schema of a workspace: `ACTION_SCHEMA`, with `expand` in pointer mode and `budgets`
    in a budgeted run (both when both)."""
    if not budgeted:
        return POINTER_SCHEMA if pointers else ACTION_SCHEMA
    if not pointers:
        return BUDGETED_ACTION_SCHEMA
    return {
        **POINTER_SCHEMA,
        "properties": {**POINTER_SCHEMA["properties"], "budgets": BUDGETED_ACTION_SCHEMA["properties"]["budgets"]},
        "required": [*POINTER_SCHEMA["required"], "budgets"],
    }


REASK = (
    "Your reply could not be used: {error}. Reply again with only one JSON object: "
    '{{"kind": "ask", "questions": [...], "answer": ""}} or {{"kind": "answer", "questions": [], "answer": "..."}}.'
)
REASK_POINTERS = REASK.removesuffix(".") + ', or {{"kind": "expand", "questions": [], "answer": "", "pointer": "$1"}}.'
REASK_EXCERPT = 400
"""Characters of an invalid reply quoted back in a re-ask: the prompt grows by a bounded amount,
not by max_tokens, per re-ask."""

FALLBACK = {"json_schema": "json_object_schema"}
"""The output mode taken, for the rest of the run, when the server rejects this one as unsupported."""
OUTPUT_REQUESTS = {
    "json_schema": "a json_schema response_format",
    "json_object_schema": "a json_object response_format with a schema",
    "json_object": "a json_object response_format",
}


MAX_REPLY_BYTES = 16 << 20
"""Longest reply body read from a server (after decompression): a model's action is a few KB, and a
server sending more (a runaway reply, a compression bomb) fails its node before the memory is spent."""


class ReplyTooLarge(openai.OpenAIError):
    """A reply body over `MAX_REPLY_BYTES`; raised while reading it, before more is read."""


class _BoundedClient(openai.DefaultAsyncHttpxClient):
    """The HTTP client, reading every reply body within `MAX_REPLY_BYTES` (decoded, chunk by chunk)."""

    async def send(self, request: Any, *, stream: bool = False, **kwargs: Any) -> Any:
        response = await super().send(request, stream=True, **kwargs)
        if stream:
            return response
        try:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_REPLY_BYTES:
                raise ReplyTooLarge(_too_large(f"announced {int(declared):,} bytes"))
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_REPLY_BYTES:
                    raise ReplyTooLarge(_too_large("sent more"))
        finally:
            await response.aclose()
        dropped = ("content-encoding", "content-length", "transfer-encoding")  # the body is decoded now
        headers = [(name, value) for name, value in response.headers.multi_items() if name.lower() not in dropped]
        rebuilt = type(response)(response.status_code, headers=headers, content=bytes(body), request=request,
                                 extensions=response.extensions)
        with contextlib.suppress(RuntimeError, AttributeError):  # set when the stream closed: keep it
            rebuilt.elapsed = response.elapsed
        return rebuilt


def _too_large(what: str) -> str:
    return (f"the server's reply is too large: it {what}, and at most {MAX_REPLY_BYTES:,} bytes of a reply are "
            "read (lower max_tokens in the preset's settings, or check what the server at this URL is)")


class LLMConfigError(HchError):
    """The LLM policy is not configured well enough to make a request (no model, no key, ...)."""


class InvalidOutput(ValueError):
    """The model's reply is not a usable action; the message is shown to it when re-asking."""


class LLMAction(BaseModel):
    """The action as the model writes it: one flat object."""

    kind: Literal["ask", "answer", "expand"]
    questions: list[str] = []
    answer: str = ""
    pointer: str = ""
    budgets: list[int] | None = None

    @model_validator(mode="after")
    def _complete(self) -> LLMAction:
        if self.kind == "ask" and not [q for q in self.questions if q.strip()]:
            raise ValueError('kind is "ask" but "questions" has no non-empty question')
        if self.kind == "answer" and not self.answer.strip():
            raise ValueError('kind is "answer" but "answer" is empty')
        if self.kind == "expand" and not self.pointer.strip():
            raise ValueError('kind is "expand" but "pointer" is empty')
        if self.kind == "ask" and self.budgets is not None and any(b < 1 for b in self.budgets):
            raise ValueError('"budgets" must be whole numbers of calls, each at least 1 (or null)')
        return self

    def to_action(self, budgeted: bool = False) -> Ask | Answer | Expand:
        """The action; `budgets` only in a budgeted run (kept aligned with the non-empty questions)."""
        if self.kind == "expand":
            return Expand(pointer=self.pointer.strip())
        if self.kind == "ask":
            kept = [i for i, q in enumerate(self.questions) if q.strip()]
            budgets = self.budgets if budgeted else None
            if budgets is not None and len(budgets) == len(self.questions):
                budgets = [budgets[i] for i in kept]
            return Ask(questions=[self.questions[i].strip() for i in kept], budgets=budgets)
        return Answer(answer=self.answer.strip())


class _MalformedBody(Exception):
    """A 2xx reply whose body is not a chat completion (e.g. cut off by a proxy)."""


class _NoAnswer(Exception):
    """Nothing accepted the connection."""


class _Unsupported(Exception):
    """The server rejected the request's output mode (its response_format) as unsupported."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")


class _Server:
    """What a policy learns about its server while it runs, shared by all its nodes (and by copies
    that share the object): the output mode it accepts, whether the model was looked up, and the
    circuit breaker counting failed connections in a row.

    The breaker opens at `retry.max_connection_failures` failures in a row: every request then stops
    the run. Once no call is in progress (the run has stopped) it is half open: the count stays, so
    the next run's first request closes it by getting a reply, or opens it again by failing.
    """

    def __init__(self) -> None:
        self.output: str | None = None
        """The output mode in force after a fallback (None: the preset's)."""
        self.model_checked = False
        """The model was found in the server's list, or the server answered that it has none."""
        self.loop: object = None
        """The event loop `lock` belongs to."""
        self.lock: anyio.Lock | None = None
        """Held while the model is looked up, so one lookup serves all nodes."""
        self.calls = 0
        """Calls in progress."""
        self.answered = False
        """The server has replied to a request (timeouts then no longer count as failed connections)."""
        self.failed_connections = 0
        """Connections that failed in a row (refused or dropped, or timed out before any reply), with
        no reply between."""
        self.dead: str | None = None
        """Why the server is taken for dead (the breaker is open): every request stops the run."""

    def enter(self, loop: object) -> None:
        if self.loop is not loop:
            self.loop, self.lock = loop, anyio.Lock()
        self.calls += 1

    def replied(self) -> None:
        self.answered, self.failed_connections = True, 0

    def leave(self) -> None:
        self.calls -= 1
        if self.calls == 0:
            self.dead = None  # half open


def _check_types(**arguments: object) -> None:
    """An `LLMConfigError` naming the first argument of `LLMPolicy` whose type is wrong (None is the default)."""
    expected: dict[str, tuple[type, ...]] = {
        "model": (str,), "base_url": (str,), "api_key": (str,), "preset": (str, Preset),
        "settings": (Mapping,), "environ": (Mapping,),
    }
    for name, value in arguments.items():
        if value is not None and not isinstance(value, expected[name]):
            kinds = " or ".join(kind.__name__ for kind in expected[name])
            raise LLMConfigError(f"{name} must be a {kinds}, not {value!r}")


class LLMPolicy:
    """H as a chat model. Configuration: arguments, then the environment, then the preset."""

    def __init__(
        self,
        *,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        preset: Preset | str = presets.DEFAULT_PRESET,
        settings: Mapping[str, Any] | None = None,
        price: Price | str | None = None,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        retry: Retry | None = None,
        request_timeout: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        _check_types(model=model, base_url=base_url, api_key=api_key, preset=preset, settings=settings,
                     environ=environ)
        env = os.environ if environ is None else environ
        self.preset_name = preset if isinstance(preset, str) else "<object>"
        self.preset = presets.load(preset) if isinstance(preset, str) else preset
        self.model = model or env.get("HCH_MODEL") or self.preset.model or ""
        if not self.model:
            raise LLMConfigError(
                "no model given for the llm policy: pass --model NAME, set HCH_MODEL, or set model: in the preset"
            )
        self.base_url = (base_url or env.get("OPENAI_BASE_URL") or self.preset.base_url or DEFAULT_BASE_URL).rstrip("/")
        parts = urlsplit(self.base_url)
        check_base_url(self.base_url)
        key = api_key or env.get(self.preset.api_key_env) or ""
        if not key:
            if parts.hostname not in LOCAL_HOSTS:
                raise LLMConfigError(
                    f"no API key for {safe_url(self.base_url)}: set {self.preset.api_key_env} "
                    "(a server on localhost needs none)"
                )
            key = NO_KEY
        self._api_key = key
        self._scrubber = Scrubber([api_key, env.get(self.preset.api_key_env), env.get("OPENAI_API_KEY"),
                                   key if key != NO_KEY else None])
        """Everything this policy writes down (raw records, attempts, errors, actions) passes through it."""
        self.settings = {**self.preset.settings, **(settings or {})}
        if isinstance(price, str):
            price = Price.parse(price)
        if price is not None and not isinstance(price, Price):
            raise LLMConfigError(
                f"price must be a Price(input=..., output=...) or the text 'INPUT,OUTPUT[,CACHED_INPUT]' "
                f"(dollars per million tokens), not {price!r}"
            )
        self.price = price if price is not None else self.preset.prices.get(self.model)
        if not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise LLMConfigError(f"max concurrency must be an integer of at least 1, not {max_concurrency!r}")
        if retry is not None and not isinstance(retry, Retry):
            raise LLMConfigError(f"retry must be a hch.policies.presets.Retry, not {retry!r}")
        if request_timeout is not None and (not isinstance(request_timeout, int | float) or request_timeout <= 0):
            raise LLMConfigError(f"request timeout must be a number of seconds above 0, not {request_timeout!r}")
        self.max_concurrency = max_concurrency
        self.retry = retry or self.preset.retry
        self.request_timeout = request_timeout or self.preset.request_timeout
        self.strict = self.preset.strict if self.preset.strict is not None else parts.hostname == "api.openai.com"
        self._server = _Server()
        _warn_if_timeouts_are_never_retried(self.request_timeout, self.retry)
        self._loop: object = None
        self._client: openai.AsyncOpenAI | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._users = 0
        self.replica_index: str | None = None
        """Which copy of a vote this is (see `replica`; "2.0" for copy 0 of copy 2); None for the policy itself."""
        self._home: LLMPolicy = self  # whose client and concurrency limit this policy uses (a replica: its origin's)

    def replica(self, index: int) -> LLMPolicy:
        """Copy `index` of a vote: the same model and settings, its own sampling seed (sent per request),
        sharing this policy's client and concurrency limit, so k copies send k different requests."""
        clone = copy.copy(self)
        clone.replica_index = str(index) if self.replica_index is None else f"{self.replica_index}.{index}"
        return clone

    def sampling_seed(self, workspace: Workspace) -> int | None:
        """The seed sent for this workspace: derived from the configured seed, the replica index and
        the copy id when there is either (a vote's copy, or `copies="independent"`); else None (the
        settings' own seed, if any, is sent as it is)."""
        if self.replica_index is None and not workspace.copy:
            return None
        parts = [self.settings.get("seed"), self.replica_index, workspace.copy]
        digest = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
        return int(digest[:8], 16) % 2**31

    @classmethod
    def from_options(cls, argument: str | None, options: Mapping[str, Any]) -> LLMPolicy:
        """The policy `--policy llm[:PRESET]` and the CLI's `llm_options` describe."""
        preset = options.get("preset")
        if argument and preset and argument != preset:
            raise LLMConfigError(f"two presets given ({argument!r} in --policy, {preset!r} in --preset); give one")
        settings = {name: options[name] for name in ("temperature", "seed") if options.get(name) is not None}
        policy = cls(
            model=options.get("model"), base_url=options.get("base_url"),
            preset=argument or preset or presets.DEFAULT_PRESET, settings=settings, price=options.get("price"),
            max_concurrency=options.get("max_concurrency") or DEFAULT_CONCURRENCY,
            request_timeout=options.get("request_timeout"),
        )
        if options.get("max_cost") is not None and policy.price is None:
            raise LLMConfigError(
                f"--max-cost needs a price for model {policy.model!r}: pass --price INPUT,OUTPUT "
                "(dollars per million tokens) or add it to the preset's prices"
            )
        return policy

    def __repr__(self) -> str:  # never show the key
        return f"LLMPolicy(model={self.model!r}, base_url={safe_url(self.base_url)!r}, preset={self.preset_name!r})"

    @property
    def fingerprint(self) -> str:
        """Model, server and a hash of everything that shapes the output; never the API key."""
        shaping = {
            "base_url": safe_url(self.base_url), "model": self.model, "preset": self.preset.behaviour_hash,
            "settings": self.settings, "strict": self.strict,
        }
        digest = hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest()[:12]
        host = urlsplit(self.base_url).hostname or "?"
        suffix = f"/copy{self.replica_index}" if self.replica_index is not None else ""
        return f"llm:{self.model}@{host}#{digest}{suffix}"

    # -- one call ----------------------------------------------------------------------------

    @property
    def output(self) -> str:
        """The output mode requests use now: the preset's, or the one fallen back to this run."""
        return self._server.output or self.preset.output

    async def act(self, workspace: Workspace) -> Reply:
        """Show the model the workspace; re-ask invalid output; return the action and its record."""
        self._enter()
        try:
            await self._check_model()
            return await self._act(workspace)
        except PolicyError as exc:  # RunAborted too: what it says and carries is written down
            raise self._scrubbed_error(exc) from None
        except Exception as exc:  # the client's own exceptions may quote the request (headers, URL)
            raise PolicyError(self._scrubber.text(f"{type(exc).__name__}: {exc}")) from None
        finally:
            await self._leave()

    def _scrubbed_error(self, exc: PolicyError) -> PolicyError:
        """`exc` again, its message, record and attempts without credentials."""
        raw = self._scrubber.data(exc.raw, forms=False) if exc.raw is not None else None  # `_raw` scrubbed it
        return type(exc)(self._scrubber.text(str(exc)), usage=exc.usage, raw=raw,
                         attempts=self._scrubbed_attempts(exc.attempts))

    async def _act(self, workspace: Workspace) -> Reply:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": self.preset.system},
            {"role": "user", "content": presets.render(self.preset, workspace)},
        ]
        attempts: list[dict[str, Any]] = []
        exchanges: list[dict[str, Any]] = []
        usage = Usage()
        error = ""
        mode = self.output
        for _ in range(self.preset.max_reasks + 1):
            try:
                mode, body, completion = await self._send_accepted(
                    messages, attempts, self.sampling_seed(workspace), workspace.pointers, workspace.budget is not None
                )
            except (PolicyError, RunAborted) as exc:
                exc.usage, exc.raw, exc.attempts = usage, self._raw(exchanges, self.output), attempts
                raise
            exchanges.append({"request": body, "response": completion.to_dict(mode="json")})
            usage = usage + self._usage(completion)
            choice = completion.choices[0]
            content, finish = choice.message.content, choice.finish_reason
            attempts[-1]["finish_reason"] = finish
            try:
                action = parse_action(content, finish, getattr(choice.message, "refusal", None), workspace.max_asks,
                                      workspace.budget is not None)
            except InvalidOutput as exc:
                error = str(exc)
                attempts[-1]["error"] = f"invalid output: {error}"
                attempts[-1]["outcome"] = "reask"
                messages = [
                    *messages,
                    {"role": "assistant", "content": excerpt(content or "")},
                    {"role": "user", "content": (REASK_POINTERS if workspace.pointers else REASK).format(error=error)},
                ]
                continue
            attempts[-1]["outcome"] = "ok"
            return Reply(action=self._scrubbed_action(action), usage=usage, raw=self._raw(exchanges, mode),
                         attempts=self._scrubbed_attempts(attempts))
        attempts[-1]["outcome"] = "failed"  # invalid again, and no re-ask is left
        raise PolicyError(
            f"the model gave no valid action in {self.preset.max_reasks + 1} tries; last: {error}",
            usage=usage, raw=self._raw(exchanges, mode), attempts=attempts,
        )

    async def _send_accepted(
        self, messages: list[dict[str, Any]], attempts: list[dict[str, Any]], seed: int | None = None,
        pointers: bool = False,
        budgeted: bool = False,
    ) -> tuple[str, dict[str, Any], ChatCompletion]:
        """One exchange in an output mode the server accepts: the mode used, the body sent and the
        reply. A mode rejected as unsupported falls back, for the rest of the run, where it has a
        fallback; otherwise the run stops with a line saying which `output:` to set."""
        while True:
            mode = self.output
            body = self._body(messages, mode, seed, pointers, budgeted)
            try:
                return mode, body, await self._send(body, attempts)
            except _Unsupported as exc:
                fallback = FALLBACK.get(mode)
                if fallback is None:
                    raise self._unsupported(mode, exc) from None
                attempts[-1]["outcome"] = "fallback"
                if self._server.output != fallback:
                    self._server.output = fallback
                    print(
                        f"hch: note: {safe_url(self.base_url)} rejected {OUTPUT_REQUESTS[mode]} as unsupported; "
                        f"the schema goes in json_object for the rest of the run "
                        f"(set `output: {fallback}` in the preset to skip the rejected request)",
                        file=sys.stderr,
                    )

    def _body(
        self, messages: list[dict[str, Any]], mode: str, seed: int | None = None, pointers: bool = False,
        budgeted: bool = False,
    ) -> dict[str, Any]:
        """The JSON request body, exactly as sent (and recorded); `seed` overrides the settings' seed;
        in pointer mode the schema has the `expand` action, in a budgeted run's workspace `budgets`."""
        action_schema = schema_for(pointers, budgeted)
        body: dict[str, Any] = {"model": self.model, "messages": messages, **self.settings}
        if seed is not None:
            body["seed"] = seed
        if mode == "json_schema":
            schema: dict[str, Any] = {"name": "hch_action", "schema": action_schema}
            if self.strict:
                schema["strict"] = True
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif mode == "json_object_schema":  # llama.cpp's servers: the schema becomes a grammar
            body["response_format"] = {"type": "json_object", "schema": action_schema}
        elif mode == "json_object":
            body["response_format"] = {"type": "json_object"}
        return body

    def _raw(self, exchanges: list[dict[str, Any]], mode: str) -> dict[str, Any]:
        """The call's record for the trace and the cache, with every credential scrubbed (a server may
        echo the key or its headers anywhere in a reply)."""
        scrub = self._scrubber.data
        return {  # the requests are this policy's own text: only a known secret could be in them
            "base_url": safe_url(self.base_url), "model": self.model, "output": mode,
            "exchanges": [{"request": scrub(e["request"], forms=False), "response": scrub(e["response"])}
                          for e in exchanges],
        }

    def _usage(self, completion: ChatCompletion) -> Usage:
        reported = completion.usage
        if reported is None:
            return Usage()
        details = reported.prompt_tokens_details
        cached = (details.cached_tokens or 0) if details is not None else 0
        cost = self.price.cost(reported.prompt_tokens, reported.completion_tokens, cached) if self.price else 0.0
        return Usage(
            prompt_tokens=reported.prompt_tokens, completion_tokens=reported.completion_tokens,
            cached_tokens=cached, cost=cost,
        )

    # -- the model, looked up once -------------------------------------------------------------

    async def _check_model(self) -> None:
        """Stop the run before its first request if the server lists its models and ours is not
        among them (servers such as llama.cpp's serve any name, so only the list can tell)."""
        server = self._server
        if server.model_checked or not self.preset.check_model:
            return
        assert server.lock is not None, "_enter() sets the lock up"
        async with server.lock:
            if server.model_checked:
                return
            try:
                listed = await self._listed_models()
            except _NoAnswer:
                return  # nothing answered: the requests will tell; look again at the next call
            if listed is not None and not model_listed(self.model, listed):
                shown = ", ".join(repr(name) for name in listed[:8]) + (
                    f" and {len(listed) - 8} more" if len(listed) > 8 else ""
                )
                raise RunAborted(
                    f"{safe_url(self.base_url)} does not serve model {self.model!r}: its /models lists {shown}; "
                    "check --model/HCH_MODEL (for a proxy serving models it does not list, "
                    "set `check_model: false` in the preset)"
                )
            server.model_checked = True

    async def _listed_models(self) -> list[str] | None:
        """The model ids the server lists at /models; None if it offers no such list (or fails to
        give one in time); `_NoAnswer` if nothing accepted the connection."""
        client, _ = self._resources()
        try:
            page = await client.models.list(timeout=min(self.request_timeout, MODEL_LOOKUP_TIMEOUT))
            names = [str(model.id) for model in page.data]
        except openai.APITimeoutError:
            return None
        except openai.APIConnectionError:
            raise _NoAnswer from None
        except (openai.APIError, ReplyTooLarge, ValueError, TypeError, AttributeError):
            return None  # no list (404), or a broken one: the chat request will say what is wrong
        return names or None

    # -- the HTTP request, retried -------------------------------------------------------------

    async def _send(self, body: dict[str, Any], attempts: list[dict[str, Any]]) -> ChatCompletion:
        """One successful HTTP exchange, retrying transient failures; a final failure is a
        `PolicyError` (or `RunAborted` for a wrong key, model or URL, or a dead server), or
        `_Unsupported` when the server rejects the output mode."""
        retry = self.retry
        backoff = wait_exponential(multiplier=retry.initial_wait, max=retry.max_wait) + wait_random(0, retry.jitter)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            after = retry_after(exc)
            return after if after is not None else float(backoff(state))

        def note_wait(state: RetryCallState) -> None:
            attempts[-1]["wait"] = state.next_action.sleep if state.next_action else None
            attempts[-1]["outcome"] = "retry"
            retrying(attempts[-1]["wait"] or 0.0)  # the live progress line shows retries and the wait

        began = time.monotonic()
        first = len(attempts)

        def retryable(exc: BaseException) -> bool:
            return transient(exc) and not repeated_500(attempts[first:])

        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(retryable),
                stop=stop_after_attempt(retry.max_attempts) | stop_before_delay(retry.max_seconds),
                wait=wait, sleep=anyio.sleep, before_sleep=note_wait, reraise=True,
            ):
                with attempt:
                    return await self._request(body, attempts)
        except Exception as exc:
            mine = attempts[first:]
            if mine:
                mine[-1].setdefault("outcome", "failed")
            if isinstance(exc, openai.APIStatusError) and "response_format" in body and rejects_output(exc):
                raise _Unsupported(exc.status_code, self._scrub(_server_message(exc))) from None
            raise self._failure(exc, mine, time.monotonic() - began) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _request(self, body: dict[str, Any], attempts: list[dict[str, Any]]) -> ChatCompletion:
        """One HTTP request, holding a concurrency slot only while it is in flight."""
        server = self._server
        if server.dead is not None:  # the breaker is open: the run stops
            raise RunAborted(server.dead)
        record: dict[str, Any] = {"attempt": len(attempts) + 1, "status": None, "wait": None, "error": None}
        attempts.append(record)
        client, limiter = self._resources()
        extra = {k: v for k, v in body.items() if k not in ("model", "messages")}
        began = time.monotonic()
        try:
            async with limiter:
                completion = await client.chat.completions.create(
                    model=body["model"], messages=body["messages"], extra_body=extra, timeout=self.request_timeout,
                )
        except openai.APIStatusError as exc:
            server.replied()
            record["status"] = exc.status_code
            record["error"] = self._scrub(_server_message(exc))
            raise
        except openai.APITimeoutError as exc:
            record["error"] = f"no reply within {self.request_timeout:g}s (request timeout)"
            if _in_chain(exc, "ConnectTimeout"):  # not even a connection: as good as refused
                record["error"] = f"no connection within {self.request_timeout:g}s (request timeout)"
                self._connection_failed(f"no connection within the request timeout of {self.request_timeout:g}s")
            elif not server.answered:  # a server that never answered anything: stuck, not slow
                self._connection_failed(
                    f"accepted, but no reply within the request timeout of {self.request_timeout:g}s; "
                    "if it is only slow, raise --request-timeout"
                )
            raise
        except (ReplyTooLarge, openai.APIConnectionError) as exc:  # older clients wrap what `send` raises
            too_large = next((inner for inner in _chain(exc) if isinstance(inner, ReplyTooLarge)), None)
            if too_large is not None:  # not transient: the same request would get the same reply
                server.replied()
                record["error"] = str(too_large)
                raise PolicyError(str(too_large)) from None
            record["error"] = self._scrub(f"connection error: {exc.__cause__ or exc}")
            self._connection_failed(_connection_failure(exc))
            raise
        except (json.JSONDecodeError, openai.APIResponseValidationError) as exc:
            server.replied()
            record["status"] = 200
            record["error"] = f"malformed response body: {self._scrub(str(exc))}"
            raise _MalformedBody(record["error"]) from None
        finally:
            record["seconds"] = round(time.monotonic() - began, 6)
        server.replied()
        record["status"] = 200
        if not completion.choices:
            record["error"] = "the reply has no choices"
            raise _MalformedBody(record["error"])
        return completion

    def _connection_failed(self, why: str) -> None:
        """Count a failed connection (or, before the server ever replied, a timed-out request); at
        `retry.max_connection_failures` in a row, across all nodes, the server is taken for dead
        and this and every later request stop the run."""
        server = self._server
        server.failed_connections += 1
        if server.dead is None and server.failed_connections >= self.retry.max_connection_failures:
            server.dead = (
                f"{safe_url(self.base_url)} is unreachable: {server.failed_connections} requests in a row got "
                f"no reply ({why}); is the server running there? Start it, or fix --base-url/OPENAI_BASE_URL"
            )
        if server.dead is not None:
            raise RunAborted(server.dead) from None

    # The HTTP client (and its connection pool) lives while any call is in progress and is
    # closed when the last one ends, so none outlives its event loop, with no close() to call.
    # The limiter lives as long as the event loop: one per run's loop, shared by all its calls.

    def _enter(self) -> None:
        home = self._home
        loop = anyio.lowlevel.current_token().native_token
        if home._loop is not loop:
            home._loop, home._client, home._users = loop, None, 0
            home._limiter = anyio.CapacityLimiter(home.max_concurrency)
        self._server.enter(loop)
        home._users += 1

    async def _leave(self) -> None:
        home = self._home
        self._server.leave()
        home._users -= 1
        if home._users == 0 and home._client is not None:
            client, home._client = home._client, None
            with anyio.CancelScope(shield=True):
                await client.close()

    def _resources(self) -> tuple[openai.AsyncOpenAI, anyio.CapacityLimiter]:
        home = self._home
        if home._client is None:
            home._client = openai.AsyncOpenAI(
                api_key=home._api_key, base_url=home.base_url, max_retries=0, http_client=_BoundedClient()
            )
        assert home._limiter is not None, "_enter() sets the limiter up"
        return home._client, home._limiter

    def _unsupported(self, mode: str, exc: _Unsupported) -> RunAborted:
        """The line that stops a run whose server accepts no output mode tried: what to set instead."""
        where = safe_url(self.base_url)
        if mode not in OUTPUT_REQUESTS:  # `output: prompt`, with a response_format in the settings
            return RunAborted(f"{where} rejected the response_format in the preset's settings ({exc}); change it")
        tried = [self.preset.output, mode] if self.preset.output != mode else [mode]
        others = [m for m in ("json_schema", "json_object_schema", "prompt") if m not in tried]
        rejected = " nor ".join(OUTPUT_REQUESTS[m] for m in tried if m in OUTPUT_REQUESTS)
        return RunAborted(
            f"{where} does not support {rejected} ({exc}); set `output:` in the preset to {' or '.join(others)}"
        )

    def _failure(self, exc: BaseException, attempts: list[dict[str, Any]], seconds: float) -> PolicyError:
        """The one-line error a final failure of these attempts becomes."""
        if isinstance(exc, PolicyError):  # RunAborted too: it says all there is to say
            return exc
        where = safe_url(self.base_url)
        if isinstance(exc, openai.APIStatusError) and not transient(exc):
            message = self._scrub(_server_message(exc))
            status = exc.status_code
            if status == 401:
                return RunAborted(
                    f"{where} rejected the API key (401: {message}); set {self.preset.api_key_env} to a valid key"
                )
            if status == 403:
                return RunAborted(f"{where} denied access to model {self.model!r} (403: {message})")
            if status == 404:
                return RunAborted(
                    f"{where} has no model {self.model!r} or no chat completions endpoint (404: {message}); "
                    "check --model/HCH_MODEL and that --base-url ends in /v1"
                )
            if rejects_request(exc):  # the same body shape at every node: all would fail alike
                return RunAborted(
                    f"{where} rejected the request as invalid ({status}: {message}); check the preset's settings"
                )
            return PolicyError(f"{where} rejected the request ({status}: {message})")
        if isinstance(exc, openai.APIStatusError) and repeated_500(attempts):
            message = self._scrub(_server_message(exc))
            hint = (
                "; the server could not parse the model's reply, as when a constrained reply is cut off at "
                "max_tokens: raise max_tokens in the preset's settings" if PARSE_FAILURE.search(message) else ""
            )
            return PolicyError(
                f"{where} answered the same request with the same 500 {len(attempts)} times, so it is not "
                f"retried further (500: {message}){hint}"
            )
        if isinstance(exc, openai.APIStatusError):
            last = f"{exc.status_code}: {self._scrub(_server_message(exc))}"
        else:
            last = self._scrub(_describe(exc))
        after = retry_after(exc)
        beyond = (
            f"; the server asked to wait {after:g}s, beyond the retry budget (retry.max_seconds "
            f"{self.retry.max_seconds:g}s)" if after is not None and seconds + after >= self.retry.max_seconds else ""
        )
        return PolicyError(
            f"{where} failed {len(attempts)} time(s) in {seconds:.1f}s; giving up; last error: {last}{beyond}"
        )

    def _scrub(self, text: str) -> str:
        """A message from elsewhere, on one line and without credentials (a server may echo the key, its
        headers or the URL's query): see `hch.policies.scrub`."""
        text = text.replace(self.base_url, safe_url(self.base_url))  # the URL's query stays unwritten
        return " ".join(self._scrubber.text(text).split())[:300]

    def _scrubbed_action(self, action: Ask | Answer | Expand) -> Ask | Answer | Expand:
        """The action with the secrets this policy knows replaced (a server echoing the request's headers
        into its reply would otherwise put the key into the answer); credential forms in it are data."""
        if isinstance(action, Ask):
            return action.model_copy(update={"questions": [self._scrubber.known(q) for q in action.questions]})
        if isinstance(action, Answer):
            return action.model_copy(update={"answer": self._scrubber.known(action.answer)})
        return action  # a pointer such as $3 holds no text the server could have echoed

    def _scrubbed_attempts(self, attempts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        scrubbed: list[dict[str, Any]] = self._scrubber.data(attempts)
        return scrubbed


# -- helpers ------------------------------------------------------------------------------------


def transient(exc: BaseException) -> bool:
    """Whether a failed request is worth repeating unchanged."""
    if isinstance(exc, openai.APIStatusError):
        if rejects_request(exc):
            return False
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return isinstance(exc, (openai.APIConnectionError, _MalformedBody))


VALIDATION = re.compile(r"^\d+ validation errors?:")
"""FastAPI's request validation message, which llama-cpp-python's server sends with a 500."""
PARSE_FAILURE = re.compile(r"peg-native format|failed to parse", re.IGNORECASE)
"""llama-server's 500 when it cannot parse the model's output (e.g. a constrained reply cut off)."""


def rejects_request(exc: openai.APIStatusError) -> bool:
    """Whether an error reply says the request itself is invalid or unsupported, whatever its
    status (llama-cpp-python's server reports request validation failures as 500s)."""
    message = _server_message(exc)
    return bool(VALIDATION.match(message.strip())) or rejects_output(exc)


def rejects_output(exc: openai.APIStatusError) -> bool:
    """Whether an error reply rejects the request's response_format (its output mode): llama-cpp-
    python's 500 validation error for `json_schema`, llama-server's old "response_format type must
    be one of ...", LM Studio's 400 for `json_object`."""
    return exc.status_code in (400, 422, 500, 501) and "response_format" in _server_message(exc)


def repeated_500(attempts: list[dict[str, Any]]) -> bool:
    """Whether the last two attempts of one request got the same 500: a deterministic failure
    (llama-server's on a cut-off constrained reply at temperature 0), not a transient one."""
    if len(attempts) < 2:
        return False
    last, before = attempts[-1], attempts[-2]
    return bool(last["status"] == 500 and (last["status"], last["error"]) == (before["status"], before["error"]))


def excerpt(content: str, limit: int = REASK_EXCERPT) -> str:
    """An invalid reply as quoted back in a re-ask: at most `limit` characters of it."""
    if len(content) <= limit:
        return content
    return f"{content[:limit]} [... {len(content) - limit} more characters not shown]"


def model_listed(model: str, listed: list[str]) -> bool:
    """Whether a server that lists `listed` serves `model`: by id, by an Ollama name without its
    `:latest` tag, or by a model file's name with or without `.gguf` (llama.cpp lists the path)."""
    for name in listed:
        file = name.replace("\\", "/").rsplit("/", 1)[-1]
        if model in (name, name.removesuffix(":latest"), file, file.removesuffix(".gguf")):
            return True
    return False


MODEL_LOOKUP_TIMEOUT = 10.0
"""Longest wait for the server's /models list before going on without it."""


def _warn_if_timeouts_are_never_retried(request_timeout: float, retry: Retry) -> None:
    """One line on stderr when a request that times out could never be retried within the budget."""
    if retry.max_attempts > 1 and retry.timed_out_attempts(request_timeout) < 2:
        print(
            f"hch: warning: a request that times out (request_timeout {request_timeout:g}s) is never retried "
            f"within the retry budget (retry.max_seconds {retry.max_seconds:g}s); lower --request-timeout "
            "or raise retry.max_seconds in the preset",
            file=sys.stderr,
        )


def _chain(exc: BaseException) -> list[BaseException]:
    """An exception and its causes and contexts, innermost last."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _in_chain(exc: BaseException, name: str) -> bool:
    return any(type(inner).__name__ == name for inner in _chain(exc))


def _connection_failure(exc: BaseException) -> str:
    """What a failed connection was, in a few words."""
    if any(isinstance(inner, ConnectionRefusedError) for inner in _chain(exc)):
        return "connection refused"
    if _in_chain(exc, "ConnectError"):
        return "cannot connect"
    return "connection dropped without a reply"


FOREVER = 1e9
"""What a `Retry-After` of infinity (or beyond) is taken as: longer than any retry budget, and a
number JSON can hold."""


def retry_after(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms`, or `Retry-After` as seconds or a date),
    between 0 and `FOREVER`; None where it gave none that means anything (NaN, garbage): the backoff
    then decides. A wait beyond the retry budget is never slept: the request fails at once (see `_send`)."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    headers = exc.response.headers
    try:
        if "retry-after-ms" in headers:
            seconds = float(headers["retry-after-ms"]) / 1000
        elif "retry-after" in headers:
            value = headers["retry-after"]
            try:
                seconds = float(value)
            except ValueError:
                when = email.utils.parsedate_to_datetime(value)
                seconds = when.timestamp() - time.time()
        else:
            return None
    except (ValueError, TypeError, OverflowError, IndexError):
        return None
    if math.isnan(seconds):
        return None
    return min(max(0.0, seconds), FOREVER)


def check_base_url(url: str) -> None:
    """Refuse a base URL that is not http(s)://HOST[:PORT]/... or that holds credentials.

    `user:pass@` in the URL would make the client send Basic auth instead of the API key (and a
    server echoing headers would put the credentials in traces): the key comes from the environment.
    """
    parts = urlsplit(url)
    try:
        _ = parts.port  # a port that is not a number raises here
        port_ok = True
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise LLMConfigError(f"base URL {safe_url(url) if port_ok else parts.scheme + '://…'!r} must look like "
                             "http(s)://HOST[:PORT]/v1")
    if parts.username is not None or parts.password is not None:
        raise LLMConfigError(
            f"base URL {safe_url(url)!r} holds credentials (user:password@); give it without them and put the "
            "API key in the environment variable the preset names (OPENAI_API_KEY by default)"
        )


def safe_url(url: str) -> str:
    """A URL without credentials, query or fragment: what may be written down."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def parse_action(
    content: str | None, finish_reason: str | None, refusal: str | None = None, max_asks: int = 0,
    budgeted: bool = False,
) -> Ask | Answer | Expand:
    """The action in a reply, or `InvalidOutput` saying precisely what is wrong with it (an action too
    large to use, see `hch.validate.action_problem`, included); `budgets` are kept only when `budgeted`."""
    if refusal and not (content or "").strip():
        raise InvalidOutput(f"the model refused: {' '.join(refusal.split())[:200]}")
    if finish_reason == "length":
        raise InvalidOutput("it was cut off at the output token limit (finish_reason 'length'); write a shorter reply")
    if finish_reason == "content_filter":
        raise InvalidOutput("it was stopped by the server's content filter")
    if content is None or not content.strip():
        raise InvalidOutput("it is empty")
    text = _json_part(content)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidOutput(f"it is not valid JSON ({exc.msg} at character {exc.pos})") from None
    except RecursionError:
        raise InvalidOutput("it nests JSON too deeply") from None
    try:
        action = LLMAction.model_validate(data).to_action(budgeted)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidOutput(f"{where + ': ' if where else ''}{message}") from None
    if (problem := action_problem(action, max_asks)) is not None:
        raise InvalidOutput(problem)
    return action


FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def _json_part(content: str) -> str:
    """The JSON in a reply that may wrap it in a code fence or a sentence (prompt-only output)."""
    text = content.strip()
    fenced = FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    if not text.startswith("{") and "{" in text and "}" in text:
        text = text[text.index("{") : text.rindex("}") + 1]
    return text


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return exc.message


def _describe(exc: BaseException) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return "request timed out"
    if isinstance(exc, openai.APIConnectionError):
        return f"connection error ({exc.__cause__ or exc})"
    return str(exc) or type(exc).__name__
