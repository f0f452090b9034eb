"""A scripted human: a YAML or JSON file of rules standing in for H, for experiments and tests.

```yaml
name: arith-human                 # optional; part of the fingerprint (default: the file's stem)
rules:                            # tried in order; the first that matches acts
  - question: What is 2 + 2?      # exact text (whitespace folded) ...
    answer: "4"
  - match: 'What is the sum of (?P<x>-?\\d+), (?P<y>-?\\d+)\\?'   # ... or a regex (full match)
    depth: ">=1"                  # optional: 0, [1, 2], ">=1", "<3"
    ask:                          # optional: one step, or a list of steps (lists)
      - "What is {{ x }}?"
      - "What is {{ y }}?"
    answer: "{{ answers | map('number') | sum }}"
    guess: "{{ x }}"              # optional: used when this node cannot ask (depth 0, refused)
  - match: 'Report (?P<p>\\$\\d+)'   # pointer mode: pass $p on unread, or expand it first
    expand: ["{{ p }}"]           # optional: pointers to expand before asking, one per action
    answer: "It says {{ expanded[p] }}"
fallback: error                   # or {answer: "I don't know", guess: true}
```

Templates are Jinja2 (sandboxed, undefined names are errors, bounded by `bounded_jinja` and rendered in
`template_worker`'s capped process). They see `question`, `depth`,
`context`, the regex's named captures by name and all of them as `groups` (`groups[0]` is
group 1), and, once subquestions were answered, `answers` (strings, in asking order across
steps) and `subs` (each with `question`, `answer`, `status`); in pointer mode `expanded` (the
contents of the pointers expanded so far, by pointer) and `bandwidth_left`; and `budget`: in a budgeted
run the policy calls left after this one (see `Workspace.budget`), else None. Extra filters: `number`
(text to int or float), `split(sep)`, `first_half`, `second_half`. A rule's answer is marked a
guess if any sub-answer was one; a rule whose `expand` is refused (bandwidth) answers its `guess`.
In a budgeted run a step is asked with the default share of the budget, and only when the budget pays
for it (one call per subquestion and one to answer); where it does not, the rule's guess answers, as
where the node cannot ask.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import operator
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import jinja2
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from hch.errors import PolicyError, PolicySpecError, QuestionError
from hch.files import read_text
from hch.policies import bounded_jinja, template_worker
from hch.policies.bounded_jinja import BoundedSandbox
from hch.safe_yaml import NoAliasLoader, load_yaml
from hch.validate import load_json
from hch.workspace import Action, Answer, Ask, Expand, Workspace, normalize_question

MAX_SCRIPT_BYTES = 1 << 20
"""The largest script file read (1 MiB)."""
DEPTH = re.compile(r"^\s*(>=|<=|>|<|==)?\s*(\d{1,9})\s*$")  # a depth of 10 digits is no depth: refused, not int()ed
COMPARE: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq, "": operator.eq,
}


def _number(text: Any) -> int | float:
    """A sub-answer (or capture) read as a number: int when integral, else float."""
    value = str(text).strip()
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number):  # "nan", "inf", "1e999": not an answer a template can compute with
        raise ValueError(f"{value!r} is not a finite number")
    return int(number) if number.is_integer() else number


def _split(text: Any, separator: str = ",") -> list[str]:
    return [part.strip() for part in str(text).split(separator)]


def _first_half(items: Sequence[Any]) -> list[Any]:
    return list(items[: len(items) // 2])


def _second_half(items: Sequence[Any]) -> list[Any]:
    return list(items[len(items) // 2 :])


ENV = BoundedSandbox(undefined=jinja2.StrictUndefined, autoescape=False)
ENV.filters.update(number=_number, split=_split, first_half=_first_half, second_half=_second_half)


@functools.lru_cache(maxsize=1024)
def compiled(template: str) -> jinja2.Template:
    """A template compiled once (compiling costs far more than rendering)."""
    return ENV.from_string(template)


def _text(value: Any) -> Any:
    """YAML reads `answer: 4` as a number, which is meant as text; `answer: yes` as a boolean, which
    is almost never meant: numbers become text, booleans are refused with the fix."""
    if isinstance(value, bool):
        raise ValueError(f"YAML read this as the boolean {value}; put the text in quotes")
    if isinstance(value, (int, float)):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_text)]


def _compiles(template: str) -> str:
    try:
        compiled(template)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"template {template!r} does not parse: {exc.message}") from None
    return template


class Rule(BaseModel):
    """One rule: which questions it takes, and what to do with them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: Text | None = None
    """Exact question text this rule takes (whitespace folded); or give `match`."""
    match: str | None = None
    """A regular expression the whole question must match; its captures feed the templates."""
    depth: int | list[int] | str | None = None
    """Depths (the workspace's n) where the rule applies: N, [N, ...] or a comparison like ">=1"."""
    ask: list[Text] | list[list[Text]] = Field(default_factory=list)
    """Subquestion templates: one step (a list), or several steps (a list of lists)."""
    answer: Text
    """Template of the final answer, rendered once every step's sub-answers are in."""
    guess: Text | None = None
    """Template of an answer (marked a guess) for when this node cannot ask its subquestions."""
    expand: list[Text] = Field(default_factory=list, exclude_if=lambda value: not value)
    """Pointer mode: templates of pointers (e.g. `{{ p }}`) to expand, one per action, before asking or
    answering; their contents are then in `expanded`. Left out of dumps when empty (fingerprints stay)."""

    @field_validator("match")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex {value!r}: {exc}") from None
        return value

    @field_validator("depth")
    @classmethod
    def _depth(cls, value: int | list[int] | str | None) -> int | list[int] | str | None:
        if isinstance(value, str) and not DEPTH.match(value):
            raise ValueError(f"depth {value!r} is not N, [N, ...] or a comparison like '>=1'")
        return value

    @field_validator("answer", "guess")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return None if value is None else _compiles(value)

    @field_validator("expand")
    @classmethod
    def _expand_templates(cls, value: list[str]) -> list[str]:
        return [_compiles(template) for template in value]

    @field_validator("ask")
    @classmethod
    def _ask_templates(cls, value: list[str] | list[list[str]]) -> list[str] | list[list[str]]:
        for step in value:
            for template in [step] if isinstance(step, str) else step:
                _compiles(template)
            if not isinstance(step, str) and not step:
                raise ValueError("a step of subquestions is empty")
        return value

    @model_validator(mode="after")
    def _one_matcher(self) -> Rule:
        if (self.question is None) == (self.match is None):
            raise ValueError("a rule needs exactly one of question: (exact text) or match: (a regex)")
        return self

    @property
    def steps(self) -> list[list[str]]:
        """The subquestion templates, one list per step."""
        if all(isinstance(step, str) for step in self.ask):
            return [[str(step) for step in self.ask]] if self.ask else []
        return [list(step) for step in self.ask]

    def applies_at(self, depth: int) -> bool:
        if self.depth is None:
            return True
        if isinstance(self.depth, int):
            return depth == self.depth
        if isinstance(self.depth, list):
            return depth in self.depth
        found = DEPTH.match(self.depth)
        assert found is not None  # checked by the validator
        return COMPARE[found[1] or ""](depth, int(found[2]))

    def captures(self, question: str) -> dict[str, Any] | None:
        """The template variables from matching `question`, or None if it does not match."""
        if self.question is not None:
            return {"groups": []} if normalize_question(question) == normalize_question(self.question) else None
        assert self.match is not None
        found = re.fullmatch(self.match, question.strip())
        if found is None:
            return None
        named = {name: value or "" for name, value in found.groupdict().items()}
        return {**named, "groups": [g or "" for g in found.groups()]}


