from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import hch
from hch.errors import PolicySpecError, QuestionError
from hch.policies.scripted import ScriptedPolicy
from hch.workspace import Answer, Ask, SubAnswer, Workspace

ROOT = Path(__file__).resolve().parents[1]
SUM = "What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?"


def script(text: str, source: str = "s.yaml") -> ScriptedPolicy:
    return ScriptedPolicy.parse(textwrap.dedent(text), source)


def hch_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hch", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )


COMPARE = """
rules:
  - match: 'Is (?P<a>\\w+) taller than (?P<b>\\w+)\\?'
    depth: ">=1"
    ask: ["How tall is {{ a }}?", "How tall is {{ b }}?"]
    answer: "{{ 'yes' if answers[0]|number > answers[1]|number else 'no' }} ({{ groups|join(' vs ') }})"
  - match: 'How tall is (?P<who>\\w+)\\?'
    answer: "{{ {'ann': 170, 'bob': 180}[who] }}"
  - question: "What   is 2 + 2?"
    answer: "4"
fallback:
  answer: "no idea about {{ question }}"
  guess: true
"""


@pytest.mark.anyio
async def test_regex_captures_feed_the_asks_and_the_answer_sees_the_sub_answers() -> None:
    policy = script(COMPARE)
    result = await hch.answer("Is ann taller than bob?", depth=1, policy=policy)
    assert (result.answer, result.status) == ("no (ann vs bob)", "ok")
    asked = sorted(d["question"] for _, d in result.trace.workspaces() if d["depth"] == 0)
    assert asked == ["How tall is ann?", "How tall is bob?"]


@pytest.mark.anyio
async def test_exact_questions_match_with_whitespace_folded_and_depth_conditions_apply() -> None:
    policy = script(COMPARE)
    assert await policy.act(Workspace(question="What is 2 +  2?", depth=0)) == Answer(answer="4")
    # the comparison rule is for depth >= 1 only: at depth 0 the question falls through
    fallback = await policy.act(Workspace(question="Is ann taller than bob?", depth=0))
    assert fallback == Answer(answer="no idea about Is ann taller than bob?", guess=True)


@pytest.mark.anyio
async def test_several_steps_each_see_the_answers_so_far_and_guesses_propagate() -> None:
    policy = script(
        """
        rules:
          - question: start
            ask: [["first"], ["second after {{ answers[0] }}"]]
            answer: "{{ answers|join('+') }}"
        """
    )
    first = await policy.act(Workspace(question="start", depth=2))
    assert first == Ask(questions=["first"])
    step = (SubAnswer(question="first", answer="A", status="guess"),)
    assert await policy.act(Workspace(question="start", depth=2, steps=(step,))) == Ask(questions=["second after A"])
    both = (step, (SubAnswer(question="second after A", answer="B"),))
    assert await policy.act(Workspace(question="start", depth=2, steps=both)) == Answer(answer="A+B", guess=True)


@pytest.mark.anyio
async def test_a_rule_that_cannot_ask_guesses_or_fails_naming_its_line() -> None:
    policy = script(
        """
        rules:
          - question: guessable
            ask: [sub]
            answer: "{{ answers[0] }}"
            guess: "about 3"
          - question: stuck
            ask: [sub]
            answer: "{{ answers[0] }}"
        """
    )
    assert await policy.act(Workspace(question="guessable", depth=0)) == Answer(answer="about 3", guess=True)
    refused = Workspace(question="guessable", depth=2, refusal="no steps left")
    assert await policy.act(refused) == Answer(answer="about 3", guess=True)
    with pytest.raises(hch.PolicyError, match=r"s\.yaml:7 \(rule 2\): the rule asks subquestions but this node cannot"):
        await policy.act(Workspace(question="stuck", depth=0))


@pytest.mark.anyio
async def test_the_error_fallback_fails_the_node_and_refuses_the_root_up_front() -> None:
    policy = script("rules:\n  - question: known\n    answer: 42\n")
    with pytest.raises(QuestionError, match=r"no rule of the script s\.yaml takes the question 'other'"):
        await hch.answer("other", depth=1, policy=policy)
    with pytest.raises(hch.PolicyError, match=r"no rule of the script s\.yaml takes 'other' at depth 0"):
        await policy.act(Workspace(question="other", depth=0))


