"""`hch serve` end to end: a real server process, participants in a real Chromium (Playwright).

Playwright drives Debian's chromium (`executable_path`): browser downloads are not possible here, and .ci/run
installs the system package. Without a chromium the browser tests are skipped, saying so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import trace_data

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
EVIL = '<img src=x onerror="document.body.dataset.pwned=1"><script>document.body.dataset.pwned=2</script>"\'&amp;'
DEADLINE = 90.0
"""Seconds a driving loop may take before the test fails (a hang, not a speed check)."""
SHOWN = """() => {
  const work = document.getElementById('work');
  if (work.hidden) return null;
  return {question: document.getElementById('question').textContent,
          depth: Number(document.getElementById('depth').dataset.n),
          questions: [...document.querySelectorAll('.sub-q')].map(e => e.textContent),
          answers: [...document.querySelectorAll('.sub-a')].map(e => e.textContent),
          context: document.getElementById('context-text').textContent,
          countdown: (c => c.hidden ? null : c.textContent)(document.getElementById('countdown')),
          view: document.body.dataset.view, width: document.documentElement.scrollWidth};
}"""
INERT = """() => document.body.dataset.pwned === undefined && document.querySelectorAll('img').length === 0
  && [...document.scripts].every(s => s.src || s.type === 'application/json')"""


class Serve:
    """An `hch serve` process in `cwd`; its links parsed from stdout."""

    def __init__(self, cwd: Path, *args: str, participants: int, port: int = 0) -> None:
        self.cwd = cwd
        self.stderr = (cwd / f"serve-{time.monotonic_ns()}.err").open("w")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hch", "serve", "--state", "st", "--port", str(port), *args],
            cwd=cwd, stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env,
        )
        assert self.process.stdout is not None
        lines = [self.process.stdout.readline() for _ in range(participants + 1)]
        assert lines[0].startswith("experimenter: "), (lines, self.err())
        self.experimenter = lines[0].split(": ", 1)[1].strip()
        self.links = [line.split(": ", 1)[1].strip() for line in lines[1:]]
        self.base = self.experimenter.split("/x/")[0]

    def err(self) -> str:
        if not self.stderr.closed:
            self.stderr.flush()
        return Path(self.stderr.name).read_text()

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.experimenter + "api/state") as response:
            return dict(json.load(response))

    def wait(self) -> int:
        code = self.process.wait(timeout=60)
        self.stderr.close()
        return code

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("no chromium found (.ci/run installs Debian's); the browser tests need a real one")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def servers() -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.stop(signal.SIGKILL)


def open_page(browser: Any, url: str, width: int = 375) -> Any:
    page = browser.new_context(viewport={"width": width, "height": 740}).new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    page.goto(url)
    return page


def shown(page: Any) -> dict[str, Any] | None:
    return page.evaluate(SHOWN)  # type: ignore[no-any-return]


def act(page: Any, action: dict[str, Any]) -> None:
    """Do what a person would: type the subquestions or the answer, press the button, wait until it is taken."""
    sent = page.evaluate("document.body.dataset.sent || '0'")
    if action["kind"] == "ask":
        for index, question in enumerate(action["questions"]):
            if index:
                page.click("#add-ask")
            page.locator(".ask-input").nth(index).fill(question)
        page.click("#send-ask")
    else:
        page.fill("#answer", action["answer"])
        page.click("#send-guess" if action["kind"] == "guess" else "#send-answer")
    page.wait_for_function("(sent) => (document.body.dataset.sent || '0') !== sent", arg=sent)


def drive(pages: list[Any], rule: Callable[[Any, dict[str, Any]], dict[str, Any] | None],
          done: Callable[[], bool]) -> list[tuple[int, dict[str, Any]]]:
    """Until `done`: every page that shows a workspace acts by `rule` (None: not yet). Returns what each did."""
    log: list[tuple[int, dict[str, Any]]] = []
    began = time.monotonic()
    while not done():
        assert time.monotonic() - began < DEADLINE, f"stuck; did so far: {log}"
        acted = False
        for index, page in enumerate(pages):
            workspace = shown(page)
            if workspace is None:
                continue
            action = rule(page, workspace)
            if action is not None:
                act(page, action)
                log.append((index, {**workspace, "action": action}))
                acted = True
        if not acted:
            pages[0].wait_for_timeout(50)
    return log


def web_calls(trace: Path) -> list[dict[str, Any]]:
    data = trace_data(trace)
    return [n for n in data["nodes"] if n.get("kind") == "call" and n.get("policy", "").startswith("web")]


def test_several_participants_at_once_complete_a_depth_2_tree_on_phone_screens(
        browser: Any, servers: list[Serve], tmp_path: Path) -> None:
    question = "Add the leaves: " + "x" * 120  # one long word: the page must still fit a phone's width
    serve = Serve(tmp_path, "--ask", question, "--depth", "2", "--policy", "web", "--participants", "5",
                  "--exit-when-done", participants=5)
    servers.append(serve)
    pages = [open_page(browser, link) for link in serve.links]
    together: list[set[str]] = []

    def rule(page: Any, ws: dict[str, Any]) -> dict[str, Any] | None:
        assert ws["width"] <= 375, "the page scrolls sideways at phone width"
        assert ws["countdown"] and ws["countdown"].startswith("Time left: ")
        if ws["depth"] == 1 and not ws["answers"]:  # both subquestions of the root are out: wait for both
            now = [w for w in map(shown, pages) if w is not None and w["depth"] == 1 and not w["answers"]]
            if len(now) < 2 and not together:
                return None
            if not together:
                together.append({w["question"] for w in now})
        if ws["depth"] > 0 and not ws["answers"]:
            count = 2 if ws["depth"] == 2 else 1
            return {"kind": "ask", "questions": [f"part {i} of {ws['question'][:20]} at n={ws['depth']}"
                                                 for i in range(count)]}
        if ws["depth"] == 0:
            return {"kind": "answer", "answer": "1"}
        return {"kind": "answer", "answer": str(sum(int(a) for a in ws["answers"]))}

    experimenter = open_page(browser, serve.experimenter, width=1200)
    log = drive(pages, rule, lambda: serve.process.poll() is not None)
    assert serve.wait() == 0, serve.err()
    assert len(together) == 1 and len(together[0]) == 2  # two people held the two subtrees at the same time
    assert [entry["action"]["kind"] for _, entry in log].count("ask") == 3
    trace = next((tmp_path / "st" / "traces").glob("*.json"))
    data = trace_data(trace)
    assert data["graph"]["answer"] == "2" and data["graph"]["status"] == "ok"
    calls = web_calls(trace)
    assert len(calls) == 8  # root 2 steps, two inner nodes 2 steps each, two leaves
    person = {}
    for call in calls:
        person.setdefault(call["workspace"], set()).add(call["raw"]["participant"])
        assert call["raw"]["shown_at"] < call["raw"]["answered_at"]
    assert all(len(people) == 1 for people in person.values())
    assert len({next(iter(p)) for p in person.values()}) == 5  # five workspaces, five people: the barrier
    secrets = [link.rstrip("/").rsplit("/", 1)[1] for link in [serve.experimenter, *serve.links]]
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.name.startswith("serve.sqlite"):
            text = path.read_bytes()
            assert not any(secret.encode() in text for secret in secrets), f"a token leaked into {path}"
    experimenter.close()


def test_a_participant_who_leaves_mid_answer_has_the_workspace_reassigned(
        browser: Any, servers: list[Serve], tmp_path: Path) -> None:
    serve = Serve(tmp_path, "--ask", "Who leaves?", "--depth", "0", "--participants", "3", "--away", "1",
                  "--time-budget", "5", "--exit-when-done", participants=3)
    servers.append(serve)
    first = open_page(browser, serve.links[0])
    first.wait_for_selector("#question:text('Who leaves?')")
    first.fill("#answer", "half an ans")
    first.context.close()  # gone, mid-answer: a second later the workspace is someone else's
    second = open_page(browser, serve.links[1])
    second.wait_for_selector("#question:text('Who leaves?')", timeout=30_000)
    assert re.fullmatch(r"Time left: 0:0[0-5]", second.locator("#countdown").text_content() or "")
    second.fill("#answer", "too slow")  # stays on the page, but its 5 s run out: the third gets it
    third = open_page(browser, serve.links[2])
    third.wait_for_selector("#question:text('Who leaves?')", timeout=30_000)
    second.wait_for_selector("#message:text('your time for that workspace ran out')")
    assert second.locator("#work").is_hidden()
    act(third, {"kind": "answer", "answer": "answered by the third"})
    assert serve.wait() == 0, serve.err()
    (call,) = web_calls(next((tmp_path / "st" / "traces").glob("*.json")))
    assert call["output"]["answer"] == "answered by the third"
    assert call["raw"]["participant"] == "p3"
    assert [(e["participant"], e["outcome"]) for e in call["raw"]["earlier"]] == [("p1", "left"), ("p2", "expired")]


def test_a_server_restart_mid_run_loses_nothing(browser: Any, servers: list[Serve], tmp_path: Path) -> None:
    port = free_port()
    args = ("--ask", "Restart me", "--depth", "1", "--participants", "2")
    serve = Serve(tmp_path, *args, port=port, participants=2)
    servers.append(serve)
    pages = [open_page(browser, link) for link in serve.links]

    def rule(page: Any, ws: dict[str, Any]) -> dict[str, Any] | None:
        if ws["depth"] == 1 and not ws["answers"]:
            return {"kind": "ask", "questions": ["the child's question"]}
        if ws["depth"] == 0:
            return {"kind": "answer", "answer": "the child's answer"}
        return None  # the root's last step: answered after the restart

    waiting: list[Any] = []

    def root_waits() -> bool:
        waiting[:] = [p for p in pages if (w := shown(p)) is not None and w["answers"] == ["the child's answer"]]
        return bool(waiting)

    log = drive(pages, rule, root_waits)
    assert len(log) == 2
    root_page = waiting[0]
    root_page.fill("#answer", "typed before the restart")
    assert serve.stop(signal.SIGKILL) == -signal.SIGKILL  # no chance to save anything on the way out
    again = Serve(tmp_path, *args, "--exit-when-done", port=port, participants=2)
    servers.append(again)
    assert (again.experimenter, again.links) == (serve.experimenter, serve.links)  # the same links work
    view = shown(root_page)
    root_page.wait_for_function("() => document.getElementById('connection').hidden")  # the page found the server again
    after = shown(root_page)
    assert view is not None and after is not None
    assert {**after, "countdown": None} == {**view, "countdown": None}  # the same workspace, the same assignment
    assert root_page.input_value("#answer") == "typed before the restart"
    act(root_page, {"kind": "answer", "answer": root_page.input_value("#answer") + ", sent after it"})
    assert again.wait() == 0, again.err()
    trace = next((tmp_path / "st" / "traces").glob("*.json"))
    assert trace_data(trace)["graph"]["answer"] == "typed before the restart, sent after it"
    db = sqlite3.connect(tmp_path / "st" / "serve.sqlite")
    outcomes = db.execute("SELECT participant, outcome FROM assignments ORDER BY id").fetchall()
    assert [o for _, o in outcomes] == ["answered"] * 3  # nobody was asked anything twice
    other = next(p for p in pages if p is not root_page)
    assert shown(other) is None


def request(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST" if data else "GET")) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_a_wrong_or_missing_token_gets_nothing_on_any_route(browser: Any, servers: list[Serve],
                                                             tmp_path: Path) -> None:
    serve = Serve(tmp_path, "--ask", "Secret question?", "--depth", "0", "--participants", "1", participants=1)
    servers.append(serve)
    good = {"p": serve.links[0].rstrip("/").rsplit("/", 1)[1], "x": serve.experimenter.rstrip("/").rsplit("/", 1)[1]}
    routes = {"p": ["", "/", "/api/work", "/api/act", "/api/pass", "/style.css", "/participant.js"],
              "x": ["", "/", "/api/state", "/api/runs", "/api/participants", "/trace/1", "/style.css",
                    "/experimenter.js"]}
    posted = {"/api/act", "/api/pass", "/api/runs", "/api/participants"}
    body = json.dumps({"assignment": 1, "kind": "answer", "answer": "x", "name": "intruder", "question": "q",
                       "depth": 0}).encode()
    while not serve.state()["queue"]:
        time.sleep(0.05)
    for kind, paths in routes.items():
        other = "x" if kind == "p" else "p"
        wrong = ["", "A" * 32, good[kind][:-1] + ("B" if good[kind][-1] != "B" else "C"), good[other],
                 good[kind] + "x", "..%2F" + good[kind]]
        for path in paths:
            data = body if path in posted else None
            for token in wrong:
                status, text = request(f"{serve.base}/{kind}/{token}{path}", data)
                assert status in (404, 405), (kind, token, path, status, text)
                assert text in (b"Not Found", b"Method Not Allowed"), (kind, token, path, status, text)
            if path not in posted:
                assert request(f"{serve.base}/{kind}/{good[kind]}{path}")[0] == 200, (kind, path)
    for path in ["/", "/favicon.ico", "/p", "/x", "/p/", "/x/", "/api/state", "/static/style.css"]:
        assert request(serve.base + path)[0] == 404
    assert len(serve.state()["people"]) == 1  # no participant was added by a refused request
    page = open_page(browser, f"{serve.base}/p/{'A' * 32}/")
    assert "Secret" not in page.content() and page.locator("#work").count() == 0
    assert serve.stop() == 130


def test_script_in_every_field_stays_text(browser: Any, servers: list[Serve], tmp_path: Path) -> None:
    serve = Serve(tmp_path, "--ask", "Q " + EVIL, "--context", "C " + EVIL, "--depth", "1", "--participant",
                  "N " + EVIL, "--participant", "M " + EVIL, "--exit-when-done", participants=2)
    servers.append(serve)
    experimenter = open_page(browser, serve.experimenter, width=1200)
    pages = [open_page(browser, link) for link in serve.links]
    checked: list[str] = []

    def rule(page: Any, ws: dict[str, Any]) -> dict[str, Any] | None:
        assert page.evaluate(INERT)
        if ws["depth"] == 1 and not ws["answers"]:
            assert ws["question"] == "Q " + EVIL and ws["context"] == "C " + EVIL
            experimenter.wait_for_selector("#queue td:text-matches('^Q ')")
            assert experimenter.evaluate(INERT)
            texts = experimenter.locator("td").all_text_contents()
            assert "Q " + EVIL in texts and "N " + EVIL in texts and "M " + EVIL in texts
            checked.append("experimenter")
            return {"kind": "ask", "questions": ["S " + EVIL]}
        if ws["depth"] == 0:
            assert ws["question"] == "S " + EVIL
            return {"kind": "answer", "answer": "A " + EVIL}
        assert ws["questions"] == ["S " + EVIL] and ws["answers"] == ["A " + EVIL]
        checked.append("sub-answers")
        with experimenter.context.expect_page() as opened:  # the trace viewer, from the experimenter's page
            experimenter.click("#trees a")
        viewer = opened.value
        viewer.wait_for_function("(text) => document.body.textContent.includes(text)", arg="Q " + EVIL)
        assert viewer.evaluate("() => document.body.dataset.pwned === undefined && !document.querySelector('img')")
        viewer.close()
        return {"kind": "answer", "answer": "R " + EVIL}

    drive(pages, rule, lambda: serve.process.poll() is not None)
    assert serve.wait() == 0, serve.err()
    assert checked == ["experimenter", "sub-answers"]
    for page in [*pages, experimenter]:
        assert page.evaluate(INERT)
    trace = next((tmp_path / "st" / "traces").glob("*.json"))
    assert trace_data(trace)["graph"]["answer"] == "R " + EVIL


def test_the_barrier_holds_across_a_sweep_of_many_trees(browser: Any, servers: list[Serve], tmp_path: Path) -> None:
    questions = [f"Question {i}?" for i in range(6)]
    (tmp_path / "q.jsonl").write_text("".join(json.dumps({"question": q, "answer": "ok"}) + "\n" for q in questions))
    serve = Serve(tmp_path, "--sweep", "q.jsonl", "--depths", "1", "--policy", "web", "--participants", "3",
                  "--exit-when-done", participants=3)
    servers.append(serve)
    pages = [open_page(browser, link) for link in serve.links]

    def rule(page: Any, ws: dict[str, Any]) -> dict[str, Any] | None:
        if ws["depth"] == 1 and not ws["answers"]:
            return {"kind": "ask", "questions": [f"part of {ws['question']}"]}
        return {"kind": "answer", "answer": "ok"}

    log = drive(pages, rule, lambda: serve.process.poll() is not None)
    assert serve.wait() == 0, serve.err()
    assert len(log) == 18  # 6 trees: the root asks, the leaf answers, the root answers
    traces = sorted((tmp_path / "st" / "sweeps").glob("*/traces/**/*.json"))
    assert len(traces) == 6
    for trace in traces:
        people: dict[int, set[str]] = {}
        for call in web_calls(trace):
            people.setdefault(call["workspace"], set()).add(call["raw"]["participant"])
        assert len(people) == 2 and all(len(p) == 1 for p in people.values())
        assert len(set.union(*people.values())) == 2, f"one person had two workspaces of {trace.name}"
    db = sqlite3.connect(tmp_path / "st" / "serve.sqlite")
    rows = db.execute("SELECT participant, tree, count(DISTINCT node) FROM assignments GROUP BY participant, tree")
    assert all(count == 1 for _, _, count in rows)
    assert len({p for p, _, _ in db.execute("SELECT participant, tree, node FROM assignments")}) == 3
    assert len(db.execute("SELECT key FROM trees").fetchall()) == 6  # each tree listed for the experimenter
    runs = (next((tmp_path / "st" / "sweeps").glob("*")) / "runs.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["question"] for line in runs) == questions


def test_the_experimenter_starts_a_run_and_adds_a_participant_from_the_page(
        browser: Any, servers: list[Serve], tmp_path: Path) -> None:
    serve = Serve(tmp_path, "--participants", "1", participants=1)
    servers.append(serve)
    page = open_page(browser, serve.experimenter, width=1200)
    page.fill("#person-name", "Dana")
    page.click("#new-person button")
    page.wait_for_selector("#people td:text-is('Dana')")
    page.fill("#run-question", "Form question?")
    page.fill("#run-depth", "0")
    page.fill("#run-policy", "nope")
    page.click("#new-run button")
    page.wait_for_selector("#message:text-matches('unknown policy')")
    page.fill("#run-policy", "web")
    page.click("#new-run button")
    participant = open_page(browser, serve.links[0])
    participant.wait_for_selector("#question:text-is('Form question?')")
    page.wait_for_selector("#people td:text-is('working')")  # who works on what
    act(participant, {"kind": "answer", "answer": "42"})
    page.wait_for_selector("#jobs td:text-is('ok: 42')")
    page.fill("#run-question", "Form question?")
    page.click("#new-run button")
    page.wait_for_selector("#message:text-matches('this run was made already')")
    assert page.locator("#trees a").count() == 1
    page.fill("#run-depth", "")  # budgeted HCH: one call in all, depth unbounded
    page.fill("#run-budget", "1")
    page.click("#new-run button")
    participant.wait_for_selector("#calls[data-left='0']")
    act(participant, {"kind": "answer", "answer": "7"})
    page.wait_for_selector("#jobs td:text-is('ok: 7')")
    assert serve.stop() == 130
    assert "interrupted; the state is kept" in serve.err()


def test_the_pages_ship_with_the_package() -> None:
    import tomllib
    from importlib import resources

    from hch.serve.app import ASSETS

    for name in [*ASSETS, "participant.html", "experimenter.html"]:
        assert resources.files("hch.serve").joinpath("static", name).is_file()
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["tool"]["setuptools"]["package-data"]["hch.serve"] == ["static/*"]


POINTERS = """() => [...document.querySelectorAll('#pointers li')].map(li => ({
  pointer: li.dataset.pointer, content: (c => c ? c.textContent : null)(li.querySelector('pre')),
  button: (b => b ? b.textContent : null)(li.querySelector('button'))}))"""


def expand(page: Any, pointer: str) -> None:
    """Press a pointer's Expand button and wait until the workspace shows its content."""
    page.click(f"#pointers li[data-pointer='{pointer}'] button")
    page.wait_for_selector(f"#pointers li[data-pointer='{pointer}'] pre")