class Fallback(BaseModel):
    """What to answer when no rule takes a question."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    answer: Text
    """Template of the answer (sees question, depth and context)."""
    guess: bool = False
    """Whether that answer is marked a guess."""

    @field_validator("answer")
    @classmethod
    def _template(cls, value: str) -> str:
        return _compiles(value)


class Script(BaseModel):
    """A scripted human: rules tried in order, and a fallback."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    """A short name, part of the policy's fingerprint (default: the file's stem)."""
    description: str = ""
    """What this scripted human does, for people reading the file."""
    rules: list[Rule] = Field(default_factory=list)
    """Tried in order; the first whose question (and depth) matches acts."""
    fallback: Literal["error"] | Fallback = "error"
    """`error` (an unmatched question fails its node) or a fixed answer."""


class ScriptedPolicy:
    """H played by a `Script`. Stateless: each action is decided from the workspace alone."""

    def __init__(self, script: Script, source: str = "<script>", lines: Sequence[int] | None = None) -> None:
        self.script = script
        self.source = source
        self.lines = list(lines) if lines is not None else [0] * len(script.rules)
        digest = hashlib.sha256(script.model_dump_json().encode()).hexdigest()[:12]
        self._fingerprint = f"script({script.name or Path(source).stem}@{digest})"

    @classmethod
    def load(cls, spec: str) -> ScriptedPolicy:
        """Read a script file (a path, or a name under a `policies/` folder); errors name file and line."""
        path = find(spec)
        text = read_text(path, "script", PolicySpecError, max_bytes=MAX_SCRIPT_BYTES)
        return cls.parse(text, str(path), as_json=path.suffix == ".json")

    @classmethod
    def parse(cls, text: str, source: str = "<script>", as_json: bool = False) -> ScriptedPolicy:
        """A policy from a script's text; `source` names it in errors and the fingerprint."""
        data = _read(text, source, as_json)
        tree = _compose(text)
        try:
            script = Script.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            line = _line_of(tree, error["loc"])
            where = ".".join(str(part) for part in error["loc"] if not _is_tag(part)) or "script"
            message = error["msg"].removeprefix("Value error, ")
            raise PolicySpecError(f"{source}:{line}: {where}: {message}") from None
        lines = [_line_of(tree, ("rules", index)) for index in range(len(script.rules))]
        return cls(script, source, lines)

    @classmethod
    def from_data(cls, data: dict[str, Any], source: str = "<script>") -> ScriptedPolicy:
        """A policy from already-parsed data (e.g. a dict built in Python)."""
        try:
            return cls(Script.model_validate(data), source)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"] if not _is_tag(part))
            raise PolicySpecError(f"{source}: {where}: {error['msg'].removeprefix('Value error, ')}") from None

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def check(self, question: str, context: str) -> None:
        if self.script.fallback == "error" and not any(r.captures(question) is not None for r in self.script.rules):
            raise QuestionError(f"no rule of the script {self.source} takes the question {question!r}")

    async def act(self, workspace: Workspace) -> Action:
        # On a worker thread: the event loop goes on while templates render (in template_worker's
        # process), so --node-timeout and --run-timeout hold; the worker bounds each rendering's CPU and memory.
        return await anyio.to_thread.run_sync(self.decide, workspace, abandon_on_cancel=True)

    def decide(self, workspace: Workspace) -> Action:
        """The action for `workspace` (what `act` returns), computed synchronously."""
        for index, rule in enumerate(self.script.rules):
            if not rule.applies_at(workspace.depth):
                continue
            captures = rule.captures(workspace.question)
            if captures is not None:
                return self._apply(index, rule, captures, workspace)
        if self.script.fallback == "error":
            raise PolicyError(
                f"no rule of the script {self.source} takes {workspace.question!r} at depth {workspace.depth}"
            )
        fallback = self.script.fallback
        text = self._render(fallback.answer, _variables(workspace, {"groups": []}), "fallback answer", None)
        return Answer(answer=text, guess=fallback.guess)

    def _apply(self, index: int, rule: Rule, captures: dict[str, Any], workspace: Workspace) -> Action:
        variables = _variables(workspace, captures)
        unread = [p for p in (self._render(t, variables, "expand", index) for t in rule.expand) if p not in
                  variables["expanded"]]
        if unread and workspace.refusal is None:
            return Expand(pointer=unread[0])
        if unread:
            if rule.guess is None:
                raise PolicyError(f"{self._where(index)}: expanding {unread[0]} was refused ({workspace.refusal}); "
                                  "give the rule a guess: template")
            return Answer(answer=self._render(rule.guess, variables, "guess", index), guess=True)
        steps = rule.steps
        done = len(workspace.steps)
        if done < len(steps):
            affordable = workspace.budget is None or workspace.budget >= len(steps[done]) + 1
            if workspace.can_ask and workspace.refusal is None and affordable:
                questions = [self._render(t, variables, "ask", index) for t in steps[done]]
                return Ask(questions=questions)
            if rule.guess is None:
                why = workspace.refusal or (
                    f"at depth {workspace.depth} it cannot ask" if affordable
                    else f"{workspace.budget} calls left cannot pay for {len(steps[done])} subquestions and an answer"
                )
                raise PolicyError(
                    f"{self._where(index)}: the rule asks subquestions but this node cannot ({why}); "
                    "give the rule a guess: template or a depth: condition"
                )
            return Answer(answer=self._render(rule.guess, variables, "guess", index), guess=True)
        guessed = any(sub.status == "guess" for sub in workspace.answers)
        return Answer(answer=self._render(rule.answer, variables, "answer", index), guess=guessed)

    def _render(self, template: str, variables: dict[str, Any], field: str, index: int | None) -> str:
        try:
            return template_worker.render(template, variables, bounded_jinja.MAX_SECONDS).strip()
        except Exception as exc:  # a template failing on this workspace fails this node, with where it is
            where = self._where(index) if index is not None else self.source
            raise PolicyError(f"{where}: the {field} template failed: {exc}") from None

    def _where(self, index: int) -> str:
        line = self.lines[index] if index < len(self.lines) else 0
        return f"{self.source}:{line} (rule {index + 1})" if line else f"{self.source} (rule {index + 1})"

    def __repr__(self) -> str:
        return f"ScriptedPolicy({self.source!r})"


