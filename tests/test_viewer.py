from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import FunctionPolicy

import hch
from hch.limits import Limits
from hch.record.format import load
from hch.record.trace import Trace
from hch.review import viewer
from hch.workspace import Answer, Ask, Workspace

SUM = "What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?"
EVIL = '</script><script>document.title="pwned"</script><img src=x onerror="document.body.dataset.pwned=1">'
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def dump_dom(page: Path, tmp_path: Path, fragment: str = "") -> str:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.resolve().as_uri() + fragment],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def evil_trace() -> Trace:
    async def act(ws: Workspace) -> Ask | Answer:
        if ws.question == "root":
            return Ask(questions=["child " + EVIL]) if not ws.steps else Answer(answer=EVIL)
        return Answer(answer="leaf " + EVIL)

    return hch.answer_sync("root", depth=1, policy=FunctionPolicy(act)).trace


def embedded(page: str) -> dict[str, object]:
    match = re.search(r'<script type="application/json" id="hch-data">(.*?)</script>', page, re.S)
    assert match is not None
    data: dict[str, object] = json.loads(match.group(1))
    return data


def test_policy_text_cannot_close_the_data_element(tmp_path: Path) -> None:
    page = viewer.render(evil_trace())
    assert "</script><script>document.title" not in page
    assert page.count("<script") == 2  # the data element and the page's own script
    data = embedded(page)
    nodes = data["nodes"]
    assert isinstance(nodes, dict) and nodes["0"]["answer"] == EVIL  # intact once parsed


def test_page_data_marks_cache_hits_guesses_and_the_critical_path() -> None:
    trace = hch.answer_sync("What is (1 + 2) * (1 + 2) + (1 + 2)?", depth=3).trace
    data = viewer.page_data(trace)
    nodes = data["nodes"]
    assert any(reused or repeats for node in nodes.values() for _, reused, repeats in node["kids"])
    assert data["critical_path"][0] == trace.root and nodes[trace.root]["critical"]
    # the node budget lets the root ask for the halves but not the halves split: they guess
    guesses = viewer.page_data(hch.answer_sync(SUM, depth=2, limits=Limits(max_nodes=3)).trace)["nodes"]
    assert sum(n["status"] == "guess" for n in guesses.values()) == 3


def test_chromium_shows_the_tree_and_details(tmp_path: Path) -> None:
    page = viewer.write(hch.answer_sync(SUM, depth=3).trace, tmp_path / "sum.html")
    dom = dump_dom(page, tmp_path)
    assert 'data-ready="1"' in dom
    assert dom.count('class="row ') == 7  # the whole small tree is open
    assert "What is the sum of 3, 1, 4, 1?" in dom and "workspace #0" in dom
    assert "2 policy call(s)" in dom


def test_chromium_shows_script_as_text_and_does_not_run_it(tmp_path: Path) -> None:
    page = viewer.write(evil_trace(), tmp_path / "evil.html")
    dom = dump_dom(page, tmp_path)
    assert 'data-ready="1"' in dom  # the page's own script ran to the end
    outside_scripts = re.sub(r"<script.*?</script>", "", dom, flags=re.S)
    assert "<img" not in outside_scripts and "<script" not in outside_scripts  # no element was injected
    assert "<title>hch trace</title>" in dom and "data-pwned" not in dom  # and nothing ran
    assert html.escape(EVIL, quote=False) in outside_scripts  # shown in full, as text (details pane)


def test_chromium_search_and_node_links(tmp_path: Path) -> None:
    trace = hch.answer_sync(SUM, depth=3).trace
    page = viewer.write(trace, tmp_path / "sum.html")
    leaf = next(n for n, d in trace.workspaces() if d["question"] == "What is the sum of 2, 6?")
    dom = dump_dom(page, tmp_path, f"#node={leaf}&q=5,%209")
    assert f"workspace #{leaf}" in dom
    assert "3 match(es)" in dom  # the root, "5, 9, 2, 6" and "5, 9"


