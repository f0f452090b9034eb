"""A language model as H, over any OpenAI-compatible chat-completions server.

One call = one workspace shown to the model (system prompt + the preset's rendering) and one
validated action back. Transient failures (429, 408, 409, 5xx, connection errors, timeouts,
garbled bodies) are retried by tenacity with the SDK's own retries off, so every attempt is
visible in the trace; invalid or truncated output is re-asked with the error; 401/403/404 stop
the run at once. A capacity limiter bounds simultaneous requests and is held only around the
HTTP request itself, never while a node waits for its children, so no tree shape can deadlock.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import re
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

from hch import presets
from hch.errors import HchError, PolicyError, RunAborted
from hch.presets import Preset, Price, Retry
from hch.workspace import Answer, Ask, Reply, Usage, Workspace

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

REASK = (
    "Your reply could not be used: {error}. Reply again with only one JSON object: "
    '{{"kind": "ask", "questions": [...], "answer": ""}} or {{"kind": "answer", "questions": [], "answer": "..."}}.'
)


class LLMConfigError(HchError):
    """The LLM policy is not configured well enough to make a request (no model, no key, ...)."""


class InvalidOutput(ValueError):
    """The model's reply is not a usable action; the message is shown to it when re-asking."""


class LLMAction(BaseModel):
    """The action as the model writes it: one flat object."""

    kind: Literal["ask", "answer"]
    questions: list[str] = []
    answer: str = ""

    @model_validator(mode="after")
    def _complete(self) -> LLMAction:
        if self.kind == "ask" and not [q for q in self.questions if q.strip()]:
            raise ValueError('kind is "ask" but "questions" has no non-empty question')
        if self.kind == "answer" and not self.answer.strip():
            raise ValueError('kind is "answer" but "answer" is empty')
        return self

    def to_action(self) -> Ask | Answer:
        if self.kind == "ask":
            return Ask(questions=[q.strip() for q in self.questions if q.strip()])
        return Answer(answer=self.answer.strip())


