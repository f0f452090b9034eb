"""The `hch` command line: one module per command, errors as one line and a non-zero exit.

A command's module is imported only when that command runs (or shows its help), so `hch --version`,
`hch --help` and `hch show` do not pay for importing what the other commands need.
"""

from __future__ import annotations

import importlib
import os
import sys
from gettext import gettext

import click

from hch.errors import HchError
from hch.review.outcome import TABLE

COMMANDS: dict[str, tuple[str, str]] = {
    "ask": ("hch.cli.ask", "Answer QUESTION with HCH_n; print the answer, its tree, a summary and the trace path."),
    "diff": ("hch.cli.diff",
             "Compare traces A and B; exit 0 when they agree, 1 when they differ, 2 when one cannot be read."),
    "distill": ("hch.cli.distill",
                "Write training data from trace files, journals and sweep directories (INPUTS)."),
    "export": ("hch.cli.export",
               "Write the trace at PATH in another format; print where (with -o -, write it to stdout)."),
    "ida": ("hch.cli.ida",
            "Iterated distillation and amplification: X_(t+1) imitates Amp(X_t), with facts hidden from H."),
    "replay": ("hch.cli.replay",
               "Replay the trace at PATH. Exit 1 if a plain replay diverges; with --policy, report where it does."),
    "serve": ("hch.cli.serve", "Serve workspaces to participants in their browsers while runs and sweeps go on."),
    "show": ("hch.cli.show",
             "Show the trace at PATH: its tree and statistics (an unfinished run's journal is read if needed)."),
    "sweep": ("hch.cli.sweep", "Run every question at every depth and report accuracy, cost and time per depth."),
    "view": ("hch.cli.view",
             "Write the trace at PATH as an HTML page (no network needed to open it); print its path."),
}
"""Each command: the module that defines it (and registers it on `app` when imported), and the first
paragraph of its help, which `hch --help` lists (tests check both against the commands themselves)."""


class LazyGroup(click.Group):
    """A group whose commands in `COMMANDS` are imported when first looked up, not when the group is."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(COMMANDS[cmd_name][0])
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and args[0] not in COMMANDS:
            for module, _ in COMMANDS.values():  # no such command: click suggests the closest one ("Did you
                importlib.import_module(module)  # mean 'show'?") among those imported, so import them all
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's list of commands, with a command not imported yet shown from its help in `COMMANDS`."""
        listed = [(name, self.commands.get(name) or click.Command(name, help=COMMANDS[name][1]))
                  for name in self.list_commands(ctx)]
        listed = [(name, command) for name, command in listed if not command.hidden]
        if listed:
            limit = formatter.width - 6 - max(len(name) for name, _ in listed)
            with formatter.section(gettext("Commands")):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in listed])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog="\b\n" + TABLE)
@click.version_option(package_name="hch")
def app() -> None:
    """Humans Consulting HCH, simulated: answer questions by recursive delegation."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `hch` console script."""
    try:
        code = app.main(args=argv, prog_name="hch", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        print(exc.format_message(), file=sys.stderr)
        sys.exit(2)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "hch"
        fail(f"{exc.format_message()} (see '{where} --help')", 2)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        fail("interrupted", 130)
    except Exception as exc:
        fail_with(exc)
    sys.exit(code if isinstance(code, int) else 0)


def fail_with(exc: Exception) -> None:
    """Report an error that ended a command: its message, as one line. Concurrent tasks raise a group:
    its first error is reported (and how many others there were) when it is one hch raises on purpose."""
    count = 1
    if isinstance(exc, BaseExceptionGroup):
        leaves = list(_leaves(exc))
        known = [leaf for leaf in leaves if isinstance(leaf, HchError | OSError)]
        if known:
            exc, count = known[0], len(leaves)
    more = f" (and {count - 1} more errors)" if count > 1 else ""
    if isinstance(exc, HchError):
        fail(f"{exc}{more}", 1)
    if isinstance(exc, OSError):
        fail((f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)) + more, 1)
    if os.environ.get("HCH_DEBUG"):
        raise exc
    fail(f"unexpected {type(exc).__name__}: {exc} (set HCH_DEBUG=1 to see the traceback)", 1)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for inner in group.exceptions:
        found.extend(_leaves(inner) if isinstance(inner, BaseExceptionGroup) else [inner])
    return found


def fail(message: str, code: int) -> None:
    """Print `message` as one line on stderr and exit with `code`."""
    from hch.cli.render import plain  # echoed names and values: escapes shown, never acted on

    print("hch: error: " + plain(" ".join(message.split())), file=sys.stderr)
    sys.exit(code)
