"""Training data from traces, journals and sweep directories.

Two kinds of JSONL:

- **distillation pairs**: (question, shared context) -> the amplified answer, for the root of each
  run and optionally every workspace (each is Amp's answer to its own question), with its status,
  whether a guess is on its path, and gold and correctness where a sweep knows them;
- **imitation data for H**: one example per policy call, in the OpenAI chat fine-tuning format
  (`{"messages": [system, user, assistant]}`): system and user are exactly what the LLM policy
  sends for that workspace with the chosen preset, the assistant message is the action as the
  JSON object the LLM policy expects. Metadata for each line goes to a `.meta.jsonl` beside it.

Filters (status, guesses, correctness, policy), de-duplication, and a train/validation split by
instance (the questions of one instance never straddle it), seeded. Nothing of a run's raw
records (requests, responses, headers) is written, so no API key can be.
"""

from __future__ import annotations

import fnmatch
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hch.errors import HchError, read_text
from hch.files import write_atomic
from hch.learning.example import context_hash
from hch.policies import presets
from hch.record.journal import SUFFIX, load_any
from hch.record.trace import Trace
from hch.run.pointers import Messages, Pointers
from hch.validate import load_json
from hch.workspace import Answer, Ask, Expand, Status, Workspace, normalize_question

SPLITS = ("train", "validation")
ENVIRONMENT = "environment"
SKIP_FILES = frozenset({"config.json", "sweep.json", "ida.json", "complete.json"})
"""JSON files of sweep and IDA directories that are not traces."""


class DistillError(HchError):
    """An input cannot be read as a trace, journal or sweep directory, or the options are unusable."""


@dataclass(frozen=True)
class Options:
    """What to export and what to keep."""

    all_workspaces: bool = False
    """Pairs for every workspace, not only each run's root."""
    statuses: frozenset[str] = frozenset({"ok"})
    """Keep pairs (and calls of workspaces) with these statuses."""
    no_guesses: bool = False
    """Drop pairs and calls with a guess anywhere below them."""
    correct_only: bool = False
    """Drop runs graded wrong (where a sweep knows the gold answer)."""
    policies: tuple[str, ...] = ()
    """Keep only pairs and calls whose acting policy's fingerprint matches one of these globs."""
    validation: float = 0.1
    """Share of instances put in the validation split."""
    seed: int = 0
    """Seeds the split."""
    preset: str = presets.DEFAULT_PRESET
    """The LLM preset whose prompt the chat examples reproduce."""


class Pair(BaseModel):
    """One distillation pair: a question with its shared context and the amplified answer."""

    question: str
    """The workspace's question."""
    context: str
    """The shared context (the task's facts), whatever H was shown of it."""
    answer: str
    """Amp's answer: the target."""
    status: str
    """ok, guess or error (or running / interrupted in an unfinished journal)."""
    guess_on_path: bool
    """Whether a guess was made anywhere in the subtree that produced the answer."""
    depth: int
    """The n of the workspace's HCH_n."""
    policy: str
    """Fingerprint of the policy that acted at the workspace."""
    root: bool
    """Whether the workspace is its run's root."""
    gold: str | None = None
    """The gold answer, where a sweep knows it (roots only)."""
    correct: bool | None = None
    """Whether the answer matches the gold answer, where a sweep graded it."""
    required_depth: int | None = None
    """The depth the question needs, where known (roots only)."""
    instance: str
    """The instance the question belongs to (the split keeps each instance on one side)."""
    source: str
    """The trace (or journal) file and node id."""


@dataclass
class Run:
    """One trace with what its sweep knows of it."""

    trace: Trace
    path: str
    gold: str | None = None
    correct: bool | None = None
    required_depth: int | None = None