def wide_trace(fanout: int = 10, depth: int = 4) -> Trace:
    async def act(ws: Workspace) -> Ask | Answer:
        if ws.depth == 0:
            return Answer(answer="1")
        if not ws.steps:
            return Ask(questions=[f"{ws.question}.{i}" for i in range(fanout)])
        return Answer(answer=str(sum(int(s.answer) for s in ws.steps[0])))

    from hch.limits import Limits

    return hch.answer_sync("q", depth=depth, policy=FunctionPolicy(act), limits=Limits(max_asks_per_step=fanout,
                                                                                        max_nodes=20_000)).trace


def test_a_ten_thousand_node_trace_renders_lazily(tmp_path: Path) -> None:
    trace = wide_trace()
    assert sum(1 for _ in trace.workspaces()) == 11_111
    page = viewer.write(trace, tmp_path / "wide.html")
    dom = dump_dom(page, tmp_path, "#q=q.9.9.9")
    assert 'data-ready="1"' in dom
    rows = dom.count('class="row ')
    assert 100 <= rows <= 400  # the first levels only; the rest renders on demand
    assert "11 match(es)" in dom  # q.9.9.9 and its ten children


EXAMPLES = Path(__file__).resolve().parent.parent / "traces" / "examples"


@pytest.mark.parametrize(
    ("example", "which", "count"),
    [("node-budget", "guess", 4), ("expression-depth1-guesses", "guess", 2), ("sum-depth3", "guess", 0),
     ("sum-depth3", "error", 0), ("sum-depth3", "critical", 5), ("subtree-reuse", "cached", 1),
     ("sum-depth3", "cached", 0)],
)
def test_chromium_lists_guesses_errors_cache_hits_and_the_critical_path(
    tmp_path: Path, example: str, which: str, count: int
) -> None:
    page = viewer.write(load(EXAMPLES / f"{example}.json"), tmp_path / "page.html")
    dom = dump_dom(page, tmp_path, f"#list={which}")
    results = re.search(r'<div id="results">(.*?)</div>\s*</header>', dom, re.S)
    assert results is not None
    assert results.group(1).count("<div class=") == count + 1  # the count line, then one line per workspace


def test_an_error_is_listed(tmp_path: Path) -> None:
    async def act(ws: Workspace) -> Ask | Answer:
        if ws.question == "bad":
            raise ValueError("boom <b>")
        if ws.question == "root" and not ws.steps:
            return Ask(questions=["bad", "good"])
        return Answer(answer="done")

    page = viewer.write(hch.answer_sync("root", depth=1, policy=FunctionPolicy(act)).trace, tmp_path / "e.html")
    dom = dump_dom(page, tmp_path, "#list=error")
    assert "1 error(s)" in dom and "boom &lt;b&gt;" in dom


def lookup(table: dict[str, str], key: str) -> str:
    return table[key]


async def buggy(ws: Workspace) -> str:
    return lookup({}, "missing")


def test_chromium_shows_the_traceback_of_an_exception_a_policy_raised(tmp_path: Path) -> None:
    trace = hch.answer_sync("q", depth=0, policy=buggy).trace
    dom = dump_dom(viewer.write(trace, tmp_path / "t.html"), tmp_path, "#node=0")
    details = re.sub(r"<script.*?</script>", "", dom, flags=re.S)
    assert "traceback (the policy raised)" in details
    assert "in lookup" in details and "KeyError: 'missing'" in details


def test_the_shared_context_is_embedded_as_data_and_shown_as_text(tmp_path: Path) -> None:
    trace = hch.answer_sync("What is 2 + 3?", depth=1, context="Facts: " + EVIL).trace
    page = viewer.render(trace)
    assert page.count("<script") == 2 and embedded(page)["context"] == "Facts: " + EVIL
    assert 'id="context" hidden' in page  # shown by the page's script only when there is a context
    dom = dump_dom(viewer.write(trace, tmp_path / "c.html"), tmp_path)
    outside_scripts = re.sub(r"<script.*?</script>", "", dom, flags=re.S)
    assert '<details id="context">' in outside_scripts and "data-pwned" not in dom
    assert html.escape("Facts: " + EVIL, quote=False) in outside_scripts


