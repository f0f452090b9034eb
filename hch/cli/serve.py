"""`hch serve`: a web app where participants answer workspaces from a queue while runs and sweeps go on."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import anyio
import click

from hch.cli import app
from hch.cli.options import (
    budget_option,
    cache_options,
    copies_option,
    depth_option,
    facts_option,
    limit_options,
    limits_from,
    llm_options,
    open_cache,
)
from hch.cli.params import FiniteFloat, NamedPath
from hch.errors import HchError
from hch.review.outcome import ExitStatus

DEFAULT_STATE = Path(".hch/serve")
LLM_OPTIONS = ("model", "base_url", "preset", "max_concurrency", "price", "temperature", "seed", "request_timeout")


class ServeError(HchError):
    """`hch serve` cannot start: its state directory is in use, its address is taken, an option is wrong."""


@app.command(epilog="\b\nExit status: 0 stopped after every run finished (--exit-when-done) · 1 bad input, "
             "an address or state directory in use · 2 bad command line · 4 --exit-when-done and some run "
             "failed · 130 stopped by Ctrl-C or SIGTERM (the state is kept: rerun to resume)")
@click.option("--state", "state", type=NamedPath(file_okay=False, path_type=Path), default=DEFAULT_STATE,
              show_default=True, help="Directory of the server's state (SQLite), traces and sweeps; rerun to resume.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--public-url", help="The server's address as participants reach it, for the links "
              "(default: http://HOST:PORT).")
@click.option("--participants", "count", type=click.IntRange(min=0, max=10_000), default=0,
              help="Make links until there are this many participants.")
@click.option("--participant", "names", multiple=True, metavar="NAME",
              help="A participant with this name (repeat for more; names appear on the experimenter's page only).")
@click.option("--ask", "questions", multiple=True, metavar="QUESTION", help="Run this question (repeat for more).")
@depth_option
@budget_option
@click.option("--budgets", metavar="LIST",
              help="Sweep over call budgets instead of depth, e.g. 10,100 (see hch sweep --budgets).")
@click.option("--policy", "-p", default="web", show_default=True,
              help="Policy spec whose web parts participants play, e.g. web or root=web,else=expert.")
@click.option("--context", default="", help="Shared context of the --ask runs (text, or @FILE).")
@facts_option
@copies_option
@click.option("--sweep", "questions_file", type=NamedPath(dir_okay=False, path_type=Path),
              help="Also run a sweep over this JSONL question file (see hch sweep).")
@click.option("--task", "-t", help="Also run a sweep over a built-in task's questions.")
@click.option("--questions", "-n", "question_count", type=click.IntRange(min=1, max=10_000), default=10,
              show_default=True, help="How many task questions (with --task).")
@click.option("--depths", default=None, help="Depths of the sweep, e.g. 1-2 (default: --depth).")
@click.option("--concurrency", "-j", type=click.IntRange(min=1), default=8, show_default=True,
              help="Trees of a sweep in progress at once at most.")
@click.option("--barrier", type=click.Choice(["tree", "path"]), default=None,
              help="tree: nobody gets two workspaces of one tree (default); path: nobody gets two on one "
                   "root-to-leaf path.")
@click.option("--time-budget", type=FiniteFloat(min=0), default=None,
              help="Seconds a participant has for a workspace before it goes to someone else "
                   "(default 600; 0: no limit).")
@click.option("--away", type=FiniteFloat(min=0), default=60.0, show_default=True,
              help="Seconds a participant may have no page open while a workspace is theirs before it goes to "
                   "someone else (0: only the time budget).")
@click.option("--exit-when-done", is_flag=True, help="Stop once every run has finished (exit 0, or 4 if one failed).")
@cache_options
@limit_options
@llm_options
def serve(state: Path, host: str, port: int, public_url: str | None, count: int, names: tuple[str, ...],
          questions: tuple[str, ...], depth: int, budget: int | None, budgets: str | None, policy: str, context: str,
          facts: str, copies: str,
          questions_file: Path | None, task: str | None, question_count: int, depths: str | None, concurrency: int,
          barrier: str | None, time_budget: float | None, away: float, exit_when_done: bool, cache: Path,
          no_cache: bool, fail_fast: bool, **flags: Any) -> None:
    """Serve workspaces to participants in their browsers while runs and sweeps go on.

    Prints the experimenter's link and one link per participant, each with its own secret token.
    Rerun with the same --state to resume: nothing a participant answered is asked again.
    """
    try:
        from hch.serve.app import Server, make_app
        from hch.serve.desk import Desk
        from hch.serve.jobs import Jobs
        from hch.serve.policy import activate
        from hch.serve.store import Store
    except ImportError as exc:
        raise ServeError(f"hch serve needs the serve extra: pip install 'hch[serve]' ({exc})") from None
    from hch.cli.ask import read_context

    depth_given = click.get_current_context().get_parameter_source("depth") is not click.core.ParameterSource.DEFAULT
    run_depth = depth if budget is None or depth_given else None  # a budgeted run without --depth: unbounded
    base_url = check_public_url(public_url)
    context = read_context(context)
    with locked(state):
        store = Store(state / "serve.sqlite")
        try:
            chosen_barrier = barrier or store.setting("barrier") or "tree"
            store.set_setting("barrier", chosen_barrier)
            seconds = time_budget if time_budget is not None else float(store.setting("time_budget") or 600)
            store.set_setting("time_budget", str(seconds))
            desk = Desk(store, chosen_barrier, seconds or None, away=away or None)  # type: ignore[arg-type]
            activate(desk)
            call_cache = open_cache(own_cache(cache, state), no_cache)
            options = {name: flags[name] for name in LLM_OPTIONS}
            jobs = Jobs(store, desk, state, call_cache, options, limits_from(flags), fail_fast)
            todo = jobs.resume()
            for question in questions:
                todo.append(jobs.ask(question, run_depth, policy, context, facts, copies, budget))
            if questions_file is not None or task is not None:
                todo.append(sweep_job(jobs, questions_file, task, question_count, depths or str(depth), policy,
                                      facts, copies, concurrency, flags, (budget, budgets, depths is not None)))
            add_participants(store, count, names)
            sock = listen(host, port)
            url = base_url or f"http://{display_host(host)}:{sock.getsockname()[1]}"
            server = Server(store, desk, url, start_run=lambda data: start_from_form(jobs, data, policy),
                            jobs_view=jobs.view)
            print_links(server, sys.stdout)
            todo = list({job.id: job for job in todo if job.status == "running"}.values())
            print(f"hch serve: {len(todo)} runs going · state in {state} · "
                  "Ctrl-C stops; rerun the same command to resume", file=sys.stderr, flush=True)
            interrupted = anyio.run(lambda: main(server, make_app(server), sock, jobs, todo, exit_when_done))
        finally:
            activate(None)
            store.close()
    if interrupted:
        print(f"hch: interrupted; the state is kept in {state}: rerun to resume", file=sys.stderr)
        sys.exit(130)
    sys.exit(ExitStatus.FAILED if jobs.failed() else ExitStatus.OK)


def own_cache(cache: Path, state: Path) -> Path:
    """The call cache: the state directory's own unless --cache names one, so one study's answers are not
    served to another's participants from a shared cache."""
    source = click.get_current_context().get_parameter_source("cache")
    return cache if source is not click.core.ParameterSource.DEFAULT else state / "cache.sqlite"


