"""Iterated distillation and amplification: the 2018 paper's loop in discrete rounds.

Round t: Amp(X_t) labels the training questions — H at the root (facts hidden from it), each
subquestion answered by X_t (or, if primitive, by the task's environment), depth `depth` — and
X_(t+1) is fitted on those labels. No gold answer is used. X_t is evaluated against gold on the
evaluation questions, per required depth. A supervised baseline fits the same learner on the gold
answers of the same questions (as many labels as amplification kept) and is evaluated alike.

Every training question is relabelled every round, and X_(t+1) is fitted on round t's labels
(those whose root is neither a guess nor an error: H knows when it guessed). For the table that
equals accumulating every label so far, a later label replacing an earlier one.

Resumable: each Amp run is appended to `rounds/round-T/labels.jsonl` with its trace under
`traces/round-T/`; models are checkpoints under `models/`, evaluations files under `rounds/`. A
rerun of the same study skips what is there, and the call cache serves H's finished calls.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio
from pydantic import BaseModel, Field, ValidationError

from hch.errors import HchError, read_text
from hch.files import open_append, write_atomic
from hch.learning.example import Example
from hch.learning.learner import LearnedPolicy, Learner
from hch.learning.questions import held_out, overlap, spread_sample, universe
from hch.limits import Limits
from hch.policies.positional import PositionalPolicy
from hch.run.call_cache import CallCache
from hch.run.engine import answer
from hch.run.policy import Policy
from hch.study.grading import grade
from hch.study.question_set import Item
from hch.study.sweep import safe_name
from hch.tasks import get_task

if TYPE_CHECKING:
    from hch.study.workers import Pool

CONFIG_FILE = "config.json"
Kind = Literal["amplification", "supervised"]
KINDS: tuple[Kind, ...] = ("amplification", "supervised")
PREFIX: dict[Kind, str] = {"amplification": "amp", "supervised": "sup"}
M = TypeVar("M", bound=BaseModel)


class IdaError(HchError):
    """An IDA study cannot start or continue."""


class IdaConfig(BaseModel):
    """Everything that determines an IDA study's results, written with them."""

    task: str
    """The built-in task."""
    learner: str
    """`table` or `mlp`."""
    rounds: int = Field(ge=1)
    """Amplification rounds: X_0 .. X_rounds are evaluated."""
    questions: int = Field(ge=0)
    """Training questions (held-out regime), or a sample of the universe (0: all of it)."""
    eval_questions: int = Field(ge=1)
    """Evaluation questions."""
    instances: int | None = None
    """Universe size in instances (the table's regime); None: held-out instances (the mlp's)."""
    seed: int = 0
    """Seeds the question sets and the learner."""
    max_depth: int | None = None
    """Only questions needing at most this depth (facts hidden); None: all the task offers."""
    depth: int = Field(default=1, ge=1)
    """Depth of Amp's tree: H at depths >= 1, X at depth 0."""
    max_steps: int = Field(default=Limits().max_steps_per_node, ge=1)
    """Steps of asking per H node."""
    policy: str = "expert"
    """H: any policy spec."""
    h_fingerprint: str = ""
    """H's fingerprint (filled in when the study starts)."""
    learner_name: str = ""
    """The learner with its settings (filled in when the study starts)."""
    supervised: bool = True
    """Also fit and evaluate the supervised baseline."""
    concurrency: int = Field(default=16, ge=1)
    """Amp runs in flight at once."""

    def continues(self, previous: IdaConfig) -> bool:
        """Whether this study may add to `previous`'s output: everything but the number of rounds
        and the concurrency is the same."""
        ignore = {"rounds", "concurrency"}
        return self.model_dump(exclude=ignore) == previous.model_dump(exclude=ignore)


