from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import hch


def test_the_package_ships_py_typed_so_type_checkers_use_its_hints() -> None:
    assert resources.files("hch").joinpath("py.typed").is_file()
    project = tomllib.loads((Path(hch.__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["hch"]
