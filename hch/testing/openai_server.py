"""A real OpenAI-compatible chat-completions server on 127.0.0.1, scripted, for tests and examples.

It speaks HTTP on a socket, so the real `openai` client (and anything else) talks to it exactly as
to OpenAI, vLLM, Ollama or llama.cpp. What it answers comes from a *responder*: a function of the
request. Each request can be told to misbehave (delay, 429 with Retry-After, 5xx, hang past the
client's timeout, drop the connection, send a malformed body, cut the output at max_tokens, 401,
404), either by the responder or by faults queued with `inject`. Every request is recorded.

    with OpenAIServer(lambda request: Step.answer("42")) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STATUS_ERRORS = {
    400: ("invalid_request_error", "bad_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_denied", "permission_denied"),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", "timeout"),
    409: ("conflict", "conflict"),
    429: ("rate_limit_exceeded", "rate_limit_exceeded"),
    500: ("server_error", "internal_error"),
    503: ("server_error", "overloaded"),
}


@dataclass
class Step:
    """What the server does with one request. Build with the class methods."""

    content: str | None = None
    """The assistant message content of a 200 reply (`None`: no content)."""
    status: int = 200
    """HTTP status; anything but 200 sends an OpenAI-style error body."""
    retry_after: float | None = None
    """Seconds to send as `retry-after-ms` (and a rounded-up `Retry-After`) with an error."""
    delay: float = 0.0
    """Seconds to wait before replying."""
    hang: bool = False
    """Never reply (until the server stops): the client must time out."""
    drop: bool = False
    """Close the connection without any reply."""
    malformed: bool = False
    """Reply 200 with a body that is not JSON."""
    finish_reason: str = "stop"
    """`stop`, or `length` for output cut at max_tokens."""
    usage: dict[str, int] | None = None
    """Override the computed usage (prompt_tokens, completion_tokens, cached_tokens)."""
    message: str = ""
    """Error message for a non-200 status."""
    body: dict[str, Any] | None = None
    """The exact error body to send with a non-200 status (default: an OpenAI-style one)."""
    crash: bool = False
    """Die on this request: drop it and every open connection, refuse new ones (see `die`)."""
    headers: dict[str, str] | None = None
    """Extra reply headers, sent as they are (e.g. a `Retry-After` of any text)."""
    huge: int = 0
    """Send a 200 reply whose body is this many bytes (an answer padded out), streamed in 1 MiB chunks,
    never built whole: with `Content-Length`, or chunked (`announce=False`), or gzip-compressed (`gzip`)."""
    announce: bool = True
    """Whether a `huge` reply announces its length."""
    gzip: bool = False
    """Send a `huge` reply gzip-compressed (a compression bomb: a small body that decodes to `huge` bytes)."""

    @classmethod
    def answer(cls, text: str) -> Step:
        """A well-formed HCH action: answer `text`."""
        return cls(content=json.dumps({"kind": "answer", "questions": [], "answer": text}))

    @classmethod
    def ask(cls, *questions: str) -> Step:
        """A well-formed HCH action: ask `questions`."""
        return cls(content=json.dumps({"kind": "ask", "questions": list(questions), "answer": ""}))

    @classmethod
    def expand(cls, pointer: str) -> Step:
        """A well-formed HCH action in pointer mode: expand `pointer` (e.g. "$1")."""
        return cls(content=json.dumps({"kind": "expand", "questions": [], "answer": "", "pointer": pointer}))

    @classmethod
    def error(cls, status: int, message: str = "", retry_after: float | None = None) -> Step:
        """An HTTP error reply (429, 500, 503, 401, 404, ...)."""
        return cls(status=status, message=message or f"scripted error {status}", retry_after=retry_after)

    @classmethod
    def llama_server_cut_off(cls) -> Step:
        """llama-server's reply when a grammar-constrained reply is cut off at max_tokens: the same
        500 every time at temperature 0 (its chat parser cannot parse the partial output)."""
        message = "The model produced output that does not match the expected peg-native format"
        body = {"error": {"code": 500, "message": message, "type": "server_error"}}
        return cls(status=500, message=message, body=body)

    @classmethod
    def truncated(cls, text: str = '{"kind": "answer", "questions": [], "answer": "the sky is bl') -> Step:
        """Output cut at max_tokens: partial content and finish_reason `length`."""
        return cls(content=text, finish_reason="length")


@dataclass
class Seen:
    """One request the server received, and what it did with it."""

    body: dict[str, Any]
    """The parsed JSON request body (model, messages, response_format, ...)."""
    headers: dict[str, str]
    """The request headers (lower-cased names)."""
    step: Step | None = None
    """What the server did (None if the body could not be parsed)."""
    status: int | None = None
    """The status sent (None when the server hung or dropped the connection)."""
    usage: dict[str, int] | None = None
    """The usage reported in a 200 reply."""
    sent: int = 0
    """Bytes of a `huge` body the client took before it stopped reading."""

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def users(self) -> list[str]:
        """The texts of the user messages, in order."""
        return [str(m.get("content") or "") for m in self.messages if m.get("role") == "user"]

    @property
    def last_user(self) -> str:
        """The text of the last user message."""
        return self.users[-1] if self.users else ""


Responder = Callable[[Seen], Step | str]
"""Decides the reply to a request; a plain string is sent as the message content."""


@dataclass
class _Injected:
    match: Callable[[Seen], bool]
    steps: list[Step]


@dataclass
class OpenAIServer:
    """A threaded HTTP server implementing POST /v1/chat/completions. Use as a context manager."""

    responder: Responder = field(default=lambda seen: Step.answer("ok"))
    """Decides every reply not overridden by an injected fault."""
    api_key: str | None = None
    """If set, requests without `Authorization: Bearer <api_key>` get a 401."""
    models: set[str] | None = None
    """If set, `GET /v1/models` lists them and requests for any other model get a 404 like OpenAI's
    `model_not_found` (unless `ignore_model`); if None, `GET /v1/models` is a 404 (no such endpoint)."""
    list_models: bool = True
    """Whether `GET /v1/models` lists `models` (False: that endpoint is a 404, as on some servers)."""
    ignore_model: bool = False
    """Serve requests for any model name, as llama.cpp's servers do (they serve the one model loaded)."""
    hold_until: int | None = None
    """If set, each request waits until this many are in flight (or `hold_timeout`) before replying."""
    hold_timeout: float = 0.5
    """Longest wait for `hold_until` (so the last requests of a run are not held forever)."""
    hang_seconds: float = 60.0
    """Longest a hanging request hangs (it also ends when the server stops)."""

    requests: list[Seen] = field(default_factory=list)
    model_lookups: int = 0
    """How many `GET /v1/models` requests arrived (they are not in `requests`)."""
    in_flight: int = 0
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._injected: list[_Injected] = []
        self._prefixes: set[str] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.dead = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> OpenAIServer:
        """Listen on a free port of 127.0.0.1 and serve from a background thread."""
        handler = type("Handler", (_Handler,), {"owner": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="openai-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging requests are released."""
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def die(self) -> None:
        """Crash: stop listening (new connections are refused) and drop every open connection,
        now or at its next request. Callable from a responder; returns without waiting."""
        self.dead.set()
        self._stopping.set()  # hanging requests end (dropped)
        with self._lock:
            self._lock.notify_all()
        httpd = self._httpd
        if httpd is not None:

            def close() -> None:
                httpd.shutdown()
                httpd.server_close()

            threading.Thread(target=close, name="openai-server-death", daemon=True).start()

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not started"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The URL to give a client as its base URL, ending in /v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting ---------------------------------------------------------------------------

    def inject(self, match: str | Callable[[Seen], bool], *steps: Step) -> None:
        """Serve `steps`, in order, to the next requests that `match` (a substring of the last
        user message, or a predicate), before the responder sees any of them."""
        predicate = match if callable(match) else (lambda seen, text=match: text in seen.last_user)
        with self._lock:
            self._injected.append(_Injected(predicate, list(steps)))

    def ok_requests(self) -> list[Seen]:
        """The requests answered with a 200."""
        return [seen for seen in self.requests if seen.status == 200]

    def reported_usage(self) -> dict[str, int]:
        """The sum of the usage the server reported in its 200 replies."""
        total = {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0}
        for seen in self.ok_requests():
            for name in total:
                total[name] += (seen.usage or {}).get(name, 0)
        return total

    # -- serving (called from handler threads) ----------------------------------------------

    def _decide(self, seen: Seen) -> Step:
        with self._lock:
            for injected in self._injected:
                if injected.steps and injected.match(seen):
                    return injected.steps.pop(0)
        if self.api_key is not None and seen.headers.get("authorization") != f"Bearer {self.api_key}":
            return Step.error(401, "Incorrect API key provided. You can find your API key in your account settings.")
        model = seen.body.get("model")
        if self.models is not None and model not in self.models and not self.ignore_model:
            return Step.error(404, f"The model `{model}` does not exist or you do not have access to it.")
        try:
            decided = self.responder(seen)
        except Exception as exc:  # a broken script shows up as a 500 the test can see, not a dropped socket
            return Step.error(500, f"the responder raised {type(exc).__name__}: {exc}")
        return Step(content=decided) if isinstance(decided, str) else decided

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._lock.notify_all()
            if self.hold_until is not None:
                self._lock.wait_for(
                    lambda: self.in_flight >= (self.hold_until or 0) or self._stopping.is_set(),
                    timeout=self.hold_timeout,
                )

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _usage(self, seen: Seen, step: Step) -> dict[str, int]:
        """Deterministic token counts: words in, words out; a system prompt seen before is 'cached'."""
        if step.usage is not None:
            return {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0, **step.usage}
        texts = [str(m.get("content") or "") for m in seen.messages]
        prompt = sum(len(t.split()) + 4 for t in texts)
        system = texts[0] if seen.messages and seen.messages[0].get("role") == "system" else ""
        with self._lock:
            cached = len(system.split()) + 4 if system and system in self._prefixes else 0
            self._prefixes.add(system)
        completion = len((step.content or "").split()) + 1
        return {"prompt_tokens": prompt, "completion_tokens": completion, "cached_tokens": cached}

    def _completion(self, seen: Seen, step: Step, usage: dict[str, int]) -> dict[str, Any]:
        number = len(self.requests)
        return {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": seen.body.get("model", "scripted"),
            "system_fingerprint": "fp_scripted",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": step.content, "refusal": None},
                "logprobs": None,
                "finish_reason": step.finish_reason,
            }],
            "usage": {
                "prompt_tokens": usage["prompt_tokens"],
                "completion_tokens": usage["completion_tokens"],
                "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"],
                "prompt_tokens_details": {"cached_tokens": usage["cached_tokens"]},
            },
        }