class AmpRun(BaseModel):
    """One training question labelled by Amp(X_t)."""

    id: str
    """The question's id."""
    label: str
    """Amp's answer: the training target (never the gold answer)."""
    status: str
    """The root's status: ok, guess or error."""
    h_calls: int
    """Calls of H in the run's tree."""
    h_calls_made: int
    """Calls of H this study made (not served by the call cache)."""
    x_calls: int
    """Calls of X_t in the tree."""
    environment: int
    """Primitive questions the environment answered."""
    nodes: int
    """Workspaces in the tree."""
    trace: str
    """The run's trace, relative to the study directory."""


class Evaluation(BaseModel):
    """X_t's answer to one evaluation question."""

    id: str
    """The evaluation question's id."""
    instance: str
    """Its instance (intervals resample instances)."""
    required_depth: int | None
    """Its class: the depth it needs with facts hidden."""
    answer: str
    """The model's answer."""
    known: bool
    """False where X's answer is a marked guess (the table never saw the input)."""
    correct: bool
    """Whether the answer matches the gold answer."""


class Fit(BaseModel):
    """How a model was fitted."""

    fingerprint: str
    """The fitted model's fingerprint (learner and data hash)."""
    examples: int
    """Training examples (labels) used."""
    seconds: float
    """Wall time of the fit."""


@dataclass
class Hooks:
    """Callbacks for progress reports (all optional)."""

    stage: Callable[[str, int, int], None] | None = None
    """(description, total, already done) when a stage starts."""
    run: Callable[[AmpRun], None] | None = None
    """After each Amp run is recorded."""
    fitted: Callable[[str, Fit], None] | None = None
    """(model name, fit) after a model is fitted."""


@dataclass
class Study:
    """Where a study's files go, and its question sets."""

    out: Path
    config: IdaConfig
    learner: Learner
    train: list[Item]
    evaluation: list[Item]
    eval_in_training: int = 0
    evaluations: dict[tuple[Kind, int], list[Evaluation]] = field(default_factory=dict)
    fits: dict[tuple[Kind, int], Fit] = field(default_factory=dict)
    runs: dict[int, list[AmpRun]] = field(default_factory=dict)

    def round_dir(self, t: int) -> Path:
        return self.out / "rounds" / f"round-{t}"

    def model_path(self, kind: Kind, t: int) -> Path:
        return self.out / "models" / f"{PREFIX[kind]}-{t}{self.learner.suffix}"


def question_sets(config: IdaConfig) -> tuple[list[Item], list[Item]]:
    """The training and evaluation questions of a study (see `hch.learning.questions`)."""
    task = get_task(config.task)
    if config.instances is not None:
        every = universe(task, config.instances, config.seed, config.max_depth)
        return spread_sample(every, config.questions, config.seed), spread_sample(
            every, config.eval_questions, config.seed + 1
        )
    if config.questions < 1:
        raise IdaError("held-out studies need --questions of 1 or more")
    return held_out(task, config.questions, config.eval_questions, config.seed, config.max_depth)


def amplified(h: Policy, x: Policy) -> PositionalPolicy:
    """Amp(X): H wherever it may ask, X at depth 0 (the leaves)."""
    return PositionalPolicy({"depth0": x, "else": h})


def prepare(out: Path, config: IdaConfig) -> None:
    out.mkdir(parents=True, exist_ok=True)
    path = out / CONFIG_FILE
    if path.exists():
        try:
            previous = IdaConfig.model_validate_json(read_text(path, "IDA configuration", IdaError))
        except (ValidationError, OSError) as exc:
            raise IdaError(f"{path} is not an IDA configuration ({type(exc).__name__}); use another --out") from None
        if not config.continues(previous):
            raise IdaError(f"{out} holds a different IDA study; use another --out or remove it")
    write_atomic(path, config.model_dump_json(indent=2))


def load_jsonl(path: Path, model: type[M]) -> list[M]:
    """Records of a JSONL file; a torn last line (a hard kill) is dropped, other bad lines refused."""
    if not path.exists():
        return []
    lines = read_text(path, "IDA record file", IdaError).splitlines()
    records: list[M] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(model.model_validate_json(line))
        except ValidationError:
            if number == len(lines):
                continue
            raise IdaError(f"{path} line {number} is not a {model.__name__} record; remove the study") from None
    return records