def test_in_pointer_mode_a_person_expands_a_pointer_and_routes_another_unread(
        browser: Any, servers: list[Serve], tmp_path: Path) -> None:
    serve = Serve(tmp_path, "--ask", "What is the sum of [[10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120]]?",
                  "--depth", "1", "--bandwidth", "60", "--participants", "2", "--exit-when-done", participants=2)
    servers.append(serve)
    root = open_page(browser, serve.links[0])
    root.wait_for_selector("#question:text-is('What is the sum of $1?')")
    child = open_page(browser, serve.links[1])
    assert root.evaluate(POINTERS) == [{"pointer": "$1", "content": None, "button": "Expand $1"}]
    assert root.locator("#bandwidth").text_content() == "38 characters left to see in this workspace"
    expand(root, "$1")
    assert root.evaluate(POINTERS) == [{"pointer": "$1", "content": "$2, $3", "button": None},
                                       {"pointer": "$2", "content": None, "button": "Expand $2"},
                                       {"pointer": "$3", "content": None, "button": "Expand $3"}]
    root.locator(".ask-input").first.fill("What is the sum of $3?")  # typed before expanding $2: kept
    expand(root, "$2")
    assert root.evaluate(POINTERS)[1] == {"pointer": "$2", "content": "10, 20, 30, 40, 50, 60", "button": None}
    assert root.locator("#bandwidth").text_content() == "10 characters left to see in this workspace"
    assert child.locator("#work").is_hidden()  # the root's workspace waited for the person who expanded
    assert root.input_value(".ask-input") == "What is the sum of $3?"
    root.click("#send-ask")
    child.wait_for_selector("#question:text-is('What is the sum of $1?')")
    expand(child, "$1")
    assert child.evaluate(POINTERS)[0]["content"] == "70, 80, 90, 100, 110, 120"
    act(child, {"kind": "answer", "answer": "570"})
    root.wait_for_selector(".sub-a:text-is('570')")
    after = shown(root)
    assert after is not None and after["questions"] == ["What is the sum of $3?"]
    act(root, {"kind": "answer", "answer": "780"})
    assert serve.wait() == 0, serve.err()
    trace = next((tmp_path / "st" / "traces").glob("*.json"))
    data = trace_data(trace)
    assert data["graph"]["answer"] == "780"
    calls = sorted(web_calls(trace), key=lambda c: str(c["raw"]["answered_at"]))
    assert [c["output"]["kind"] for c in calls] == ["expand", "expand", "ask", "expand", "answer", "answer"]
    assert [c["raw"]["participant"] for c in calls] == ["p1", "p1", "p1", "p2", "p2", "p1"]
    nodes = {n["id"]: n for n in data["nodes"] if n.get("kind") == "workspace"}
    top = nodes[0]
    routed = top["pointers"]["$3"]  # the half the root passed on without reading
    assert routed not in {e["message"] for e in top["expansions"]}
    (leaf,) = [n for i, n in nodes.items() if i != 0]
    assert leaf["pointers"]["$1"] == routed and [e["message"] for e in leaf["expansions"]] == [routed]