def _variables(workspace: Workspace, captures: dict[str, Any]) -> dict[str, Any]:
    subs = [sub.model_dump() for sub in workspace.answers]
    return {
        "question": workspace.question, "depth": workspace.depth, "context": workspace.context,
        "answers": [sub["answer"] for sub in subs], "subs": subs, "budget": workspace.budget,
        "expanded": {expansion.pointer: expansion.content for expansion in workspace.expanded},
        "bandwidth_left": workspace.bandwidth_left, **captures,
    }


def search_path() -> list[Path]:
    """Folders searched for a script given by name: ./policies, then the hch checkout's policies/."""
    return [Path.cwd() / "policies", Path(__file__).resolve().parents[2] / "policies"]


def find(spec: str) -> Path:
    """The script file `spec` names: a path, or a name (without suffix) under a `policies/` folder."""
    path = Path(spec).expanduser()
    if path.suffix in (".yaml", ".yml", ".json") or path.parent != Path(".") or "/" in spec:  # ./name is a path too
        if not path.exists():  # anything else there (a FIFO, a folder) is refused by the reader, by name
            raise PolicySpecError(f"no script file at {path}")
        return path
    for folder in search_path():
        for suffix in (".yaml", ".yml", ".json"):
            candidate = folder / f"{spec}{suffix}"
            if candidate.is_file():
                return candidate
    raise PolicySpecError(f"no script named {spec!r} in {' or '.join(str(f) for f in search_path())}")


