"""Parameter types shared by several commands (apart from `hch.cli.options`, which needs the run's
machinery for its defaults, so that commands that only read files need not import it)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click


class FiniteFloat(click.FloatRange):
    """A float option that refuses NaN and infinities (which every comparison with a bound lets through)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class NamedPath(click.Path):
    """A path option or argument; an empty string names no file (it would mean the current folder)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path names no file; give a path", param, ctx)
        converted = super().convert(value, param, ctx)
        if not self.file_okay and str(value) != "-":  # a directory to write into: nothing else in its way
            from hch.files import directory_problem

            if (problem := directory_problem(Path(value))) is not None:
                self.fail(problem, param, ctx)  # escaped where it is printed (`hch.cli.fail`)
        return converted