QUESTION_LINE = re.compile(r'^Your question: (".*")$', re.MULTILINE)
ANSWER_LINE = re.compile(r'^  A\d+(?: \(.*?\))?: (".*")$', re.MULTILINE)


def question_of(seen: Seen) -> str:
    """The HCH question in a request rendered by the default preset's template."""
    return str(json.loads(_workspace_match(seen).group(1)))


def subanswers_of(seen: Seen) -> list[str]:
    """The sub-answers shown in a request rendered by the default preset's template."""
    text = _workspace_match(seen).string
    return [str(json.loads(m.group(1))) for m in ANSWER_LINE.finditer(text)]


def _workspace_match(seen: Seen) -> re.Match[str]:
    """The question line of the user message showing the workspace (re-asks come after it)."""
    for text in seen.users:
        match = QUESTION_LINE.search(text)
        if match is not None:
            return match
    raise ValueError("the request shows no 'Your question:' line (not the default template?)")


def hch_responder(
    tree: dict[str, list[str] | str], combine: Callable[[str, list[str]], str] | None = None
) -> Responder:
    """A scripted H: a question mapped to a list asks those subquestions once, then answers
    `combine(question, sub-answers)`; mapped to a string, answers it. Unknown questions get "?"."""
    join = combine or (lambda question, answers: " + ".join(answers))

    def respond(seen: Seen) -> Step:
        question = question_of(seen)
        plan = tree.get(question, "?")
        if isinstance(plan, str):
            return Step.answer(plan)
        answers = subanswers_of(seen)
        return Step.answer(join(question, answers)) if answers else Step.ask(*plan)

    return respond


