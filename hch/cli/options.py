"""Options shared by several commands, declared once as click decorators."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from hch.cli.params import FiniteFloat, NamedPath
from hch.limits import Limits
from hch.run.call_budget import MAX_BUDGET
from hch.run.call_cache import DEFAULT_PATH, CallCache

TRACES_DIR = Path("traces")
F = TypeVar("F", bound=Callable[..., Any])
DEFAULTS = Limits()


def stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Apply several click decorators as one."""

    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


depth_option = click.option(
    "--depth", "-d", type=click.IntRange(min=0), default=3, show_default=True,
    help="The n of HCH_n: how deep delegation may go.",
)
budget_option = click.option(
    "--budget", type=click.IntRange(min=1, max=MAX_BUDGET), metavar="N",
    help="Budgeted HCH: at most N policy calls in the run; each node sees the calls it has left and gives its "
    "subquestions shares. Without --depth, depth is unbounded (see README, Budgeted HCH).",
)
policy_option = click.option(
    "--policy", "-p", default="expert", show_default=True,
    help="Policy spec: expert, llm, human, script:FILE, ... (see README).",
)
facts_option = click.option(
    "--facts", type=click.Choice(["shown", "hidden"]), default="shown", show_default=True,
    help="shown: every node sees the task's facts; hidden: H sees only the task's header and the task's "
    "environment answers its primitive questions (the 2018 paper's setting).",
)
cache_options = stack(
    click.option("--cache", type=NamedPath(dir_okay=False, path_type=Path), default=DEFAULT_PATH,
                 show_default=True, help="Policy-call cache file (SQLite)."),
    click.option("--no-cache", is_flag=True, help="Neither read nor write the policy-call cache."),
)
limit_options = stack(
    click.option("--fail-fast", is_flag=True, help="Abort the run at the first node that fails."),
    click.option("--max-asks", type=click.IntRange(min=1), default=DEFAULTS.max_asks_per_step,
                 show_default=True, help="Subquestions one step may ask."),
    click.option("--max-steps", type=click.IntRange(min=1), default=DEFAULTS.max_steps_per_node,
                 show_default=True, help="Steps of asking one node may take."),
    click.option("--max-nodes", type=click.IntRange(min=1), default=DEFAULTS.max_nodes,
                 show_default=True, help="Workspaces a run may expand."),
    click.option("--node-timeout", type=FiniteFloat(min=0, min_open=True),
                 help="Seconds one policy call at a node may take."),
    click.option("--run-timeout", type=FiniteFloat(min=0, min_open=True), help="Seconds for the whole run."),
    click.option("--max-total-tokens", type=click.IntRange(min=0), help="Token budget of the run."),
    click.option("--max-cost", type=FiniteFloat(min=0), help="Budget of the run in US dollars."),
    click.option("--pointers", is_flag=True, help="Pointer mode: data as messages behind $N pointers that H "
                 "expands to read or passes on unread; [[...]] in the question makes a message (see README)."),
    click.option("--bandwidth", type=click.IntRange(min=1), help="Characters H may see in one workspace "
                 "(question, context, sub-answers, expansions); an expansion past it is refused. Implies --pointers."),
)

copies_option = click.option(
    "--copies", type=click.Choice(["merged", "independent"]), default="merged", show_default=True,
    help="merged: identical subquestions share one copy of H (one sample); independent: every place "
    "asks its own copy (noisy experts and sampling LLMs draw apart; cached per copy).",
)

llm_options = stack(
    click.option("--model", "-m", help="Model name for --policy llm (default: $HCH_MODEL, then the preset's)."),
    click.option("--base-url", help="OpenAI-compatible server, e.g. http://localhost:11434/v1 "
                 "(default: $OPENAI_BASE_URL, then the preset's, then OpenAI). The key is read from $OPENAI_API_KEY."),
    click.option("--preset", help="LLM preset: a name under policies/ or a YAML file (default: llm-default)."),
    click.option("--max-concurrency", type=click.IntRange(min=1), default=8, show_default=True,
                 help="Simultaneous requests to the server at most."),
    click.option("--price", metavar="IN,OUT[,CACHED]",
                 help="Dollars per million input, output (and cached input) tokens; overrides the preset's."),
    click.option("--temperature", type=FiniteFloat(min=0), help="Sampling temperature (default: the preset's)."),
    click.option("--seed", type=int, help="Sampling seed sent to the server; each seed is cached apart."),
    click.option("--request-timeout", type=FiniteFloat(min=0, min_open=True),
                 help="Seconds one HTTP request may take before it is retried (default: the preset's)."),
)


def limits_from(options: dict[str, Any]) -> Limits:
    """The `Limits` that `limit_options` flags describe."""
    return Limits(
        max_asks_per_step=options["max_asks"], max_steps_per_node=options["max_steps"],
        max_nodes=options["max_nodes"], node_timeout=options["node_timeout"],
        run_timeout=options["run_timeout"], max_total_tokens=options["max_total_tokens"],
        max_cost=options["max_cost"], pointers=options.get("pointers", False), bandwidth=options.get("bandwidth"),
    )


def open_cache(path: Path, disabled: bool) -> CallCache | None:
    """The call cache the flags ask for, or None for `--no-cache`."""
    return None if disabled else CallCache(path)


def new_trace_path(question: str, folder: Path = TRACES_DIR) -> Path:
    """A new file name under `traces/` that no other run gets: the time to the microsecond, a
    random suffix and a slug of the question. The run claims it when it starts (see `hch.record.claim`)."""
    words = "".join(c if c.isalnum() else " " for c in question.lower()).split()[:6]
    slug = "-".join(words)[:60] or "run"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return folder / f"{stamp}-{secrets.token_hex(3)}-{slug}.json"
