"""The web side of `hch serve`: Starlette routes for participants (`/p/TOKEN/`) and the experimenter (`/x/TOKEN/`).

Every route needs a token in its path; a missing or wrong one gets the same bare 404 as a route that does
not exist. Pages are static files that build their DOM with `textContent` only, under a strict
Content-Security-Policy (no inline script, no other origin); all data goes through a small JSON API.
A participant's page long-polls for its work; answers are committed to the state database before the
page is told they were taken.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hch.errors import HchError
from hch.serve import tokens
from hch.serve.desk import Desk, Refused
from hch.serve.store import Store

POLL_SECONDS = 20.0
"""How long a participant's page waits for a change before asking again."""
MAX_BODY = 256 * 1024
AWAY_SECONDS = 30.0
"""A participant whose page has not asked for work this long is shown as away."""
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store", "X-Frame-Options": "DENY", "Cross-Origin-Opener-Policy": "same-origin",
}
ASSETS = {"style.css": "text/css", "participant.js": "text/javascript", "experimenter.js": "text/javascript"}
WORKSPACE_FIELDS = ("question", "depth", "context", "steps", "max_asks", "steps_left", "refusal", "budget",
                    "bandwidth_left", "pointers", "expanded")


def _static(name: str) -> str:
    return resources.files("hch.serve").joinpath("static", name).read_text(encoding="utf-8")


def not_found() -> Response:
    """What every refused request gets: nothing that tells a wrong token from a wrong route."""
    return PlainTextResponse("Not Found", status_code=404)


class SecurityHeaders:
    """Adds the security headers to every response (a route may set its own Content-Security-Policy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def add(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()
                         if k.lower().encode() not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, add)


@dataclass
class Server:
    """What the routes need: the state, the queue, and how to start a run from the experimenter's form."""

    store: Store
    desk: Desk
    public_url: str
    start_run: Callable[[dict[str, Any]], Awaitable[str]] | None = None
    """Starts a run from the experimenter's form (question, depth, policy); returns its job id."""
    jobs_view: Callable[[], list[dict[str, Any]]] | None = None
    """The jobs and their trees, for the experimenter's page."""

    def participant_link(self, token: str) -> str:
        return f"{self.public_url}/p/{token}/"

    def experimenter_link(self) -> str:
        return f"{self.public_url}/x/{self.store.experimenter_token()}/"

    def participant(self, request: Request) -> str | None:
        known = {p.id: p.token for p in self.store.participants()}
        return tokens.find(str(request.path_params.get("token", "")), known)

    def experimenter(self, request: Request) -> bool:
        return tokens.find(str(request.path_params.get("token", "")), {"x": self.store.experimenter_token()}) == "x"


async def read_json(request: Request) -> dict[str, Any]:
    """The request's JSON object, at most `MAX_BODY` bytes; anything else is `Refused`."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise Refused(413, f"the request is larger than {MAX_BODY // 1024} KiB")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "the request is not JSON") from None
    if not isinstance(data, dict):
        raise Refused(400, "the request is not a JSON object")
    return data


def refused(exc: Refused) -> JSONResponse:
    return JSONResponse({"error": str(exc), "retry": exc.retry}, status_code=exc.status)


def participant_view(server: Server, participant: str, take: bool) -> dict[str, Any]:
    """What a participant's page shows: their workspace (only what a node may see), or that none is theirs."""
    desk = server.desk
    assignment = desk.work(participant, take=take)
    message = desk.messages.get(participant)
    if assignment is None:
        digest = hashlib.sha256((message or "").encode()).hexdigest()[:12]
        return {"view": f"idle:{digest}", "state": "idle", "message": message, "you": participant}
    workspace = desk.item(assignment.item).workspace
    shown = {name: workspace[name] for name in WORKSPACE_FIELDS if workspace.get(name) is not None}
    shown.setdefault("steps", [])
    return {"view": f"work:{assignment.id}", "state": "working", "assignment": assignment.id, "workspace": shown,
            "seconds_left": desk.seconds_left(assignment), "message": message, "you": participant}