class _MalformedBody(Exception):
    """A 2xx reply whose body is not a chat completion (e.g. cut off by a proxy)."""


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
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LLMConfigError(f"base URL {safe_url(self.base_url)!r} must look like http(s)://HOST[:PORT]/v1")
        key = api_key or env.get(self.preset.api_key_env) or ""
        if not key:
            if parts.hostname not in LOCAL_HOSTS:
                raise LLMConfigError(
                    f"no API key for {safe_url(self.base_url)}: set {self.preset.api_key_env} "
                    "(a server on localhost needs none)"
                )
            key = NO_KEY
        self._api_key = key
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
            raise LLMConfigError(f"retry must be a hch.presets.Retry, not {retry!r}")
        if request_timeout is not None and (not isinstance(request_timeout, int | float) or request_timeout <= 0):
            raise LLMConfigError(f"request timeout must be a number of seconds above 0, not {request_timeout!r}")
        self.max_concurrency = max_concurrency
        self.retry = retry or self.preset.retry
        self.request_timeout = request_timeout or self.preset.request_timeout
        self.strict = self.preset.strict if self.preset.strict is not None else parts.hostname == "api.openai.com"
        self._loop: object = None
        self._client: openai.AsyncOpenAI | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._users = 0

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
        return f"llm:{self.model}@{host}#{digest}"

    # -- one call ----------------------------------------------------------------------------

    async def act(self, workspace: Workspace) -> Reply:
        """Show the model the workspace; re-ask invalid output; return the action and its record."""
        self._enter()
        try:
            return await self._act(workspace)
        finally:
            await self._leave()

    async def _act(self, workspace: Workspace) -> Reply:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": self.preset.system},
            {"role": "user", "content": presets.render(self.preset, workspace)},
        ]
        attempts: list[dict[str, Any]] = []
        exchanges: list[dict[str, Any]] = []
        usage = Usage()
        error = ""
        for _ in range(self.preset.max_reasks + 1):
            body = self._body(messages)
            try:
                completion = await self._send(body, attempts)
            except (PolicyError, RunAborted) as exc:
                exc.usage, exc.raw, exc.attempts = usage, self._raw(exchanges), attempts
                raise
            exchanges.append({"request": body, "response": completion.to_dict(mode="json")})
            usage = usage + self._usage(completion)
            choice = completion.choices[0]
            content, finish = choice.message.content, choice.finish_reason
            attempts[-1]["finish_reason"] = finish
            try:
                action = parse_action(content, finish, getattr(choice.message, "refusal", None))
            except InvalidOutput as exc:
                error = str(exc)
                attempts[-1]["error"] = f"invalid output: {error}"
                attempts[-1]["outcome"] = "reask"
                messages = [
                    *messages,
                    {"role": "assistant", "content": content or ""},
                    {"role": "user", "content": REASK.format(error=error)},
                ]
                continue
            attempts[-1]["outcome"] = "ok"
            return Reply(action=action, usage=usage, raw=self._raw(exchanges), attempts=attempts)
        raise PolicyError(
            f"the model gave no valid action in {self.preset.max_reasks + 1} tries; last: {error}",
            usage=usage, raw=self._raw(exchanges), attempts=attempts,
        )

    def _body(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The JSON request body, exactly as sent (and recorded)."""
        body: dict[str, Any] = {"model": self.model, "messages": messages, **self.settings}
        if self.preset.output == "json_schema":
            schema: dict[str, Any] = {"name": "hch_action", "schema": ACTION_SCHEMA}
            if self.strict:
                schema["strict"] = True
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif self.preset.output == "json_object":
            body["response_format"] = {"type": "json_object"}
        return body

    def _raw(self, exchanges: list[dict[str, Any]]) -> dict[str, Any]:
        return {"base_url": safe_url(self.base_url), "model": self.model, "exchanges": exchanges}

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

    # -- the HTTP request, retried -------------------------------------------------------------

    async def _send(self, body: dict[str, Any], attempts: list[dict[str, Any]]) -> ChatCompletion:
        """One successful HTTP exchange, retrying transient failures; a final failure is a
        `PolicyError` (or `RunAborted` for a wrong key, model or URL)."""
        retry = self.retry
        backoff = wait_exponential(multiplier=retry.initial_wait, max=retry.max_wait) + wait_random(0, retry.jitter)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            after = retry_after(exc)
            return after if after is not None else float(backoff(state))

        def note_wait(state: RetryCallState) -> None:
            attempts[-1]["wait"] = state.next_action.sleep if state.next_action else None
            attempts[-1]["outcome"] = "retry"

        began = time.monotonic()
        first = len(attempts)
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(transient),
                stop=stop_after_attempt(retry.max_attempts) | stop_before_delay(retry.max_seconds),
                wait=wait, sleep=anyio.sleep, before_sleep=note_wait, reraise=True,
            ):
                with attempt:
                    return await self._request(body, attempts)
        except Exception as exc:
            attempts[-1].setdefault("outcome", "failed")
            tries = len(attempts) - first
            raise self._failure(exc, tries, time.monotonic() - began) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _request(self, body: dict[str, Any], attempts: list[dict[str, Any]]) -> ChatCompletion:
        """One HTTP request, holding a concurrency slot only while it is in flight."""
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
            record["status"] = exc.status_code
            record["error"] = self._scrub(_server_message(exc))
            raise
        except openai.APITimeoutError:
            record["error"] = f"no reply within {self.request_timeout:g}s (request timeout)"
            raise
        except openai.APIConnectionError as exc:
            record["error"] = self._scrub(f"connection error: {exc.__cause__ or exc}")
            raise
        except (json.JSONDecodeError, openai.APIResponseValidationError) as exc:
            record["status"] = 200
            record["error"] = f"malformed response body: {self._scrub(str(exc))}"
            raise _MalformedBody(record["error"]) from None
        finally:
            record["seconds"] = round(time.monotonic() - began, 6)
        record["status"] = 200
        if not completion.choices:
            record["error"] = "the reply has no choices"
            raise _MalformedBody(record["error"])
        return completion

    # The HTTP client (and its connection pool) lives while any call is in progress and is
    # closed when the last one ends, so none outlives its event loop, with no close() to call.
    # The limiter lives as long as the event loop: one per run's loop, shared by all its calls.

    def _enter(self) -> None:
        loop = anyio.lowlevel.current_token().native_token
        if self._loop is not loop:
            self._loop, self._client, self._users = loop, None, 0
            self._limiter = anyio.CapacityLimiter(self.max_concurrency)
        self._users += 1

    async def _leave(self) -> None:
        self._users -= 1
        if self._users == 0 and self._client is not None:
            client, self._client = self._client, None
            with anyio.CancelScope(shield=True):
                await client.close()

    def _resources(self) -> tuple[openai.AsyncOpenAI, anyio.CapacityLimiter]:
        if self._client is None:
            self._client = openai.AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, max_retries=0)
        assert self._limiter is not None, "_enter() sets the limiter up"
        return self._client, self._limiter

    def _failure(self, exc: BaseException, tries: int, seconds: float) -> PolicyError:
        """The one-line error a final failure becomes."""
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
            return PolicyError(f"{where} rejected the request ({status}: {message})")
        if isinstance(exc, openai.APIStatusError):
            last = f"{exc.status_code}: {self._scrub(_server_message(exc))}"
        else:
            last = self._scrub(_describe(exc))
        return PolicyError(f"{where} failed {tries} time(s) in {seconds:.1f}s; giving up; last error: {last}")

    def _scrub(self, text: str) -> str:
        """A message from elsewhere, on one line and without the API key (a server may echo it)."""
        if self._api_key and self._api_key != NO_KEY:
            text = text.replace(self._api_key, "***")
        text = text.replace(self.base_url, safe_url(self.base_url))  # credentials in the URL stay unwritten
        return " ".join(text.split())[:300]


# -- helpers ------------------------------------------------------------------------------------


def transient(exc: BaseException) -> bool:
    """Whether a failed request is worth repeating unchanged."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return isinstance(exc, (openai.APIConnectionError, _MalformedBody))


def retry_after(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms`, or `Retry-After` as seconds or a date)."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    headers = exc.response.headers
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        if "retry-after" in headers:
            value = headers["retry-after"]
            try:
                return max(0.0, float(value))
            except ValueError:
                when = email.utils.parsedate_to_datetime(value)
                return max(0.0, when.timestamp() - time.time())
    except (ValueError, TypeError, OverflowError):
        return None
    return None


def safe_url(url: str) -> str:
    """A URL without credentials, query or fragment: what may be written down."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def parse_action(content: str | None, finish_reason: str | None, refusal: str | None = None) -> Ask | Answer:
    """The action in a reply, or `InvalidOutput` saying precisely what is wrong with it."""
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
    try:
        return LLMAction.model_validate(data).to_action()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidOutput(f"{where + ': ' if where else ''}{message}") from None


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