def test_a_pointers_content_stays_text_on_the_page(browser: Any, servers: list[Serve], tmp_path: Path) -> None:
    serve = Serve(tmp_path, "--ask", "Q [[" + EVIL + "]]", "--depth", "0", "--pointers", "--participants", "1",
                  "--exit-when-done", participants=1)
    servers.append(serve)
    page = open_page(browser, serve.links[0])
    page.wait_for_selector("#question:text-is('Q $1')")
    while unread := [p["pointer"] for p in page.evaluate(POINTERS) if p["content"] is None]:
        expand(page, unread[0])  # the message comes in halves: read them all
        assert page.evaluate(INERT)
    contents = " ".join(p["content"] for p in page.evaluate(POINTERS))
    assert "<img src=x" in contents and "</script>" in contents  # shown as the text it is
    act(page, {"kind": "answer", "answer": "$1"})  # passed on unread as the answer: resolved for the user
    assert serve.wait() == 0, serve.err()
    assert page.evaluate(INERT)
    data = trace_data(next((tmp_path / "st" / "traces").glob("*.json")))
    assert data["graph"]["answer"] == EVIL


def test_in_budgeted_hch_a_person_gives_each_subquestion_a_share_of_the_calls(
        browser: Any, servers: list[Serve], tmp_path: Path) -> None:
    serve = Serve(tmp_path, "--ask", "Share my calls", "--budget", "6", "--participants", "3", "--exit-when-done",
                  participants=3)
    servers.append(serve)
    root = open_page(browser, serve.links[0])
    root.wait_for_selector("#question:text-is('Share my calls')")
    assert root.locator("#calls").get_attribute("data-left") == "5"  # the root's own call is the first of 6
    others = [open_page(browser, link) for link in serve.links[1:]]
    root.locator(".ask-input").first.fill("first part")
    root.click("#add-ask")
    root.locator(".ask-input").nth(1).fill("second part")
    root.locator(".ask-budget").first.fill("4")
    root.click("#send-ask")
    root.wait_for_selector("#message:text-matches('Give every subquestion')")  # one share given, one not
    root.locator(".ask-budget").nth(1).fill("1")
    root.click("#send-ask")
    root.wait_for_selector("#message:text-matches('add up to 5, but with 5 calls left you may give at most 4')")
    root.locator(".ask-budget").first.fill("3")
    act(root, {"kind": "ask", "questions": ["first part", "second part"]})  # the shares typed above: 3 and 1
    seen = {}
    for page in others:
        page.wait_for_selector("#work:not([hidden])")
        ws = shown(page)
        assert ws is not None
        seen[ws["question"]] = page.locator("#calls").get_attribute("data-left")
        if ws["question"] == "second part":
            assert page.locator("#ask-part").is_hidden()  # 0 calls left: it can only answer
        act(page, {"kind": "answer", "answer": ws["question"] + " done"})
    assert seen == {"first part": "2", "second part": "0"}
    root.wait_for_selector(".sub-a:text-is('second part done')")
    assert root.locator("#calls").get_attribute("data-left") == "2"  # 5 - 4 given + 2 unspent back - this call
    act(root, {"kind": "answer", "answer": "both done"})
    assert serve.wait() == 0, serve.err()
    data = trace_data(next((tmp_path / "st" / "traces").glob("*.json")))
    assert data["graph"]["answer"] == "both done" and data["graph"]["budget"] == 6
    (ask,) = [c for c in web_calls(next((tmp_path / "st" / "traces").glob("*.json")))
              if c["output"]["kind"] == "ask"]
    assert ask["output"]["budgets"] == [3, 1]
    delegations = sorted((e["budget"], e["returned"]) for e in data["edges"] if e["kind"] == "delegate")
    assert delegations == [(1, 0), (3, 2)]