@pytest.mark.anyio
async def test_a_failing_template_fails_its_node_with_the_rule_line_and_the_sandbox_holds() -> None:
    policy = script(
        """
        rules:
          - question: undefined
            answer: "{{ nothing_here }}"
          - question: escape
            answer: "{{ ''.__class__.__mro__ }}"
        """
    )
    result = await hch.answer("undefined", depth=0, policy=policy)
    assert result.status == "error"
    assert "s.yaml:3 (rule 1): the answer template failed: 'nothing_here' is undefined" in result.answer
    with pytest.raises(hch.PolicyError, match=r"s\.yaml:5 \(rule 2\).*unsafe"):
        await policy.act(Workspace(question="escape", depth=0))


def test_the_preset_decomposes_sums_and_products_like_the_expert() -> None:
    policy = ScriptedPolicy.load(str(ROOT / "policies" / "arith-human.yaml"))
    assert policy.fingerprint.startswith("script(arith-human@")
    result = hch.answer_sync(SUM, depth=3, policy=policy)
    assert (result.answer, result.status, result.summary.nodes) == ("31", "ok", 7)
    shallow = hch.answer_sync("What is the product of 3, 1, 4, 1, 5?", depth=1, policy=policy)
    assert (shallow.answer, shallow.status) == ("375", "guess")  # 3 * a guess of 5**3 for the three-number half


def test_the_fingerprint_follows_the_rules_not_the_comments() -> None:
    base = "rules:\n  - question: q\n    answer: a\n"
    assert script(base).fingerprint == script("# a comment\n" + base).fingerprint
    assert script(base).fingerprint != script(base.replace("answer: a", "answer: b")).fingerprint


Q = "rules:\n  - question: q\n"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("s.yaml", Q + "    answer: [unclosed\n", "s.yaml:4: not valid YAML"),
        ("s.yaml", Q + "    answer: a\n  - match: '(a'\n    answer: b\n", "s.yaml:4: rules.1.match: invalid regex"),
        ("s.yaml", Q + "\n    answer: '{{ x'\n", "s.yaml:4: rules.0.answer: template"),
        ("s.yaml", Q + "    match: r\n    answer: a\n", "s.yaml:2: rules.0: a rule needs exactly one"),
        ("s.yaml", Q + "    answr: a\n", "s.yaml:2: rules.0.answer: Field required"),
        ("s.yaml", Q + "    answer: a\n    depth: '>>1'\n", "s.yaml:4: rules.0.depth: depth '>>1'"),
        ("s.yaml", Q + "    answer: yes\n", "s.yaml:3: rules.0.answer: YAML read this as the boolean"),
        ("s.yaml", "- just a list\n", "s.yaml:1: a script is a mapping"),
        ("s.json", '{"rules": [\n  {"question": "q", "answer": "a",\n   "bogus": 1}]}', "s.json:3: rules.0.bogus"),
        ("s.json", '{"rules": [\n  {"question": "q" "answer": "a"}]}', "s.json:2: not valid JSON"),
    ],
)
def test_a_bad_script_file_is_one_error_naming_the_file_and_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(PolicySpecError) as caught:
        ScriptedPolicy.load(str(tmp_path / name))
    assert str(caught.value).startswith(f"{tmp_path / name}:")
    assert message in str(caught.value)