@dataclass
class Summary:
    """What was kept and dropped, and why."""

    kept: dict[str, Counter[str]] = field(default_factory=lambda: {"pairs": Counter(), "chat": Counter()})
    """Per kind, examples kept per split and class (`train/needs 2`; a call's class is its run's)."""
    dropped: dict[str, Counter[str]] = field(default_factory=lambda: {"pairs": Counter(), "chat": Counter()})
    """Per kind, examples dropped per reason."""
    runs: int = 0
    """Runs read."""
    instances: dict[str, int] = field(default_factory=dict)
    """Instances per split."""
    files: dict[str, str] = field(default_factory=dict)
    """The files written, by name."""

    def lines(self) -> list[str]:
        out = [f"{self.runs} runs from {sum(self.instances.values())} instances "
               f"({self.instances.get('train', 0)} train, {self.instances.get('validation', 0)} validation)"]
        for kind in ("pairs", "chat"):
            kept = ", ".join(f"{k} {v}" for k, v in sorted(self.kept[kind].items())) or "none"
            dropped = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped[kind].items())) or "none"
            out.append(f"{kind}: kept {sum(self.kept[kind].values())} ({kept}); dropped "
                       f"{sum(self.dropped[kind].values())} ({dropped})")
        return out


# -- reading inputs ---------------------------------------------------------------------------


def runs_of(inputs: list[Path]) -> Iterator[Run]:
    """Every run in the inputs: trace files, journals, sweep directories (runs.jsonl) and
    directories of traces (of a directory with a `traces/` folder, e.g. an IDA study's, that folder)."""
    for path in inputs:
        if path.is_dir():
            yield from _directory(path)
        elif path.exists():
            yield Run(load_any(path), str(path))
        else:
            raise DistillError(f"no such file or directory: {path}")


def _directory(folder: Path) -> Iterator[Run]:
    records = folder / "runs.jsonl"
    if records.exists():
        yield from _sweep(folder, records)
        return
    found = False
    if (folder / "traces").is_dir():  # a study's directory (e.g. hch ida's): its checkpoints are JSON too
        folder = folder / "traces"
    for path in sorted(folder.rglob("*.json")):
        if path.name not in SKIP_FILES:
            found = True
            yield Run(load_any(path), str(path))
    for path in sorted(folder.rglob(f"*{SUFFIX}")):
        if not path.with_name(path.name.removesuffix(SUFFIX) + ".json").exists():
            found = True
            yield Run(load_any(path), str(path))
    if not found:
        raise DistillError(f"{folder} holds no runs.jsonl, trace or journal")


def _sweep(folder: Path, records: Path) -> Iterator[Run]:
    lines = read_text(records, "sweep record file", DistillError).splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = load_json(line)
            trace_path = folder / str(record["trace"])
            gold, correct = record.get("gold"), record.get("correct")
            depth = record.get("required_depth")
        except (json.JSONDecodeError, KeyError, TypeError):
            if number == len(lines):  # a torn last line from a killed sweep
                continue
            raise DistillError(f"{records} line {number}: not a sweep run record") from None
        yield Run(load_any(trace_path), str(trace_path), gold, correct, depth)


# -- what a trace offers -----------------------------------------------------------------------


def instance_of(trace: Trace) -> str:
    """The run's instance: from the sweep or IDA metadata, else its facts' hash (questions on the
    same facts are one instance), else the root question's hash."""
    meta = trace.meta
    for section in ("sweep", "ida"):
        found = (meta.get(section) or {}).get("instance")
        if found:
            return str(found)
    context = str(meta.get("context") or "")
    if context.strip():
        return "facts-" + context_hash(context)
    return "question-" + context_hash(normalize_question(str(meta.get("question", ""))))


def guesses_below(trace: Trace) -> dict[int, bool]:
    """For every workspace, whether it or anything in its subtree is a guess."""
    memo: dict[int, bool] = {}

    def visit(node: int) -> bool:
        if node not in memo:
            memo[node] = False  # a cycle (reuse edges form a DAG, but be safe)
            below = [visit(child) for child, _ in trace.children(node)]
            memo[node] = trace.graph.nodes[node].get("status") == "guess" or any(below)
        return memo[node]

    for node, _ in trace.workspaces():
        visit(node)
    return memo


