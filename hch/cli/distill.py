"""`hch distill`: distillation pairs and chat imitation data from traces, journals and sweeps."""

from __future__ import annotations

from pathlib import Path

import click

from hch.cli import app
from hch.cli.params import NamedPath
from hch.cli.render import plain
from hch.learning.distill import Options, distill

STATUSES = ("ok", "guess", "error", "running", "interrupted")


@app.command(name="distill")
@click.argument("inputs", nargs=-1, required=True, type=NamedPath(path_type=Path))
@click.option("--out", "-o", required=True, type=NamedPath(file_okay=False, path_type=Path),
              help="Output directory for the JSONL files and summary.json.")
@click.option("--all-workspaces", is_flag=True, help="Pairs for every workspace, not only each run's root.")
@click.option("--status", "statuses", default="ok", show_default=True,
              help=f"Statuses to keep, comma-separated ({', '.join(STATUSES)}).")
@click.option("--no-guesses", is_flag=True, help="Drop examples with a guess anywhere below them.")
@click.option("--correct-only", is_flag=True, help="Drop runs a sweep graded wrong (where gold is known).")
@click.option("--policy", "policies", multiple=True,
              help="Keep only what policies matching this glob did (repeatable), e.g. 'expert*' or 'llm:*'.")
@click.option("--validation", type=click.FloatRange(min=0, max=1, max_open=True), default=0.1, show_default=True,
              help="Share of instances in the validation split.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option("--preset", default="llm-default", show_default=True,
              help="LLM preset whose prompt the chat examples reproduce (a name under policies/ or a file).")
def distill_command(inputs: tuple[Path, ...], out: Path, all_workspaces: bool, statuses: str, no_guesses: bool,
                    correct_only: bool, policies: tuple[str, ...], validation: float, seed: int, preset: str) -> None:
    """Write training data from trace files, journals and sweep directories (INPUTS).

    pairs-*.jsonl: (question, context) -> amplified answer. chat-*.jsonl: one policy call per line in
    the OpenAI chat fine-tuning format, exactly the prompt the LLM policy sends with --preset.
    Instances never straddle the train/validation split.
    """
    wanted = frozenset(s.strip() for s in statuses.split(",") if s.strip())
    unknown = sorted(wanted - set(STATUSES))
    if unknown or not wanted:
        raise click.BadParameter(f"unknown status {unknown[0] if unknown else '(none)'}; statuses: "
                                 f"{', '.join(STATUSES)}", param_hint="--status")
    options = Options(all_workspaces=all_workspaces, statuses=wanted, no_guesses=no_guesses,
                      correct_only=correct_only, policies=policies, validation=validation, seed=seed, preset=preset)
    summary = distill(list(inputs), out, options)
    for line in summary.lines():
        click.echo(plain(line))
    for name, path in summary.files.items():
        click.echo(f"{name}: {plain(str(path))}")