def check_public_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise click.BadParameter(f"{value!r} is not a base URL like https://example.org or http://host:8000/hch",
                                 param_hint="--public-url")
    if parts.username or parts.password:
        raise click.BadParameter("a public URL may not hold credentials", param_hint="--public-url")
    return value.rstrip("/")


def display_host(host: str) -> str:
    if host in ("0.0.0.0", "", "::"):
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host


@contextlib.contextmanager
def locked(state: Path) -> Iterator[None]:
    """Hold the state directory for this server; a second server on it is refused."""
    if state.exists() and not state.is_dir():
        raise ServeError(f"{state} is not a directory; give --state a directory")
    state.mkdir(parents=True, exist_ok=True)
    fd = os.open(state / "serve.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ServeError(f"{state} is in use by another hch serve; stop it or give another --state") from None
        yield
    finally:
        os.close(fd)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line error (address in use, unknown host)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def add_participants(store: Any, count: int, names: tuple[str, ...]) -> None:
    known = {p.name for p in store.participants()}
    for name in names:
        if name.strip() and name.strip() not in known:
            store.add_participant(name.strip())
            known.add(name.strip())
    while len(store.participants()) < count:
        store.add_participant()


def print_links(server: Any, out: IO[str]) -> None:
    """The experimenter's link and every participant's, one per line (the only place tokens are printed)."""
    print(f"experimenter: {server.experimenter_link()}", file=out)
    for person in server.store.participants():
        print(f"participant {person.id}: {server.participant_link(person.token)}", file=out)
    out.flush()


def sweep_job(jobs: Any, questions_file: Path | None, task: str | None, count: int, depths: str, policy: str,
              facts: str, copies: str, concurrency: int, flags: dict[str, Any],
              budgeted: tuple[int | None, str | None, bool] = (None, None, False)) -> Any:
    """The sweep job; `budgeted` is (--budget, --budgets, whether --depths was given), as `hch sweep` takes them."""
    from hch.cli.sweep import budget_points, parse_numbers, source
    from hch.limits import Limits

    depth_list = parse_numbers(depths, "depths", 0)
    budget, budgets, depths_given = budgeted
    budget_list = budget_points(budget, budgets, depth_list)
    if budget_list is not None:  # a sweep over budget leaves depth unbounded unless --depths names one
        if depths_given and len(depth_list) != 1:
            raise click.UsageError("a sweep over budget takes at most one depth (--depths D, an extra bound)")
        depth_list = depth_list if depths_given else []
    seed = flags["seed"] if flags["seed"] is not None else 0
    items, config = source(questions_file, task, count, seed, None, facts)  # type: ignore[arg-type]
    limits: Limits = limits_from(flags)
    config = config.model_copy(update={
        "depths": depth_list, "policy": policy, "votes": [1], "concurrency": concurrency,
        "limits": limits.model_copy(update={"max_total_tokens": None, "max_cost": None}),
        "max_total_tokens": limits.max_total_tokens, "max_cost": limits.max_cost, "facts": facts, "copies": copies,
        "budgets": budget_list,
    })
    return jobs.sweep(items, config)


async def start_from_form(jobs: Any, data: dict[str, Any], default_policy: str) -> str:
    """A run the experimenter started from the page: question, depth, policy spec and (budgeted HCH) call budget."""
    from hch.serve.desk import Refused

    spec = data.get("policy") or default_policy
    if not isinstance(spec, str):
        raise Refused(400, "the policy is a spec such as web or root=web,else=expert")
    job = jobs.ask(data.get("question"), data.get("depth"), spec, budget=data.get("budget"))
    if job.status != "running":
        raise Refused(409, f"this run was made already: job {job.id}, {job.status}")
    jobs.launch(job)
    return str(job.id)


async def main(server: Any, asgi: Any, sock: socket.socket, jobs: Any, todo: list[Any], exit_when_done: bool) -> bool:
    """Serve until Ctrl-C or SIGTERM (True: interrupted) or, with `exit_when_done`, until every job finished."""
    import uvicorn

    class Quiet(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    config = uvicorn.Config(asgi, log_level="warning", access_log=False, lifespan="off", server_header=False,
                            timeout_graceful_shutdown=2)
    web = Quiet(config)
    interrupted = False
    stopped = anyio.Event()

    async def stop() -> None:
        server.desk.closing = True  # assignments stay open across a restart; pages in a poll return at once
        server.desk.notify()
        web.should_exit = True
        stopped.set()

    async def on_signal() -> None:
        nonlocal interrupted
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                interrupted = True
                await stop()
                return

    async def when_done() -> None:
        await anyio.sleep(0)
        while True:
            await jobs.all_done.wait()
            if jobs.running == 0:
                await stop()
                return

    async with anyio.create_task_group() as group:
        group.start_soon(on_signal)
        group.start_soon(server.desk.reap)
        jobs.start(group, todo)
        if exit_when_done:
            group.start_soon(when_done)

        async def serve_then_cancel() -> None:
            await web.serve(sockets=[sock])
            await stopped.wait()
            group.cancel_scope.cancel()

        group.start_soon(serve_then_cancel)
    return interrupted
