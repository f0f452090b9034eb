"""`--workers N` and `--ray ADDRESS` of `hch sweep` and `hch ida`: where their runs go."""

from __future__ import annotations

from typing import Any

import click

from hch.cli.options import stack
from hch.study.ray_workers import check_ray_address
from hch.study.workers import MAX_WORKERS, Pool, WorkersError, make_pool, parse_workers


class Workers(click.ParamType[int]):
    """A whole number of workers from 1 to MAX_WORKERS, or `auto` (this machine's cores)."""

    name = "workers"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        try:
            return parse_workers(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class RayAddress(click.ParamType[str]):
    """HOST:PORT, ray://HOST:PORT, auto or local."""

    name = "address"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return check_ray_address(str(value))
        except WorkersError as exc:
            self.fail(str(exc), param, ctx)


workers_options = stack(
    click.option("--workers", "-w", type=Workers(), metavar="N|auto",
                 help=f"Processes to run on (1 to {MAX_WORKERS}; auto: every core). Default 1: this process, "
                      "which keeps --concurrency for slow policies; with --ray, the cluster's CPUs."),
    click.option("--ray", "ray_address", type=RayAddress(), metavar="ADDRESS",
                 help="Run on a Ray cluster: HOST:PORT of its head, ray://HOST:PORT, auto (the one started on "
                      "this machine) or local (a new one here); pip install 'hch[ray]'."),
)


def open_pool(workers: int | None, ray_address: str | None, human: bool) -> Pool | None:
    """The pool asked for, connected (an unreachable cluster is one line, before any run), or None."""
    if human and (ray_address is not None or (workers or 1) > 1):
        raise click.UsageError("--workers and --ray need a policy without a person at the prompt (one terminal)")
    pool = make_pool(workers, ray_address)
    if pool is not None:
        pool.start()
    return pool