def test_a_long_question_is_clamped_in_its_row_so_the_answer_stays_in_view() -> None:
    question = "What is the sum of " + ", ".join(["1"] * 400) + "?"
    page = viewer.render(hch.answer_sync(question, depth=0).trace)
    css = re.search(r"<style>(.*?)</style>", page, re.S)
    assert css is not None
    # the row's question gives way to the rest of the row (ellipsis) and the answer follows it;
    # the selected row shows it whole, wrapped (the details pane always does); Chromium checks it below
    assert re.search(r"\.row:not\(\.selected\) \{[^}]*display: flex", css.group(1))
    assert re.search(r":is\(\.q, \.ans, \.mark\) \{[^}]*text-overflow: ellipsis", css.group(1))
    assert 'el("span", "q", n.question)' in page  # the whole question is in the row, for the expansion


MEASURE = """<script>
const row = document.querySelectorAll("#tree .row")[1], pane = document.getElementById("left").getBoundingClientRect();
const answer = row.querySelector(".ans").getBoundingClientRect(), question = row.querySelector(".q");
document.body.dataset.answerInView = String(answer.width > 0 && answer.right <= pane.right);
document.body.dataset.rowLines = String(Math.round(row.getBoundingClientRect().height / answer.height));
document.body.dataset.questionCut = String(question.scrollWidth > question.clientWidth);
function width(node) {
  const range = document.createRange();
  range.selectNodeContents(node);
  return range.getBoundingClientRect().width;
}
function bare(text) {  // the width of `text` alone, as an item of the row
  const probe = document.createElement("span");
  probe.textContent = text;
  row.append(probe);
  const measured = width(probe);
  probe.remove();
  return measured;
}
const arrow = [...row.childNodes].find((n) => n.nodeType === 3);  // the text " → " between question and answer
const spaced = width(row.querySelector(".depth")) > bare("n=1") + 2 && width(arrow) > bare("→") + 4;
document.body.dataset.spaced = String(spaced);
</script></body>"""


@pytest.mark.parametrize("selected, lines, cut", [(False, "1", "true"), (True, "many", "false")])
def test_chromium_keeps_the_answer_of_a_long_question_in_view(
    tmp_path: Path, selected: bool, lines: str, cut: str
) -> None:
    trace = hch.answer_sync("What is the sum of " + ", ".join(["1"] * 800) + "?", depth=1).trace
    child = trace.children(trace.root)[0][0]  # its row is the second: a question of 400 numbers
    page = viewer.render(trace).replace("</body>", MEASURE)
    fragment = f"#node={child}" if selected else ""  # the root's row is selected when no node is named
    (tmp_path / "p.html").write_text(page, encoding="utf-8")
    dom = dump_dom(tmp_path / "p.html", tmp_path, fragment)
    measured = dict(re.findall(r'data-(answer-in-view|row-lines|question-cut|spaced)="(\w+)"', dom))
    assert measured["answer-in-view"] == "true", measured  # unselected: cut short; selected: wrapped whole
    assert measured["question-cut"] == cut, measured
    assert (measured["row-lines"] == "1") == (lines == "1"), measured
    assert measured["spaced"] == "true" or selected, measured  # "#2 n=1 What ... → 400": spaces kept


def test_a_budgeted_workspace_shows_the_calls_given_and_spent() -> None:
    data = viewer.page_data(hch.answer_sync("What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?", budget=12).trace)
    nodes = data["nodes"]
    assert (nodes[0]["budget"], nodes[0]["spent"]) == (12, 10)
    assert "budget" not in viewer.page_data(hch.answer_sync("What is 1 + 2?", depth=1).trace)["nodes"][0]
    assert "given spent" in viewer.render(hch.answer_sync("What is 1 + 2?", budget=2).trace)