def pairs_of(run: Run, options: Options, summary: Summary) -> Iterator[Pair]:
    trace = run.trace
    guessed = guesses_below(trace)
    root = trace.root
    instance = instance_of(trace)
    context = str(trace.meta.get("context") or "")
    messages = Messages(dict(trace.meta["messages"])) if "messages" in trace.meta else None
    for node, data in trace.workspaces():
        is_root = node == root
        if data.get("grafted") or (not is_root and not options.all_workspaces):
            continue
        question, answer = data["question"], data.get("answer") or ""
        if messages is not None:  # pointer mode: a pair holds the text its pointers stand for
            question, answer = messages.resolve(question), messages.resolve(answer)
        pair = Pair(
            question=question, context=context, answer=answer,
            status=data.get("status", "running"), guess_on_path=guessed[node], depth=data["depth"],
            policy=data["policy"], root=is_root, instance=instance, source=f"{run.path}#{node}",
            gold=run.gold if is_root else None, correct=run.correct if is_root else None,
            required_depth=run.required_depth if is_root else None,
        )
        reason = _drop(pair.status, pair.guess_on_path, run.correct, pair.policy, options)
        if reason:
            summary.dropped["pairs"][reason] += 1
            continue
        yield pair


def _drop(status: str, guessed: bool, correct: bool | None, policy: str, options: Options) -> str | None:
    if status not in options.statuses:
        return f"status {status}"
    if options.no_guesses and guessed:
        return "guess on path"
    if options.correct_only and correct is False:
        return "wrong"
    if options.policies and not any(fnmatch.fnmatchcase(policy, p) for p in options.policies):
        return "policy"
    return None


def seen_context(trace: Trace, policy: str) -> str:
    """The context the acting policy was shown: with facts hidden only the header line, except for a
    learned X (`learned:...`), which sees the facts."""
    context = str(trace.meta.get("context") or "")
    if trace.meta.get("facts") == "hidden" and not policy.startswith("learned:"):
        from hch.tasks import visible_context

        return visible_context(context)
    return context


def viewed_context(trace: Trace, question: str, context: str) -> str:
    """In pointer mode, the context as a workspace with this (recorded, run-form) question showed it."""
    pointers = Pointers(Messages(dict(trace.meta.get("messages") or {})), None)
    return pointers.view().show(Workspace(question=question, depth=0, context=pointers.context(context))).context


def action_json(output: dict[str, Any]) -> str:
    """A recorded action as the flat JSON object the LLM policy expects (kind, questions, answer; and
    pointer, for an expansion in pointer mode)."""
    flat: dict[str, Any]
    if output.get("kind") == "expand":
        flat = {"kind": "expand", "questions": [], "answer": "", "pointer": Expand.model_validate(output).pointer}
    elif output.get("kind") == "ask":
        flat = {"kind": "ask", "questions": list(Ask.model_validate(output).questions), "answer": ""}
    else:
        flat = {"kind": "answer", "questions": [], "answer": Answer.model_validate(output).answer}
    return json.dumps(flat, ensure_ascii=False)