def _read(text: str, source: str, as_json: bool) -> Any:
    """The parsed file; a syntax error names the file and the line."""
    if as_json:
        try:
            data = load_json(text)
        except json.JSONDecodeError as exc:
            raise PolicySpecError(f"{source}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    else:
        try:
            data = load_yaml(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            raise PolicySpecError(f"{source}:{line}: not valid YAML: {exc.problem or exc.context}") from None
        except yaml.YAMLError as exc:
            raise PolicySpecError(f"{source}:1: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PolicySpecError(f"{source}:1: a script is a mapping with rules: and fallback:, not {type(data).__name__}")
    return data


def _compose(text: str) -> yaml.Node | None:
    """The file's node tree (JSON is YAML too), only to find the line of an invalid value."""
    try:
        return yaml.compose(text, Loader=NoAliasLoader)
    except yaml.YAMLError:
        return None


def _is_tag(part: int | str) -> bool:
    """Pydantic adds union-member tags such as `list[str]` or `function-after[...]` to error paths."""
    return isinstance(part, str) and ("[" in part or part in ("str", "int", "literal['error']", "Fallback"))


def _line_of(tree: yaml.Node | None, loc: Sequence[int | str]) -> int:
    """The 1-based line of the deepest node on the path `loc` that exists in the file."""
    if tree is None:
        return 1
    node = tree
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            child = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            if _is_tag(part):
                continue
            break
        node = child
    return int(node.start_mark.line) + 1