def routes(server: Server) -> list[Route]:
    desk = server.desk

    def page(kind: str) -> Callable[[Request], Awaitable[Response]]:
        html = _static(f"{kind}.html")

        async def show(request: Request) -> Response:
            allowed = server.participant(request) is not None if kind == "participant" else server.experimenter(request)
            return HTMLResponse(html) if allowed else not_found()

        return show

    def allowed(request: Request) -> bool:
        """Whether the token in the path is one of its kind's: `/p/` a participant's, `/x/` the experimenter's."""
        if request.url.path.startswith("/p/"):
            return server.participant(request) is not None
        return server.experimenter(request)

    async def asset(request: Request) -> Response:
        name = str(request.path_params["asset"])
        if not allowed(request) or name not in ASSETS:
            return not_found()
        return Response(_static(name), media_type=ASSETS[name])

    async def bare(request: Request) -> Response:
        return RedirectResponse(request.url.path + "/") if allowed(request) else not_found()

    async def work(request: Request) -> Response:
        participant = server.participant(request)
        if participant is None:
            return not_found()
        seen = request.query_params.get("seen", "")
        end = anyio.current_time() + POLL_SECONDS
        with desk.present(participant):
            async with anyio.create_task_group() as group:
                group.start_soon(watch, request, group.cancel_scope)  # a closed page ends the wait at once
                while True:
                    view = participant_view(server, participant, take=not await request.is_disconnected())
                    if view["view"] != seen or anyio.current_time() >= end or desk.closing:
                        group.cancel_scope.cancel()
                        return JSONResponse(view)
                    await desk.changed(end - anyio.current_time())
        return Response(status_code=204)  # the page is gone: nobody reads this

    async def on_assignment(request: Request, do: Callable[[str, int, dict[str, Any]], object]) -> Response:
        """A participant's request about one of their assignments (its number in the JSON body)."""
        participant = server.participant(request)
        if participant is None:
            return not_found()
        try:
            data = await read_json(request)
            assignment = data.get("assignment")
            if not isinstance(assignment, int):
                raise Refused(400, "which assignment? (a number)")
            do(participant, assignment, data)
        except Refused as exc:
            return refused(exc)
        return JSONResponse({"ok": True})

    async def act(request: Request) -> Response:
        return await on_assignment(request, desk.submit)

    async def pass_on(request: Request) -> Response:
        return await on_assignment(request, lambda participant, assignment, _: desk.pass_on(participant, assignment))

    async def state(request: Request) -> Response:
        if not server.experimenter(request):
            return not_found()
        return JSONResponse(experimenter_view(server))

    async def new_run(request: Request) -> Response:
        if not server.experimenter(request):
            return not_found()
        try:
            data = await read_json(request)
            if server.start_run is None:
                raise Refused(400, "this server starts no runs from the page")
            job = await server.start_run(data)
        except Refused as exc:
            return refused(exc)
        except HchError as exc:
            return refused(Refused(400, " ".join(str(exc).split())))
        return JSONResponse({"ok": True, "job": job})

    async def new_participant(request: Request) -> Response:
        if not server.experimenter(request):
            return not_found()
        try:
            data = await read_json(request)
            name = data.get("name", "")
            if not isinstance(name, str) or len(name) > 200:
                raise Refused(400, "a name is text of at most 200 characters")
        except Refused as exc:
            return refused(exc)
        person = server.store.add_participant(name.strip())
        return JSONResponse({"ok": True, "id": person.id, "link": server.participant_link(person.token)})

    async def trace(request: Request) -> Response:
        if not server.experimenter(request):
            return not_found()
        seq = request.path_params["seq"]
        found = [t for t in server.store.trees() if t["seq"] == seq]
        if not found:
            return not_found()
        return viewer_page(Path(found[0]["key"]))

    return [
        Route("/p/{token}", bare), Route("/x/{token}", bare),
        Route("/p/{token}/", page("participant")), Route("/x/{token}/", page("experimenter")),
        Route("/p/{token}/api/work", work), Route("/p/{token}/api/act", act, methods=["POST"]),
        Route("/p/{token}/api/pass", pass_on, methods=["POST"]),
        Route("/x/{token}/api/state", state), Route("/x/{token}/api/runs", new_run, methods=["POST"]),
        Route("/x/{token}/api/participants", new_participant, methods=["POST"]),
        Route("/x/{token}/trace/{seq:int}", trace),
        Route("/p/{token}/{asset}", asset), Route("/x/{token}/{asset}", asset),
    ]