def llama_cpp_python(responder: Responder) -> Responder:
    """`responder` behind the request validation of llama-cpp-python's server (0.3.x): its
    response_format takes only `text` or `json_object` (with an optional `schema`), and anything else
    fails FastAPI's validation, which its error handler reports as a 500 with the message below."""

    def respond(seen: Seen) -> Step | str:
        kind = (seen.body.get("response_format") or {}).get("type")
        if kind in (None, "text", "json_object"):
            return responder(seen)
        error = {
            "type": "literal_error", "loc": ("body", "response_format", "type"),
            "msg": "Input should be 'text' or 'json_object'", "input": kind,
            "ctx": {"expected": "'text' or 'json_object'"},
        }
        message = (
            f"1 validation error:\n  {error}\n\n"
            '  File "/usr/lib/python3/site-packages/llama_cpp/server/app.py", line 376, in create_chat_completion\n'
            "    POST /v1/chat/completions"
        )
        body = {"error": {"message": message, "type": "internal_server_error", "param": None, "code": None}}
        return Step(status=500, message=message, body=body)

    return respond


class _Handler(BaseHTTPRequestHandler):
    owner: OpenAIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        server = self.owner
        if server.dead.is_set():
            self._drop()
            return
        models = server.models
        if self.path.rstrip("/") != "/v1/models" or models is None or not server.list_models:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
            return
        with server._lock:
            server.model_lookups += 1
        listed = [{"id": name, "object": "model", "created": 0, "owned_by": "scripted"} for name in sorted(models)]
        self._send_json(200, {"object": "list", "data": listed})

    def do_POST(self) -> None:
        server = self.owner
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        if server.dead.is_set():
            self._drop()
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
            return
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            self._send_json(400, {"error": {"message": "request body is not JSON", "type": "invalid_request_error"}})
            return
        seen = Seen(body=body, headers=headers)
        with server._lock:
            server.requests.append(seen)
        server._enter()
        try:
            self._serve(server, seen)
        finally:
            server._leave()

    def _serve(self, server: OpenAIServer, seen: Seen) -> None:
        step = seen.step = server._decide(seen)
        if step.crash:
            server.die()
        if server.dead.is_set():
            self._drop()
            return
        if step.delay:
            server._stopping.wait(step.delay)
        if step.hang:
            server._stopping.wait(server.hang_seconds)
            self._drop()
            return
        if step.drop:
            self._drop()
            return
        if step.huge:
            seen.status = step.status
            self._send_huge(step, seen)
            return
        if step.status != 200:
            kind, code = STATUS_ERRORS.get(step.status, ("error", "error"))
            extra = {}
            if step.retry_after is not None:
                extra = {"retry-after-ms": str(round(step.retry_after * 1000)),
                         "retry-after": str(max(1, round(step.retry_after + 0.4999)))}
            extra.update(step.headers or {})
            seen.status = step.status
            error = {"message": step.message, "type": kind, "param": None, "code": code}
            self._send_json(step.status, step.body or {"error": error}, extra)
            return
        seen.status = 200
        if step.malformed:
            self._send_bytes(200, b'{"id": "chatcmpl-broken", "choices": [{"index": 0, "mess')
            return
        usage = seen.usage = server._usage(seen, step)
        self._send_json(200, server._completion(seen, step, usage))

    def _send_huge(self, step: Step, seen: Seen) -> None:
        """A reply whose answer is padded to `step.huge` bytes, streamed without building it."""
        head = b'{"id": "chatcmpl-huge", "object": "chat.completion", "created": 0, "model": "m", "choices": [' \
               b'{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "'
        tail = b'"}}]}'
        chunk = b"a" * (1 << 20)
        pad = step.huge - len(head) - len(tail)
        try:
            self.send_response(step.status)
            self.send_header("content-type", "application/json")
            if step.gzip:
                body = zlib.compressobj(9, zlib.DEFLATED, 31)
                data = body.compress(head) + b"".join(body.compress(chunk) for _ in range(pad // len(chunk)))
                data += body.compress(b"a" * (pad % len(chunk))) + body.compress(tail) + body.flush()
                self.send_header("content-encoding", "gzip")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                seen.sent = len(data)
                return
            if step.announce:
                self.send_header("content-length", str(step.huge))
            else:
                self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            pieces = [head, *([chunk] * (pad // len(chunk))), b"a" * (pad % len(chunk)), tail]
            for piece in pieces:
                self.wfile.write(piece if step.announce else b"%x\r\n%s\r\n" % (len(piece), piece))
                seen.sent += len(piece)
            if not step.announce:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client stopped reading: that is the point
            self.close_connection = True

    def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), headers)

    def _send_bytes(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client went away (e.g. it timed out)
            self.close_connection = True

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