def count_calls(trace: Any, x: str) -> dict[str, int]:
    """H's calls (every call not X's), X's calls, environment answers and nodes in an Amp run's trace."""
    calls = [data for _, data in trace.calls()]
    h = [c for c in calls if c["policy"] != x]
    return {
        "h_calls": len(h), "h_calls_made": sum(not c.get("cached") for c in h),
        "x_calls": sum(c["policy"] == x for c in calls),
        "environment": sum(bool(d.get("oracle")) for _, d in trace.workspaces()),
        "nodes": sum(1 for _ in trace.workspaces()),
    }


async def label_round(study: Study, t: int, x: LearnedPolicy, h: Policy, cache: CallCache | None,
                      hooks: Hooks, pool: Pool | None = None,
                      remake_h: Callable[[], Policy] | None = None) -> list[AmpRun]:
    """Amp(X_t)'s answers to every training question (resuming the round's recorded runs)."""
    folder = study.round_dir(t)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "labels.jsonl"
    done = {r.id: r for r in load_jsonl(path, AmpRun) if (study.out / r.trace).exists()}
    todo = [item for item in study.train if item.id not in done]
    if hooks.stage:
        hooks.stage(f"round {t}: Amp(X_{t}) labels", len(study.train), len(study.train) - len(todo))
    policy = amplified(h, x)
    new: list[AmpRun] = []
    with open_append(path) as records:  # a line torn by a kill is cut off, not glued to

        def take(run: object) -> None:
            assert isinstance(run, AmpRun)
            records.write(run.model_dump_json() + "\n")
            records.flush()
            new.append(run)
            if hooks.run:
                hooks.run(run)

        if pool is not None:
            from hch.learning.ida_jobs import label_on_pool  # the pool's modules load only when asked for

            c = study.config
            await label_on_pool(pool, todo, t, h, remake_h, x, c.depth, c.max_steps, c.concurrency, study.out, cache,
                                take)
        else:
            await _label_here(study, todo, t, policy, x, cache, take)
    every = {**done, **{r.id: r for r in new}}
    return [every[item.id] for item in study.train]


async def amp_run(item: Item, t: int, depth: int, max_steps: int, policy: Policy, x: LearnedPolicy,
                  cache: CallCache | None, out: Path) -> AmpRun:
    """Amp(X_t)'s answer to one training question, its trace written under `out`."""
    trace = f"traces/round-{t}/{safe_name(item.id)}.json"
    result = await answer(
        item.question, depth=depth, policy=policy, context=item.context, limits=Limits(max_steps_per_node=max_steps),
        call_cache=cache, trace_path=out / trace, facts="hidden",
        meta={"ida": {"round": t, "id": item.id, "instance": item.instance}},
    )
    return AmpRun(id=item.id, label=result.answer, status=result.status, trace=trace,
                  **count_calls(result.trace, x.fingerprint))


async def _label_here(study: Study, todo: list[Item], t: int, policy: Policy, x: LearnedPolicy,
                      cache: CallCache | None, take: Callable[[AmpRun], None]) -> None:
    """Label `todo` in this process, `concurrency` at a time."""
    limiter = anyio.CapacityLimiter(study.config.concurrency)
    c = study.config

    async def one(item: Item) -> None:
        async with limiter:
            take(await amp_run(item, t, c.depth, c.max_steps, policy, x, cache, study.out))

    try:
        async with anyio.create_task_group() as group:
            for item in todo:
                group.start_soon(one, item)
    except BaseExceptionGroup as failed:  # one failure (a crash, a hook's exception): raise it as it is
        if len(failed.exceptions) == 1:
            raise failed.exceptions[0] from None
        raise


