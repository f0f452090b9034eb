"""The `hch` command line: one module per command, errors as one line and a non-zero exit."""

from __future__ import annotations

import os
import sys

import click

from hch.errors import HchError
from hch.review.outcome import TABLE


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog="\b\n" + TABLE)
@click.version_option(package_name="hch")
def app() -> None:
    """Humans Consulting HCH, simulated: answer questions by recursive delegation."""


from hch.cli import ask as _ask  # noqa: E402
from hch.cli import diff as _diff  # noqa: E402
from hch.cli import distill as _distill  # noqa: E402
from hch.cli import export as _export  # noqa: E402
from hch.cli import ida as _ida  # noqa: E402
from hch.cli import replay as _replay  # noqa: E402
from hch.cli import serve as _serve  # noqa: E402
from hch.cli import show as _show  # noqa: E402
from hch.cli import sweep as _sweep  # noqa: E402
from hch.cli import view as _view  # noqa: E402  (each command module registers itself on `app`)

_COMMANDS = (_ask, _diff, _distill, _export, _ida, _replay, _serve, _show, _sweep, _view)


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