def test_the_cli_reports_a_bad_script_in_one_line_and_finds_scripts_by_name(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("rules:\n  - question: q\n    answer: a\n  - match: '(a'\n    answer: b\n")
    done = hch_cli("ask", "q", "--policy", "script:bad.yaml", "--no-cache", cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("hch: error: bad.yaml:4: rules.1.match: invalid regex")
    assert done.stderr.count("\n") == 1
    missing = hch_cli("ask", "q", "--policy", "script:nowhere.yaml", "--no-cache", cwd=tmp_path)
    assert missing.stderr == "hch: error: no script file at nowhere.yaml\n"

    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "mine.json").write_text('{"rules": [{"question": "q", "answer": "from json"}]}')
    done = hch_cli("ask", "q", "--depth", "0", "--policy", "script:mine", "--no-cache", "-q", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "from json\n")


def test_scripts_can_be_built_from_python_data() -> None:
    policy = ScriptedPolicy.from_data({"name": "inline", "rules": [{"question": "q", "answer": "a"}]})
    assert policy.fingerprint.startswith("script(inline@")
    with pytest.raises(PolicySpecError, match="<script>: fallback"):
        ScriptedPolicy.from_data({"fallback": "maybe"})


# -- templates are bounded, and timeouts hold while one runs (issue 14, class 4) --------------------

BOMB_SCRIPT = """
rules:
  - match: 'loop'
    answer: "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
  - match: 'gigabyte'
    answer: "{{ 'x' * 1000000000 }}"
  - match: 'ask'
    ask: ["{{ 'q' * 1000000000 }}"]
    answer: "never"
  - match: 'fine'
    answer: "ok"
  - match: 'root'
    ask: ["loop", "gigabyte", "ask", "fine"]
    answer: "{{ subs|map(attribute='status')|join(',') }}"
"""


@pytest.mark.anyio
async def test_a_runaway_template_fails_only_its_node_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from hch.policies import bounded_jinja

    monkeypatch.setattr(bounded_jinja, "MAX_SECONDS", 0.5)
    result = await hch.answer("root", depth=2, policy=script(BOMB_SCRIPT))
    assert result.answer == "error,error,error,ok"
    errors = {d["question"]: d["error"] for _, d in result.trace.workspaces() if d["status"] == "error"}
    assert "ran over" in errors["loop"] or "steps" in errors["loop"]
    assert "a repetition would hold 1,000,000,000" in errors["gigabyte"]
    assert "the ask template failed: a repetition" in errors["ask"]
    assert all("\n" not in error and "s.yaml:" in error for error in errors.values())


@pytest.mark.anyio
@pytest.mark.parametrize("limit", ["node_timeout", "run_timeout"])
async def test_node_and_run_timeouts_hold_while_a_template_runs(limit: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The template would run until its own budget; the timeout ends its node first. The root acts
    at once (no await, so no timeout can cut it), whatever the machine's load."""
    from helpers import FunctionPolicy

    from hch.limits import Limits
    from hch.policies import bounded_jinja
    from hch.policies.positional import PositionalPolicy

    monkeypatch.setattr(bounded_jinja, "MAX_SECONDS", 5.0)

    async def root(ws: Workspace) -> Answer | Ask:
        return Answer(answer=ws.answers[0].status) if ws.steps else Ask(questions=["loop"])

    policy = PositionalPolicy({"root": FunctionPolicy(root), "else": script(BOMB_SCRIPT)})
    result = await hch.answer("root", depth=1, policy=policy, limits=Limits(**{limit: 0.05}))
    loop = next(d for _, d in result.trace.workspaces() if d["question"] == "loop")
    assert (loop["status"], loop["limit"]) == ("error", limit)  # the template's own budget records no limit
    assert result.answer == ("error" if limit == "node_timeout" else "error: run timeout reached")


WORKER_BOMBS = {  # past what bounded_jinja can see: only the worker's CPU and memory caps stop them
    "centers": "{{ range(100000)|map('center', 1000000)|join }}",  # memory, through map and join
    "lists": "{{ ([range(99999)|list] * 1000)|sum(start=[])|length }}",  # memory (or CPU), through sum
    "wrap": "{{ ('x' * 999999)|wordwrap(1) }}",  # CPU inside library code
    "links": "{{ ('x ' * 499999)|urlize|length }}",  # CPU inside library code (ours)
    "indents": "{{ range(99999)|map('string')|map('indent', 999990, true)|list|length }}",  # memory (ours)
}
WORKER_SCRIPT = "rules:\n" + "".join(f"  - match: '{name}'\n    answer: \"{template}\"\n" for name, template in
                                     WORKER_BOMBS.items()) + """  - match: 'fine'
    answer: "ok {{ question }}"
  - match: 'root'
    ask: [[centers], [lists], [wrap], [links], [indents], [fine]]
    answer: "{{ subs|map(attribute='status')|join(',') }} {{ answers[-1] }}"
"""


@pytest.mark.anyio
async def test_bombs_past_the_checks_fail_their_node_in_one_line_and_the_next_renders(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each bomb in its own step, so that each renders after the one before failed (the worker restarted)."""
    from hch.policies import template_worker

    monkeypatch.setattr(template_worker, "CPU_SECONDS", 0.5)  # keeps the suite quick; the bound is what counts
    result = await hch.answer("root", depth=1, policy=script(WORKER_SCRIPT))
    assert result.answer == "error,error,error,error,error,ok ok fine"
    errors = {d["question"]: d["error"] for _, d in result.trace.workspaces() if d["status"] == "error"}
    assert set(errors) == set(WORKER_BOMBS)
    for error in errors.values():
        assert "\n" not in error and "s.yaml:" in error and "the answer template failed: the template" in error
        assert "of CPU" in error or "MiB of memory" in error
    assert "ran over 0.5 s of CPU" in errors["wrap"] and "ran over 0.5 s of CPU" in errors["links"]


def test_compiling_a_template_runs_none_of_its_filters() -> None:
    """Jinja folds constant filter calls while compiling; ours are never folded, so loading a script
    with `{{ 'x…'|wordwrap(1) }}` costs hch nothing: only the worker runs it."""
    from hch.policies import bounded_jinja

    calls: list[object] = []
    env = bounded_jinja.BoundedSandbox()
    for name in ("wordwrap", "center"):
        env.filters[name] = bounded_jinja._guarded_filter(name, lambda *args: calls.append(args) or "")
    env.from_string("{{ 'x'|wordwrap(1) }}{{ 'y'|center(9) }}")
    assert calls == []
    assert env.from_string("{{ 'y'|center(9) }}").render() == "" and calls == [("y", 9)]


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "1e999"])
def test_the_number_filter_refuses_nan_and_infinities(text: str) -> None:
    from hch.policies.scripted import _number

    with pytest.raises(ValueError, match="is not a finite number"):
        _number(text)
    assert _number("2.0") == 2 and _number(" 2.5 ") == 2.5


def test_a_script_with_yaml_aliases_is_refused_naming_the_line() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nrules: []\n"
    with pytest.raises(PolicySpecError, match=r"s.yaml:2: not valid YAML: YAML aliases \(\*name\) are not accepted"):
        script(bomb)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_script_that_is_a_fifo_or_too_large_is_one_line(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.yaml")
    with pytest.raises(PolicySpecError, match="is not a regular file"):
        ScriptedPolicy.load(str(tmp_path / "fifo.yaml"))
    (tmp_path / "big.yaml").write_text("# " + "x" * (1 << 20) + "\nrules: []\n")
    with pytest.raises(PolicySpecError, match="at most 1,048,576 are read"):
        ScriptedPolicy.load(str(tmp_path / "big.yaml"))


def test_in_a_budgeted_run_templates_see_the_budget_and_an_unaffordable_step_takes_the_guess() -> None:
    policy = script("""
    rules:
      - match: 'Is (?P<a>\\w+) taller than (?P<b>\\w+)\\?'
        ask: ["How tall is {{ a }}?", "How tall is {{ b }}?"]
        answer: "{{ 'yes' if answers[0]|number > answers[1]|number else 'no' }} with {{ budget }} left"
        guess: "maybe ({{ budget }} left)"
      - match: 'How tall is (?P<who>\\w+)\\?'
        answer: "{{ {'ann': 170, 'bob': 180}[who] }}"
    fallback: error
    """)
    enough = hch.answer_sync("Is ann taller than bob?", budget=5, policy=policy)
    assert (enough.answer, enough.status) == ("no with 1 left", "ok")  # 5 - ask - 2 answers - this call
    short = hch.answer_sync("Is ann taller than bob?", budget=2, policy=policy)
    assert (short.answer, short.status) == ("maybe (1 left)", "guess")  # 1 left cannot pay for 2 and an answer
    unbudgeted = hch.answer_sync("Is ann taller than bob?", depth=1, policy=policy)
    assert unbudgeted.answer == "no with None left"