async def watch(request: Request, scope: anyio.CancelScope) -> None:
    """Cancel `scope` when the client goes away (a closed tab), so its participant counts as away at once."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


def experimenter_view(server: Server) -> dict[str, Any]:
    """The runs, the queue and who works on what."""
    desk, store = server.desk, server.store
    now = desk.clock()
    trees = {t["key"]: t for t in store.trees()}
    label = {key: t["label"] for key, t in trees.items()}
    working = {a.item: a for a in desk.current.values()}
    names = {p.id: p.name for p in store.participants()}
    queue = []
    for item_id, live in sorted(desk.live.items()):
        item, assignment = live.item, working.get(item_id)
        queue.append({
            "item": item_id, "tree": label.get(item.tree, Path(item.tree).name), "node": item.node,
            "depth": item.workspace.get("depth"), "question": item.workspace.get("question", ""),
            "waiting": round(now - item.enqueued, 1), "participant": assignment.participant if assignment else None,
            "seconds_left": desk.seconds_left(assignment) if assignment else None,
        })
    answered = store.answered_by()
    people = []
    for person in store.participants():
        assignment = desk.current.get(person.id)
        last = desk.last_seen.get(person.id)
        doing = desk.item(assignment.item) if assignment is not None else None
        people.append({
            "id": person.id, "name": names[person.id], "link": server.participant_link(person.token),
            "state": "working" if assignment else (
                "idle" if desk.polling.get(person.id) or (last is not None and now - last < AWAY_SECONDS) else "away"),
            "working_on": None if doing is None else {
                "tree": label.get(doing.tree, Path(doing.tree).name), "node": doing.node,
                "question": doing.workspace.get("question", "")},
            "answered": answered.get(person.id, 0),
        })
    jobs = server.jobs_view() if server.jobs_view is not None else []
    return {"jobs": jobs, "queue": queue, "people": people,
            "trees": [{"seq": t["seq"], "label": t["label"], "job": t["job"], "viewer": f"trace/{t['seq']}"}
                      for t in trees.values()],
            "settings": {"barrier": desk.barrier, "time_budget": desk.time_budget}}


_VIEWER_CSP: str | None = None


def viewer_csp() -> str:
    """The viewer page's policy: its own inline script and style only, by hash."""
    global _VIEWER_CSP
    if _VIEWER_CSP is None:
        template = resources.files("hch.review").joinpath("viewer.html").read_text(encoding="utf-8")

        def hashes(pattern: str) -> str:
            bodies = re.findall(pattern, template, flags=re.DOTALL)
            return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'"
                            for b in bodies)

        _VIEWER_CSP = (f"default-src 'none'; script-src {hashes(r'<script>(.*?)</script>')}; "
                       f"style-src {hashes(r'<style>(.*?)</style>')}; img-src data:; base-uri 'none'; "
                       "form-action 'none'; frame-ancestors 'none'")
    return _VIEWER_CSP


def viewer_page(path: Path) -> Response:
    """The trace viewer (hch/review/viewer.py) for a tree's trace, finished or still being written."""
    from hch.record.journal import journal_path, load_any
    from hch.review import viewer

    if not path.exists() and not journal_path(path).exists():
        return PlainTextResponse("no trace yet: the run has not started", status_code=404)
    try:
        page = viewer.render(load_any(path))
    except (HchError, OSError) as exc:
        return PlainTextResponse(f"the trace cannot be read: {' '.join(str(exc).split())}", status_code=500)
    return HTMLResponse(page, headers={"Content-Security-Policy": viewer_csp()})


def make_app(server: Server) -> ASGIApp:
    app = Starlette(routes=routes(server))
    return SecurityHeaders(app)