def chats_of(run: Run, options: Options, preset: presets.Preset,
             summary: Summary) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(chat example, its metadata) for every policy call of the run that passes the filters."""
    trace = run.trace
    guessed = guesses_below(trace)
    instance = instance_of(trace)
    nodes = trace.graph.nodes
    for call, data in trace.calls():
        workspace_node = data["workspace"]
        owner = nodes[workspace_node]
        if data.get("grafted"):
            continue
        if data.get("output") is None:
            summary.dropped["chat"]["failed call"] += 1
            continue
        status: Status | str = owner.get("status", "running")
        reason = _drop(status, guessed[workspace_node], run.correct, data["policy"], options)
        if reason:
            summary.dropped["chat"][reason] += 1
            continue
        try:
            context = seen_context(trace, data["policy"])
            if data["input"].get("pointers"):  # the context as the view showed it (a pointer when long)
                context = viewed_context(trace, owner["question"], context)
            workspace = Workspace.model_validate({**data["input"], "context": context})
            chat = {"messages": [*presets.messages(preset, workspace),
                                 {"role": "assistant", "content": action_json(data["output"])}]}
        except (ValidationError, HchError) as exc:
            raise DistillError(f"{run.path}: call {call} cannot be rendered: {exc}") from None
        meta = {"source": f"{run.path}#{call}", "workspace": workspace_node, "policy": data["policy"],
                "instance": instance, "depth": workspace.depth,
                "required_depth": run.required_depth}
        yield chat, meta


# -- the split and the output ------------------------------------------------------------------


def split_of(instances: set[str], fraction: float, seed: int) -> dict[str, str]:
    """Each instance's side: a seeded shuffle, then round(fraction * n) instances (at least one when
    fraction > 0, and never all of them) to validation."""
    ordered = sorted(instances)
    random.Random(seed).shuffle(ordered)
    count = min(max(round(fraction * len(ordered)), 1), len(ordered) - 1) if fraction > 0 and ordered else 0
    return {name: ("validation" if i < count else "train") for i, name in enumerate(ordered)}


def distill(inputs: list[Path], out: Path, options: Options) -> Summary:
    """Read the inputs, write pairs-{train,validation}.jsonl and chat-{train,validation}.jsonl (with
    .meta.jsonl beside each) and summary.json to `out`; return what was kept and dropped."""
    if not 0 <= options.validation < 1:
        raise DistillError(f"the validation share must be at least 0 and below 1, not {options.validation:g}")
    preset = presets.load(options.preset)
    summary = Summary()
    pairs: dict[tuple[str, str, str], Pair] = {}  # one per (question, facts, answer)
    chats: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for run in runs_of(inputs):
        summary.runs += 1
        for pair in pairs_of(run, options, summary):
            key = (normalize_question(pair.question), context_hash(pair.context), pair.answer)
            if key in pairs:
                summary.dropped["pairs"]["duplicate"] += 1
                continue
            pairs[key] = pair
        for chat, meta in chats_of(run, options, preset, summary):
            text = json.dumps(chat, sort_keys=True, ensure_ascii=False)
            if text in chats:
                summary.dropped["chat"]["duplicate"] += 1
                continue
            chats[text] = (chat, meta)
    instances = {p.instance for p in pairs.values()} | {m["instance"] for _, m in chats.values()}
    side = split_of(instances, options.validation, options.seed)
    summary.instances = dict(Counter(side.values()))
    out.mkdir(parents=True, exist_ok=True)
    files = {f"{kind}-{s}": out / f"{kind}-{s}.jsonl" for kind in ("pairs", "chat") for s in SPLITS}
    texts: dict[str, list[str]] = {name: [] for name in files}
    metas: dict[str, list[str]] = {name: [] for name in files if name.startswith("chat")}
    for pair in pairs.values():
        s = side[pair.instance]
        texts[f"pairs-{s}"].append(pair.model_dump_json() + "\n")
        summary.kept["pairs"][f"{s}/{_class(pair.required_depth)}"] += 1
    for chat, meta in chats.values():
        s = side[meta["instance"]]
        texts[f"chat-{s}"].append(json.dumps(chat, ensure_ascii=False) + "\n")
        metas[f"chat-{s}"].append(json.dumps(meta, ensure_ascii=False) + "\n")
        summary.kept["chat"][f"{s}/{_class(meta['required_depth'])}"] += 1
    for name, path in files.items():
        write_atomic(path, "".join(texts[name]))
        if name in metas:
            write_atomic(path.with_suffix(".meta.jsonl"), "".join(metas[name]))
    summary.files = {name: str(path) for name, path in files.items()}
    write_atomic(out / "summary.json", json.dumps({
        "runs": summary.runs, "instances": summary.instances,
        "kept": {k: dict(v) for k, v in summary.kept.items()},
        "dropped": {k: dict(v) for k, v in summary.dropped.items()},
        "options": {**options.__dict__, "statuses": sorted(options.statuses), "policies": list(options.policies)},
    }, indent=2))
    return summary


def _class(required_depth: int | None) -> str:
    return "unknown depth" if required_depth is None else f"needs {required_depth}"


__all__ = ["DistillError", "Options", "Pair", "Summary", "action_json", "distill", "split_of"]