def targets(study: Study, runs: list[AmpRun]) -> tuple[list[Example], list[Example]]:
    """Amplification's examples (kept labels) and the supervised baseline's (the same questions, gold)."""
    by_id = {item.id: item for item in study.train}
    kept = [(by_id[r.id], r.label) for r in runs if r.status == "ok"]
    amp = [Example(question=i.question, context=i.context, target=label, instance=i.instance) for i, label in kept]
    gold = [Example(question=i.question, context=i.context, target=i.answer or "", instance=i.instance)
            for i, _ in kept if i.answer is not None]
    return amp, gold


def fitted(study: Study, kind: Kind, t: int, examples: list[Example], hooks: Hooks) -> LearnedPolicy:
    """X_t (or S_t) from its checkpoint (a rerun), or fitted on `examples` and saved (checkpoint first,
    then the fit record that marks it complete)."""
    path = study.model_path(kind, t)
    meta = path.with_suffix(".fit.json")
    if path.exists() and meta.exists():
        study.fits[kind, t] = Fit.model_validate_json(read_text(meta, "IDA fit record", IdaError))
        return study.learner.load(path)
    began = time.perf_counter()
    model = study.learner.fit(examples)
    fit = Fit(fingerprint=model.fingerprint, examples=len(examples), seconds=time.perf_counter() - began)
    model.save(path)
    write_atomic(meta, fit.model_dump_json())
    study.fits[kind, t] = fit
    if hooks.fitted:
        hooks.fitted(f"{PREFIX[kind]}-{t}", fit)
    return model


def evaluate(study: Study, kind: Kind, t: int, model: LearnedPolicy) -> list[Evaluation]:
    """X_t's answers to the evaluation questions, graded against gold (read from file when done)."""
    path = study.round_dir(t) / f"eval-{PREFIX[kind]}.jsonl"
    if path.exists():
        return load_jsonl(path, Evaluation)
    items = study.evaluation
    predictions = model.predict([(item.question, item.context) for item in items])
    records = [
        Evaluation(id=item.id, instance=item.instance or item.id, required_depth=item.required_depth,
                   answer=p.answer, known=p.known, correct=bool(grade(p.answer, item.answer, item.grader)))
        for item, p in zip(items, predictions, strict=True)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "".join(r.model_dump_json() + "\n" for r in records))
    return records


async def run_ida(
    config: IdaConfig, learner: Learner, h: Policy, out: Path, call_cache: CallCache | None = None,
    hooks: Hooks | None = None, pool: Pool | None = None, remake_h: Callable[[], Policy] | None = None,
) -> Study:
    """Run (or resume) the study in `out`; returns everything needed for the report.

    `pool` runs each round's Amp runs on several processes or machines (`hch.study.workers`), with the
    same labels, traces and resume as here; H goes to the workers pickled, or is made there by `remake_h`.
    """
    hooks = hooks or Hooks()
    config = config.model_copy(update={"h_fingerprint": h.fingerprint, "learner_name": learner.name})
    train, evaluation = question_sets(config)
    prepare(out, config)
    study = Study(out, config, learner, train, evaluation, eval_in_training=overlap(evaluation, train))
    kinds = KINDS if config.supervised else KINDS[:1]
    models: dict[Kind, LearnedPolicy] = {kind: fitted(study, kind, 0, [], hooks) for kind in kinds}
    for t in range(config.rounds + 1):
        for kind in kinds:
            study.evaluations[kind, t] = evaluate(study, kind, t, models[kind])
        if t == config.rounds:
            break
        runs = await label_round(study, t, models["amplification"], h, call_cache, hooks, pool, remake_h)
        study.runs[t] = runs
        amp, gold = targets(study, runs)
        models["amplification"] = fitted(study, "amplification", t + 1, amp, hooks)
        if config.supervised:
            models["supervised"] = fitted(study, "supervised", t + 1, gold, hooks)
    write_atomic(out / "complete.json", json.dumps({"rounds": config.rounds}))
    return study
